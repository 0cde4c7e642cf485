// The vCPU's side of the VM-entry checks: what KVM reads from the vCPU (its nested VMX MSRs,
// MAXPHYADDR, nested_run_pending, guest memory, guest_cpuid_has_evmcs) turned into a check input.
import { nestedCaps } from '../vmentry/caps.js';
import { firstFailure } from '../vmentry/check.js';
import { memberReader, type CheckInput } from '../vmentry/input.js';
import { vmentryRules } from '../vmentry/rules.js';
import type { Vcpu, VmentryChecks } from './vcpu.js';

const ZERO_PAGE = new Uint8Array(4096);

export function checkInput(v: Vcpu, vmcs12: Uint8Array, fromVmentry: boolean): CheckInput {
  return {
    f: memberReader(v.profile.vmcs12, vmcs12),
    caps: nestedCaps(v.config.vmxMsrs),
    maxPhyAddr: v.config.maxPhyAddr,
    runPending: fromVmentry || v.nestedRunPending,
    evmcsCheck: v.guestCpuidHasEvmcs() && v.profile.evmcs ? v.profile.evmcs.check : null,
    guestPage: (gpa) => v.memory.get(gpa) ?? ZERO_PAGE,
  };
}

/**
 * Rule V14 and VMLAUNCH/VMRESUME: nested_vmx_check_controls, (on entry) the address-space size,
 * nested_vmx_check_host_state and nested_vmx_check_guest_state; on entry also prepare_vmcs02's
 * checks, which on restore belong to S8 (prepareVmcs02 below).
 */
export const kvmVmentryChecks: VmentryChecks = (v, vmcs12, fromVmentry) => {
  const bad = fromVmentry
    ? firstFailure(vmentryRules(v.profile), checkInput(v, vmcs12, true), 'vmentry')
    : firstFailure(vmentryRules(v.profile), checkInput(v, vmcs12, false), 'restore', ['controls', 'host', 'guest']);
  return bad && { rule: bad.id, stage: bad.stage, qualification: bad.qualification ?? 0 };
};

/** prepare_vmcs02 on restore (from_vmentry = false): only the guest-CR3 check can fail there. */
export const kvmPrepareVmcs02 = (v: Vcpu): boolean => firstFailure(vmentryRules(v.profile), checkInput(v, v.vmcs12, false), 'restore', ['prepare']) === null;
