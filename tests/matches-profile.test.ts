// The differential properties: every group a target can claim has a `*.matches-profile` property;
// for each, a consistently wrong target (a one-field bug applied everywhere) passes every
// self-consistency property of its group and fails the differential one with a one-field diff, a
// shrunk non-empty counterexample and a replay that reproduces it (tests/expect-caught.ts); a difference the profile
// documents is reported by name and does not fail.
import { describe, expect, test } from 'vitest';
import { getNestedState } from '../model/nested/get.js';
import { FLAGS, OFFSET, VMCS12_STRUCT_SIZE } from '../model/nested/constants.js';
import { formatOutcome } from '../harness/format.js';
import { runProperty } from '../harness/runner.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { referenceTarget } from '../targets/reference.js';
import { GROUPS } from '../targets/target.js';
import { DIFFERENTIAL_MUTANTS, mutantTarget } from './mutant-targets.js';
import { expectCaught } from './expect-caught.js';
import { reach } from '../harness/nested-common.js';
import { TargetStop } from '../harness/property.js';
import { DEFAULT_VCPU, type GuestOp } from '../model/nested/vcpu.js';

const prop = (id: string) => ALL_PROPERTIES.find((p) => p.id === id)!;
const isDifferential = (id: string) => id.endsWith('.matches-profile');
/** the golden corpus holds the model's answers as recorded: a comparison with the profile, not the target with itself */
const isSelfConsistency = (id: string) => !isDifferential(id) && !id.startsWith('golden.');

test('every group a target can claim has a matches-profile property', () => {
  const covered = new Set(ALL_PROPERTIES.filter((p) => isDifferential(p.id)).flatMap((p) => p.groups));
  // vmm: no profile describes a VMM's stream, and the vmm.* properties judge it against the model's GET on the source already
  expect(GROUPS.filter((g) => !covered.has(g))).toEqual(['vmm']);
});

describe.each(DIFFERENTIAL_MUTANTS)('$property: $what', (m) => {
  const target = mutantTarget(m);

  test("the group's other properties miss it (only the golden corpus, the model's recorded answers, may not)", async () => {
    const others = ALL_PROPERTIES.filter((p) => p.groups.includes(m.group) && p.id !== m.property && (m.peers?.test(p.id) ?? true));
    expect(others.filter((p) => isSelfConsistency(p.id)).length).toBeGreaterThan(0);
    for (const p of others) {
      const [real, mutant] = [await runProperty(p, referenceTarget(), { seed: 1 }), await runProperty(p, target, { seed: 1 })];
      if (p.id.startsWith('golden.') && mutant.verdict === 'fail') continue;
      expect(mutant.verdict, p.id).toBe(real.verdict);
      expect(['pass', 'expected-fail'], p.id).toContain(mutant.verdict);
    }
  });

  test('matches-profile catches it: one field, shrunk, replayable', async () => {
    const def = prop(m.property);
    expect((await runProperty(def, referenceTarget(), { seed: 1 })).verdict).toBe('pass');
    const o = await expectCaught(def, target);
    expect(o.counterexample.diff.map((d) => d.field)).toEqual([expect.stringMatching(m.field)]);
    expect(o.counterexample.view?.length).toBeGreaterThan(0);
  });
});

test('nested.matches-profile: a target that does not offer a guest operation is never given it, and a case that needs one anyway is unsupported, never passed', async () => {
  const base = referenceTarget();
  let sent = 0;
  const target = { ...base, unsupportedGuestOps: { vmlaunch: 'no L2 guest yet' }, guestOp: (v: string, o: GuestOp) => ((sent += o.op === 'vmlaunch' ? 1 : 0), base.guestOp(v, o)) };
  const o = await runProperty(prop('nested.matches-profile'), target, { seed: 1, runs: 50 });
  expect(o).toMatchObject({ verdict: 'pass', cases: 50 });
  if (o.verdict === 'pass') expect(o.unsupportedCases).toBeUndefined();
  expect(sent).toBe(0);
  // the accounting that remains for what generators cannot avoid: reach refuses before anything runs
  await expect(reach({ target }, DEFAULT_VCPU, [{ op: 'vmlaunch' }])).rejects.toThrow(TargetStop);
  await expect(reach({ target }, DEFAULT_VCPU, [{ op: 'vmlaunch' }])).rejects.toThrow('guest-op vmlaunch: no L2 guest yet');
});

describe('documented differences are reported by name, not failed', () => {
  // a target whose vmcs12 cache past the 998 bytes KVM uses always reads zero (kernel-facts §8: "whatever is in the cache")
  const zeroTail = referenceTarget({
    model: {
      getNestedState: (v, n) => {
        const r = getNestedState(v, n);
        for (const at of [OFFSET.vmcs12, OFFSET.shadowVmcs12]) r.buffer.fill(0, Math.min(r.buffer.length, at + VMCS12_STRUCT_SIZE), Math.min(r.buffer.length, at + 4096));
        return r;
      },
    },
  });

  test('nested.matches-profile passes and names VMCS12_CACHE_TAIL with the cases that showed it', async () => {
    const o = await runProperty(prop('nested.matches-profile'), zeroTail, { seed: 1, runs: 100 });
    expect(o.verdict).toBe('pass');
    if (o.verdict !== 'pass') return;
    expect(o.documented).toEqual([{ name: 'VMCS12_CACHE_TAIL', cases: expect.any(Number) }]);
    expect(o.documented![0]!.cases).toBeGreaterThan(0);
    expect(o.documented![0]!.cases).toBeLessThanOrEqual(o.cases);
    expect(formatOutcome(o, { target: 'reference', profile: 'linux-6.12' })[0]).toMatch(/documented differences from the model: VMCS12_CACHE_TAIL in \d+ cases?\)$/);
  });

  // a target whose L2 runs code (the kvm: agent): after an entry that L2 left at its first stop, L1's
  // next instructions see root mode, where the model's L2 is still running (and answers #UD)
  const runsL2 = (mark: boolean) => {
    const base = referenceTarget();
    const exited = new Set<string>();
    return {
      ...base,
      guestOp: async (v: string, o: GuestOp) => {
        // a case's operations are issued together: each looks at what happened before it once answered
        const r = await base.guestOp(v, o);
        if (exited.has(v)) return { status: 'ok' as const, value: { result: 'VMfailInvalid' as const, reason: 'L1 runs again, in root mode' } };
        if ((o.op === 'vmlaunch' || o.op === 'vmresume') && r.status === 'ok' && r.value.result === 'ok') {
          exited.add(v);
          return mark ? { status: 'ok' as const, value: { result: 'ok' as const, l2: 'exited' as const } } : r;
        }
        return r;
      },
      // and GET shows L1 in root mode: no guest-mode flag
      getNestedState: async (v: string, n: number) => {
        const r = await base.getNestedState(v, n);
        if (exited.has(v) && r.status === 'ok' && r.value.size >= 8) r.value.buffer[4] = r.value.buffer[4]! & ~FLAGS.GUEST_MODE;
        return r;
      },
    };
  };

  test('nested.matches-profile names L2_RUNS_ITS_CODE where the target says its L2 exited, and compares that case no further', async () => {
    const o = await runProperty(prop('nested.matches-profile'), runsL2(true), { seed: 1, runs: 100 });
    expect(o.verdict).toBe('pass');
    if (o.verdict !== 'pass') return;
    expect(o.documented?.map((d) => d.name)).toContain('L2_RUNS_ITS_CODE');
  });

  test('the same target without saying so fails: the L1 instructions after the entry differ', async () => {
    const o = await runProperty(prop('nested.matches-profile'), runsL2(false), { seed: 1, runs: 100 });
    expect(o.verdict).toBe('fail');
    if (o.verdict === 'fail') expect(o.counterexample.summary).toMatch(/(a guest operation|GET with a \d+-byte buffer) differs from the model/);
  });

  test('the reference itself shows none', async () => {
    const o = await runProperty(prop('nested.matches-profile'), referenceTarget(), { seed: 1, runs: 100 });
    expect(o).toMatchObject({ verdict: 'pass' });
    expect('documented' in o).toBe(false);
  });
});
