// The `packed-access` feature of nvmx-target/1: a vmcs12-access op list and its results as base64
// of fixed little-endian records instead of one JSON object per op. A write-read case carries about
// 360 ops; as objects they cost the runner and the target a parse, a schema check and a BigInt per
// hex string each way, as records one base64 decode and a DataView walk. Layout in PROTOCOL.md.
import type { AccessOutcome } from '../../model/vmcs12-access.js';
import type { Vmcs12Op } from '../target.js';

const KIND_READ = 0;
const KIND_WRITE = 1;
const READ_BYTES = 9; // kind, encoding
const WRITE_BYTES = 17; // kind, encoding, value
const RESULT_OK = 0;
const RESULT_VMFAIL_VALID = 1;
/** every result record: tag, then a u64 value or a u32 error and a u32 index into `reasons` */
export const RESULT_BYTES = 9;

/** A packed field that does not decode: the message names the field, the record and its byte. */
export class PackedError extends Error {}

function fromBase64(field: string, s: string): DataView {
  // the schema admits only the base64 alphabet; Buffer would silently drop a cut-off tail
  if (s.length % 4 !== 0) throw new PackedError(`${field}: base64 of ${s.length} characters is not a whole number of 4-character groups`);
  const b = Buffer.from(s, 'base64');
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const toBase64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

export function packOps(ops: readonly Vmcs12Op[]): string {
  let size = 0;
  for (const o of ops) size += o.op === 'read' ? READ_BYTES : WRITE_BYTES;
  const v = new DataView(new ArrayBuffer(size));
  let at = 0;
  for (const o of ops) {
    v.setUint8(at, o.op === 'read' ? KIND_READ : KIND_WRITE);
    v.setBigUint64(at + 1, o.encoding, true);
    if (o.op === 'write') v.setBigUint64(at + 9, o.value, true);
    at += o.op === 'read' ? READ_BYTES : WRITE_BYTES;
  }
  return toBase64(new Uint8Array(v.buffer));
}

export function unpackOps(s: string): Vmcs12Op[] {
  const v = fromBase64('packedOps', s);
  const ops: Vmcs12Op[] = [];
  for (let at = 0; at < v.byteLength; ) {
    const kind = v.getUint8(at);
    const size = kind === KIND_READ ? READ_BYTES : kind === KIND_WRITE ? WRITE_BYTES : 0;
    if (!size) throw new PackedError(`packedOps: op ${ops.length} (byte ${at}) has kind ${kind}; kinds are 0 (read) and 1 (write)`);
    if (at + size > v.byteLength) throw new PackedError(`packedOps: op ${ops.length} (byte ${at}) needs ${size} bytes, ${v.byteLength - at} are left`);
    const encoding = v.getBigUint64(at + 1, true);
    ops.push(kind === KIND_READ ? { op: 'read', encoding } : { op: 'write', encoding, value: v.getBigUint64(at + 9, true) });
    at += size;
  }
  return ops;
}

/** Results as records, the VMfail reasons once each in `reasons`. */
export function packResults(results: readonly AccessOutcome[]): { packedResults: string; reasons: string[] } {
  const v = new DataView(new ArrayBuffer(results.length * RESULT_BYTES));
  const reasons = new Map<string, number>();
  results.forEach((r, i) => {
    const at = i * RESULT_BYTES;
    if (r.ok) {
      v.setUint8(at, RESULT_OK);
      v.setBigUint64(at + 1, r.value, true);
    } else {
      if (!reasons.has(r.reason)) reasons.set(r.reason, reasons.size);
      v.setUint8(at, RESULT_VMFAIL_VALID);
      v.setUint32(at + 1, r.error, true);
      v.setUint32(at + 5, reasons.get(r.reason)!, true);
    }
  });
  return { packedResults: toBase64(new Uint8Array(v.buffer)), reasons: [...reasons.keys()] };
}

export function unpackResults(s: string, reasons: readonly string[]): AccessOutcome[] {
  const v = fromBase64('packedResults', s);
  if (v.byteLength % RESULT_BYTES !== 0) throw new PackedError(`packedResults: ${v.byteLength} bytes are not a whole number of ${RESULT_BYTES}-byte records`);
  const out: AccessOutcome[] = new Array(v.byteLength / RESULT_BYTES);
  for (let i = 0, at = 0; at < v.byteLength; i++, at += RESULT_BYTES) {
    const tag = v.getUint8(at);
    if (tag === RESULT_OK) out[i] = { ok: true, value: v.getBigUint64(at + 1, true) };
    else if (tag === RESULT_VMFAIL_VALID) {
      const r = v.getUint32(at + 5, true);
      if (r >= reasons.length) throw new PackedError(`packedResults: result ${i} names reason ${r}; there are ${reasons.length}`);
      out[i] = { ok: false, vmfail: 'valid', error: v.getUint32(at + 1, true), reason: reasons[r]! };
    } else throw new PackedError(`packedResults: result ${i} (byte ${at}) has tag ${tag}; tags are 0 (ok) and 1 (VMfailValid)`);
  }
  return out;
}
