// The CPU model of the vCPU the checks assume, where KVM consults guest CPUID, the PMU or L1's own
// registers rather than the VMX MSRs. VcpuConfig does not describe these, so they are fixed here and
// documented in the README: a 64-bit L1 without CR4.LA57 (on a 4-level-paging host unless the vCPU
// configuration says hostLa57, which only 6.12's MSR and base canonical checks read), with NX, PCID, XSAVE, SMEP, SMAP,
// PKU, UMIP, FSGSBASE; no LA57, LAM, CET or SVM; an architectural
// PMU with 8 general-purpose and 3 fixed counters; no LBR, RTM or bus-lock detection for the guest;
// L1's local APIC in xAPIC mode.
export const GUEST_CPU = {
  /** L1's linear-address width (vcpu_virt_addr_bits, CR4.LA57 clear): host RIP's canonical check, and 6.1's MSR and base checks (revision.ts) */
  virtualAddressBits: 48,
  /** EFER bits kvm_valid_efer accepts: SCE, LME, LMA, NX */
  eferValid: 0xd01n,
  /** CR4 bits __kvm_is_valid_cr4 accepts (CR4_RESERVED_BITS and the guest-CPUID reserved bits) */
  cr4Valid: 0x0077_2fffn,
  /** IA32_PERF_GLOBAL_CTRL bits the PMU implements: GP counters 0-7, fixed counters 0-2 */
  perfGlobalCtrlValid: 0x7_0000_00ffn,
  /** DEBUGCTL bits vmx_is_valid_debugctl lets through: none supported, BTF and LBR tolerated (ignored) */
  debugctlValid: 0x3n,
  /** the quirk KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM (6.12, on by default) also lets bit 14 through */
  debugctlFreezeInSmm: 0x4000n,
  /** MSR_IA32_BNDCFGS_RSVD */
  bndcfgsReserved: 0xffcn,
  /** L1's EFER.LMA when it executes VMLAUNCH/VMRESUME: a 64-bit L1 */
  l1LongMode: true,
  /** L1's APIC in xAPIC mode (IA32_APIC_BASE.EXTD clear, as after reset): the MSR-load check lets x2APIC
   * MSRs through to the write, which refuses them anyway (kvm_x2apic_msr_write outside x2APIC mode) */
  l1X2apic: false,
} as const;

const U64 = (1n << 64n) - 1n;

/** __is_canonical_address: bits above the width are copies of the width's top bit. */
export function canonical(la: bigint, bits: number = GUEST_CPU.virtualAddressBits): boolean {
  const top = la >> BigInt(bits - 1);
  return top === 0n || top === U64 >> BigInt(bits - 1);
}

/** kvm_pat_valid: each of the 8 entries is 0, 1, 4, 5, 6 or 7. */
export function patValid(pat: bigint): boolean {
  for (let i = 0n; i < 64n; i += 8n) if (![0n, 1n, 4n, 5n, 6n, 7n].includes((pat >> i) & 0xffn)) return false;
  return true;
}

/** fixed_bits_valid: fixed-0 bits (must be 1) set, nothing outside fixed-1 (may be 1). */
export const fixedBitsValid = (v: bigint, fixed0: bigint, fixed1: bigint): boolean => ((v & fixed1) | fixed0) === v;
