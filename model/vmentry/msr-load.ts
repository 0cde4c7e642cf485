// The VM-entry MSR-load list (F2): on VMLAUNCH/VMRESUME, after prepare_vmcs02, KVM's
// nested_vmx_load_msr walks vm_entry_msr_load_count 16-byte entries at vm_entry_msr_load_addr in
// guest memory and stops at the first entry that fails, reporting a VM-exit 0x80000022 with exit
// qualification = that entry's index + 1. Entries before it have been written. Per entry, in order:
// the index against the cap 512 × (IA32_VMX_MISC[27:25] + 1) (the cap is not checked up front, so
// the earlier entries load), the read (guest memory always reads here: no memslots are modelled),
// nested_vmx_load_msr_check, then the MSR write. Not on restore. 6.12 writes with
// kvm_set_msr_with_filter, 6.1 with kvm_set_msr: they differ only under a userspace MSR filter, which
// the vCPU configuration cannot express.
import type { CheckInput } from './input.js';
import { readBytes } from '../vmcs12-access.js';
import { GUEST_CPU } from './guest-cpu.js';
import { GUEST_MSRS, LOAD_REFUSED_MSRS } from './guest-msrs.js';

export interface MsrEntry {
  readonly index: number;
  /** bits 63:32 of the first quadword, which must be zero */
  readonly reserved?: number;
  readonly value: bigint;
}

export type MsrLoadFailure = 'count' | 'refused-index' | 'reserved' | 'write';

export interface MsrLoadWalk {
  /** the first failing entry and why, or null when the whole list loads */
  readonly failed: { readonly index: number; readonly why: MsrLoadFailure } | null;
  /** the entries written, in order */
  readonly written: readonly MsrEntry[];
}

/** nested_vmx_max_atomic_switch_msrs */
export const msrListCap = (misc: bigint): number => 512 * (Number((misc >> 25n) & 7n) + 1);

/** A 16-byte entry in guest memory (entries are 16-byte aligned: the address check ran first). */
export function readEntry(s: CheckInput, gpa: bigint): MsrEntry {
  const page = s.guestPage(gpa & ~0xfffn);
  const off = Number(gpa & 0xfffn);
  return { index: Number(readBytes(page, off, 4)), reserved: Number(readBytes(page, off + 4, 4)), value: readBytes(page, off + 8, 8) };
}

/** nested_vmx_load_msr_check: an index it refuses (x2APIC MSRs only while L1 is in x2APIC mode), then the reserved bits */
function refused(e: MsrEntry): MsrLoadFailure | null {
  if (LOAD_REFUSED_MSRS.includes(e.index) || (GUEST_CPU.l1X2apic && e.index >>> 8 === 0x8)) return 'refused-index';
  return (e.reserved ?? 0) !== 0 ? 'reserved' : null;
}

const walks = new WeakMap<CheckInput, MsrLoadWalk>();

export function walkEntryMsrLoad(s: CheckInput): MsrLoadWalk {
  let w = walks.get(s);
  if (w) return w;
  const count = Number(s.f('vm_entry_msr_load_count'));
  const addr = s.f('vm_entry_msr_load_addr');
  const cap = msrListCap(s.caps.misc);
  const written: MsrEntry[] = [];
  let failed: MsrLoadWalk['failed'] = null;
  for (let i = 0; i < count && !failed; i++) {
    if (i >= cap) {
      failed = { index: i, why: 'count' };
      break;
    }
    const e = readEntry(s, addr + BigInt(i) * 16n);
    const why = refused(e) ?? (GUEST_MSRS.get(e.index)?.accepts(e.value, s.msrAddressBits) ? null : 'write');
    if (why) failed = { index: i, why };
    else written.push(e);
  }
  walks.set(s, (w = { failed, written }));
  return w;
}

/** The vmcs12 members the written entries change (vmx_set_msr in guest mode), in write order. */
export function msrLoadVmcs12Writes(s: CheckInput): { member: string; value: bigint }[] {
  return walkEntryMsrLoad(s).written.flatMap((e) => {
    const m = GUEST_MSRS.get(e.index)?.vmcs12;
    return m ? [{ member: m.member, value: m.value(e.value, s.msrAddressBits) }] : [];
  });
}
