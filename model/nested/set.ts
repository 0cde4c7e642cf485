// KVM_SET_NESTED_STATE (kernel-facts §9): every check in order, each outcome naming the rule that
// decided it, and the quirks as the kernel has them: a vCPU in L2 forced out of it at S1 with a
// nested VM-exit's side effects (F12), no rollback after S1/S3 (Q2), SMM with a small
// size (Q1), GIF_SET ignored on VMX (Q3), launch_state kept (Q4), vmcs12_pa winning over EVMCS, and
// the positive return value 2 from S8.
import { hdrRevision, hdrShadow, VMCS12 } from '../catalog/by-name.js';
import { VMCS12_REVISION } from '../catalog/vmcs12.js';
import { readHeader } from './blob.js';
import { ERRNO, FLAGS, HEADER_SIZE, INVALID_GPA, MIN_SIZE_FOR_SHADOW, MIN_SIZE_FOR_VMCS12, OFFSET, SMM_FLAGS, VMCS12_STRUCT_SIZE, VMX_HDR_FLAGS, type Errno } from './constants.js';
import type { RestoreRule } from './rules.js';
import { loadL2Registers, startPreemptionTimer, type Vcpu } from './vcpu.js';

export interface SetResult {
  /** the ioctl's return value: 0, a negative errno, or the positive 2 */
  readonly ret: number;
  readonly errno: Errno | null;
  /** the rule id (kernel-facts §9) that decided the outcome */
  readonly rule: string;
  readonly why: string;
  /** quirks this call went through, by name */
  readonly quirks: readonly string[];
  /** rules that passed without being modelled */
  readonly notModelled: readonly string[];
  /** at V14 (and S8): the VM-entry check that failed (model/vmentry/rules.ts) */
  readonly vmentryCheck?: string;
}

/**
 * KVM_SET_NESTED_STATE with the user buffer `blob` (null: a NULL pointer). Bytes the buffer does not
 * have are unmapped user memory: reading them faults (-EFAULT).
 */
export function setNestedState(v: Vcpu, blob: Uint8Array | null): SetResult {
  const quirks: string[] = [];
  const notModelled: string[] = [];
  const b = v.profile.nested!;
  const done = (ret: number | Errno, rule: RestoreRule, why: string): SetResult => ({
    ret: typeof ret === 'number' ? ret : -ERRNO[ret],
    errno: typeof ret === 'number' ? null : ret,
    rule,
    why,
    quirks,
    notModelled,
  });
  const einval = (rule: RestoreRule, why: string) => done('EINVAL', rule, why);

  if (!blob || blob.length < HEADER_SIZE) return done('EFAULT', 'W1', 'the 128-byte header cannot be read');
  const h = readHeader(blob);
  if (h.size < HEADER_SIZE) return einval('W2', `size ${h.size} < 128`);
  if (h.flags & ~b.setFlagsMask) return einval('W3', `flags 0x${h.flags.toString(16)} outside the allow-list 0x${b.setFlagsMask.toString(16)}`);
  if (h.flags & FLAGS.RUN_PENDING && !(h.flags & FLAGS.GUEST_MODE)) return einval('W4', 'RUN_PENDING without GUEST_MODE');
  if (h.format !== 0) return einval('V1', `format ${h.format} is not VMX`);
  const evmcsFlag = b.evmcsFlag !== 'none' && (h.flags & FLAGS.EVMCS) !== 0;
  // 4.20-5.1: the flag meant "eVMCS enabled" and carried no vmcs12 (history.md); it enables eVMCS and
  // takes no part in the vmcs12 rules below (an inference: the spec gives 6.x's rules only)
  const evmcsCarriesVmcs12 = evmcsFlag && b.evmcsFlag === 'when-active';
  if (h.vmxonPa === INVALID_GPA) {
    if (h.smmFlags !== 0) return einval('V2a', 'SMM flags without VMXON');
    if (h.vmcs12Pa !== INVALID_GPA) return einval('V2b', 'a vmcs12_pa without VMXON');
    if (h.flags & ~FLAGS.EVMCS) return einval('V2c', 'flags other than EVMCS without VMXON');
  } else {
    if (!v.nestedAllowed()) return einval('V2d', 'nested VMX is not allowed for this vCPU (module parameter or guest CPUID)');
    if (!v.pageAddressValid(h.vmxonPa)) return einval('V2e', `vmxon_pa 0x${h.vmxonPa.toString(16)} is not a valid page address`);
  }
  if (h.smmFlags & SMM_FLAGS.GUEST_MODE && h.flags & FLAGS.GUEST_MODE) return einval('V3', 'SMM guest mode together with guest mode');
  if (h.smmFlags & ~(SMM_FLAGS.GUEST_MODE | SMM_FLAGS.VMXON)) return einval('V4', `unknown smm.flags 0x${h.smmFlags.toString(16)}`);
  if (b.headerFlags && h.vmxFlags & ~VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE) return einval('V5', `unknown hdr.vmx.flags 0x${h.vmxFlags.toString(16)}`);
  if (v.inSmm ? h.flags & (FLAGS.GUEST_MODE | FLAGS.RUN_PENDING) : h.smmFlags !== 0)
    return einval('V6', v.inSmm ? 'guest mode while the vCPU is in SMM' : 'SMM flags while the vCPU is not in SMM');
  if (h.smmFlags & SMM_FLAGS.GUEST_MODE && !(h.smmFlags & SMM_FLAGS.VMXON)) return einval('V7', 'SMM guest mode without SMM VMXON');
  if (evmcsFlag) {
    if (b.evmcsFlag === 'when-active' && (!v.nestedAllowed() || !v.evmcsEnabled)) return einval('V8', 'EVMCS without nested VMX or without the eVMCS capability enabled');
    if (b.evmcsFlag === 'when-enabled') {
      if (!v.nestedAllowed()) return einval('V8', 'EVMCS without nested VMX');
      v.evmcsEnabled = true; // 4.20-5.1: the flag itself enables eVMCS
    }
  }
  // S1: from here on nothing is rolled back (quirk Q2). A vCPU in L2 is forced out of it first, with
  // every side effect of a nested VM-exit (Vcpu.exitToL1: MTF discarded, a pending eVMCS looked up,
  // the cached shadow vmcs12 written to guest memory), whatever SET answers later (F12)
  if (v.guestMode) quirks.push('S1_FORCED_EXIT_FROM_L2');
  v.leaveNested();
  if (h.vmxonPa === INVALID_GPA) {
    if (evmcsCarriesVmcs12) quirks.push('LONE_EVMCS_FLAG_IGNORED');
    return done(0, 'S2', 'VMX off: no nested state');
  }
  v.vmxonPtr = h.vmxonPa; // S3
  v.vmxon = true;
  v.vmcs12 = new Uint8Array(4096);
  v.shadowVmcs12 = new Uint8Array(4096);
  if (h.flags & FLAGS.GIF_SET) quirks.push('Q3_GIF_SET_IGNORED_ON_VMX');
  if (h.size < MIN_SIZE_FOR_VMCS12) {
    if (h.flags & FLAGS.GUEST_MODE || evmcsCarriesVmcs12 || h.vmcs12Pa !== INVALID_GPA) return q2(einval('V9', `size ${h.size} < 1126 with a vmcs12 expected`));
    if (h.smmFlags & SMM_FLAGS.VMXON) quirks.push('Q1_SMM_VMXON_NOT_APPLIED_ON_SMALL_SIZE');
    return done(0, 'V9', 'VMX on, no current VMCS');
  }
  if (h.vmcs12Pa !== INVALID_GPA) {
    if (h.vmcs12Pa === h.vmxonPa || !v.pageAddressValid(h.vmcs12Pa)) return q2(einval('V10', 'vmcs12_pa equals vmxon_pa or is not a valid page address'));
    v.currentVmptr = h.vmcs12Pa;
    if (evmcsCarriesVmcs12) quirks.push('VMCS12_PA_WINS_OVER_EVMCS');
  } else if (evmcsCarriesVmcs12) {
    v.evmptr = 'map-pending'; // looked up on the next KVM_RUN, when the VP-assist page is restored (vcpu.ts run)
    v.statePagesRequested = true;
  } else return q2(einval('V10c', 'no vmcs12_pa and no EVMCS, yet the size announces a vmcs12'));
  if (h.smmFlags & SMM_FLAGS.VMXON) {
    v.smm.vmxon = true;
    v.vmxon = false;
    if (h.smmFlags & SMM_FLAGS.GUEST_MODE) v.smm.guestMode = true;
  }
  if (blob.length < OFFSET.vmcs12 + VMCS12_STRUCT_SIZE) {
    // quirk V11_PARTIAL_COPY (seen on real 6.12, README K20): copy_from_user copies up to the fault
    // and zeroes the rest of the 998 bytes, and current_vmptr is already set: GET shows the prefix
    v.vmcs12.fill(0);
    v.vmcs12.set(blob.subarray(OFFSET.vmcs12));
    quirks.push('V11_PARTIAL_COPY');
    return q2(done('EFAULT', 'V11', 'the vmcs12 cannot be read from the buffer'));
  }
  v.vmcs12.set(blob.subarray(OFFSET.vmcs12, OFFSET.vmcs12 + VMCS12_STRUCT_SIZE));
  const hdr = VMCS12.read(v.vmcs12, 'hdr');
  if (hdrRevision(hdr) !== VMCS12_REVISION) return q2(einval('V12', `vmcs12 revision_id is not 0x${VMCS12_REVISION.toString(16)}`));
  if (hdrShadow(hdr)) quirks.push('PRIMARY_SHADOW_BIT_IGNORED');
  quirks.push('Q4_LAUNCH_STATE_KEPT');
  if (!(h.flags & FLAGS.GUEST_MODE)) return done(0, 'S5', 'VMX on, vmcs12 loaded, L1 running');
  v.nestedRunPending = (h.flags & FLAGS.RUN_PENDING) !== 0; // S6
  v.mtfPending = (h.flags & FLAGS.MTF_PENDING) !== 0;
  v.guestMode = true;
  const error = (r: SetResult) => {
    v.nestedRunPending = false; // the error path; mtf_pending, vmxon and vmcs12 stay
    v.guestMode = false;
    return r;
  };
  if (v.usesShadowVmcs() && v.linkPointer() !== INVALID_GPA) {
    if (h.size < MIN_SIZE_FOR_SHADOW) return error(einval('V13a', `size ${h.size} < 5222 while vmcs12 uses a shadow VMCS`));
    if (blob.length < OFFSET.shadowVmcs12 + VMCS12_STRUCT_SIZE) return error(done('EFAULT', 'V13b', 'the shadow vmcs12 cannot be read from the buffer'));
    v.shadowVmcs12.set(blob.subarray(OFFSET.shadowVmcs12, OFFSET.shadowVmcs12 + VMCS12_STRUCT_SIZE));
    const shadowHdr = VMCS12.read(v.shadowVmcs12, 'hdr');
    if (hdrRevision(shadowHdr) !== VMCS12_REVISION || !hdrShadow(shadowHdr)) return error(einval('V13c', 'shadow vmcs12 revision wrong or shadow bit clear'));
  }
  if (b.headerFlags) {
    v.hasPreemptionTimerDeadline = (h.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE) !== 0; // S7
    if (v.hasPreemptionTimerDeadline) v.preemptionTimerDeadline = h.preemptionTimerDeadline;
  }
  const bad = v.hooks.vmentryChecks(v, v.vmcs12, false);
  if (bad) return error({ ...einval('V14', `VM-entry check ${bad.rule} fails`), vmentryCheck: bad.rule });
  if (!v.hooks.prepareVmcs02(v)) {
    quirks.push('S8_POSITIVE_RETURN_2');
    return error(done(2, 'S8', 'prepare_vmcs02 failed (e.g. rule prepare.guest-cr3): NVMX_VMENTRY_VMEXIT (2) is returned as the ioctl value'));
  }
  loadL2Registers(v, v.nestedRunPending);
  startPreemptionTimer(v); // a deadline the blob did not carry is fixed now, from the restored vmcs12
  v.statePagesRequested = true; // nested_vmx_enter_non_root_mode(from_vmentry = false)
  return done(0, 'S9', 'L2 active (guest mode)');

  function q2(r: SetResult): SetResult {
    quirks.push('Q2_NO_ROLLBACK');
    return r;
  }
}
