// VMREAD / VMWRITE on a vmcs12 page by encoding, with KVM's lookup and width rules (kernel-facts §3):
// get_vmcs12_field_offset, vmcs12_read_any, vmcs12_write_any, and handle_vmwrite's extra rules.
import { isReadOnly, widthBytes, type Width } from './encoding.js';
import type { Layout } from './layout.js';

/** VM-instruction error numbers (SDM vol. 3, "VM-instruction error numbers"). */
export const VMXERR_UNSUPPORTED_VMCS_COMPONENT = 12;
export const VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT = 13;

export type AccessOutcome =
  | { readonly ok: true; readonly value: bigint }
  | { readonly ok: false; readonly vmfail: 'valid'; readonly error: number; readonly reason: string };

interface Slot {
  readonly offset: number;
  readonly bytes: number;
}

export interface AccessTable {
  readonly layout: Layout;
  readonly slots: ReadonlyMap<number, Slot>;
  readonly encodings: readonly number[];
}

const tables = new WeakMap<Layout, AccessTable>();

export function accessTableFor(layout: Layout): AccessTable {
  let t = tables.get(layout);
  if (!t) {
    const slots = new Map<number, Slot>();
    for (const f of layout.fields) slots.set(f.encoding, { offset: f.offset, bytes: widthBytes(f.width) });
    t = { layout, slots, encodings: [...slots.keys()].sort((a, b) => a - b) };
    tables.set(layout, t);
  }
  return t;
}

const U64 = (1n << 64n) - 1n;

const unsupported = (encoding: bigint): AccessOutcome => ({
  ok: false,
  vmfail: 'valid',
  error: VMXERR_UNSUPPORTED_VMCS_COMPONENT,
  reason: `unsupported VMCS component 0x${encoding.toString(16)}`,
});

/** get_vmcs12_field_offset: any bit at or above 15 of the 64-bit operand misses, as does a hole. */
export function lookup(table: AccessTable, encoding: bigint): Slot | undefined {
  if (encoding < 0n || encoding >> 15n !== 0n) return undefined;
  return table.slots.get(Number(encoding));
}

/** VMREAD: zero-extended little-endian read of the field's width. */
export function vmread(table: AccessTable, page: Uint8Array, encoding: bigint): AccessOutcome {
  const slot = lookup(table, encoding);
  if (!slot) return unsupported(encoding);
  return { ok: true, value: readBytes(page, slot.offset, slot.bytes) };
}

/** VMWRITE through vmcs12_write_any: the value is truncated to the width; writes the page in place. */
export function vmwrite(table: AccessTable, page: Uint8Array, encoding: bigint, value: bigint): AccessOutcome {
  const slot = lookup(table, encoding);
  if (!slot) return unsupported(encoding);
  const v = value & U64 & ((1n << BigInt(slot.bytes * 8)) - 1n);
  writeBytes(page, slot.offset, slot.bytes, v);
  return { ok: true, value: v };
}

/** The guest-segment AR-byte fields KVM masks on VMWRITE (0x4814..0x4822). */
const AR_BYTES_MASK = 0x1f0ffn;
const isArBytes = (enc: number): boolean => enc >= 0x4814 && enc <= 0x4822 && (enc & 1) === 0;

/** The bits of a VMWRITE value that handle_vmwrite keeps before storing it (quirk VMWRITE_AR_BYTES_MASK). */
export const vmwriteInstructionMask = (encoding: number): bigint => (isArBytes(encoding) ? AR_BYTES_MASK : (1n << 64n) - 1n);

/**
 * handle_vmwrite's rules on top of vmwrite: read-only (VM-exit information) fields fail unless L1's
 * IA32_VMX_MISC grants "VMWRITE to any field" (bit 29); guest AR bytes are masked with 0x1f0ff.
 */
export function vmwriteInstruction(
  table: AccessTable,
  page: Uint8Array,
  encoding: bigint,
  value: bigint,
  opts: { vmwriteAnyField: boolean },
): AccessOutcome {
  const slot = lookup(table, encoding);
  if (!slot) return unsupported(encoding);
  const enc = Number(encoding);
  if (isReadOnly(enc) && !opts.vmwriteAnyField)
    return { ok: false, vmfail: 'valid', error: VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT, reason: `read-only VMCS component 0x${enc.toString(16)}` };
  return vmwrite(table, page, encoding, value & vmwriteInstructionMask(enc));
}

/**
 * How a target carries out VMREAD/VMWRITE on a page: `table` is vmcs12_read_any/vmcs12_write_any;
 * `instruction` is L1's VMREAD/VMWRITE on a vCPU with KVM's default VMX MSRs, which grant
 * "VMWRITE to any field" (IA32_VMX_MISC bit 29), so only handle_vmwrite's AR-byte mask adds to it.
 */
export type AccessPath = 'table' | 'instruction';

/** nested_vmx_failValid: the VM-instruction error goes into the current vmcs12's vm_instruction_error. */
export function recordInstructionError(table: AccessTable, page: Uint8Array, error: number): void {
  const f = table.layout.fields.find((x) => x.member === 'vm_instruction_error' && !x.high);
  if (f) writeBytes(page, f.offset, widthBytes(f.width), BigInt(error));
}

/**
 * One VMREAD or VMWRITE on `page` (in place), as a target with this access path answers it; the
 * instruction path records a VMfailValid's error in the page, as nested_vmx_failValid does.
 */
export function access(table: AccessTable, page: Uint8Array, op: { op: 'read'; encoding: bigint } | { op: 'write'; encoding: bigint; value: bigint }, path: AccessPath = 'table'): AccessOutcome {
  const r = op.op === 'read' ? vmread(table, page, op.encoding) : path === 'instruction' ? vmwriteInstruction(table, page, op.encoding, op.value, { vmwriteAnyField: true }) : vmwrite(table, page, op.encoding, op.value);
  if (!r.ok && path === 'instruction') recordInstructionError(table, page, r.error);
  return r;
}

/** The value a read returns after writing `value`: truncated to the encoding's width. */
export function truncateTo(width: Width, value: bigint): bigint {
  return value & ((1n << BigInt(widthBytes(width) * 8)) - 1n);
}

export function readBytes(page: Uint8Array, offset: number, bytes: number): bigint {
  let v = 0n;
  for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(page[offset + i]!);
  return v;
}

export function writeBytes(page: Uint8Array, offset: number, bytes: number, value: bigint): void {
  let v = value;
  for (let i = 0; i < bytes; i++) {
    page[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}
