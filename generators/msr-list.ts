// VM-entry MSR-load lists (F2). A valid guest's list holds writes KVM accepts, chosen from the SDM
// and KVM's MSR semantics on their own (not from the model's table): the swapgs shadow base with a
// canonical value, and the SYSENTER MSRs with any value (KVM makes ESP/EIP canonical rather than
// refusing them). Breakers append one entry KVM refuses.
import fc from 'fast-check';
import type { MsrEntry } from '../model/vmentry/msr-load.js';

/** Where valid guests keep their VM-entry MSR-load list: above the pages of guest CR3 (below 256 MiB), so a list never overwrites the PDPTEs. */
export const ENTRY_MSR_AREA = 0x1000_0000n;

export const MSR = { KERNEL_GS_BASE: 0xc000_0102, SYSENTER_CS: 0x174, SYSENTER_ESP: 0x175, SYSENTER_EIP: 0x176, FS_BASE: 0xc000_0100, GS_BASE: 0xc000_0101, SMM_MONITOR_CTL: 0x9b, UCODE_WRITE: 0x79, UCODE_REV: 0x8b } as const;

export const rawMsrEntry = fc.record({ msr: fc.nat(3), value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) });
export type RawMsrEntry = typeof rawMsrEntry extends fc.Arbitrary<infer T> ? T : never;

const canonical48 = (x: bigint) => { const v = x & 0xffff_ffff_ffffn; return v & 0x8000_0000_0000n ? v | 0xffff_0000_0000_0000n : v; };

/** Entries every vCPU the model describes accepts. */
export function entryMsrList(raw: readonly RawMsrEntry[]): MsrEntry[] {
  return raw.map(({ msr, value }) => {
    const index = [MSR.KERNEL_GS_BASE, MSR.SYSENTER_CS, MSR.SYSENTER_ESP, MSR.SYSENTER_EIP][msr]!;
    return { index, value: index === MSR.KERNEL_GS_BASE ? canonical48(value) : value };
  });
}
