// layout diff on hand-made evolutions it has never seen, including the tricky ones.
import { describe, expect, test } from 'vitest';
import { compileLayout, type Layout, type LayoutDescriptor } from '../model/layout.js';
import { diffLayouts } from '../model/layout-diff.js';
import { findProfile } from '../model/profiles.js';
import { codecFor, recordFrom, recordValues } from '../model/codec.js';
import { readPage, writePage, revisionOf } from '../model/revisions.js';
import { diffMatchesConstruction } from '../suites/layout-diff.js';
import { referenceTarget } from '../targets/reference.js';
import { plantBug } from './plant.js';
import { expectCaught } from './expect-caught.js';

function layout(name: string, revision: number, members: [string, number, string, number?, boolean?][], size = 64): Layout {
  const d: LayoutDescriptor = {
    format: 'nvmx-layout/1',
    structure: 'test',
    name,
    revision,
    size,
    members: members.map(([n, offset, type, count, padding]) => ({ name: n, offset, type, ...(count ? { count } : {}), ...(padding ? { padding } : {}) })),
  };
  const c = compileLayout(d);
  if (!c.ok) throw new Error(JSON.stringify(c.problems));
  return c.value;
}
const classes = (o: Layout, n: Layout) => Object.fromEntries(diffLayouts(o, n).members.map((m) => [m.old?.name ?? m.new!.name, m.class]));

describe('kernel history', () => {
  const p = (n: string) => findProfile(n)!.vmcs12;
  test('4.18 -> 4.19: u32 revision_id becomes struct vmcs_hdr hdr, same bytes', () => {
    const d = diffLayouts(p('linux-4.18'), p('linux-4.19'));
    expect(d.members.filter((m) => m.class !== 'unchanged').map((m) => [m.old?.name, m.new?.name, m.class])).toEqual([['revision_id', 'hdr', 'retyped-same-size']]);
    expect(d.finding).toBe('compatible');
    expect(d.newReadsOld.verdict).toBe('compatible');
  });
  test('4.19 -> 5.8: cr3_target_value0..3 become dead space: lossy, compatible, encodings gone', () => {
    const d = diffLayouts(p('linux-4.19'), p('linux-5.8'));
    expect(d.compatible).toBe(true);
    expect(d.newReadsOld.verdict).toBe('lossy');
    expect(d.newReadsOld.lost).toEqual(['cr3_target_value0', 'cr3_target_value1', 'cr3_target_value2', 'cr3_target_value3']);
    expect(d.oldReadsNew.readAsZero).toEqual(['cr3_target_value0', 'cr3_target_value1', 'cr3_target_value2', 'cr3_target_value3']);
    expect(d.fields.removed).toEqual(['0x6008 CR3_TARGET_VALUE0', '0x600a CR3_TARGET_VALUE1', '0x600c CR3_TARGET_VALUE2', '0x600e CR3_TARGET_VALUE3']);
  });
  test('6.1 -> 6.12: identical', () => {
    const d = diffLayouts(p('linux-6.1'), p('linux-6.12'));
    expect(d.members.every((m) => m.class === 'unchanged')).toBe(true);
    expect(d.finding).toBe('compatible');
  });
});

describe('small evolutions', () => {
  const v1 = layout('v1', 7, [['hdr', 0, 'u32'], ['a', 4, 'u32'], ['b', 8, 'u64'], ['c', 16, 'u64'], ['pad', 24, 'u64', 2, true]]);

  test('a member inserted in the middle shifts the rest: silent break without a bump', () => {
    const v2 = layout('v2', 7, [['hdr', 0, 'u32'], ['a', 4, 'u32'], ['n', 8, 'u64'], ['b', 16, 'u64'], ['c', 24, 'u64'], ['pad', 32, 'u64', 1, true]]);
    expect(classes(v1, v2)).toMatchObject({ n: 'inserted', b: 'shifted', c: 'shifted', pad: 'resized' });
    const d = diffLayouts(v1, v2);
    expect(d.finding).toBe('silent-break');
    expect(d.newReadsOld.corrupted.map((c) => c.member).sort()).toEqual(['b', 'c', 'n']);
  });

  test('the same change with a revision bump needs translation, and the reader translates', () => {
    const v2 = layout('v2', 8, [['hdr', 0, 'u32'], ['a', 4, 'u32'], ['n', 8, 'u64'], ['b', 16, 'u64'], ['c', 24, 'u64'], ['pad', 32, 'u64', 1, true]]);
    expect(diffLayouts(v1, v2).finding).toBe('needs-translation');
    const oldPage = new Uint8Array(64);
    const old = codecFor(v1);
    oldPage.set(writePage({ current: v1, known: [] }, recordFrom(old, { hdr: 7, a: 1, b: 2n, c: 3n })).ok ? (writePage({ current: v1, known: [] }, recordFrom(old, { hdr: 7, a: 1, b: 2n, c: 3n })) as { page: Uint8Array }).page : new Uint8Array(64));
    const r = readPage({ current: v2, known: [v1] }, oldPage);
    expect(r.ok && r.translatedFrom).toBe('v1');
    if (r.ok) expect(recordValues(codecFor(v2), r.record)).toEqual({ hdr: 8n, a: 1n, n: 0n, b: 2n, c: 3n });
    const w = writePage({ current: v2, known: [v1] }, r.ok ? r.record : recordFrom(codecFor(v2), {}));
    expect(w.ok && revisionOf(w.page)).toBe(8);
    expect(readPage({ current: v2, known: [v1] }, Uint8Array.from({ length: 64 }, (_, i) => (i === 0 ? 99 : 0)))).toMatchObject({ ok: false, reason: expect.stringContaining('unknown revision 0x00000063') });
  });

  test('a member moved into former padding while the others return to older offsets', () => {
    const grown = layout('grown', 7, [['hdr', 0, 'u32'], ['a', 4, 'u32'], ['x', 8, 'u64'], ['b', 16, 'u64'], ['c', 24, 'u64'], ['pad', 32, 'u64', 1, true]]);
    const fixed = layout('fixed', 7, [['hdr', 0, 'u32'], ['a', 4, 'u32'], ['b', 8, 'u64'], ['c', 16, 'u64'], ['x', 24, 'u64'], ['pad', 32, 'u64', 1, true]]);
    expect(classes(v1, fixed)).toMatchObject({ a: 'unchanged', b: 'unchanged', c: 'unchanged', x: 'used-padding', pad: 'resized' });
    expect(diffLayouts(v1, fixed).finding).toBe('compatible');
    expect(classes(grown, fixed)).toMatchObject({ x: 'shifted', b: 'shifted', c: 'shifted' });
    expect(diffLayouts(grown, fixed).finding).toBe('silent-break');
  });

  test('renaming a padding array is harmless; appending is compatible and lossy backwards', () => {
    const v2 = layout('v2', 7, [['hdr', 0, 'u32'], ['a', 4, 'u32'], ['b', 8, 'u64'], ['c', 16, 'u64'], ['reserved', 24, 'u64', 2, true], ['z', 40, 'u16']]);
    expect(classes(v1, v2)).toMatchObject({ pad: 'renamed', z: 'appended' });
    const d = diffLayouts(v1, v2);
    expect(d.finding).toBe('compatible');
    expect(d.oldReadsNew).toMatchObject({ verdict: 'lossy', lost: ['z'] });
  });

  test('a resize is incompatible', () => {
    const v2 = layout('v2', 7, [['hdr', 0, 'u32'], ['a', 4, 'u16'], ['b', 6, 'u64'], ['c', 14, 'u64'], ['pad', 22, 'u16', 9, true]]);
    expect(classes(v1, v2)).toMatchObject({ a: 'resized', b: 'shifted' });
    expect(diffLayouts(v1, v2).compatible).toBe(false);
  });
});

describe('layout.diff.matches-construction judges by the construction: one-line classifier bugs fail it', () => {
  // each bug sits inside the classifier the property's old oracle also used, so that oracle agreed with it
  test.each([
    ['a resized member at its old offset reads as intact', 'if (w.offset !== r.offset || w.size !== r.size)', 'if (w.offset !== r.offset)', 'newReadsOld.verdict'],
    ['a member placed right at the old end is not appended', "if (n.offset >= oldEnd) cls = 'appended';", "if (n.offset > oldEnd) cls = 'appended';", 'classes'],
    ['a member that shrank is retyped, not resized', "if (n.size !== o.size) cls = 'resized';", "if (n.size > o.size) cls = 'resized';", 'classes'],
  ])('%s', async (_what, line, bug, field) => {
    const planted = await plantBug<typeof import('../model/layout-diff.js')>('layout-diff.ts', line, bug);
    const o = await expectCaught(diffMatchesConstruction, referenceTarget(), { deps: { diffLayouts: planted.diffLayouts }, seeds: [1], runs: 300 });
    expect(o.counterexample.diff.map((d) => d.field)).toContain(field);
    // shrunk to the one or two changes that show the bug
    const evolution = o.counterexample.diff.find((d) => d.field === 'evolution')!.expected;
    expect(evolution.split('; ').length).toBeLessThanOrEqual(2);
  });
});

describe('descriptor problems name the JSON path', () => {
  const base = (members: LayoutDescriptor['members'], fields?: LayoutDescriptor['fields'], packed = false): LayoutDescriptor => ({ format: 'nvmx-layout/1', structure: 't', name: 't', size: 16, packed, members, ...(fields ? { fields } : {}) });
  const problems = (d: LayoutDescriptor) => {
    const c = compileLayout(d);
    return c.ok ? [] : c.problems.map((p) => `${p.path}: ${p.message}`);
  };
  test.each([
    ['overlap', base([{ name: 'a', offset: 0, type: 'u64' }, { name: 'b', offset: 4, type: 'u32' }]), '/members/1: member "b" at 4 overlaps "a"'],
    ['past size', base([{ name: 'a', offset: 12, type: 'u64' }]), '/members/0: member "a" (12..19) lies past the structure size 16'],
    ['unknown type', base([{ name: 'a', offset: 0, type: 'u128' }]), '/members/0/type: unknown type "u128"'],
    ['no member', base([{ name: 'a', offset: 0, type: 'u32' }], [{ encoding: '0x4000', member: 'zz' }]), '/fields/0/member: encoding 0x4000 maps to no member ("zz")'],
    ['duplicate', base([{ name: 'a', offset: 0, type: 'u32' }, { name: 'a', offset: 4, type: 'u32' }]), '/members/1/name: duplicate member name "a"'],
    ['width', base([{ name: 'a', offset: 0, type: 'u32' }], [{ encoding: '0x2000', member: 'a' }]), '/fields/0: encoding 0x2000 is a 64-bit field but member "a" is u32'],
    ['no offset', base([{ name: 'a', type: 'u32' }]), '/members/0/offset: member "a" has no offset'],
  ])('%s', (_n, d, want) => {
    expect(problems(d).join('\n')).toContain(want);
  });
  test('packed descriptors compute offsets from types, counts and order', () => {
    const c = compileLayout(base([{ name: 'a', type: 'u16' }, { name: 'b', type: 'u16', count: 3 }, { name: 'c', type: 'u64' }], undefined, true));
    expect(c.ok && c.value.members.map((m) => m.offset)).toEqual([0, 2, 8]);
  });
});
