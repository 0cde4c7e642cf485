// Migration paths with a target whose L2 runs its code, as the kvm: agent's does (README K19): a
// VM-entry enters L2 at once (`l2: entered`, nothing pending), an L2 that halts has moved its RIP
// past the HLT, and one that runs on exits to L1 at its first stop (`l2: exited`). The path stops
// where the guest leaves the model's state and names why; L2's execution fields are named, not
// compared, after a real L2 ran; a target that differs without saying so still fails.
import { describe, expect, test } from 'vitest';
import { findHost } from '../model/migration/hosts.js';
import { findScenario } from '../model/migration/scenarios.js';
import { VMCS12 } from '../model/catalog/by-name.js';
import { readHeader, writeHeader } from '../model/nested/blob.js';
import { FLAGS, OFFSET, SIZE_WITH_SHADOW, VMX_HDR_FLAGS } from '../model/nested/constants.js';
import type { GuestOp } from '../model/nested/vcpu.js';
import { fleetOf } from '../harness/fleet.js';
import { migratePath } from '../harness/hop.js';
import { measureMatrix, mispredicted } from '../harness/matrix.js';
import { runProperty } from '../harness/runner.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { referenceTarget } from '../targets/reference.js';
import type { Target } from '../targets/target.js';
import { expectCaught } from './expect-caught.js';

const prop = (id: string) => ALL_PROPERTIES.find((p) => p.id === id)!;
const ENTRIES = new Set<GuestOp['op']>(['vmlaunch', 'vmresume', 'evmcs-entry']);

/**
 * The reference, with an L2 that runs: an entry or KVM_RUN in guest mode says so (when `says`), and
 * GET in guest mode then shows L2's RIP one past where the model's is (it halted). With `exits`, a
 * KVM_RUN in guest mode answers that L2 exited to L1 instead.
 */
function realL2(opts: { says: boolean; exits?: boolean }): Target {
  const base = referenceTarget({ profile: 'linux-6.12' });
  const ran = new Set<string>();
  const guestMode = async (v: string) => {
    const g = await base.getNestedState(v, SIZE_WITH_SHADOW);
    return g.status === 'ok' && g.value.size >= 128 && (readHeader(g.value.buffer).flags & FLAGS.GUEST_MODE) !== 0;
  };
  return {
    ...base,
    guestOp: async (v: string, o: GuestOp) => {
      const r = await base.guestOp(v, o);
      if (r.status !== 'ok' || r.value.result !== 'ok' || !(ENTRIES.has(o.op) || o.op === 'run') || !(await guestMode(v))) return r;
      ran.add(v);
      if (!opts.says) return r;
      return { status: 'ok' as const, value: { result: 'ok' as const, l2: opts.exits && o.op === 'run' ? ('exited' as const) : ('entered' as const) } };
    },
    getNestedState: async (v: string, n: number) => {
      const r = await base.getNestedState(v, n);
      if (ran.has(v) && r.status === 'ok' && r.value.size > OFFSET.vmcs12 && (readHeader(r.value.buffer).flags & FLAGS.GUEST_MODE) !== 0) {
        const page = r.value.buffer.subarray(OFFSET.vmcs12);
        VMCS12.write(page, 'guest_rip', VMCS12.read(page, 'guest_rip') + 1n);
      }
      return r;
    },
  };
}

const fleet = (t: Target) => fleetOf([{ name: 'real', host: findHost('linux-6.12')!, target: t }, { name: 'model', host: findHost('linux-6.1')!, target: referenceTarget({ profile: 'linux-6.1' }) }]);
const path = (scenario: string, hops: string[]) => {
  const s = findScenario(scenario)!;
  return { start: { host: hops[0]!, vm: s.vm, ops: s.ops }, hops: hops.slice(1).map((host) => ({ host, opsAfter: [] })), qemuDropsVmxFlags: false };
};

describe('a path stops where the guest leaves the model\'s state, and says why', () => {
  test('an entry carried out at once leaves no entry pending: the run-pending scenario is not saved from such a source (ENTRY_NOT_PENDING)', async () => {
    const r = await migratePath(fleet(realL2({ says: true })), path('l2-run-pending', ['real', 'model']));
    expect(r.hops).toEqual([]);
    expect(r.departed).toMatchObject({ name: 'ENTRY_NOT_PENDING', afterHops: 0 });
  });

  test('a KVM_RUN after the entry catches the model up: the running L2 moves, marked from where a real L2 ran its code on', async () => {
    const there = await migratePath(fleet(realL2({ says: true })), path('l2-running', ['real', 'model', 'real']));
    expect(there.hops.map((h) => h.outcome.kind)).toEqual(['ok', 'ok']);
    // the L2 state the model's host restored is the one the real L2 left
    expect(there.sourceL2RanCode).toEqual([true, true]);
    expect(there.departed).toBeNull();
    const back = await migratePath(fleet(realL2({ says: true })), path('l2-running', ['model', 'real', 'model']));
    expect(back.sourceL2RanCode).toEqual([false, true]);
  });

  test("a restored L2 that exits to L1 at its first KVM_RUN ends the path after that hop (L2_RUNS_ITS_CODE)", async () => {
    const r = await migratePath(fleet(realL2({ says: true, exits: true })), path('l2-running', ['model', 'real', 'model']));
    expect(r.hops).toHaveLength(1);
    expect(r.departed).toMatchObject({ name: 'L2_RUNS_ITS_CODE', afterHops: 1 });
    expect(r.departed!.field).toMatch(/first KVM_RUN on real/);
  });

  test('the matrix shows a cell the source cannot make as not measured, never as a disagreement', async () => {
    const t = realL2({ says: true });
    const hosts = [{ name: 'real', host: findHost('linux-6.12')!, target: t }];
    const [table] = await measureMatrix(fleetOf(hosts), { hosts, scenarios: [findScenario('l2-run-pending')!], qemuDropsVmxFlags: false, variants: [] });
    const cell = table!.cells[0]!;
    expect(cell.notMeasured).toMatch(/ENTRY_NOT_PENDING/);
    expect(cell.outcome.kind).toBe('unknown');
    expect(mispredicted(cell)).toBe(false);
  });
});

describe('migration.matches-profile on a target whose L2 runs its code', () => {
  test('names L2_RUNS_ITS_CODE and ENTRY_NOT_PENDING where the target says so, and passes', async () => {
    const o = await runProperty(prop('migration.matches-profile'), realL2({ says: true }), { seed: 1, runs: 60 });
    expect(o.verdict).toBe('pass');
    if (o.verdict !== 'pass') return;
    expect(o.documented?.map((d) => d.name)).toEqual(expect.arrayContaining(['L2_RUNS_ITS_CODE', 'ENTRY_NOT_PENDING']));
  });

  test('the same L2 without saying so fails on its RIP: shrunk, replayable', async () => {
    const f = await expectCaught(prop('migration.matches-profile'), realL2({ says: false }), { runs: 60 });
    expect(f.counterexample.diff.map((d) => d.field)).toContain('vmcs12.guest_rip');
  });
});

describe('a target with its own clock: the preemption-timer deadline it fixes is its own (DEADLINE_FROM_THE_CLOCK)', () => {
  /** the reference, with a TSC ahead of the model's: every deadline GET shows is later by `ahead` */
  function clocked(ahead: bigint, keepsFlag = true): Target {
    const base = referenceTarget({ profile: 'linux-6.12' });
    return {
      ...base,
      getNestedState: async (v: string, n: number) => {
        const r = await base.getNestedState(v, n);
        if (r.status !== 'ok' || r.value.size < 128 || r.value.buffer.length < 128) return r;
        const h = readHeader(r.value.buffer);
        if (!(h.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE)) return r;
        writeHeader(r.value.buffer, keepsFlag ? { ...h, preemptionTimerDeadline: h.preemptionTimerDeadline + ahead } : { ...h, vmxFlags: h.vmxFlags & ~VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE });
        return r;
      },
    };
  }
  test('migration.matches-profile names the difference and passes', async () => {
    const o = await runProperty(prop('migration.matches-profile'), clocked(0x13e60n), { seed: 1, runs: 100 });
    expect(o.verdict).toBe('pass');
    if (o.verdict === 'pass') expect(o.documented?.map((d) => d.name)).toContain('DEADLINE_FROM_THE_CLOCK');
  });
  test('a target that drops the deadline still fails, shrunk and replayable', async () => {
    const f = await expectCaught(prop('migration.matches-profile'), clocked(0n, false), { runs: 100 });
    expect(f.counterexample.diff.map((d) => d.field).join(' ')).toMatch(/PREEMPTION_TIMER_DEADLINE|preemption-timer deadline/);
  });
});
