// Migration scenarios launch a valid L2: every VMLAUNCH in a recipe passes the VM-entry checks on
// every nested host, and the scenario reaches the state its name promises; the eVMCS scenario of
// fidelity-audit F4 degrades where the kernel releases the eVMCS.
import { describe, expect, it } from 'vitest';
import { findHost, HOSTS } from '../model/migration/hosts.js';
import { restoreFromStream } from '../model/migration/step.js';
import { saveToStream } from '../model/migration/stream.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { FLAGS } from '../model/nested/constants.js';
import { readHeader } from '../model/nested/blob.js';
import { getNestedState } from '../model/nested/get.js';
import { applyOp, Vcpu } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';

const nestedHosts = HOSTS.filter((h) => h.nested && findProfile(h.profile)?.nested && h.nestedStateMax);
const launching = SCENARIOS.filter((s) => s.ops.some((o) => o.op === 'vmlaunch'));

describe('migration scenarios carry valid L2 guests', () => {
  it('there are launching scenarios and nested hosts to run them on', () => {
    expect(launching.map((s) => s.name)).toEqual(expect.arrayContaining(['l2-running', 'l2-run-pending', 'shadow-vmcs', 'preemption-timer', 'mtf-pending']));
    expect(nestedHosts.length).toBeGreaterThan(3);
  });
  for (const sc of launching)
    for (const host of nestedHosts)
      it(`${sc.name} enters L2 on ${host.name}`, () => {
        const p = findProfile(host.profile)!;
        const v = new Vcpu({ ...p, nested: p.nested! }, { ...sc.vm, nested: host.nested });
        const failures = sc.ops.map((o) => ({ op: o.op, r: applyOp(v, o) })).filter(({ op, r }) => op.startsWith('vm') && r.result !== 'ok');
        expect(failures).toEqual([]);
        const h = readHeader(getNestedState(v, 8320).buffer);
        expect(h.flags & FLAGS.GUEST_MODE).toBe(FLAGS.GUEST_MODE);
      });
});

describe('evmcs-vp-assist-off: a restored eVMCS the VP-assist page no longer names (F4)', () => {
  const sc = SCENARIOS.find((s) => s.name === 'evmcs-vp-assist-off')!;
  for (const [from, to] of [['linux-6.1', 'linux-6.12'], ['linux-6.12', 'linux-6.1'], ['linux-6.12', 'linux-6.12']] as const)
    it(`${from} -> ${to}: the stream carries the eVMCS; the first KVM_RUN on the destination releases it, and the step says so`, () => {
      const p = findProfile(from)!;
      const v = new Vcpu({ ...p, nested: p.nested! }, sc.vm);
      for (const o of sc.ops) applyOp(v, o);
      const stream = saveToStream(v, findHost(from)!, { qemuDropsVmxFlags: false });
      expect(readHeader(stream.nestedState!).flags & FLAGS.EVMCS).toBe(FLAGS.EVMCS);
      const r = restoreFromStream(stream, p, findHost(to)!);
      expect(r.outcome.kind).toBe('degraded');
      if (r.outcome.kind === 'degraded') expect(r.outcome.lost[0]).toMatch(/^the restored eVMCS and its vmcs12: the first KVM_RUN released it/);
      // GET right after SET still had it (map-pending); after KVM_RUN it is gone
      expect(readHeader(r.restoredBlob!).flags & FLAGS.EVMCS).toBe(FLAGS.EVMCS);
      expect(readHeader(getNestedState(r.destination!, 8320).buffer)).toMatchObject({ flags: 0, size: 128 });
    });
});

it('on a target with an end to its guest memory (the kvm: agent: 16 MiB less its own ranges), generated scenarios store only inside it', async () => {
  const { guestOpsFor } = await import('../generators/nested.js');
  const fcm = (await import('fast-check')).default;
  const memory = { bytes: 16n << 20n, reserved: [[0x30000n, 0x40000n], [0xe00000n, 0xf00000n]] as const };
  const inside = (pa: bigint) => pa + 8n <= memory.bytes && !memory.reserved.some(([a, b]) => pa + 8n > a && pa < b);
  let stores = 0;
  for (const ops of fcm.sample(guestOpsFor({ guestMemory: memory }), { seed: 11, numRuns: 400 }))
    for (const o of ops)
      if (o.op === 'write-memory' || o.op === 'init-vmcs' || o.op === 'init-evmcs') {
        stores++;
        expect(inside(o.pa), `${o.op} at 0x${o.pa.toString(16)}`).toBe(true);
      }
  expect(stores).toBeGreaterThan(400);
});

it('a target that does not offer some guest operations gets scenarios without them (none skipped later)', async () => {
  const { guestOpsFor } = await import('../generators/nested.js');
  const fcm = (await import('fast-check')).default;
  const lacking = { vmexit: 'no', mtf: 'no', 'smm-entry': 'no', rsm: 'no' };
  let ops = 0;
  for (const seq of fcm.sample(guestOpsFor({ unsupportedGuestOps: lacking }), { seed: 5, numRuns: 300 }))
    for (const o of seq) {
      ops++;
      expect(Object.keys(lacking)).not.toContain(o.op);
    }
  expect(ops).toBeGreaterThan(1000);
});

it('a target where switching nested= costs a module reload gets nested off rarely, never not at all', async () => {
  const { vcpuConfigFor } = await import('../generators/nested.js');
  const fcm = (await import('fast-check')).default;
  const off = (t: { nestedParamChange?: string }) => fcm.sample(vcpuConfigFor(t), { seed: 3, numRuns: 5000 }).filter((c) => !c.nested).length;
  const costly = off({ nestedParamChange: 'reloads kvm_intel' });
  expect(costly).toBeGreaterThan(0);
  expect(costly).toBeLessThan(off({}) / 3);
});
