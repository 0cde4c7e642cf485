// `layout diff OLD NEW`: how each member changed, and whether each side can read what the other
// wrote. Members are matched by name, then (unmatched, same kind) by identical offset and size.
import type { MemberSpec } from './catalog/types.js';
import { hex } from './encoding.js';
import { membersEnd, type Layout } from './layout.js';

export type MemberClass =
  | 'unchanged'
  | 'renamed'
  | 'retyped-same-size'
  | 'appended'
  | 'used-padding'
  | 'inserted'
  | 'shifted'
  | 'resized'
  | 'removed';

export interface MemberRef {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly type: string;
}

export interface MemberChange {
  readonly class: MemberClass;
  readonly padding: boolean;
  readonly old?: MemberRef;
  readonly new?: MemberRef;
}

export type DirectionVerdict = 'compatible' | 'lossy' | 'incompatible';

/** What a reader makes of a page the writer wrote. */
export interface Direction {
  readonly reader: string;
  readonly writer: string;
  readonly verdict: DirectionVerdict;
  /** reader members that get the wrong bytes */
  readonly corrupted: readonly { member: string; reason: string }[];
  /** writer fields the reader drops (lost on this migration) */
  readonly lost: readonly string[];
  /** reader fields the writer does not know: they read as zero */
  readonly readAsZero: readonly string[];
}

export type Finding = 'compatible' | 'silent-break' | 'needs-translation';

export interface LayoutDiff {
  readonly structure: string;
  readonly old: { name: string; revision: string | null };
  readonly new: { name: string; revision: string | null };
  readonly members: readonly MemberChange[];
  readonly fields: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly remapped: readonly { encoding: string; from: string; to: string }[];
  };
  /** can NEW read what OLD wrote */
  readonly newReadsOld: Direction;
  /** can OLD read what NEW wrote */
  readonly oldReadsNew: Direction;
  readonly revisionChanged: boolean;
  readonly compatible: boolean;
  readonly finding: Finding;
}

const ref = (m: MemberSpec): MemberRef => ({ name: m.name, offset: m.offset, size: m.size, type: m.count > 1 ? `${m.type}[${m.count}]` : m.type });
const sameShape = (a: MemberSpec, b: MemberSpec): boolean => a.type === b.type && a.count === b.count && (a.ctype ?? '') === (b.ctype ?? '');
const overlaps = (a: MemberSpec, b: MemberSpec): boolean => a.offset < b.offset + b.size && b.offset < a.offset + a.size;

/** The member pairing: OLD member name -> NEW member, and back. */
export interface Pairing {
  readonly toNew: ReadonlyMap<string, MemberSpec>;
  readonly toOld: ReadonlyMap<string, MemberSpec>;
}

export function pairMembers(oldL: Layout, newL: Layout): Pairing {
  const toNew = new Map<string, MemberSpec>();
  const toOld = new Map<string, MemberSpec>();
  const newByName = new Map(newL.members.map((m) => [m.name, m]));
  for (const o of oldL.members) {
    const n = newByName.get(o.name);
    if (n && n.padding === o.padding) {
      toNew.set(o.name, n);
      toOld.set(n.name, o);
    }
  }
  for (const o of oldL.members) {
    if (toNew.has(o.name)) continue;
    const n = newL.members.find((c) => !toOld.has(c.name) && c.padding === o.padding && c.offset === o.offset && c.size === o.size);
    if (n) {
      toNew.set(o.name, n);
      toOld.set(n.name, o);
    }
  }
  return { toNew, toOld };
}

export function diffLayouts(oldL: Layout, newL: Layout): LayoutDiff {
  return diffWithPairing(oldL, newL, pairMembers(oldL, newL));
}

/** The classification and verdicts for a given member pairing (the diff infers one; generators know one). */
export function diffWithPairing(oldL: Layout, newL: Layout, pairing: Pairing): LayoutDiff {
  const members: MemberChange[] = [];
  const oldEnd = membersEnd(oldL);
  for (const o of oldL.members) {
    const n = pairing.toNew.get(o.name);
    if (!n) {
      members.push({ class: 'removed', padding: o.padding, old: ref(o) });
      continue;
    }
    let cls: MemberClass;
    if (n.size !== o.size) cls = 'resized';
    else if (n.offset !== o.offset) cls = 'shifted';
    else if (!sameShape(o, n)) cls = 'retyped-same-size';
    else cls = n.name === o.name ? 'unchanged' : 'renamed';
    members.push({ class: cls, padding: o.padding, old: ref(o), new: ref(n) });
  }
  const oldLive = oldL.members.filter((m) => !m.padding);
  for (const n of newL.members) {
    if (pairing.toOld.has(n.name)) continue;
    let cls: MemberClass;
    if (n.offset >= oldEnd) cls = 'appended';
    else if (oldLive.some((o) => overlaps(o, n))) cls = 'inserted';
    else cls = 'used-padding';
    members.push({ class: cls, padding: n.padding, new: ref(n) });
  }
  const fields = diffFields(oldL, newL, pairing);
  const remapped = fields.remapped.map((r) => ({ member: r.to, reason: `encoding ${r.encoding} now selects "${r.to}" instead of "${r.from}"` }));
  const newReadsOld = readerView(oldL, newL, pairing.toOld, remapped);
  const oldReadsNew = readerView(newL, oldL, pairing.toNew, remapped);
  const compatible = newReadsOld.verdict !== 'incompatible' && oldReadsNew.verdict !== 'incompatible';
  const revisionChanged = oldL.revision !== newL.revision;
  const rev = (l: Layout) => (l.revision === null ? null : hex(l.revision, 8));
  return {
    structure: newL.structure,
    old: { name: oldL.name, revision: rev(oldL) },
    new: { name: newL.name, revision: rev(newL) },
    members,
    fields,
    newReadsOld,
    oldReadsNew,
    revisionChanged,
    compatible,
    finding: compatible ? 'compatible' : revisionChanged ? 'needs-translation' : 'silent-break',
  };
}

/** `toWriter` maps a reader member name to the writer member it stands for. */
function readerView(
  writer: Layout,
  reader: Layout,
  toWriter: ReadonlyMap<string, MemberSpec>,
  remapped: readonly { member: string; reason: string }[],
): Direction {
  const corrupted: { member: string; reason: string }[] = [];
  const readAsZero: string[] = [];
  const writerLive = writer.members.filter((m) => !m.padding);
  const readerNames = new Set<string>();
  for (const r of reader.members) {
    if (r.padding) continue;
    const w = toWriter.get(r.name);
    if (w) {
      readerNames.add(w.name);
      if (w.offset !== r.offset || w.size !== r.size)
        corrupted.push({ member: r.name, reason: `${writer.name} wrote it at ${w.offset} (${w.size} bytes), ${reader.name} reads ${r.offset} (${r.size} bytes)` });
      continue;
    }
    const clash = writerLive.find((x) => overlaps(x, r));
    if (clash) corrupted.push({ member: r.name, reason: `reads bytes ${r.offset}..${r.offset + r.size - 1} that ${writer.name} uses for "${clash.name}"` });
    else readAsZero.push(r.name);
  }
  const lost = writerLive.filter((w) => !readerNames.has(w.name)).map((w) => w.name);
  corrupted.push(...remapped);
  const verdict: DirectionVerdict = corrupted.length ? 'incompatible' : lost.length ? 'lossy' : 'compatible';
  return { reader: reader.name, writer: writer.name, verdict, corrupted, lost, readAsZero };
}

function diffFields(oldL: Layout, newL: Layout, pairing: Pairing): LayoutDiff['fields'] {
  const oldBy = new Map(oldL.fields.map((f) => [f.encoding, f]));
  const newBy = new Map(newL.fields.map((f) => [f.encoding, f]));
  const label = (e: number, name?: string) => (name ? `${hex(e, 4)} ${name}` : hex(e, 4));
  const added = newL.fields.filter((f) => !oldBy.has(f.encoding)).map((f) => label(f.encoding, f.name));
  const removed = oldL.fields.filter((f) => !newBy.has(f.encoding)).map((f) => label(f.encoding, f.name));
  const remapped: { encoding: string; from: string; to: string }[] = [];
  for (const o of oldL.fields) {
    const n = newBy.get(o.encoding);
    if (n && pairing.toNew.get(o.member)?.name !== n.member) remapped.push({ encoding: hex(o.encoding, 4), from: o.member, to: n.member });
  }
  return { added, removed, remapped };
}
