// The target's revision reader against the model of the profile it claims, read by read: generated
// revision sets (a chain of layout revisions, the current one and some of its ancestors, with or
// without a revision bump between them) and pages of every kind a reader meets: a record written
// under any revision the set knows, a page of a revision nobody knows, random bytes (with a known
// revision in the header or not), a page of the wrong size. Both answers are compared field by field:
// accepted or refused, translatedFrom, and every member of the page read, by name, then the bytes no
// member names. vmcs12.revisions.old-readable judges one OLD -> NEW read against translate(); a reader
// that labels its translations wrongly, or reads bytes a zero page hides, passes it but not this.
import fc from 'fast-check';
import { codecFor, diffRecords, type FieldDiff, type StructRecord } from '../model/codec.js';
import { hdrShadow, makeHdr, VMCS12 } from '../model/catalog/by-name.js';
import { hex } from '../model/encoding.js';
import { toDescriptor, type Layout } from '../model/layout.js';
import { revisionOf } from '../model/revisions.js';
import { randomPage } from '../generators/random-page.js';
import { anyStructRecord } from '../generators/struct-record.js';
import { baseFrom, baseLayout, evolutionOp, evolve } from '../generators/layout-evolution.js';
import { referenceTarget } from '../targets/reference.js';
import type { RevisionRead, RevisionSetDescriptor } from '../targets/target.js';
import { profileOf } from '../harness/common.js';
import type { ModelDeps } from '../harness/model-deps.js';
import { must, Violation, type PropertyDef } from '../harness/property.js';

const MAX_REVISION = 0x7fffffff;

/** A revision set as generated: its layouts, and how each came from the base (for the counterexample). */
class RevisionSetCase {
  readonly descriptor: RevisionSetDescriptor;
  constructor(
    readonly base: string,
    readonly current: Layout,
    readonly known: readonly Layout[],
    /** per layout name: the evolution steps from the base that made it */
    readonly history: ReadonlyMap<string, readonly string[]>,
  ) {
    this.descriptor = { current: toDescriptor(current), known: known.map(toDescriptor) };
  }
  get layouts(): readonly Layout[] {
    return [this.current, ...this.known];
  }
  get revisions(): readonly number[] {
    return this.layouts.map((l) => l.revision!);
  }
  /** "current 0x00000002, known v0 0x00000001, v1 0x00000002" */
  get summary(): string {
    return [`current ${hex(this.current.revision!, 8)}`, ...(this.known.length ? [`known ${this.known.map((l) => `${l.name} ${hex(l.revision!, 8)}`).join(', ')}`] : [])].join(', ');
  }
  toString(): string {
    const steps = (l: Layout) => this.history.get(l.name)!.join('; ') || 'the base as it is';
    return [`${this.base}, ${this.current.size} bytes`, ...this.layouts.map((l) => `${l.name} (${hex(l.revision!, 8)}): ${steps(l)}`)].join(' | ');
  }
  [fc.toStringMethod](): string {
    return this.toString();
  }
}

const bumps = (steps: readonly { bump: boolean }[]): number => steps.filter((s) => s.bump).length;
const nextRevision = (rev: number, by: number): number => ((rev - 1 + by) % MAX_REVISION) + 1;

/**
 * A chain of revisions from a small random base (or the profile's vmcs12): the current layout is the
 * base after every step, the known ones the base after some of them; each bump raises the revision,
 * so ancestors without a bump between them share it (a later entry of the set wins, the current first).
 */
function revisionSets(vmcs12: Layout): fc.Arbitrary<RevisionSetCase> {
  const small = baseLayout.map((b) => ({ b, what: 'a small generated layout' }));
  const frozen = fc.constant({ b: baseFrom(vmcs12), what: `the vmcs12 of ${vmcs12.name}` });
  return fc
    .record({
      base: fc.oneof({ weight: 4, arbitrary: small }, { weight: 1, arbitrary: frozen }),
      // mostly bumped: without a bump, an ancestor shares the revision id of the layout after it
      steps: fc.array(fc.record({ op: evolutionOp, bump: fc.nat(2).map((n) => n > 0) }), { minLength: 1, maxLength: 5 }),
      cuts: fc.uniqueArray(fc.nat(5), { minLength: 1, maxLength: 3 }),
      reversed: fc.boolean(),
    })
    .map(({ base, steps, cuts, reversed }) => {
      const history = new Map<string, readonly string[]>();
      const at = (n: number, name: string): Layout => {
        const e = evolve(base.b, steps.slice(0, n));
        history.set(name, n ? e.applied : []);
        return { ...e.new, name, revision: nextRevision(base.b.revision, bumps(steps.slice(0, n))) };
      };
      const prefixes = [...new Set(cuts.map((c) => c % (steps.length + 1)))].sort((a, b) => a - b);
      const known = prefixes.map((n) => at(n, `v${n}`));
      return new RevisionSetCase(base.what, at(steps.length, 'current'), reversed ? known.reverse() : known, history);
    });
}

/** What the reader is given. Layouts go by name, records are the writer's (shown field by field). */
type PageCase =
  /** a record written under a layout the set knows, that layout's revision in the header (bit 31, the shadow bit, as drawn) */
  | { readonly kind: 'written'; readonly by: string; readonly rec: StructRecord }
  /** the same with a revision the set does not know */
  | { readonly kind: 'unknown-revision'; readonly by: string; readonly revision: number; readonly rec: StructRecord }
  /** random bytes of the current size, a known revision put in the header or the header as drawn */
  | { readonly kind: 'bytes'; readonly revision: number | null; readonly bytes: Uint8Array }
  /** a page of another size than the current layout's */
  | { readonly kind: 'wrong-size'; readonly size: number; readonly revision: number };

function pageCases(s: RevisionSetCase): fc.Arbitrary<PageCase> {
  const size = s.current.size;
  const written = s.layouts.map((l) => anyStructRecord(codecFor(l)).map((rec): PageCase => ({ kind: 'written', by: l.name, rec })));
  const unknown = s.layouts.map((l) =>
    fc.tuple(anyStructRecord(codecFor(l)), fc.integer({ min: 1, max: MAX_REVISION })).map(([rec, r]): PageCase => {
      let revision = r;
      while (s.revisions.includes(revision)) revision = nextRevision(revision, 1);
      return { kind: 'unknown-revision', by: l.name, revision, rec };
    }),
  );
  return fc.oneof(
    { weight: 4, arbitrary: fc.oneof(...written) },
    { weight: 1, arbitrary: fc.oneof(...unknown) },
    { weight: 2, arbitrary: fc.tuple(fc.option(fc.constantFrom(...s.revisions), { nil: null }), randomPage(size)).map(([revision, bytes]): PageCase => ({ kind: 'bytes', revision, bytes })) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: size * 2 }), fc.constantFrom(...s.revisions)).map(([n, revision]): PageCase => ({ kind: 'wrong-size', size: n === size ? n + 1 : n, revision })) },
  );
}

/** Puts a revision into the header's bits 30:0 (every generated layout starts with it), keeping the shadow bit. */
function withRevision(page: Uint8Array, revision: number): Uint8Array {
  if (VMCS12.fits(page, 'hdr')) VMCS12.write(page, 'hdr', makeHdr(hdrShadow(VMCS12.read(page, 'hdr')), revision));
  return page;
}

function pageOf(s: RevisionSetCase, p: PageCase, deps: ModelDeps): Uint8Array {
  const layout = (name: string) => s.layouts.find((l) => l.name === name)!;
  switch (p.kind) {
    case 'written':
      return withRevision(deps.encode(codecFor(layout(p.by)), p.rec), layout(p.by).revision!);
    case 'unknown-revision':
      return withRevision(deps.encode(codecFor(layout(p.by)), p.rec), p.revision);
    case 'bytes':
      return p.revision === null ? p.bytes.slice() : withRevision(p.bytes.slice(), p.revision);
    case 'wrong-size':
      return withRevision(new Uint8Array(p.size), p.revision);
  }
}

function describePage(s: RevisionSetCase, p: PageCase, page: Uint8Array): string {
  const rev = VMCS12.fits(page, 'hdr') ? hex(revisionOf(page), 8) : 'none';
  switch (p.kind) {
    case 'written':
      return `a page written under ${p.by} (revision ${rev})`;
    case 'unknown-revision':
      return `a page written under ${p.by} with unknown revision ${rev}`;
    case 'bytes':
      return `random bytes (revision ${rev}${p.revision === null ? ', as drawn' : ''})`;
    case 'wrong-size':
      return `a ${p.size}-byte page (revision ${rev}; the current layout is ${s.current.size} bytes)`;
  }
}

const answer = (r: RevisionRead): string => (r.accepted ? `accepted${r.translatedFrom === null ? '' : ` (translated from ${r.translatedFrom})`}` : `refused: ${r.reason}`);

/** The two answers field by field: accepted or refused, translatedFrom, every member of the page by name, the bytes no member names. */
export function diffRead(current: Layout, want: RevisionRead, got: RevisionRead, deps: ModelDeps): FieldDiff[] {
  if (want.accepted !== got.accepted) return [{ field: 'accepted', offset: -1, expected: answer(want), actual: answer(got) }];
  if (!want.accepted || !got.accepted) return []; // a refusal's reason is prose
  const out: FieldDiff[] = [];
  if (want.translatedFrom !== got.translatedFrom) out.push({ field: 'translatedFrom', offset: -1, expected: String(want.translatedFrom), actual: String(got.translatedFrom) });
  if (got.page.length !== want.page.length) return [...out, { field: 'page length', offset: -1, expected: String(want.page.length), actual: String(got.page.length) }];
  const codec = codecFor(current);
  return [...out, ...diffRecords(codec, deps.decode(codec, want.page), deps.decode(codec, got.page))];
}

export const revisionsMatchProfile: PropertyDef = {
  id: 'vmcs12.revisions.matches-profile',
  invariant:
    "the revision reader answers every page as the profile's model does: accepted or refused, translatedFrom, and every member of the page read by name, for pages written under any revision the set knows, of unknown revisions, of random bytes and of the wrong size",
  description:
    'Generates revision sets (a chain of layout evolutions: the current layout and some of its ancestors, with and without revision bumps) and pages (records written under each known revision, unknown revisions, random bytes, wrong sizes); reads each on the target and on the model of its profile and diffs the answers field by field (differential).',
  groups: ['layout-revisions'],
  runs: 200,
  async build(ctx) {
    const profile = profileOf(ctx.target);
    const model = referenceTarget({ profile: profile.name });
    const cases = revisionSets(profile.vmcs12).chain((set) => fc.record({ set: fc.constant(set), pages: fc.array(pageCases(set), { minLength: 1, maxLength: 4 }) }));
    return fc.asyncProperty(cases, async ({ set, pages }) => {
      for (const p of pages) {
        const page = pageOf(set, p, ctx.model);
        const [want, got] = [must(await model.readRevisions(set.descriptor, page.slice())), must(await ctx.target.readRevisions(set.descriptor, page.slice()))];
        const diff = diffRead(set.current, want, got, ctx.model);
        if (diff.length) throw new Violation(`reading ${describePage(set, p, page)} (${set.summary}) differs from profile ${profile.name}: ${diff.length} field(s)`, diff);
      }
    });
  },
};
