// The KVM_GET/SET_NESTED_STATE blob: decode any byte string into a structured view (never an
// exception), and encode a header + pages description. The header is the catalog of this blob.
import { FLAGS, HEADER_SIZE, OFFSET, SMM_FLAGS, VMCS12_BLOB_SIZE, VMX_HDR_FLAGS } from './constants.js';

export interface NestedHeader {
  flags: number;
  format: number;
  size: number;
  vmxonPa: bigint;
  vmcs12Pa: bigint;
  smmFlags: number;
  pad: number;
  vmxFlags: number;
  preemptionTimerDeadline: bigint;
}

/** One line per header field: name, offset, size. */
export const HEADER_FIELDS: readonly { name: keyof NestedHeader; offset: number; size: 2 | 4 | 8 }[] = [
  { name: 'flags', offset: OFFSET.flags, size: 2 },
  { name: 'format', offset: OFFSET.format, size: 2 },
  { name: 'size', offset: OFFSET.size, size: 4 },
  { name: 'vmxonPa', offset: OFFSET.vmxonPa, size: 8 },
  { name: 'vmcs12Pa', offset: OFFSET.vmcs12Pa, size: 8 },
  { name: 'smmFlags', offset: OFFSET.smmFlags, size: 2 },
  { name: 'pad', offset: OFFSET.pad, size: 2 },
  { name: 'vmxFlags', offset: OFFSET.vmxFlags, size: 4 },
  { name: 'preemptionTimerDeadline', offset: OFFSET.preemptionTimerDeadline, size: 8 },
];

export interface DecodedBlob {
  /** bytes actually present */
  readonly length: number;
  readonly header: NestedHeader;
  /** the vmcs12 page, when the buffer holds it (possibly truncated: then `vmcs12Bytes` < 4096) */
  readonly vmcs12: Uint8Array | null;
  readonly shadowVmcs12: Uint8Array | null;
  /** what does not add up, in words: size lying about the length, unknown flags, non-zero padding */
  readonly notes: readonly string[];
  readonly tail: number;
}

export type DecodeResult = { ok: true; blob: DecodedBlob } | { ok: false; error: string };

function readLe(b: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i] ?? 0);
  return v;
}

function writeLe(b: Uint8Array, off: number, size: number, v: bigint): void {
  for (let i = 0; i < size; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

export function readHeader(b: Uint8Array): NestedHeader {
  const h = {} as Record<keyof NestedHeader, number | bigint>;
  for (const f of HEADER_FIELDS) h[f.name] = f.size === 8 ? readLe(b, f.offset, 8) : Number(readLe(b, f.offset, f.size));
  return h as unknown as NestedHeader;
}

export function writeHeader(b: Uint8Array, h: NestedHeader): void {
  for (const f of HEADER_FIELDS) writeLe(b, f.offset, f.size, BigInt(h[f.name]));
}

const KNOWN_FLAGS = FLAGS.GUEST_MODE | FLAGS.RUN_PENDING | FLAGS.EVMCS | FLAGS.MTF_PENDING | FLAGS.GIF_SET;

/** Decodes whatever it is given. Only an empty or header-truncated buffer is an error. */
export function decodeBlob(b: Uint8Array): DecodeResult {
  if (b.length < HEADER_SIZE) return { ok: false, error: `blob is ${b.length} bytes, shorter than the ${HEADER_SIZE}-byte header` };
  const header = readHeader(b);
  const notes: string[] = [];
  if (header.size !== b.length) notes.push(`size field says ${header.size} bytes, the blob has ${b.length}`);
  if (header.flags & ~KNOWN_FLAGS) notes.push(`unknown flags 0x${(header.flags & ~KNOWN_FLAGS).toString(16)}`);
  if (header.format !== 0) notes.push(`format ${header.format} is not VMX (0)`);
  if (header.smmFlags & ~(SMM_FLAGS.GUEST_MODE | SMM_FLAGS.VMXON)) notes.push(`unknown smm.flags 0x${header.smmFlags.toString(16)}`);
  if (header.vmxFlags & ~VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE) notes.push(`unknown hdr.vmx.flags 0x${header.vmxFlags.toString(16)}`);
  if (b.subarray(40, HEADER_SIZE).some((x) => x !== 0)) notes.push('header bytes 40..127 are not zero');
  const page = (off: number) => (b.length > off ? b.slice(off, Math.min(b.length, off + VMCS12_BLOB_SIZE)) : null);
  const vmcs12 = page(OFFSET.vmcs12);
  const shadowVmcs12 = page(OFFSET.shadowVmcs12);
  if (vmcs12 && vmcs12.length < VMCS12_BLOB_SIZE) notes.push(`vmcs12 truncated to ${vmcs12.length} bytes`);
  if (shadowVmcs12 && shadowVmcs12.length < VMCS12_BLOB_SIZE) notes.push(`shadow vmcs12 truncated to ${shadowVmcs12.length} bytes`);
  const tail = Math.max(0, b.length - OFFSET.shadowVmcs12 - VMCS12_BLOB_SIZE);
  if (tail) notes.push(`${tail} bytes after the shadow vmcs12`);
  return { ok: true, blob: { length: b.length, header, vmcs12, shadowVmcs12, notes, tail } };
}

/** Builds a blob: header, then the pages given; `size` defaults to the bytes produced. */
export function encodeBlob(h: Partial<NestedHeader>, vmcs12?: Uint8Array | null, shadow?: Uint8Array | null): Uint8Array {
  const length = shadow ? OFFSET.shadowVmcs12 + VMCS12_BLOB_SIZE : vmcs12 ? OFFSET.vmcs12 + VMCS12_BLOB_SIZE : HEADER_SIZE;
  const b = new Uint8Array(length);
  writeHeader(b, { flags: 0, format: 0, size: length, vmxonPa: 0n, vmcs12Pa: 0n, smmFlags: 0, pad: 0, vmxFlags: 0, preemptionTimerDeadline: 0n, ...h });
  if (vmcs12) b.set(vmcs12.subarray(0, VMCS12_BLOB_SIZE), OFFSET.vmcs12);
  if (shadow) b.set(shadow.subarray(0, VMCS12_BLOB_SIZE), OFFSET.shadowVmcs12);
  return b;
}

export const flagNames = (flags: number): string[] =>
  Object.entries(FLAGS)
    .filter(([, v]) => flags & v)
    .map(([k]) => k);
