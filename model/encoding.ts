// VMCS field-encoding arithmetic, as the SDM defines it and KVM computes it (kernel-facts §3).

export type Width = 16 | 32 | 64 | 'natural';

/** vmcs_field_width(): an odd encoding is the _HIGH half (32 bits); otherwise bits 14:13 give the width. */
export function widthOf(encoding: number): Width {
  if (encoding & 1) return 32;
  switch ((encoding >>> 13) & 3) {
    case 0:
      return 16;
    case 1:
      return 64;
    case 2:
      return 32;
    default:
      return 'natural';
  }
}

export function widthBytes(w: Width): number {
  return w === 'natural' ? 8 : w / 8;
}

/** The access type bit: 1 selects the high 32 bits of a 64-bit field. */
export const isHighAccess = (encoding: number): boolean => (encoding & 1) === 1;

/** vmcs_field_readonly(): the VM-exit information fields (type bits 11:10 == 1). */
export const isReadOnly = (encoding: number): boolean => ((encoding >>> 10) & 3) === 1;

/** The table index KVM uses for both vmcs12 and eVMCS tables: ROL16(encoding, 6). */
export const rol16 = (encoding: number): number => ((encoding << 6) | (encoding >>> 10)) & 0xffff;

/** The SDM's field index, bits 9:1 of the encoding, which IA32_VMX_VMCS_ENUM reports the maximum of. */
export const fieldIndex = (encoding: number): number => (encoding >>> 1) & 0x1ff;

/** nested_vmx_calc_vmcs_enum_msr(): the largest field index among the table's encodings, shifted left by 1. */
export function vmcsEnumFor(encodings: Iterable<number>): number {
  let max = 0;
  for (const e of encodings) max = Math.max(max, fieldIndex(e));
  return max << 1;
}

export const hex = (n: number | bigint, digits = 0): string => '0x' + n.toString(16).padStart(digits, '0');
