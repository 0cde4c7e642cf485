// README K22 (real KVM, migration.qemu-drops-vmx-flags on kvm:debian-6.12, seed 21): prepare_vmcs02_early
// loads vmcs12's interruptibility state into vmcs02 for a pending entry only, and GET in guest mode
// copies vmcs02's back. So SET of an L2 that has run (no RUN_PENDING) shows the destination vCPU's
// interrupt shadow (0 on a fresh one) until the VMM restores it with KVM_SET_VCPU_EVENTS; with
// RUN_PENDING, the blob's. The expectation comes from the construction: the blob's own field, or 0.
import { expect, test } from 'vitest';
import { VMCS12 } from '../model/catalog/by-name.js';
import { readHeader, writeHeader } from '../model/nested/blob.js';
import { FLAGS, OFFSET, SIZE_WITH_SHADOW } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { applyOp, DEFAULT_VCPU, Vcpu } from '../model/nested/vcpu.js';
import { vmwriteOp } from '../model/nested/ops-json.js';
import { findScenario } from '../model/migration/scenarios.js';
import { findProfile } from '../model/profiles.js';
import { restoredL2Registers } from '../harness/nested-common.js';

const STI_BLOCKING = 1n;

/** An L2 of the l2-running scenario with an interrupt shadow, saved by GET (run pending or not). */
function saved(profile: string, runPending: boolean): Uint8Array {
  const p = findProfile(profile)!;
  const v = new Vcpu({ ...p, nested: p.nested! }, DEFAULT_VCPU);
  const ops = findScenario('l2-running')!.ops.filter((o) => runPending ? o.op !== 'run' : true);
  const at = ops.findIndex((o) => o.op === 'vmlaunch');
  for (const o of [...ops.slice(0, at), vmwriteOp('guest_interruptibility_info', STI_BLOCKING), ...ops.slice(at)]) expect(applyOp(v, o).result).toBe('ok');
  const g = getNestedState(v, SIZE_WITH_SHADOW);
  return g.buffer.slice(0, g.size);
}

function restored(profile: string, blob: Uint8Array): Uint8Array {
  const p = findProfile(profile)!;
  const v = new Vcpu({ ...p, nested: p.nested! }, DEFAULT_VCPU);
  expect(setNestedState(v, blob).ret).toBe(0);
  const g = getNestedState(v, SIZE_WITH_SHADOW);
  return g.buffer.slice(0, g.size);
}

const shadowOf = (b: Uint8Array) => VMCS12.read(b.subarray(OFFSET.vmcs12), 'guest_interruptibility_info');

for (const profile of ['linux-6.1', 'linux-6.12']) {
  test(`${profile}: the source's GET keeps L2's interrupt shadow; SET without RUN_PENDING shows the fresh destination's, with it the blob's`, () => {
    const running = saved(profile, false);
    expect(readHeader(running).flags & FLAGS.RUN_PENDING).toBe(0);
    expect(shadowOf(running)).toBe(STI_BLOCKING);
    expect(shadowOf(restored(profile, running))).toBe(0n);
    const pending = saved(profile, true);
    expect(readHeader(pending).flags & FLAGS.RUN_PENDING).toBe(FLAGS.RUN_PENDING);
    expect(shadowOf(restored(profile, pending))).toBe(STI_BLOCKING);
    // the same blob with RUN_PENDING set by hand: loaded again
    const forced = running.slice();
    writeHeader(forced, { ...readHeader(running), flags: readHeader(running).flags | FLAGS.RUN_PENDING });
    expect(shadowOf(restored(profile, forced))).toBe(STI_BLOCKING);
  });
}

test('the normalisation a restore is judged with expects exactly that (L2_REGISTERS_FROM_DESTINATION)', () => {
  const running = saved('linux-6.12', false);
  expect(shadowOf(restoredL2Registers(running))).toBe(0n);
  expect(shadowOf(restoredL2Registers(saved('linux-6.12', true)))).toBe(STI_BLOCKING);
});
