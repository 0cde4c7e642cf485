// Old-revision readability: a page written under an older layout reads, under the newer one, with
// every field the old one knew unchanged and every new field zero, whenever the change is
// compatible or the revision was bumped and a translation exists. When an incompatible change kept
// the revision, the property shows the corruption instead of hiding it.
import fc from 'fast-check';
import { hdrShadow, makeHdr, VMCS12 } from '../model/catalog/by-name.js';
import { codecFor, decode, encode, slotValue, type FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import { toDescriptor } from '../model/layout.js';
import { translate } from '../model/revisions.js';
import { structRecord } from '../generators/struct-record.js';
import { witnessPage } from '../generators/witness.js';
import { evolutions } from './layout-diff.js';
import { must, Violation, type PropertyDef } from '../harness/property.js';

/** Puts a revision id in the header's bits 30:0 (every generated layout starts with it), keeping the shadow bit. */
function setRevision(page: Uint8Array, rev: number): void {
  VMCS12.write(page, 'hdr', makeHdr(hdrShadow(VMCS12.read(page, 'hdr')), rev));
}

/** A diff row for what the reader did with a page of revision `rev`. */
const revisionRow = (rev: number, expected: string, actual: string): FieldDiff => ({ field: `hdr.revision_id ${hex(rev, 8)}`, offset: 0, expected, actual });

export const oldRevisionReadable: PropertyDef = {
  id: 'vmcs12.revisions.old-readable',
  invariant: 'a page written under OLD reads under NEW with every OLD field intact and NEW-only fields zero; an unbumped incompatible change shows its corruption; unknown revisions are refused',
  description: 'Writes a sparse record under OLD of a generated evolution, has the target read it as NEW, and checks OLD fields survive and NEW-only fields are zero; silent breaks must show on a witness page and unknown revisions must be refused.',
  groups: ['layout-revisions'],
  runs: 200,
  async build(ctx) {
    const cases = evolutions.chain((e) =>
      fc.record({ e: fc.constant(e), rec: structRecord(codecFor(e.old), 'sparse'), stray: fc.integer({ min: 1, max: 0x7fffffff }) }),
    );
    return fc.asyncProperty(cases, async ({ e, rec, stray }) => {
      const oldC = codecFor(e.old);
      const newC = codecFor(e.new);
      const set = { current: toDescriptor(e.new), known: [toDescriptor(e.old)] };
      const d = ctx.model.diffLayouts(e.old, e.new);
      const head = oldC.slots.findIndex((s) => s.offset === 0);
      const withRevision = { ...rec, lo: rec.lo.slice(), rest: new Uint8Array(rec.rest.length) };
      withRevision.lo[head] = (withRevision.lo[head]! & 0x80000000) | e.old.revision!;
      if (d.compatible || e.bumped) {
        const page = ctx.model.encode(oldC, withRevision);
        const r = must(await ctx.target.readRevisions(set, page));
        if (!r.accepted) throw new Violation(`a known revision was refused: ${r.reason}`, [revisionRow(e.old.revision!, 'read as NEW', `refused: ${r.reason}`)]);
        const got = decode(newC, r.page);
        const want = translate(e.old, e.new, withRevision);
        const diff: FieldDiff[] = [];
        newC.slots.forEach((s, i) => {
          if (slotValue(got, i) !== slotValue(want, i))
            diff.push({ field: s.name, offset: s.offset, expected: hex(slotValue(want, i)), actual: hex(slotValue(got, i)) });
        });
        if (diff.length) throw new Violation(`OLD page read under NEW after: ${e.applied.join('; ')}`, diff);
      } else {
        // same revision, incompatible bytes: the reader cannot know, and the witness must show it
        const page = witnessPage(e.old);
        setRevision(page, e.old.revision!);
        const r = must(await ctx.target.readRevisions(set, page));
        if (!r.accepted) throw new Violation(`same-revision page refused: ${r.reason}`, [revisionRow(e.old.revision!, 'read as NEW', `refused: ${r.reason}`)]);
        const got = decode(newC, r.page);
        const want = translate(e.old, e.new, decode(oldC, page));
        const corrupted = newC.slots.some((s, i) => slotValue(got, i) !== slotValue(want, i));
        const observable = d.members.some((m) => !m.padding && (m.class === 'shifted' || m.class === 'inserted'));
        if (observable && !corrupted)
          throw new Violation(`silent break not visible on the witness page after: ${e.applied.join('; ')}`, [{ field: 'witness page read as NEW', offset: -1, expected: 'some field differs from the translation', actual: 'every field as translated' }]);
      }
      // a revision nobody knows is refused with a reason, never decoded
      const unknownRev = [e.old.revision, e.new.revision].includes(stray) ? (stray % 0x7fffffff) + 1 : stray;
      if (![e.old.revision, e.new.revision].includes(unknownRev)) {
        const page = encode(oldC, withRevision);
        setRevision(page, unknownRev);
        const r = must(await ctx.target.readRevisions(set, page));
        if (r.accepted) throw new Violation(`unknown revision ${hex(unknownRev, 8)} was accepted`, [revisionRow(unknownRev, 'refused', 'accepted')]);
      }
    });
  },
};

export const oldRevisionSuite: readonly PropertyDef[] = [oldRevisionReadable];
