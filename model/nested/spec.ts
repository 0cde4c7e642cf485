// The JSON description of a nested-state blob (`nvmx-nested/1`): what `nested decode --json` prints
// and `nested encode` reads. Header fields by name, each vmcs12 page as named members plus any
// non-zero bytes the layout gives no meaning.
import { codecFor, decode, encode, recordFrom, recordValues, bytesHex } from '../codec.js';
import type { Layout } from '../layout.js';
import { encodeBlob, flagNames, type DecodedBlob, type NestedHeader } from './blob.js';
import { FLAGS, OFFSET, VMCS12_BLOB_SIZE } from './constants.js';

type U64 = string | number;

export interface PageSpec {
  fields?: Record<string, U64>;
  unknownBytes?: { offset: number; hex: string }[];
}

export interface NestedSpec {
  format?: 'nvmx-nested/1';
  header: Partial<Record<Exclude<keyof NestedHeader, 'flags'>, U64>> & { flags?: U64 | (keyof typeof FLAGS)[] };
  vmcs12?: PageSpec;
  shadowVmcs12?: PageSpec;
  notes?: string[];
  length?: number;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;
const big = (v: U64) => BigInt(v);

/** A page as named non-zero fields plus the non-zero bytes the layout gives no meaning (the page is cut or zero-padded to `size`). */
export function pageToSpec(layout: Layout, page: Uint8Array, size = VMCS12_BLOB_SIZE): PageSpec {
  const full = new Uint8Array(size);
  full.set(page.subarray(0, size));
  const codec = codecFor(size === layout.size ? layout : { ...layout, size });
  const rec = decode(codec, full);
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(recordValues(codec, rec))) if (v !== 0n) fields[k] = hex(v);
  const unknownBytes: { offset: number; hex: string }[] = [];
  for (let i = 0; i < rec.rest.length; i++) {
    if (!rec.rest[i]) continue;
    let j = i;
    while (j < rec.rest.length && rec.rest[j]) j++;
    unknownBytes.push({ offset: i, hex: bytesHex(rec.rest.subarray(i, j)) });
    i = j;
  }
  return { fields, ...(unknownBytes.length ? { unknownBytes } : {}) };
}

function specToPage(layout: Layout, p: PageSpec): Uint8Array {
  const codec = codecFor({ ...layout, size: VMCS12_BLOB_SIZE });
  const rec = recordFrom(codec, Object.fromEntries(Object.entries(p.fields ?? {}).map(([k, v]) => [k, big(v)])));
  const page = encode(codec, rec);
  for (const u of p.unknownBytes ?? []) page.set(Buffer.from(u.hex, 'hex').subarray(0, VMCS12_BLOB_SIZE - u.offset), u.offset);
  return page;
}

export function blobToSpec(layout: Layout, d: DecodedBlob): NestedSpec {
  const h = d.header;
  return {
    format: 'nvmx-nested/1',
    length: d.length,
    header: {
      flags: flagNames(h.flags).length && !(h.flags & ~Object.values(FLAGS).reduce((a, b) => a | b, 0)) ? (flagNames(h.flags) as (keyof typeof FLAGS)[]) : hex(h.flags),
      format: h.format,
      size: h.size,
      vmxonPa: hex(h.vmxonPa),
      vmcs12Pa: hex(h.vmcs12Pa),
      smmFlags: hex(h.smmFlags),
      pad: h.pad,
      vmxFlags: hex(h.vmxFlags),
      preemptionTimerDeadline: hex(h.preemptionTimerDeadline),
    },
    ...(d.vmcs12 ? { vmcs12: pageToSpec(layout, d.vmcs12) } : {}),
    ...(d.shadowVmcs12 ? { shadowVmcs12: pageToSpec(layout, d.shadowVmcs12) } : {}),
    notes: [...d.notes],
  };
}

/** The header fields a spec names, as numbers (size only when given: it defaults to the blob's length). */
export function headerFromSpec(h: NestedSpec['header']): Partial<NestedHeader> {
  const out: Partial<NestedHeader> = {};
  if (h.flags !== undefined) out.flags = Array.isArray(h.flags) ? h.flags.reduce((a, n) => a | FLAGS[n], 0) : Number(h.flags);
  for (const k of ['format', 'size', 'smmFlags', 'pad', 'vmxFlags'] as const) if (h[k] !== undefined) out[k] = Number(h[k]);
  for (const k of ['vmxonPa', 'vmcs12Pa', 'preemptionTimerDeadline'] as const) if (h[k] !== undefined) out[k] = big(h[k]!);
  return out;
}

/** Throws RangeError for a member the layout does not have (the CLI turns it into one line). */
export function specToBlob(layout: Layout, s: NestedSpec): Uint8Array {
  const { size, ...header } = headerFromSpec(s.header);
  const vmcs12 = s.vmcs12 ? specToPage(layout, s.vmcs12) : s.shadowVmcs12 ? new Uint8Array(VMCS12_BLOB_SIZE) : null;
  const shadow = s.shadowVmcs12 ? specToPage(layout, s.shadowVmcs12) : null;
  const blob = encodeBlob(header, vmcs12, shadow);
  if (size !== undefined) new DataView(blob.buffer).setUint32(OFFSET.size, size, true);
  return blob;
}
