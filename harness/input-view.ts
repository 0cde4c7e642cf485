// A shrunk counterexample as a person reads it: named fields and hex, not fast-check's JavaScript
// literal. A vmcs12 (or eVMCS) record shows its non-zero fields by name with their offsets, and the
// non-zero bytes the layout gives no meaning as hex; a byte array shows its non-zero lines as hex;
// guest and VMREAD/VMWRITE operations show one row each, VMCS encodings by name; objects are
// flattened to dotted paths. fast-check's own rendering stays in the report beside it.
import { slotValue, type StructRecord } from '../model/codec.js';
import { VMCS12_FIELDS } from '../model/catalog/vmcs12.js';
import { codecOfRecord } from '../generators/struct-record.js';

export interface InputField {
  readonly field: string;
  readonly value: string;
  readonly offset?: number;
}

/** A run of bytes in memory order ("00 1f …") at an offset. */
export interface HexRun {
  readonly offset: number;
  readonly bytes: string;
}

export interface InputPart {
  /** which input: "input 1", "input 2.start.ops" */
  readonly label: string;
  readonly fields?: readonly InputField[];
  readonly hex?: readonly HexRun[];
  /** what was left out: zero fields, rows past the cap */
  readonly note?: string;
}

const MAX_FIELDS = 64;
const MAX_HEX_LINES = 32;
const MAX_PARTS = 24;
const MAX_DEPTH = 6;

const ENCODING_NAMES = new Map<bigint, string>(VMCS12_FIELDS.flatMap((f) => [[BigInt(f.encoding), f.name] as [bigint, string], ...(f.has64High ? [[BigInt(f.encoding | 1), `${f.name}_HIGH`] as [bigint, string]] : [])]));

const hex = (v: bigint | number, digits = 0) => `0x${v.toString(16).padStart(digits, '0')}`;

function scalar(v: unknown): string {
  if (typeof v === 'bigint') return hex(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) >= 0x10000 ? `${v} (${hex(v >>> 0)})` : String(v);
  return String(v);
}

const isScalar = (v: unknown) => v === null || v === undefined || ['bigint', 'number', 'string', 'boolean'].includes(typeof v);
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
const isRecord = (v: unknown): v is StructRecord => isPlain(v) && v.lo instanceof Uint32Array && v.hi instanceof Uint32Array && v.rest instanceof Uint8Array;
const isOp = (v: unknown): v is Record<string, unknown> & { op: string } => isPlain(v) && typeof v.op === 'string' && Object.values(v).every(isScalar);
const isZero = (v: unknown) => v === 0 || v === 0n;

/** "field=GUEST_RIP (0x681e) value=0x1" for the operands of one operation. */
export function operands(o: Record<string, unknown>): string {
  return Object.entries(o)
    .filter(([k]) => k !== 'op')
    .map(([k, v]) => {
      const name = (k === 'field' || k === 'encoding') && typeof v === 'bigint' ? ENCODING_NAMES.get(v) : undefined;
      return `${k}=${name ? `${name} (${hex(v as bigint)})` : scalar(v)}`;
    })
    .join(' ');
}

/** The non-zero 16-byte lines of a byte array, merged into runs, capped. */
export function hexRuns(bytes: Uint8Array, base = 0): { runs: HexRun[]; note?: string } {
  const lines: number[] = [];
  for (let i = 0; i < bytes.length; i += 16) if (bytes.subarray(i, i + 16).some((b) => b !== 0)) lines.push(i);
  const shown = lines.slice(0, MAX_HEX_LINES);
  const runs: HexRun[] = [];
  for (const off of shown) {
    const text = [...bytes.subarray(off, off + 16)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const last = runs.at(-1);
    if (last && last.offset + (last.bytes.length + 1) / 3 === base + off) runs[runs.length - 1] = { offset: last.offset, bytes: `${last.bytes} ${text}` };
    else runs.push({ offset: base + off, bytes: text });
  }
  const zero = bytes.length - lines.length * 16;
  const notes = [lines.length > shown.length ? `${lines.length - shown.length} more non-zero lines` : '', lines.length && zero > 0 ? 'every other byte is zero' : '', !lines.length ? `all ${bytes.length} bytes are zero` : ''].filter(Boolean);
  return { runs, ...(notes.length ? { note: notes.join('; ') } : {}) };
}

function recordParts(label: string, r: StructRecord): InputPart[] {
  const codec = codecOfRecord(r);
  const fields: InputField[] = [];
  let nonZero = 0;
  for (let i = 0; i < r.lo.length; i++) {
    if (!r.lo[i] && !r.hi[i]) continue;
    nonZero++;
    if (fields.length >= MAX_FIELDS) continue;
    const slot = codec?.slots[i];
    fields.push({ field: slot?.name ?? `slot ${i}`, value: slot ? hex(slotValue(r, i), slot.bytes * 2) : hex((BigInt(r.hi[i]!) << 32n) | BigInt(r.lo[i]!)), ...(slot ? { offset: slot.offset } : {}) });
  }
  const unknown = hexRuns(r.rest);
  const name = codec ? `${codec.layout.name} ${codec.layout.structure}` : 'record';
  const zero = r.lo.length - nonZero;
  const notes = [nonZero > fields.length ? `${nonZero - fields.length} more non-zero fields` : '', `${zero} of ${r.lo.length} fields are zero`, unknown.runs.length ? 'bytes no field covers, non-zero:' : ''].filter(Boolean);
  return [{ label: `${label} (${name})`, fields, ...(unknown.runs.length ? { hex: unknown.runs } : {}), note: notes.join('; ') }];
}

function describe(label: string, v: unknown, out: InputPart[], depth = 0): void {
  if (out.length >= MAX_PARTS) return;
  if (depth > MAX_DEPTH) {
    out.push({ label, note: 'nested too deeply to show: see fast-check\'s value' });
    return;
  }
  if (isRecord(v)) {
    out.push(...recordParts(label, v));
    return;
  }
  if (v instanceof Uint8Array) {
    const h = hexRuns(v);
    out.push({ label: `${label} (${v.length} bytes)`, ...(h.runs.length ? { hex: h.runs } : {}), ...(h.note ? { note: h.note } : {}) });
    return;
  }
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) v = [...(v as unknown as Iterable<number | bigint>)];
  if (Array.isArray(v)) {
    if (v.length && v.every(isOp)) {
      out.push({ label, fields: v.slice(0, MAX_FIELDS).map((o, i) => ({ field: `#${i + 1} ${o.op}`, value: operands(o) })), ...(v.length > MAX_FIELDS ? { note: `${v.length - MAX_FIELDS} more operations` } : {}) });
      return;
    }
    if (v.every(isScalar)) {
      const all = v.map((x, i) => ({ field: `[${i}]`, value: scalar(x), zero: isZero(x) }));
      const shown = (v.length > 16 ? all.filter((f) => !f.zero) : all).slice(0, MAX_FIELDS);
      const zeros = all.filter((f) => f.zero).length;
      const notes = [v.length > 16 && zeros ? `${zeros} of ${v.length} elements are zero` : '', all.length - (v.length > 16 ? zeros : 0) > shown.length ? 'more elements left out' : '', !v.length ? 'empty' : ''].filter(Boolean);
      out.push({ label, fields: shown.map(({ field, value }) => ({ field, value })), ...(notes.length ? { note: notes.join('; ') } : {}) });
      return;
    }
    // a tuple of scalars and objects reads as one list of fields
    if (v.every((x) => isScalar(x) || (isPlain(x) && !isRecord(x) && !isOp(x)))) {
      flattened(label, v.map((x, i) => [`[${i}]`, x] as const), out, depth);
      return;
    }
    v.forEach((x, i) => describe(`${label}[${i}]`, x, out, depth + 1));
    return;
  }
  if (isPlain(v)) {
    flattened(label, Object.entries(v).map(([k, x]) => [k, x] as const), out, depth);
    return;
  }
  // fc.commands: an iterable of commands, each of which prints itself
  if (typeof v === 'object' && v !== null && Symbol.iterator in v) {
    const cmds = [...(v as Iterable<unknown>)].map(String);
    out.push({ label: `${label} (commands)`, fields: cmds.slice(0, MAX_FIELDS).map((c, i) => ({ field: `#${i + 1}`, value: c })), ...(cmds.length > MAX_FIELDS ? { note: `${cmds.length - MAX_FIELDS} more commands` } : {}) });
    return;
  }
  out.push({ label, fields: [{ field: 'value', value: isScalar(v) ? scalar(v) : String(v) }] });
}

/** Members as dotted paths (scalars, nested plain objects); anything else gets a part of its own. */
function flattened(label: string, entries: readonly (readonly [string, unknown])[], out: InputPart[], depth: number): void {
  const fields: InputField[] = [];
  const nested: [string, unknown][] = [];
  const walk = (prefix: string, es: readonly (readonly [string, unknown])[], level = 0) => {
    if (level > MAX_DEPTH) return;
    for (const [k, x] of es) {
      const name = prefix && !k.startsWith('[') ? `${prefix}.${k}` : `${prefix}${k}`;
      if (isScalar(x)) fields.push({ field: name, value: scalar(x) });
      else if (isPlain(x) && !isRecord(x)) walk(name, Object.entries(x), level + 1);
      else nested.push([name, x]);
    }
  };
  walk('', entries);
  if (fields.length) out.push({ label, fields: fields.slice(0, MAX_FIELDS), ...(fields.length > MAX_FIELDS ? { note: `${fields.length - MAX_FIELDS} more fields` } : {}) });
  for (const [k, x] of nested) describe(k.startsWith('[') ? `${label}${k}` : `${label}.${k}`, x, out, depth + 1);
}

/** The view of fast-check's counterexample (the tuple of a property's inputs). Never throws. */
export function describeInput(counterexample: unknown): InputPart[] {
  try {
    const args = Array.isArray(counterexample) ? counterexample : [counterexample];
    const out: InputPart[] = [];
    args.forEach((a, i) => describe(`input ${i + 1}`, a, out));
    return out.slice(0, MAX_PARTS);
  } catch {
    return [];
  }
}
