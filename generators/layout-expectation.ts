// What `layout diff` must answer for a generated evolution, worked out from its construction: every
// member carries an identity through the changes, so which OLD member became which NEW one is known,
// and each side's bytes are mapped to the member that owns them. Nothing here calls the classifier
// it judges (model/layout-diff.ts): classes and verdicts follow DESIGN §3, computed byte by byte.
import type { MemberSpec } from '../model/catalog/types.js';
import type { DirectionVerdict, Finding, MemberClass, Pairing } from '../model/layout-diff.js';
import type { Layout } from '../model/layout.js';

export interface ExpectedDirection {
  readonly verdict: DirectionVerdict;
  /** reader members that get wrong bytes or a wrong member by encoding, sorted */
  readonly corrupted: readonly string[];
  /** writer members the reader has no place for, sorted */
  readonly lost: readonly string[];
}

export interface ExpectedDiff {
  /** `old→new:class` per member of either side, sorted (`-` for a side it is absent from) */
  readonly classes: readonly string[];
  readonly newReadsOld: ExpectedDirection;
  readonly oldReadsNew: ExpectedDirection;
  readonly finding: Finding;
}

/** Per byte: the live member that owns it and the byte's index in it, or 'padding', or nothing. */
type ByteOwner = { readonly name: string; readonly at: number } | 'padding' | undefined;

function ownership(ms: readonly MemberSpec[]): ByteOwner[] {
  const bytes: ByteOwner[] = [];
  for (const m of ms) for (let k = 0; k < m.size; k++) bytes[m.offset + k] = m.padding ? 'padding' : { name: m.name, at: k };
  return bytes;
}

const bytesOf = (m: MemberSpec): number[] => Array.from({ length: m.size }, (_, k) => m.offset + k);

/** An OLD member's class from what happened to it; the first change that applies names it. */
function pairedClass(o: MemberSpec, n: MemberSpec): MemberClass {
  const changes: [MemberClass, boolean][] = [
    ['resized', n.size !== o.size],
    ['shifted', n.offset !== o.offset],
    ['retyped-same-size', n.type !== o.type || n.count !== o.count || (n.ctype ?? '') !== (o.ctype ?? '')],
    ['renamed', n.name !== o.name],
  ];
  return changes.find(([, changed]) => changed)?.[0] ?? 'unchanged';
}

/** A NEW member no OLD member became: named after the OLD bytes it took. */
function addedClass(n: MemberSpec, oldBytes: readonly ByteOwner[]): MemberClass {
  const owners = bytesOf(n).map((b) => oldBytes[b]);
  if (owners.every((x) => x === undefined)) return 'appended';
  return owners.some((x) => x !== undefined && x !== 'padding') ? 'inserted' : 'used-padding';
}

/**
 * A reader reading a page the writer wrote. `partner` maps a reader member to the writer member it
 * is (by construction). A live reader member is intact when every byte it reads is its partner's
 * byte at the same index, or, without a partner, when the writer left all its bytes unused.
 */
function readerSees(writer: Layout, reader: Layout, partner: ReadonlyMap<string, MemberSpec>, partnered: ReadonlyMap<string, MemberSpec>, remapped: readonly string[]): ExpectedDirection {
  const wrote = ownership(writer.members);
  const corrupted = new Set(remapped);
  for (const r of reader.members) {
    if (r.padding) continue;
    const w = partner.get(r.name);
    const intact = w
      ? w.size === r.size && bytesOf(r).every((b, k) => { const x = wrote[b]; return typeof x === 'object' && x.name === w.name && x.at === k; })
      : bytesOf(r).every((b) => typeof wrote[b] !== 'object');
    if (!intact) corrupted.add(r.name);
  }
  const lost = writer.members.filter((w) => !w.padding && !partnered.has(w.name)).map((w) => w.name);
  const verdict: DirectionVerdict = corrupted.size ? 'incompatible' : lost.length ? 'lossy' : 'compatible';
  return { verdict, corrupted: [...corrupted].sort(), lost: lost.sort() };
}

/**
 * Encodings carry their member's identity, so an encoding in both field tables selects the same
 * identity on both sides; when the diff cannot pair that identity with itself (renamed and moved),
 * a VMREAD by that encoding after migration returns another member's bytes.
 */
function remappedMembers(oldL: Layout, newL: Layout, truth: Pairing): string[] {
  const newMember = new Map(newL.fields.map((f) => [f.encoding, f.member]));
  return oldL.fields.flatMap((f) => {
    const n = newMember.get(f.encoding);
    return n !== undefined && truth.toNew.get(f.member)?.name !== n ? [n] : [];
  });
}

export function expectedDiff(oldL: Layout, newL: Layout, truth: Pairing, bumped: boolean): ExpectedDiff {
  const oldBytes = ownership(oldL.members);
  const classes = [
    ...oldL.members.map((o) => {
      const n = truth.toNew.get(o.name);
      return `${o.name}→${n?.name ?? '-'}:${n ? pairedClass(o, n) : 'removed'}`;
    }),
    ...newL.members.filter((n) => !truth.toOld.has(n.name)).map((n) => `-→${n.name}:${addedClass(n, oldBytes)}`),
  ].sort();
  const remapped = remappedMembers(oldL, newL, truth);
  const newReadsOld = readerSees(oldL, newL, truth.toOld, truth.toNew, remapped);
  const oldReadsNew = readerSees(newL, oldL, truth.toNew, truth.toOld, remapped);
  const compatible = newReadsOld.verdict !== 'incompatible' && oldReadsNew.verdict !== 'incompatible';
  // the construction knows whether it bumped the revision
  return { classes, newReadsOld, oldReadsNew, finding: compatible ? 'compatible' : bumped ? 'needs-translation' : 'silent-break' };
}
