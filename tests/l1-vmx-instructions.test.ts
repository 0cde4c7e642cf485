// L1's VMX instructions as nested.c of 6.1 and 6.12 handles them, where the fidelity audit found the
// model wrong: with an eVMCS in use a VMfailValid schedules the vmcs12 -> eVMCS sync
// (nested_vmx_failValid, F7, kernel-facts §10.2) and a plain VMPTRLD is neither failed nor retired
// (handle_vmptrld, F11, README K13); VMPTRLD checks the header of a new pointer only, shadow bit
// against the vCPU's capabilities included (F11); VMCLEAR with a VP-assist page naming an eVMCS takes
// its operand for an eVMCS (handle_vmclear). Expectations come from those functions, not from the
// model.
import { describe, expect, test } from 'vitest';
import { encodingOf, EVMCS, VMCS12 } from '../model/catalog/by-name.js';
import { KVM_EVMCS_VERSION } from '../model/catalog/evmcs.js';
import { encodeBlob } from '../model/nested/blob.js';
import { FLAGS, INVALID_GPA, OFFSET } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { applyOp, DEFAULT_VCPU, Vcpu, VMXERR, type GuestOp, type OpResult, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { PAGES, VMXON } from '../generators/nested.js';

const HYPERV: Partial<VcpuConfig> = { evmcsEnabled: true, hypervCpuid: { nestedEax: 0x0101, nestedEbx: 0 } };
/** VM_INSTRUCTION_ERROR's encoding */
const VM_INSTRUCTION_ERROR = 0x4400n;

const vcpu = (profile: string, config: Partial<VcpuConfig> = HYPERV) => {
  const p = findProfile(profile)!;
  return new Vcpu({ ...p, nested: p.nested! }, { ...DEFAULT_VCPU, ...config });
};
const run = (v: Vcpu, ops: readonly GuestOp[]): OpResult[] => ops.map((o) => applyOp(v, o));
/** VMXON, a zeroed eVMCS the VP-assist page names, and an enlightened VMLAUNCH of it: the zero pin-based controls fail (VMfailValid 7) */
const FAILED_EVMCS_LAUNCH: GuestOp[] = [
  ...VMXON,
  { op: 'init-evmcs', pa: PAGES.evmcs, revision: KVM_EVMCS_VERSION },
  { op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: true },
  { op: 'evmcs-entry', launch: true },
];
const evmcsError = (v: Vcpu) => EVMCS.read(v.page(PAGES.evmcs), 'vm_instruction_error');
const getVmcs12 = (v: Vcpu) => getNestedState(v, 8320).buffer.subarray(OFFSET.vmcs12, OFFSET.vmcs12 + 4096);

describe.each(['linux-6.1', 'linux-6.12'])('F7 on %s: a VMfailValid with an eVMCS in use schedules the vmcs12 -> eVMCS sync', (profile) => {
  test('the error is in vmcs12 at once and in the eVMCS after the next KVM_RUN, where L1 reads it', () => {
    const v = vcpu(profile);
    expect(run(v, FAILED_EVMCS_LAUNCH).at(-1)).toMatchObject({ result: 'VMfailValid', error: VMXERR.ENTRY_INVALID_CONTROL_FIELD });
    expect(VMCS12.read(v.vmcs12, 'vm_instruction_error')).toBe(7n);
    // nothing has entered L1 since: the eVMCS in guest memory is as L1 left it
    expect(evmcsError(v)).toBe(0n);
    expect(applyOp(v, { op: 'run' })).toEqual({ result: 'ok' });
    expect(evmcsError(v)).toBe(7n);
    // VMREAD with an eVMCS reads the eVMCS
    expect(applyOp(v, { op: 'vmread', field: VM_INSTRUCTION_ERROR })).toEqual({ result: 'ok', value: 7n });
  });

  test('every VMfailValid does it: a second VMXON (error 15) after the eVMCS is in use', () => {
    const v = vcpu(profile);
    run(v, FAILED_EVMCS_LAUNCH);
    run(v, [{ op: 'run' }]);
    expect(applyOp(v, VMXON[1]!)).toMatchObject({ result: 'VMfailValid', error: VMXERR.VMXON_IN_VMX_ROOT_OPERATION });
    expect(evmcsError(v)).toBe(7n);
    run(v, [{ op: 'run' }]);
    expect(evmcsError(v)).toBe(15n);
  });

  test('until that KVM_RUN, GET does not copy the eVMCS in (vmx_get_nested_state copies it only without a pending sync); the sync then overwrites what L1 wrote', () => {
    const v = vcpu(profile);
    run(v, FAILED_EVMCS_LAUNCH);
    // L1 writes guest_rip into its eVMCS after the failure
    applyOp(v, { op: 'write-memory', pa: PAGES.evmcs + BigInt(EVMCS.offset('guest_rip')), value: 0x1234n });
    expect(VMCS12.read(getVmcs12(v), 'guest_rip')).toBe(0n);
    run(v, [{ op: 'run' }]);
    // copy_vmcs12_to_enlightened writes guest_rip back, so the eVMCS holds vmcs12's value again
    expect(EVMCS.read(v.page(PAGES.evmcs), 'guest_rip')).toBe(0n);
    expect(VMCS12.read(getVmcs12(v), 'vm_instruction_error')).toBe(7n);
  });

  test('with a VMCS but no eVMCS nothing is scheduled: the VMCS region in guest memory keeps its old error until VMCLEAR or VMPTRLD', () => {
    const v = vcpu(profile, {});
    expect(run(v, [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, { op: 'vmlaunch' }]).at(-1)).toMatchObject({ result: 'VMfailValid', error: 7 });
    expect(v.needVmcs12ToShadowSync).toBe(false);
    run(v, [{ op: 'run' }]);
    expect(VMCS12.read(v.page(PAGES.vmcs), 'vm_instruction_error')).toBe(0n);
    expect(applyOp(v, { op: 'vmread', field: VM_INSTRUCTION_ERROR })).toEqual({ result: 'ok', value: 7n });
  });
});

describe.each(['linux-6.1', 'linux-6.12'])('F11 on %s: VMPTRLD while an eVMCS is in use (handle_vmptrld, README K13)', (profile) => {
  /** the eVMCS mapped by an enlightened VMLAUNCH (its failure comes after the lookup), the error synced, a VMCS region ready */
  const mapped = () => {
    const v = vcpu(profile);
    run(v, [...FAILED_EVMCS_LAUNCH, { op: 'run' }, { op: 'init-vmcs', pa: PAGES.vmcs }]);
    expect(v.evmptr).toBe(PAGES.evmcs);
    return v;
  };

  test('is not retired: no VMfail, nothing changes (L1 would execute it again and again)', () => {
    const v = mapped();
    const before = { blob: getNestedState(v, 8320).buffer, sync: v.needVmcs12ToShadowSync };
    expect(applyOp(v, { op: 'vmptrld', pa: PAGES.vmcs })).toEqual({ result: 'not-retired', reason: expect.stringContaining('L1 executes it again') });
    expect([v.currentVmptr, v.evmptr, v.needVmcs12ToShadowSync]).toEqual([INVALID_GPA, PAGES.evmcs, before.sync]);
    expect(getNestedState(v, 8320).buffer).toEqual(before.blob);
  });

  test('the address checks come first: an unaligned pointer is VMfailValid 9, the VMXON pointer VMfailValid 10 (recorded, and synced to the eVMCS)', () => {
    const v = mapped();
    expect(applyOp(v, { op: 'vmptrld', pa: PAGES.vmcs + 8n })).toMatchObject({ result: 'VMfailValid', error: VMXERR.VMPTRLD_INVALID_ADDRESS });
    expect(applyOp(v, { op: 'vmptrld', pa: PAGES.vmxon })).toMatchObject({ result: 'VMfailValid', error: VMXERR.VMPTRLD_VMXON_POINTER });
    run(v, [{ op: 'run' }]);
    expect(evmcsError(v)).toBe(BigInt(VMXERR.VMPTRLD_VMXON_POINTER));
  });

  test('an eVMCS only map-pending (restored, no Hyper-V CPUID to look it up with) does not stop it: nested_vmx_is_evmptr12_valid excludes EVMPTR_MAP_PENDING', () => {
    const v = vcpu(profile, { evmcsEnabled: true, hypervCpuid: false });
    run(v, [{ op: 'init-vmcs', pa: PAGES.vmcs }]);
    const vmcs12 = new Uint8Array(4096);
    VMCS12.write(vmcs12, 'hdr', VMCS12.read(v.page(PAGES.vmcs), 'hdr'));
    expect(setNestedState(v, encodeBlob({ flags: FLAGS.EVMCS, vmxonPa: PAGES.vmxon, vmcs12Pa: INVALID_GPA }, vmcs12)).ret).toBe(0);
    run(v, [{ op: 'run' }]);
    expect(v.evmptr).toBe('map-pending');
    expect(applyOp(v, { op: 'vmptrld', pa: PAGES.vmcs })).toEqual({ result: 'ok' });
    expect(v.currentVmptr).toBe(PAGES.vmcs);
  });
});

describe.each(['linux-6.1', 'linux-6.12'])('F11 on %s: what VMPTRLD checks in the region (handle_vmptrld)', (profile) => {
  const l1 = (config: Partial<VcpuConfig> = {}) => {
    const v = vcpu(profile, config);
    run(v, [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }]);
    return v;
  };

  test('the header is checked for a new pointer only: re-loading the current VMCS after L1 zeroed its region succeeds', () => {
    const v = l1();
    expect(applyOp(v, { op: 'vmptrld', pa: PAGES.vmcs })).toEqual({ result: 'ok' });
    applyOp(v, { op: 'write-memory', pa: PAGES.vmcs, value: 0n });
    expect(applyOp(v, { op: 'vmptrld', pa: PAGES.vmcs })).toEqual({ result: 'ok' });
    // a new pointer to such a region fails
    applyOp(v, { op: 'write-memory', pa: PAGES.vmcs2, value: 0n });
    expect(applyOp(v, { op: 'vmptrld', pa: PAGES.vmcs2 })).toMatchObject({ result: 'VMfailValid', error: VMXERR.VMPTRLD_INCORRECT_VMCS_REVISION_ID });
    expect(v.currentVmptr).toBe(PAGES.vmcs);
  });

  test('a shadow VMCS is refused (VMfailValid 11) when the vCPU\'s PROCBASED_CTLS2 lacks VMCS shadowing, loaded when it offers it', () => {
    const shadowRegion: GuestOp = { op: 'init-vmcs', pa: PAGES.shadow, shadow: true };
    const without = l1({ vmxMsrs: new Map([[0x48b, 0n]]) });
    run(without, [shadowRegion, { op: 'vmptrld', pa: PAGES.vmcs }]);
    expect(applyOp(without, { op: 'vmptrld', pa: PAGES.shadow })).toMatchObject({ result: 'VMfailValid', error: VMXERR.VMPTRLD_INCORRECT_VMCS_REVISION_ID });
    expect(without.currentVmptr).toBe(PAGES.vmcs);
    const withShadowing = l1();
    run(withShadowing, [shadowRegion]);
    expect(applyOp(withShadowing, { op: 'vmptrld', pa: PAGES.shadow })).toEqual({ result: 'ok' });
    expect(withShadowing.currentVmptr).toBe(PAGES.shadow);
  });
});

describe.each(['linux-6.1', 'linux-6.12'])('VMCLEAR on %s with a VP-assist page naming an eVMCS (handle_vmclear, quirk VMCLEAR_OPERAND_TAKEN_FOR_EVMCS)', (profile) => {
  /** the eVMCS mapped (its enlightened VMLAUNCH failed after the lookup) and a launched VMCS region elsewhere in guest memory */
  const mapped = () => {
    const v = vcpu(profile);
    run(v, [...FAILED_EVMCS_LAUNCH, { op: 'run' }, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'write-memory', pa: PAGES.vmcs + BigInt(VMCS12.offset('launch_state')), value: 1n }]);
    expect(v.evmptr).toBe(PAGES.evmcs);
    return v;
  };
  const launchState = (v: Vcpu, pa: bigint) => VMCS12.read(v.page(pa), 'launch_state');

  test('of the eVMCS in use: succeeds and releases it, writing nothing into it; GET then has no vmcs12 and no EVMCS flag', () => {
    const v = mapped();
    const page = v.page(PAGES.evmcs).slice();
    expect(getNestedState(v, 8320).header.flags & FLAGS.EVMCS).toBe(FLAGS.EVMCS);
    expect(applyOp(v, { op: 'vmclear', pa: PAGES.evmcs })).toEqual({ result: 'ok' });
    expect([v.evmptr, v.currentVmptr]).toEqual(['invalid', INVALID_GPA]);
    expect(v.page(PAGES.evmcs)).toEqual(page);
    const g = getNestedState(v, 8320);
    expect([g.size, g.header.flags & FLAGS.EVMCS]).toEqual([128, 0]);
  });

  test('of another address: succeeds and does nothing, the region keeps launch_state 1 and the eVMCS stays in use', () => {
    const v = mapped();
    expect(applyOp(v, { op: 'vmclear', pa: PAGES.vmcs })).toEqual({ result: 'ok' });
    expect(launchState(v, PAGES.vmcs)).toBe(1n);
    expect(v.evmptr).toBe(PAGES.evmcs);
  });

  test('of the current VMCS before any enlightened entry: the VMCS stays current, its cache is not written back and its launch_state in memory is kept', () => {
    const v = vcpu(profile);
    run(v, [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, { op: 'vmwrite', field: encodingOf('guest_rip'), value: 0x1234n }]);
    applyOp(v, { op: 'write-memory', pa: PAGES.vmcs + BigInt(VMCS12.offset('launch_state')), value: 1n });
    run(v, [{ op: 'init-evmcs', pa: PAGES.evmcs, revision: KVM_EVMCS_VERSION }, { op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: true }]);
    expect(applyOp(v, { op: 'vmclear', pa: PAGES.vmcs })).toEqual({ result: 'ok' });
    expect(v.currentVmptr).toBe(PAGES.vmcs);
    expect([launchState(v, PAGES.vmcs), VMCS12.read(v.page(PAGES.vmcs), 'guest_rip')]).toEqual([1n, 0n]);
    expect(getNestedState(v, 8320).header.vmcs12Pa).toBe(PAGES.vmcs);
  });

  test('the address checks still come first: the VMXON pointer is VMfailValid 3', () => {
    const v = mapped();
    expect(applyOp(v, { op: 'vmclear', pa: PAGES.vmxon })).toMatchObject({ result: 'VMfailValid', error: VMXERR.VMCLEAR_VMXON_POINTER });
  });

  test.each<[string, Partial<VcpuConfig>, GuestOp]>([
    ['no Hyper-V CPUID', { evmcsEnabled: true, hypervCpuid: false }, { op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: true }],
    ['enlighten_vmentry clear', HYPERV, { op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: false }],
    ['current_nested_vmcs -1', HYPERV, { op: 'set-vp-assist', currentNestedVmcs: INVALID_GPA, enlightenVmentry: true }],
  ])('with %s it is a plain VMCLEAR: the current VMCS is written back and released, launch_state cleared', (_why, config, assist) => {
    const v = vcpu(profile, config);
    run(v, [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, { op: 'vmwrite', field: encodingOf('guest_rip'), value: 0x1234n }, assist]);
    applyOp(v, { op: 'write-memory', pa: PAGES.vmcs + BigInt(VMCS12.offset('launch_state')), value: 1n });
    expect(applyOp(v, { op: 'vmclear', pa: PAGES.vmcs })).toEqual({ result: 'ok' });
    expect(v.currentVmptr).toBe(INVALID_GPA);
    expect([launchState(v, PAGES.vmcs), VMCS12.read(v.page(PAGES.vmcs), 'guest_rip')]).toEqual([0n, 0x1234n]);
  });
});
