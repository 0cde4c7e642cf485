// F4: KVM_RUN after restoring an eVMCS "map pending" state, case by case, as nested_get_evmcs_page and
// nested_vmx_handle_enlightened_vmptrld of 6.1 and 6.12 decide it: the audit's setup (SET flags=EVMCS,
// vmxon 0x1000, vmcs12_pa -1, size 4224, the capability on), then KVM_RUN, then GET.
import { describe, expect, test } from 'vitest';
import { makeHdr, VMCS12, EVMCS } from '../model/catalog/by-name.js';
import { KVM_EVMCS_VERSION } from '../model/catalog/evmcs.js';
import { encodeBlob, readHeader } from '../model/nested/blob.js';
import { FLAGS, INVALID_GPA } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { applyOp, DEFAULT_VCPU, Vcpu, type GuestOp, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { vmwriteOp } from '../model/nested/ops-json.js';

const VMXON = 0x1000n;
const EVMCS_PA = 0x4000n;
const HYPERV: Partial<VcpuConfig> = { evmcsEnabled: true, hypervCpuid: { nestedEax: 0x0101, nestedEbx: 0 } };

function vmcs12Page(): Uint8Array {
  const p = new Uint8Array(4096);
  VMCS12.write(p, 'hdr', makeHdr(false));
  VMCS12.write(p, 'guest_rip', 0xfff0n);
  return p;
}

/** The audit's restore on a fresh vCPU of `profile`, with guest memory and the VP-assist page set up by `memory`. */
function restored(profile: string, config: Partial<VcpuConfig>, memory: readonly GuestOp[]): Vcpu {
  const p = findProfile(profile)!;
  const v = new Vcpu({ ...p, nested: p.nested! }, { ...DEFAULT_VCPU, ...config });
  for (const o of memory) expect(applyOp(v, o).result).toBe('ok');
  const s = setNestedState(v, encodeBlob({ flags: FLAGS.EVMCS, vmxonPa: VMXON, vmcs12Pa: INVALID_GPA }, vmcs12Page()));
  expect([s.ret, s.rule]).toEqual([0, 'S5']);
  expect(v.evmptr).toBe('map-pending');
  return v;
}

const GOOD_EVMCS: GuestOp[] = [{ op: 'init-evmcs', pa: EVMCS_PA, revision: KVM_EVMCS_VERSION }];
const vpAssist = (currentNestedVmcs: bigint, enlightenVmentry = true): GuestOp => ({ op: 'set-vp-assist', currentNestedVmcs, enlightenVmentry });
const header = (v: Vcpu) => readHeader(getNestedState(v, 8320).buffer);

describe.each(['linux-6.1', 'linux-6.12'])('F4 on %s: the first KVM_RUN after a map-pending restore', (profile) => {
  test('the VP-assist page names the eVMCS: mapped, the restored vmcs12 written into it, hv_clean_fields bits 15:0 cleared in guest memory', () => {
    const v = restored(profile, HYPERV, [...GOOD_EVMCS, { op: 'write-memory', pa: EVMCS_PA + BigInt(EVMCS.offset('hv_clean_fields')), value: 0xabcd_ffffn }, vpAssist(EVMCS_PA)]);
    expect(applyOp(v, { op: 'run' })).toEqual({ result: 'ok' });
    expect(v.evmptr).toBe(EVMCS_PA);
    expect(EVMCS.read(v.page(EVMCS_PA), 'guest_rip')).toBe(0xfff0n);
    expect(EVMCS.read(v.page(EVMCS_PA), 'hv_clean_fields')).toBe(0xabcd_0000n);
    expect(header(v)).toMatchObject({ flags: FLAGS.EVMCS, size: 4224 });
  });

  test.each<[string, GuestOp[]]>([
    ['no VP-assist page', GOOD_EVMCS],
    ['enlighten_vmentry = 0', [...GOOD_EVMCS, vpAssist(EVMCS_PA, false)]],
    ['current_nested_vmcs = -1', [...GOOD_EVMCS, vpAssist(INVALID_GPA)]],
    ['current_nested_vmcs = -2 (EVMPTR_MAP_PENDING)', [...GOOD_EVMCS, vpAssist(0xffff_ffff_ffff_fffen)]],
  ])('%s: released, KVM_RUN runs on; GET has no vmcs12 (size 128) and no EVMCS flag', (_case, memory) => {
    const v = restored(profile, HYPERV, memory);
    expect(applyOp(v, { op: 'run' })).toEqual({ result: 'ok' });
    expect(v.evmptr).toBe('invalid');
    expect(header(v)).toMatchObject({ flags: 0, size: 128, vmxonPa: VMXON, vmcs12Pa: INVALID_GPA });
  });

  test('no Hyper-V CPUID (the capability on): nothing is looked up, the eVMCS stays map-pending and GET keeps EVMCS; the request is spent', () => {
    const v = restored(profile, { evmcsEnabled: true, hypervCpuid: false }, [...GOOD_EVMCS, vpAssist(EVMCS_PA)]);
    expect(applyOp(v, { op: 'run' })).toEqual({ result: 'ok' });
    expect(v.evmptr).toBe('map-pending');
    expect(header(v)).toMatchObject({ flags: FLAGS.EVMCS, size: 4224 });
    // Hyper-V CPUID set afterwards: no request is left, so the next KVM_RUN does not look again
    v.reconfigure({ hypervCpuid: true });
    expect(applyOp(v, { op: 'run' })).toEqual({ result: 'ok' });
    expect(v.evmptr).toBe('map-pending');
  });

  test('an eVMCS of a wrong revision: KVM_EXIT_INTERNAL_ERROR for this KVM_RUN only; it is released, the next KVM_RUN runs', () => {
    const v = restored(profile, HYPERV, [{ op: 'init-evmcs', pa: EVMCS_PA, revision: 7 }, vpAssist(EVMCS_PA)]);
    const r = applyOp(v, { op: 'run' });
    expect(r.result).toBe('internal-error');
    expect(v.evmptr).toBe('invalid');
    expect(header(v)).toMatchObject({ flags: 0, size: 128 });
    expect(applyOp(v, { op: 'run' })).toEqual({ result: 'ok' });
  });

  test('the request after that failure is made again where the profile says so (6.12), not in 6.1', () => {
    const v = restored(profile, HYPERV, [{ op: 'init-evmcs', pa: EVMCS_PA, revision: 7 }, vpAssist(EVMCS_PA)]);
    applyOp(v, { op: 'run' });
    expect(v.statePagesRequested).toBe(v.profile.nested.statePagesRequeuedOnFailure);
    expect(v.statePagesRequested).toBe(profile === 'linux-6.12');
  });
});

describe('the lookup is the one enlightened VMLAUNCH/VMRESUME use (F10)', () => {
  const P = findProfile('linux-6.12')!;
  const l1WithEvmcs = () => {
    const v = new Vcpu({ ...P, nested: P.nested! }, { ...DEFAULT_VCPU, ...HYPERV });
    for (const o of [{ op: 'init-vmcs', pa: VMXON }, { op: 'vmxon', pa: VMXON }, ...GOOD_EVMCS, vpAssist(EVMCS_PA)] as GuestOp[]) applyOp(v, o);
    expect(applyOp(v, { op: 'evmcs-entry', launch: true }).result).not.toBe('VMfailInvalid');
    if (v.guestMode) applyOp(v, { op: 'vmexit', reason: 1n });
    expect(v.evmptr).toBe(EVMCS_PA);
    return v;
  };

  test('enlighten_vmentry cleared in the VP-assist page: the next VMRESUME releases the eVMCS and fails VMfailInvalid (no current VMCS)', () => {
    const v = l1WithEvmcs();
    applyOp(v, vpAssist(EVMCS_PA, false));
    expect(applyOp(v, { op: 'vmresume' }).result).toBe('VMfailInvalid');
    expect(v.evmptr).toBe('invalid');
    expect(header(v).flags & FLAGS.EVMCS).toBe(0);
  });

  test('switching from a VMCS: the current VMCS is dropped without its cache written back to guest memory', () => {
    const v = new Vcpu({ ...P, nested: P.nested! }, { ...DEFAULT_VCPU, ...HYPERV });
    const VMCS = 0x2000n;
    const ops: GuestOp[] = [{ op: 'init-vmcs', pa: VMXON }, { op: 'vmxon', pa: VMXON }, { op: 'init-vmcs', pa: VMCS }, { op: 'vmptrld', pa: VMCS }, vmwriteOp('guest_rip', 0x1234n)];
    for (const o of ops) expect(applyOp(v, o).result).toBe('ok');
    for (const o of [...GOOD_EVMCS, vpAssist(EVMCS_PA)]) applyOp(v, o);
    applyOp(v, { op: 'evmcs-entry', launch: true });
    expect([v.currentVmptr, v.evmptr]).toEqual([INVALID_GPA, EVMCS_PA]);
    expect(VMCS12.read(v.page(VMCS), 'guest_rip')).toBe(0n);
  });

  test('the eVMCS in use is not checked for its revision again: a guest that overwrites it keeps it', () => {
    const v = l1WithEvmcs();
    applyOp(v, { op: 'write-memory', pa: EVMCS_PA, value: 7n });
    expect(applyOp(v, { op: 'vmresume' }).result).not.toBe('VMfailInvalid');
    expect(v.evmptr).toBe(EVMCS_PA);
  });
});
