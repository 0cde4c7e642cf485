// An implementation that knows several layout revisions (the seed's advice: keep an (offset, type)
// map from old to new layout, copy field by field when an old revision is detected, and write the
// new revision on the next save). Reading upgrades; writing an old revision is opt-in.
import { hdrRevision, VMCS12 } from './catalog/by-name.js';
import { codecFor, decode, emptyRecord, encode, type StructRecord } from './codec.js';
import { hex } from './encoding.js';
import type { Layout } from './layout.js';
import { pairMembers } from './layout-diff.js';

export interface RevisionSet {
  /** the layout this implementation writes */
  readonly current: Layout;
  /** older layouts it can still read, by revision id; a later entry with the same id wins */
  readonly known: readonly Layout[];
}

export type ReadOutcome =
  | { ok: true; revision: number; translatedFrom: string | null; record: StructRecord }
  | { ok: false; reason: string };

/** revision_id is the low 31 bits of the header every layout starts with; bit 31 is the shadow-VMCS indicator. */
export const revisionOf = (page: Uint8Array): number => hdrRevision(VMCS12.read(page, 'hdr'));

function layoutFor(set: RevisionSet, revision: number): Layout | undefined {
  if (set.current.revision === revision) return set.current;
  let found: Layout | undefined;
  for (const l of set.known) if (l.revision === revision) found = l;
  return found;
}

/** Reads a page of any known revision into a record of the current layout. */
export function readPage(set: RevisionSet, page: Uint8Array): ReadOutcome {
  if (page.length !== set.current.size) return { ok: false, reason: `page is ${page.length} bytes, expected ${set.current.size}` };
  const revision = revisionOf(page);
  const layout = layoutFor(set, revision);
  if (!layout) {
    const known = [set.current, ...set.known].map((l) => `${hex(l.revision ?? 0, 8)} (${l.name})`).join(', ');
    return { ok: false, reason: `unknown revision ${hex(revision, 8)}; known: ${known}` };
  }
  if (layout === set.current) return { ok: true, revision, translatedFrom: null, record: decode(codecFor(layout), page) };
  return { ok: true, revision, translatedFrom: layout.name, record: translate(layout, set.current, decode(codecFor(layout), page)) };
}

/** Writes the current revision, or (opt-in) a known older one, translating field by field. */
export function writePage(set: RevisionSet, record: StructRecord, opts: { revision?: number } = {}): { ok: true; page: Uint8Array } | { ok: false; reason: string } {
  if (opts.revision === undefined || opts.revision === set.current.revision) return { ok: true, page: encode(codecFor(set.current), record) };
  const target = layoutFor(set, opts.revision);
  if (!target) return { ok: false, reason: `cannot write unknown revision ${hex(opts.revision, 8)}` };
  return { ok: true, page: encode(codecFor(target), translate(set.current, target, record)) };
}

/**
 * Copies every member the two layouts share (by the diff's pairing), element by element, truncated to
 * the destination's width; members only the destination has are zero. The header gets `to`'s revision.
 */
export function translate(from: Layout, to: Layout, rec: StructRecord): StructRecord {
  const src = codecFor(from);
  const dst = codecFor(to);
  const out = emptyRecord(dst);
  const toNew = pairMembers(from, to).toNew;
  const fromName = new Map<string, string>();
  for (const [o, n] of toNew) fromName.set(n.name, o);
  dst.slots.forEach((s, i) => {
    const o = fromName.get(s.member);
    if (o === undefined) return;
    const suffix = s.name.slice(s.member.length);
    const j = src.slotIndex.get(o + suffix) ?? (suffix === '' ? src.slotIndex.get(`${o}[0]`) : undefined);
    if (j === undefined) return;
    out.lo[i] = s.bytes === 2 ? rec.lo[j]! & 0xffff : rec.lo[j]!;
    out.hi[i] = s.bytes === 8 ? rec.hi[j]! : 0;
  });
  const head = dst.slots.findIndex((s) => s.offset === 0 && s.bytes === 4);
  if (head >= 0 && to.revision !== null) out.lo[head] = ((out.lo[head]! & 0x80000000) | to.revision) >>> 0;
  return out;
}
