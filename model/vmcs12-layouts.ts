// vmcs12 layout revisions. The frozen one comes from the catalog; the historical ones name only
// what differs from it (history.md): 4.19 retyped `u32 revision_id` into `struct vmcs_hdr hdr`
// (same bytes), 5.8 turned cr3_target_value0..3 into dead_space[4] (same bytes).
import { member, type MemberSpec, field, type FieldSpec } from './catalog/types.js';
import { VMCS12_FIELDS, VMCS12_MEMBERS, VMCS12_REVISION, VMCS12_SIZE } from './catalog/vmcs12.js';
import { layoutFromCatalog, type Layout } from './layout.js';

const meta = (name: string) => ({ structure: 'vmcs12', name, revision: VMCS12_REVISION, size: VMCS12_SIZE });

/** The frozen layout of 5.8 and later, identical in 6.1 and 6.12 (kernel-facts §1). */
export const frozenVmcs12 = (name: string): Layout => layoutFromCatalog(meta(name), VMCS12_MEMBERS, VMCS12_FIELDS);

const CR3_TARGETS: readonly MemberSpec[] = [0, 1, 2, 3].map((i) => member(`cr3_target_value${i}`, 376 + 8 * i, 'natural'));
const CR3_TARGET_FIELDS: readonly FieldSpec[] = [0, 1, 2, 3].map((i) => field(0x6008 + 2 * i, `CR3_TARGET_VALUE${i}`, `cr3_target_value${i}`));

function replaceMember(members: readonly MemberSpec[], name: string, by: readonly MemberSpec[]): MemberSpec[] {
  const i = members.findIndex((m) => m.name === name);
  if (i < 0) throw new Error(`no member ${name}`);
  return [...members.slice(0, i), ...by, ...members.slice(i + 1)];
}

/** 4.19 to 5.7: struct vmcs_hdr, and CR3_TARGET_VALUE0..3 still in the field table. */
export function vmcs12Before58(name: string): Layout {
  const members = replaceMember(VMCS12_MEMBERS, 'dead_space', CR3_TARGETS);
  const fields = [...VMCS12_FIELDS, ...CR3_TARGET_FIELDS].sort((a, b) => a.encoding - b.encoding);
  return layoutFromCatalog(meta(name), members, fields);
}

/** 4.18 and before the 4.19 uapi: a plain u32 revision_id where the header now is. */
export function vmcs12Before419(name: string): Layout {
  const base = vmcs12Before58(name);
  return { ...base, members: replaceMember(base.members, 'hdr', [member('revision_id', 0, 'u32')]) };
}
