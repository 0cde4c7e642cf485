// The MSRs whose guest-side write (kvm_set_msr: __kvm_set_msr, then vmx_set_msr) the model knows, for
// the VM-entry MSR-load list (F2). KVM implements many more; the model judges every other index
// refused, as kvm_set_msr_common does for an index it does not handle (e.g. 0). Facts from x86.c and
// vmx/vmx.c of 6.1 and 6.12, which agree for these under the modelled CPU (a 64-bit guest CPUID)
// except in the canonical width: 6.1 uses L1's, 6.12 the host's (revision.ts msrCanonicalWidth; the
// check input carries the width, `bits` below).
import { canonical, GUEST_CPU } from './guest-cpu.js';

export interface GuestMsr {
  readonly name: string;
  /** the write succeeds (`bits`: the canonical width of KVM's MSR address checks) */
  readonly accepts: (value: bigint, bits: number) => boolean;
  /** in guest mode vmx_set_msr also stores the value in this vmcs12 member (as transformed) */
  readonly vmcs12?: { readonly member: string; readonly value: (v: bigint, bits: number) => bigint };
}

const U64 = (1n << 64n) - 1n;
/** __canonical_address: sign-extended from the top implemented bit (SYSENTER_ESP/EIP are made canonical, never refused) */
export const canonicalise = (v: bigint, bits: number = GUEST_CPU.virtualAddressBits): bigint => {
  const shift = 64n - BigInt(bits);
  const s = BigInt.asIntN(64, v << shift) >> shift;
  return s & U64;
};

export const GUEST_MSRS: ReadonlyMap<number, GuestMsr> = new Map<number, GuestMsr>([
  [0xc000_0102, { name: 'MSR_KERNEL_GS_BASE', accepts: (v, bits) => canonical(v, bits) }],
  [0x174, { name: 'MSR_IA32_SYSENTER_CS', accepts: () => true, vmcs12: { member: 'guest_sysenter_cs', value: (v) => v & 0xffff_ffffn } }],
  [0x175, { name: 'MSR_IA32_SYSENTER_ESP', accepts: () => true, vmcs12: { member: 'guest_sysenter_esp', value: (v, bits) => canonicalise(v, bits) } }],
  [0x176, { name: 'MSR_IA32_SYSENTER_EIP', accepts: () => true, vmcs12: { member: 'guest_sysenter_eip', value: (v, bits) => canonicalise(v, bits) } }],
]);

/** nested_vmx_load_msr_check refuses these indices before any write: FS/GS base, SMM monitor control, microcode update and revision. */
export const LOAD_REFUSED_MSRS: readonly number[] = [0xc000_0100, 0xc000_0101, 0x9b, 0x79, 0x8b];
