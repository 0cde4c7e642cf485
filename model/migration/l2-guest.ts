// The L2 a scenario launches: the smallest vmcs12 that passes KVM's VM-entry checks under the
// default nested capabilities (64-bit L2, flat segments, every address at 1 MiB, no link pointer,
// no MSR-load list). Close to what generators/valid-guest.ts builds from all-zero choices, written
// out once so model/ does not depend on generators/; tests/scenarios.test.ts checks that every
// scenario still enters. Without unrestricted guest KVM checks the segments on VMLAUNCH (F1).
// A real L2 runs its code (README K19): this one also passes the CPU's own guest-state checks
// (RFLAGS bit 1) and has code and page tables in guest memory, so it halts at its entry point and
// stays in guest mode, as the model's L2 does, instead of faulting out to L1.
import { vmwriteOp as w } from '../nested/ops-json.js';
import type { GuestOp } from '../nested/vcpu.js';

/** pin, processor-based, secondary, exit and entry controls of the minimal guest */
export type Controls = Record<'pin' | 'proc' | 'proc2' | 'exit' | 'entry', number>;
export const L2_CONTROLS: Readonly<Controls> = { pin: 0x16, proc: 0x0400_6172, proc2: 0, exit: 0x3_6ffb, entry: 0x13fb };

const MIB = 0x10_0000n;
/** where L2 starts: a HLT (no HLT exiting, so L2 stays halted in guest mode) */
export const L2_ENTRY = 0xfff0n;
const CR0 = 0x8000_0021n; // PG | NE | PE
const CR4 = 0x2020n; // VMXE | PAE

/** VMWRITEs of the minimal guest's non-zero fields, the controls given (scenarios turn features on) */
export function writeL2(controls: Partial<Controls> = {}): GuestOp[] {
  const c = { ...L2_CONTROLS, ...controls };
  return [
    // >>> 0: a control word with bit 31 set is a 32-bit field, not a negative number
    w('pin_based_vm_exec_control', BigInt(c.pin >>> 0)),
    w('cpu_based_vm_exec_control', BigInt(c.proc >>> 0)),
    w('secondary_vm_exec_control', BigInt(c.proc2 >>> 0)),
    w('vm_exit_controls', BigInt(c.exit >>> 0)),
    w('vm_entry_controls', BigInt(c.entry >>> 0)),
    ...[
      ...['io_bitmap_a', 'io_bitmap_b', 'msr_bitmap', 'virtual_apic_page_addr', 'apic_access_addr', 'pml_address', 'vmread_bitmap', 'vmwrite_bitmap'],
      ...['eptp_list_address', 'posted_intr_desc_addr', 'vm_exit_msr_load_addr', 'vm_exit_msr_store_addr', 'vm_entry_msr_load_addr'],
    ].map((m) => w(m, MIB)),
    w('virtual_processor_id', 1n),
    w('ept_pointer', MIB | 0x1en), // WB, 4-level, A/D
    w('guest_cr0', CR0), w('guest_cr4', CR4), w('guest_cr3', MIB),
    w('guest_ia32_efer', 0x500n), w('host_ia32_efer', 0x500n), // LME | LMA
    w('vmcs_link_pointer', 0xffff_ffff_ffff_ffffn), // none
    w('host_cr0', CR0), w('host_cr4', CR4), w('host_cr3', MIB),
    w('host_cs_selector', 8n), w('host_tr_selector', 8n), w('host_ss_selector', 8n),
    w('guest_rflags', 2n), // bit 1 is fixed to 1: KVM does not check it, the CPU's VM-entry does
    ...flatSegments(),
    w('guest_rip', L2_ENTRY),
    ...l2Memory(),
  ];
}

/**
 * L2's memory, in L1's guest-physical space (no EPT): 4-level page tables at guest_cr3 (1 MiB)
 * mapping the first 2 MiB with one large page, and HLTs at the entry point.
 */
function l2Memory(): GuestOp[] {
  const present = 0x7n; // P | RW | US
  return [
    { op: 'write-memory', pa: MIB, value: (MIB + 0x1000n) | present },
    { op: 'write-memory', pa: MIB + 0x1000n, value: (MIB + 0x2000n) | present },
    { op: 'write-memory', pa: MIB + 0x2000n, value: 0x80n | present }, // PS: a 2 MiB page at 0
    { op: 'write-memory', pa: L2_ENTRY, value: 0xf4f4_f4f4_f4f4_f4f4n },
  ];
}

/** 64-bit code at selector 8, flat data at 0x10 for SS DS ES FS GS, a busy TSS at 0x18, no LDT (unusable) */
function flatSegments(): GuestOp[] {
  const seg = (sel: number, limit: number, ar: number, s: string) => [w(`guest_${s}_selector`, BigInt(sel)), w(`guest_${s}_limit`, BigInt(limit >>> 0)), w(`guest_${s}_ar_bytes`, BigInt(ar))];
  const DATA = [0x10, 0xffff_ffff, 0xc093] as const;
  return [...seg(...DATA, 'es'), ...seg(0x8, 0xffff_ffff, 0xa09b, 'cs'), ...seg(...DATA, 'ss'), ...seg(...DATA, 'ds'), ...seg(...DATA, 'fs'), ...seg(...DATA, 'gs'), ...seg(0, 0, 0x1_0000, 'ldtr'), ...seg(0x18, 0x67, 0x8b, 'tr')];
}
