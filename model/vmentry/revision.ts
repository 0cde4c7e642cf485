// What differs between kernels in KVM's VM-entry consistency checks, as data. Every profile names
// its revision (model/profiles.ts `vmentry`); the rule table (rules.ts) and the check input
// (model/nested/vmentry-hook.ts) are built from it, never from a profile's name, so a new profile
// must say which checks its kernel runs.
//
// Compared (Debian linux-source 6.1.192 and 6.12.117, arch/x86/kvm/vmx/nested.c and vmx.c, x86.h):
// nested_check_vm_execution_controls, _exit_controls, _entry_controls and every helper,
// nested_vmx_check_address_space_size, nested_vmx_check_eptp, nested_vmx_check_vmcs_link_ptr,
// nested_check_guest_non_reg_state (the activity states: active, HLT, wait-for-SIPI in both),
// nested_vmx_run, nested_vmx_enter_non_root_mode, prepare_vmcs02, nested_vmx_load_msr(_check),
// nested_vmx_msr_check_common, __vmx_guest_state_valid and its segment helpers,
// vmx_is_valid_debugctl: identical, or different only in helper names. What differs is below. Two
// more differences change nothing under the modelled CPU and are not data: CR3 legality
// (6.12 kvm_vcpu_is_legal_cr3 ignores the LAM bits when guest CPUID has LAM, which it has not) and
// the MSR-load list's writes (6.12 kvm_set_msr_with_filter: no userspace MSR filter is modelled).
// No FRED or PKRS field or check exists in either kernel's nested.c.

export interface VmentryRevision {
  /** the kernel whose sources these facts were read from */
  readonly revision: 'linux-6.1' | 'linux-6.12';
  /**
   * Set on profiles whose own kernel was not read: why the revision's facts stand for it (the spec
   * records no change to these checks for that kernel).
   */
  readonly assumed?: string;
  /** nested_vmx_check_host_state / _guest_state: CR4.CET set requires CR0.WP (6.12; no such check in 6.1) */
  readonly cetNeedsWp: boolean;
  /**
   * KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM, on by default: the guest DEBUGCTL check ignores
   * FREEZE_IN_SMM (bit 14) (6.12; 6.1 refuses it)
   */
  readonly freezeInSmmQuirk: boolean;
  /**
   * The linear-address width of the canonical checks on host IA32_SYSENTER_ESP/EIP, the host FS, GS,
   * GDTR, IDTR and TR bases, guest BNDCFGS and the MSR-load list's KERNEL_GS_BASE and SYSENTER_ESP/EIP:
   * - `l1-cr4`: is_noncanonical_address, vcpu_virt_addr_bits: 57 with L1's CR4.LA57, else 48 (6.1);
   * - `host`: is_noncanonical_msr_address / _base_address, max_host_virt_addr_bits: 57 on a host
   *   with 5-level paging, whatever L1's CR4, else 48 (6.12).
   * Host RIP is checked with L1's width in both.
   */
  readonly msrCanonicalWidth: 'l1-cr4' | 'host';
}

export const VMENTRY_6_1: VmentryRevision = { revision: 'linux-6.1', cetNeedsWp: false, freezeInSmmQuirk: false, msrCanonicalWidth: 'l1-cr4' };
export const VMENTRY_6_12: VmentryRevision = { revision: 'linux-6.12', cetNeedsWp: true, freezeInSmmQuirk: true, msrCanonicalWidth: 'host' };

/** 6.1's checks for a profile older than 6.1: kernel-facts and history.md record no change to them. */
export const assumedFrom61 = (kernel: string): VmentryRevision => ({
  ...VMENTRY_6_1,
  assumed: `no source of ${kernel} was read for the VM-entry checks; history.md records no change to them, so 6.1's stand for it`,
});

/**
 * The width KVM's MSR and descriptor-base canonical checks use on a vCPU of this revision: from the
 * host's paging depth (`hostLa57`), or L1's own width (`l1Bits`, vcpu_virt_addr_bits: 48 for the
 * modelled L1, GUEST_CPU.virtualAddressBits).
 */
export function msrAddressBits(rev: VmentryRevision, hostLa57: boolean, l1Bits: number): number {
  return rev.msrCanonicalWidth === 'host' ? (hostLa57 ? 57 : 48) : l1Bits;
}
