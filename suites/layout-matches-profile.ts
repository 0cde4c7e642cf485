// The target's layout descriptors against its profile's, item by item: every member (offset, type,
// count, size, padding), every field (encoding -> member, half, width, name, eVMCS clean group), the
// revision and the size. One case holds every item (deterministic); a failure shrinks to the single
// item that differs, so the counterexample names it.
import fc from 'fast-check';
import type { FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import type { Layout, LayoutField } from '../model/layout.js';
import type { MemberSpec } from '../model/catalog/types.js';
import { blobSet } from '../generators/blob-set.js';
import { profileOf, targetLayout } from '../harness/common.js';
import { must, Violation, type PropertyDef } from '../harness/property.js';

type Structure = 'vmcs12' | 'evmcs';

const fieldKey = (f: LayoutField) => `field ${hex(f.encoding, 4)}${f.high ? ' (high)' : ''}`;

const MEMBER_ATTRS = ['offset', 'type', 'count', 'size', 'padding'] as const;
const FIELD_ATTRS = ['member', 'offset', 'width', 'name', 'cleanGroup'] as const;

function attrDiffs<T extends object>(item: string, keys: readonly (keyof T & string)[], want: T | undefined, got: T | undefined, offset: number): FieldDiff[] {
  if (!want || !got) return [{ field: item, offset, expected: want ? 'present' : 'absent', actual: got ? 'present' : 'absent' }];
  const show = (v: unknown) => (v === undefined ? '-' : String(v));
  return keys.filter((k) => show(want[k]) !== show(got[k])).map((k) => ({ field: `${item}: ${k}`, offset, expected: show(want[k]), actual: show(got[k]) }));
}

/** Every item of either layout, with how it compares: the profile's order first, then the target's extras. */
function items(want: Layout, got: Layout): Map<string, () => FieldDiff[]> {
  const out = new Map<string, () => FieldDiff[]>();
  out.set('revision', () => (want.revision === got.revision ? [] : [{ field: 'revision', offset: 0, expected: hex(want.revision ?? 0, 8), actual: hex(got.revision ?? 0, 8) }]));
  out.set('size', () => (want.size === got.size ? [] : [{ field: 'size', offset: -1, expected: String(want.size), actual: String(got.size) }]));
  const members = (l: Layout) => new Map(l.members.map((m) => [m.name, m]));
  const [wm, gm] = [members(want), members(got)];
  for (const name of new Set([...wm.keys(), ...gm.keys()])) out.set(`member ${name}`, () => attrDiffs<MemberSpec>(name, MEMBER_ATTRS, wm.get(name), gm.get(name), (wm.get(name) ?? gm.get(name))!.offset));
  const fields = (l: Layout) => new Map(l.fields.map((f) => [fieldKey(f), f]));
  const [wf, gf] = [fields(want), fields(got)];
  for (const key of new Set([...wf.keys(), ...gf.keys()])) {
    const f = (wf.get(key) ?? gf.get(key))!;
    out.set(key, () => attrDiffs<LayoutField>(`${key}${f.name ? ` ${f.name}` : ''}`, FIELD_ATTRS, wf.get(key), gf.get(key), f.offset));
  }
  return out;
}

function layoutProperty(structure: Structure, id: string, what: string): PropertyDef {
  return {
    id,
    invariant: `the target's ${what} layout is its profile's: every member at the same offset with the same type, count and size, every encoding on the same member${structure === 'evmcs' ? ' in the same clean-fields group' : ''}, the same revision and size`,
    description: `One case holding every item of the target's ${what} descriptor and the profile's (members, fields, revision, size), compared attribute by attribute; a failure shrinks to the single item that differs (differential).`,
    groups: ['layout'],
    runs: 1,
    async build(ctx) {
      const profile = profileOf(ctx.target);
      const got = await targetLayout(ctx.target, structure);
      const want = structure === 'vmcs12' ? profile.vmcs12 : profile.evmcs?.layout;
      if (!want) must({ status: 'unsupported', reason: `profile ${profile.name} has no eVMCS facts` });
      const checks = items(want!, got);
      // layout diff's verdict on the whole (a silent break, say) heads the summary where it has one
      const finding = ctx.model.diffLayouts(want!, got).finding;
      const head = finding === 'compatible' ? '' : `${finding}: `;
      return fc.asyncProperty(blobSet([...checks.keys()]), async (chosen) => {
        const diff = chosen.flatMap((k) => checks.get(k)!());
        if (diff.length) throw new Violation(`${head}the target's ${what} layout differs from profile ${profile.name} (${chosen.length === 1 ? chosen[0] : `${chosen.length} items`})`, diff);
      });
    },
  };
}

export const layoutMatchesProfile = layoutProperty('vmcs12', 'layout.matches-profile', 'vmcs12');
export const evmcsLayoutMatchesProfile = layoutProperty('evmcs', 'layout.evmcs.matches-profile', 'eVMCS');
