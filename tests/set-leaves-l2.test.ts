// F12: KVM_SET_NESTED_STATE on a vCPU that is in L2 first forces it out (vmx_leave_nested ->
// nested_vmx_vmexit(-1)), with every side effect of a nested VM-exit, and none is undone when SET
// then fails: quirk S1_FORCED_EXIT_FROM_L2. A SET refused before S1 has none of them.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { EVMCS, VMCS12 } from '../model/catalog/by-name.js';
import { CHECK_LINUX_6_1, CHECK_LINUX_6_12 } from '../model/catalog/vmx-controls.js';
import { KVM_EVMCS_VERSION } from '../model/catalog/evmcs.js';
import { findScenario } from '../model/migration/scenarios.js';
import { encodeBlob } from '../model/nested/blob.js';
import { FLAGS, INVALID_GPA } from '../model/nested/constants.js';
import { setNestedState } from '../model/nested/set.js';
import { applyOp, DEFAULT_VCPU, Vcpu, type GuestOp, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { nestedCaps } from '../model/vmentry/caps.js';
import { draftMemory, draftPage, INVALID_LINK } from '../model/vmentry/draft.js';
import { buildValidGuest, rawGuest } from '../generators/valid-guest.js';

const P = findProfile('linux-6.12')!;
const SHADOW = 0x5000n;
const vcpu = (config: Partial<VcpuConfig> = {}) => new Vcpu({ ...P, nested: P.nested! }, { ...DEFAULT_VCPU, ...config });
const scenario = (name: string, config: Partial<VcpuConfig> = {}) => {
  const v = vcpu(config);
  for (const o of findScenario(name)!.ops) applyOp(v, o);
  expect(v.guestMode).toBe(true);
  return v;
};
/** refused at W2, before S1 */
const BEFORE_S1 = encodeBlob({ size: 100 });
/** refused at V9, after S1: VMX on, a vmcs12_pa, no vmcs12 */
const AFTER_S1 = encodeBlob({ vmxonPa: 0x1000n, vmcs12Pa: 0x2000n });
const guestRip = (page: Uint8Array) => VMCS12.read(page, 'guest_rip');

describe('F12: SET on a vCPU in L2', () => {
  test('the cached shadow vmcs12 is written to guest memory at the link pointer, though SET then fails at V9', () => {
    const v = scenario('shadow-vmcs');
    // L2 (or a device) rewrites the shadow VMCS region after VM-entry; KVM's cached copy is unchanged
    applyOp(v, { op: 'write-memory', pa: SHADOW + BigInt(VMCS12.offset('guest_rip')), value: 0x1234n });
    const cached = v.shadowVmcs12.slice();
    expect(setNestedState(v, BEFORE_S1)).toMatchObject({ rule: 'W2', quirks: [] });
    expect([v.guestMode, guestRip(v.page(SHADOW))]).toEqual([true, 0x1234n]);
    const r = setNestedState(v, AFTER_S1);
    expect(r).toMatchObject({ errno: 'EINVAL', rule: 'V9' });
    expect(r.quirks).toContain('S1_FORCED_EXIT_FROM_L2');
    expect(v.guestMode).toBe(false);
    expect(v.page(SHADOW)).toEqual(cached);
  });

  test('a pending MTF trap is discarded', () => {
    const v = scenario('mtf-pending');
    expect(v.mtfPending).toBe(true);
    setNestedState(v, BEFORE_S1);
    expect(v.mtfPending).toBe(true);
    expect(setNestedState(v, AFTER_S1).rule).toBe('V9');
    expect(v.mtfPending).toBe(false);
  });

  test('an eVMCS restored map-pending with its L2 is looked up on the way out: its hv_clean_fields lose bits 15:0 in guest memory', () => {
    const HYPERV: Partial<VcpuConfig> = { evmcsEnabled: true, hypervCpuid: { nestedEax: 0x0101, nestedEbx: 1 } };
    const raw = fc.sample(rawGuest, { numRuns: 1, seed: 4 })[0]!;
    const d = buildValidGuest(nestedCaps(undefined), { ...raw, activity: 0n, msrs: [] }, { evmcsCheck: [...CHECK_LINUX_6_1, ...CHECK_LINUX_6_12] });
    d.fields.set('vmcs_link_pointer', INVALID_LINK);
    const v = vcpu(HYPERV);
    v.memory = draftMemory(d);
    const EVMCS_PA = 0x4000n;
    const memory: GuestOp[] = [
      { op: 'init-evmcs', pa: EVMCS_PA, revision: KVM_EVMCS_VERSION },
      { op: 'write-memory', pa: EVMCS_PA + BigInt(EVMCS.offset('hv_clean_fields')), value: 0xabcd_ffffn },
      { op: 'set-vp-assist', currentNestedVmcs: EVMCS_PA, enlightenVmentry: true },
    ];
    for (const o of memory) applyOp(v, o);
    const l2 = setNestedState(v, encodeBlob({ flags: FLAGS.GUEST_MODE | FLAGS.EVMCS, vmxonPa: 0x1000n, vmcs12Pa: INVALID_GPA }, draftPage(d, P.vmcs12)));
    expect(l2).toMatchObject({ ret: 0, rule: 'S9' });
    expect([v.guestMode, v.evmptr]).toEqual([true, 'map-pending']);
    expect(setNestedState(v, AFTER_S1).rule).toBe('V9');
    expect(EVMCS.read(v.page(EVMCS_PA), 'hv_clean_fields')).toBe(0xabcd_0000n);
    expect(v.evmptr).toBe('invalid'); // mapped on the way out, then released by free_nested
  });
});
