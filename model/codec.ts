// Byte codec for any layout: page <-> record. A record holds every non-padding member as 32-bit
// halves (cheap to generate, copy and compare) plus the page's unknown bytes, so that
// encode(decode(p)) === p byte for byte and decode(encode(r)) equals r.
import { TYPE_SIZE } from './catalog/types.js';
import { hex } from './encoding.js';
import type { Layout } from './layout.js';

export interface Slot {
  /** member name, or name[i] for an element of a non-padding array */
  readonly name: string;
  readonly member: string;
  readonly offset: number;
  readonly bytes: 2 | 4 | 8;
}

export interface Codec {
  readonly layout: Layout;
  readonly slots: readonly Slot[];
  readonly slotIndex: ReadonlyMap<string, number>;
}

export interface StructRecord {
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  /** the page with every slot zeroed: bytes the layout gives no meaning, preserved as they were */
  readonly rest: Uint8Array;
}

const codecs = new WeakMap<Layout, Codec>();

export function codecFor(layout: Layout): Codec {
  let c = codecs.get(layout);
  if (!c) {
    const slots: Slot[] = [];
    for (const m of layout.members) {
      if (m.padding) continue;
      const bytes = TYPE_SIZE[m.type] as 2 | 4 | 8;
      for (let i = 0; i < m.count; i++)
        slots.push({ name: m.count === 1 ? m.name : `${m.name}[${i}]`, member: m.name, offset: m.offset + i * bytes, bytes });
    }
    c = { layout, slots, slotIndex: new Map(slots.map((s, i) => [s.name, i])) };
    codecs.set(layout, c);
  }
  return c;
}

export function emptyRecord(codec: Codec): StructRecord {
  const n = codec.slots.length;
  return { lo: new Uint32Array(n), hi: new Uint32Array(n), rest: new Uint8Array(codec.layout.size) };
}

export function decode(codec: Codec, page: Uint8Array): StructRecord {
  if (page.length !== codec.layout.size)
    throw new RangeError(`${codec.layout.structure} page must be ${codec.layout.size} bytes, got ${page.length}`);
  const rec = emptyRecord(codec);
  rec.rest.set(page);
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const slots = codec.slots;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (s.bytes === 2) rec.lo[i] = view.getUint16(s.offset, true);
    else {
      rec.lo[i] = view.getUint32(s.offset, true);
      if (s.bytes === 8) rec.hi[i] = view.getUint32(s.offset + 4, true);
    }
    rec.rest.fill(0, s.offset, s.offset + s.bytes);
  }
  return rec;
}

export function encode(codec: Codec, rec: StructRecord): Uint8Array {
  const page = rec.rest.slice();
  const view = new DataView(page.buffer);
  const slots = codec.slots;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (s.bytes === 2) view.setUint16(s.offset, rec.lo[i]!, true);
    else {
      view.setUint32(s.offset, rec.lo[i]!, true);
      if (s.bytes === 8) view.setUint32(s.offset + 4, rec.hi[i]!, true);
    }
  }
  return page;
}

/** The value a slot can hold: lo is masked to 16 bits for u16 slots, hi is 0 unless 8 bytes. */
export function normalise(codec: Codec, rec: StructRecord): StructRecord {
  const out = { lo: rec.lo.slice(), hi: rec.hi.slice(), rest: rec.rest.slice() };
  codec.slots.forEach((s, i) => {
    if (s.bytes === 2) out.lo[i] = out.lo[i]! & 0xffff;
    if (s.bytes !== 8) out.hi[i] = 0;
    out.rest.fill(0, s.offset, s.offset + s.bytes);
  });
  return out;
}

export const slotValue = (rec: StructRecord, i: number): bigint => (BigInt(rec.hi[i]!) << 32n) | BigInt(rec.lo[i]!);

export function setSlot(rec: StructRecord, i: number, v: bigint): void {
  rec.lo[i] = Number(v & 0xffffffffn);
  rec.hi[i] = Number((v >> 32n) & 0xffffffffn);
}

export function recordsEqual(a: StructRecord, b: StructRecord): boolean {
  const n = a.lo.length;
  if (n !== b.lo.length || a.rest.length !== b.rest.length) return false;
  for (let i = 0; i < n; i++) if (a.lo[i] !== b.lo[i] || a.hi[i] !== b.hi[i]) return false;
  const r1 = a.rest;
  const r2 = b.rest;
  for (let i = 0; i < r1.length; i++) if (r1[i] !== r2[i]) return false;
  return true;
}

/** One line of a counterexample: a named field (or an unknown byte range) that differs. */
export interface FieldDiff {
  readonly field: string;
  readonly offset: number;
  readonly expected: string;
  readonly actual: string;
}

export function diffRecords(codec: Codec, expected: StructRecord, actual: StructRecord): FieldDiff[] {
  const out: FieldDiff[] = [];
  codec.slots.forEach((s, i) => {
    if (expected.lo[i] !== actual.lo[i] || expected.hi[i] !== actual.hi[i])
      out.push({ field: s.name, offset: s.offset, expected: hex(slotValue(expected, i), s.bytes * 2), actual: hex(slotValue(actual, i), s.bytes * 2) });
  });
  out.push(...diffBytes(expected.rest, actual.rest, 'unknown bytes'));
  return out;
}

/** Differing byte runs of two buffers, as hex. */
/**
 * Byte runs (at most 16 bytes each) where two buffers differ, labelled `${label} <first>..<last>`;
 * `from`/`to` bound the range, positions in labels count from `base`, `max` caps the runs.
 */
export function diffBytes(expected: Uint8Array, actual: Uint8Array, label: string, opts: { from?: number; to?: number; base?: number; max?: number } = {}): FieldDiff[] {
  const out: FieldDiff[] = [];
  const n = Math.min(opts.to ?? Infinity, Math.max(expected.length, actual.length));
  const base = opts.base ?? 0;
  for (let i = opts.from ?? 0; i < n && out.length < (opts.max ?? Infinity); i++) {
    if (expected[i] === actual[i]) continue;
    let j = i;
    while (j < n && expected[j] !== actual[j] && j - i < 16) j++;
    out.push({ field: `${label} ${hex(i - base)}..${hex(j - 1 - base)}`, offset: i, expected: bytesHex(expected.subarray(i, j)), actual: bytesHex(actual.subarray(i, j)) });
    i = j - 1;
  }
  return out;
}

export const bytesHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Named values of a record, for display and JSON. */
export function recordValues(codec: Codec, rec: StructRecord): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  codec.slots.forEach((s, i) => (out[s.name] = slotValue(rec, i)));
  return out;
}

export function recordFrom(codec: Codec, values: Readonly<Record<string, bigint | number>>): StructRecord {
  const rec = emptyRecord(codec);
  for (const [k, v] of Object.entries(values)) {
    const i = codec.slotIndex.get(k);
    if (i === undefined) throw new RangeError(`${codec.layout.structure}: no member ${k}`);
    setSlot(rec, i, BigInt(v));
  }
  return normalise(codec, rec);
}
