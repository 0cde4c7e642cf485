// What a golden blob decodes to, as JSON (nvmx-nested/1 for nested state, { fields, unknownBytes }
// for a page), and the same flattened to "name -> value" so that any two decodings compare as a
// field diff. Absent fields and bytes are zero, so a missing key reads "0".
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FieldDiff } from '../model/codec.js';
import type { Layout } from '../model/layout.js';
import { decodeBlob } from '../model/nested/blob.js';
import { blobToSpec, pageToSpec, type NestedSpec, type PageSpec } from '../model/nested/spec.js';
import { validate, validateAt } from '../base/schemas.js';
import type { GoldenEntry, GoldenKind } from './manifest.js';

export type Flat = Record<string, string>;

export type Content = { ok: true; content: NestedSpec | PageSpec } | { ok: false; reason: string };

/** Decodes a blob of `kind` with the producer's layout (the fields the producer knew, by its names). */
export function decodeContent(kind: GoldenKind, layout: Layout, bytes: Uint8Array): Content {
  if (kind !== 'nested-state') {
    if (bytes.length < layout.size) return { ok: false, reason: `${kind} page is ${bytes.length} bytes, the layout needs ${layout.size}` };
    return { ok: true, content: pageToSpec(layout, bytes, bytes.length) };
  }
  const d = decodeBlob(bytes);
  if (!d.ok) return { ok: false, reason: d.error };
  const { notes: _notes, ...spec } = blobToSpec(layout, d.blob); // notes are derived from the fields
  return { ok: true, content: spec };
}

function flattenPage(out: Flat, prefix: string, p: PageSpec | undefined): void {
  for (const [k, v] of Object.entries(p?.fields ?? {})) out[`${prefix}${k}`] = String(v);
  for (const u of p?.unknownBytes ?? []) for (let i = 0; i < u.hex.length / 2; i++) out[`${prefix}byte@0x${(u.offset + i).toString(16)}`] = u.hex.slice(2 * i, 2 * i + 2);
}

export function flatten(kind: GoldenKind, content: NestedSpec | PageSpec): Flat {
  const out: Flat = {};
  if (kind !== 'nested-state') {
    flattenPage(out, '', content as PageSpec);
    return out;
  }
  const s = content as NestedSpec;
  if (s.length !== undefined) out.length = String(s.length);
  for (const [k, v] of Object.entries(s.header)) out[`header.${k}`] = Array.isArray(v) ? v.join('|') || '0' : String(v);
  flattenPage(out, 'vmcs12.', s.vmcs12);
  flattenPage(out, 'shadowVmcs12.', s.shadowVmcs12);
  return out;
}

const norm = (v: string | undefined): string => (v === undefined || /^(0x)?0+$/.test(v) || v === '' ? '0' : v);

/** Every name whose value differs (a missing name reads 0). */
export function diffFlat(expected: Flat, actual: Flat): FieldDiff[] {
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])];
  return keys.filter((k) => norm(expected[k]) !== norm(actual[k])).map((k) => ({ field: k, offset: -1, expected: norm(expected[k]), actual: norm(actual[k]) }));
}

/** The entry's expected content: inline, or a JSON file under golden/; schema-checked. */
export function expectedContent(dir: string, e: GoldenEntry): Content {
  let json: unknown = e.expected.content;
  if (typeof json === 'string') {
    const path = join(dir, json);
    if (!existsSync(path)) return { ok: false, reason: `expected content ${json}: no such file` };
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      return { ok: false, reason: `expected content ${e.expected.content}: not JSON: ${(err as Error).message}` };
    }
  }
  const problems = e.kind === 'nested-state' ? validate('nested-spec', json) : validateAt('nested-spec', '/$defs/page', json);
  if (problems.length) return { ok: false, reason: `expected content: ${problems[0]}` };
  return { ok: true, content: json as NestedSpec | PageSpec };
}
