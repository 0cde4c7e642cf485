// Layout diff correctness: on evolutions whose true member pairing is known by construction, the
// diff classifies every member and judges both directions exactly as the construction does, calls
// every incompatible change without a revision bump a silent break, and never misses a member that
// a real read would get wrong.
import fc from 'fast-check';
import { codecFor, decode, slotValue, type FieldDiff } from '../model/codec.js';

import type { LayoutDiff } from '../model/layout-diff.js';
import { baseFrom, baseLayout, layoutEvolution, type Evolution } from '../generators/layout-evolution.js';
import type { ExpectedDiff } from '../generators/layout-expectation.js';
import { witnessPage } from '../generators/witness.js';
import { frozenVmcs12 } from '../model/vmcs12-layouts.js';
import { evmcsLayoutMatchesProfile, layoutMatchesProfile } from './layout-matches-profile.js';
import { Violation, type PropertyDef } from '../harness/property.js';

/** Random small layouts, and now and then the real vmcs12 as the base. */
export const evolutions = layoutEvolution({ base: fc.oneof({ weight: 4, arbitrary: baseLayout }, { weight: 1, arbitrary: fc.constant(baseFrom(frozenVmcs12('vmcs12'))) }) });

/** The diff's answer in the shape the construction states its expectation in. */
const answer = (d: LayoutDiff): ExpectedDiff => {
  const dir = (x: LayoutDiff['newReadsOld']) => ({ verdict: x.verdict, corrupted: [...new Set(x.corrupted.map((c) => c.member))].sort(), lost: [...x.lost].sort() });
  return {
    classes: d.members.map((m) => `${m.old?.name ?? '-'}→${m.new?.name ?? '-'}:${m.class}`).sort(),
    newReadsOld: dir(d.newReadsOld),
    oldReadsNew: dir(d.oldReadsNew),
    finding: d.finding,
  };
};

function compareWithConstruction(e: Evolution, got: LayoutDiff): FieldDiff[] {
  const g = answer(got);
  const w = e.expected;
  const out: FieldDiff[] = [];
  const lists = (field: string, a: readonly string[], b: readonly string[]) => {
    // only what differs: a whole vmcs12 class list would bury the counterexample
    const missing = a.filter((x) => !b.includes(x));
    const extra = b.filter((x) => !a.includes(x));
    if (missing.length || extra.length) out.push({ field, offset: -1, expected: missing.join(', ') || '-', actual: extra.join(', ') || '-' });
  };
  lists('classes', w.classes, g.classes);
  for (const d of ['newReadsOld', 'oldReadsNew'] as const) {
    if (w[d].verdict !== g[d].verdict) out.push({ field: `${d}.verdict`, offset: -1, expected: w[d].verdict, actual: g[d].verdict });
    lists(`${d}.corrupted`, w[d].corrupted, g[d].corrupted);
    lists(`${d}.lost`, w[d].lost, g[d].lost);
  }
  if (w.finding !== g.finding) out.push({ field: 'finding', offset: -1, expected: w.finding, actual: g.finding });
  if (out.length) out.unshift({ field: 'evolution', offset: -1, expected: e.applied.join('; '), actual: '' });
  return out;
}

export const diffMatchesConstruction: PropertyDef = {
  id: 'layout.diff.matches-construction',
  invariant: 'layout diff classifies members and judges both directions as the construction of the evolution does; incompatible without a revision bump is a silent break',
  description: "Generates layout evolutions (insertions, removals, resizes, renames, padding use, with or without a revision bump) and compares layout diff's classes and direction verdicts with what the construction did.",
  groups: [],
  runs: 300,
  async build(ctx) {
    return fc.asyncProperty(evolutions, async (e) => {
      const diff = compareWithConstruction(e, ctx.model.diffLayouts(e.old, e.new));
      if (diff.length) throw new Violation('layout diff disagrees with the construction', diff);
    });
  },
};

/** Members of `reader` whose value, read from a witness page the writer wrote, is not what the writer stored. */
export function observedCorruption(e: Evolution, direction: 'newReadsOld' | 'oldReadsNew'): string[] {
  const [writer, reader, toWriter] = direction === 'newReadsOld' ? [e.old, e.new, e.truth.toOld] : [e.new, e.old, e.truth.toNew];
  const page = witnessPage(writer);
  const wc = codecFor(writer);
  const rc = codecFor(reader);
  const wrote = decode(wc, page);
  const read = decode(rc, page);
  const bad = new Set<string>();
  rc.slots.forEach((s, i) => {
    const w = toWriter.get(s.member);
    const j = w && !w.padding ? wc.slotIndex.get(w.name + s.name.slice(s.member.length)) : undefined;
    const expected = j === undefined ? 0n : slotValue(wrote, j);
    if (slotValue(read, i) !== expected) bad.add(s.member);
  });
  return [...bad].sort();
}

export const diffNeverMissesCorruption: PropertyDef = {
  id: 'layout.diff.never-misses-corruption',
  invariant: 'every member that reads wrong bytes from a page the other side wrote is reported corrupted by layout diff',
  description: "Writes a de Bruijn witness page under one side of a generated evolution, reads it with the other, and checks that every member reading wrong bytes appears in layout diff's corrupted list.",
  groups: [],
  runs: 300,
  async build(ctx) {
    return fc.asyncProperty(evolutions, async (e) => {
      const d = ctx.model.diffLayouts(e.old, e.new);
      const diff: FieldDiff[] = [];
      for (const dir of ['newReadsOld', 'oldReadsNew'] as const) {
        const reported = new Set(d[dir].corrupted.map((c) => c.member));
        for (const m of observedCorruption(e, dir))
          if (!reported.has(m)) diff.push({ field: `${dir}: ${m}`, offset: -1, expected: 'reported corrupted', actual: `not reported (verdict ${d[dir].verdict})` });
      }
      if (diff.length) throw new Violation(`layout diff missed corruption after: ${e.applied.join('; ')}`, diff);
    });
  },
};

export const layoutDiffSuite: readonly PropertyDef[] = [diffMatchesConstruction, diffNeverMissesCorruption, layoutMatchesProfile, evmcsLayoutMatchesProfile];

