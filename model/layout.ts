// A layout is one revision of a structure (vmcs12 or eVMCS): its members and, optionally, the
// encoding -> member map. It is what `nvmx-layout/1` descriptors describe and what codecs run on.
import { TYPE_SIZE, type FieldSpec, type MemberSpec, type ScalarType } from './catalog/types.js';
import { hex, isHighAccess, widthBytes, widthOf, type Width } from './encoding.js';

export interface LayoutField {
  readonly encoding: number;
  readonly name?: string;
  readonly member: string;
  /** the _HIGH half: bits 63:32 of a 64-bit member */
  readonly high: boolean;
  /** the byte where an access starts (member offset, +4 for _HIGH) */
  readonly offset: number;
  readonly width: Width;
  /** eVMCS only: the clean-field group, without its HV_VMX_ENLIGHTENED_CLEAN_FIELD_ prefix */
  readonly cleanGroup?: string;
}

export interface Layout {
  readonly structure: string;
  readonly name: string;
  /** the revision id the structure carries in its first bits, null when it has none */
  readonly revision: number | null;
  readonly size: number;
  readonly members: readonly MemberSpec[];
  readonly fields: readonly LayoutField[];
}

/** The JSON form (`nvmx-layout/1`). Numbers may be JSON numbers or hex strings. */
export interface LayoutDescriptor {
  format: 'nvmx-layout/1';
  structure: string;
  name: string;
  revision?: string | number | null;
  size: string | number;
  packed?: boolean;
  members: DescriptorMember[];
  fields?: DescriptorField[];
  comment?: string;
}

export interface DescriptorMember {
  name: string;
  offset?: string | number;
  size?: string | number;
  type: string;
  count?: string | number;
  padding?: boolean;
  ctype?: string;
}

export interface DescriptorField {
  encoding: string | number;
  member: string;
  name?: string;
  high?: boolean;
  cleanGroup?: string;
}

/** A problem in a descriptor, located by a JSON pointer. */
export interface LayoutProblem {
  readonly path: string;
  readonly message: string;
}

export type Compiled<T> = { ok: true; value: T } | { ok: false; problems: LayoutProblem[] };

const num = (v: string | number): number => (typeof v === 'number' ? v : Number.parseInt(v, v.startsWith('0x') ? 16 : 10));

/** Semantic checks and normalisation of a descriptor that already passed the JSON Schema. */
export function compileLayout(d: LayoutDescriptor): Compiled<Layout> {
  const problems: LayoutProblem[] = [];
  const size = num(d.size);
  const members: MemberSpec[] = [];
  const byName = new Map<string, number>();
  let cursor = 0;
  d.members.forEach((m, i) => {
    const at = `/members/${i}`;
    if (!(m.type in TYPE_SIZE)) {
      problems.push({ path: `${at}/type`, message: `unknown type "${m.type}" (expected u16, u32, u64 or natural)` });
      return;
    }
    const type = m.type as ScalarType;
    const count = m.count === undefined ? 1 : num(m.count);
    const memberSize = TYPE_SIZE[type] * count;
    if (m.size !== undefined && num(m.size) !== memberSize)
      problems.push({ path: `${at}/size`, message: `size ${num(m.size)} does not match ${count} x ${type} = ${memberSize}` });
    let offset: number;
    if (m.offset !== undefined) offset = num(m.offset);
    else if (d.packed) offset = cursor;
    else {
      problems.push({ path: `${at}/offset`, message: `member "${m.name}" has no offset and the descriptor is not "packed": true` });
      return;
    }
    if (byName.has(m.name)) problems.push({ path: `${at}/name`, message: `duplicate member name "${m.name}" (also /members/${byName.get(m.name)})` });
    byName.set(m.name, i);
    if (offset + memberSize > size)
      problems.push({ path: at, message: `member "${m.name}" (${offset}..${offset + memberSize - 1}) lies past the structure size ${size}` });
    members.push({
      name: m.name,
      offset,
      type,
      count,
      padding: m.padding ?? false,
      ...(m.ctype !== undefined ? { ctype: m.ctype } : {}),
      size: memberSize,
    });
    cursor = offset + memberSize;
  });
  const sorted = members.map((m, i) => ({ m, i })).sort((a, b) => a.m.offset - b.m.offset);
  for (let k = 1; k < sorted.length; k++) {
    const prev = sorted[k - 1]!;
    const cur = sorted[k]!;
    if (cur.m.offset < prev.m.offset + prev.m.size)
      problems.push({
        path: `/members/${d.members.findIndex((x) => x.name === cur.m.name)}`,
        message: `member "${cur.m.name}" at ${cur.m.offset} overlaps "${prev.m.name}" (${prev.m.offset}..${prev.m.offset + prev.m.size - 1})`,
      });
  }
  const memberMap = new Map(members.map((m) => [m.name, m]));
  const fields: LayoutField[] = [];
  const seen = new Map<number, number>();
  (d.fields ?? []).forEach((f, i) => {
    const at = `/fields/${i}`;
    const encoding = num(f.encoding);
    const m = memberMap.get(f.member);
    if (!m) {
      problems.push({ path: `${at}/member`, message: `encoding ${hex(encoding, 4)} maps to no member ("${f.member}")` });
      return;
    }
    if (seen.has(encoding)) problems.push({ path: `${at}/encoding`, message: `encoding ${hex(encoding, 4)} is listed twice (also /fields/${seen.get(encoding)})` });
    seen.set(encoding, i);
    const high = f.high ?? isHighAccess(encoding);
    const problem = fieldShapeProblem(encoding, high, m);
    if (problem) problems.push({ path: at, message: problem });
    fields.push(makeField(encoding, m, high, f.name, f.cleanGroup));
  });
  const revision = d.revision === undefined || d.revision === null ? null : num(d.revision);
  if (problems.length) return { ok: false, problems };
  return { ok: true, value: { structure: d.structure, name: d.name, revision, size, members, fields } };
}

function fieldShapeProblem(encoding: number, high: boolean, m: MemberSpec): string | null {
  if (m.padding) return `encoding ${hex(encoding, 4)} maps to padding member "${m.name}"`;
  if (high !== isHighAccess(encoding)) return `encoding ${hex(encoding, 4)}: "high" must equal the encoding's access-type bit`;
  const need = high ? 8 : widthBytes(widthOf(encoding));
  const elem = TYPE_SIZE[m.type];
  if (m.count !== 1 || elem !== need)
    return `encoding ${hex(encoding, 4)} is a ${high ? '_HIGH half of a 64-bit' : String(widthOf(encoding)) + '-bit'} field but member "${m.name}" is ${m.count > 1 ? m.count + ' x ' : ''}${m.type}`;
  return null;
}

function makeField(encoding: number, m: MemberSpec, high: boolean, name?: string, cleanGroup?: string): LayoutField {
  return {
    encoding,
    ...(name !== undefined ? { name } : {}),
    member: m.name,
    high,
    offset: m.offset + (high ? 4 : 0),
    width: widthOf(encoding),
    ...(cleanGroup !== undefined ? { cleanGroup } : {}),
  };
}

/** Builds a layout from a catalog, expanding each FIELD64 into its full and _HIGH slots as KVM's table does. */
export function layoutFromCatalog(
  meta: { structure: string; name: string; revision: number | null; size: number },
  members: readonly MemberSpec[],
  specs: readonly FieldSpec[],
  cleanGroupOf?: (f: FieldSpec) => string | undefined,
): Layout {
  const byName = new Map(members.map((m) => [m.name, m]));
  const fields: LayoutField[] = [];
  for (const f of specs) {
    const m = byName.get(f.member);
    if (!m) throw new Error(`catalog: field ${f.name} names unknown member ${f.member}`);
    fields.push(makeField(f.encoding, m, false, f.name, cleanGroupOf?.(f)));
    if (f.has64High) fields.push(makeField(f.encoding | 1, m, true, `${f.name}_HIGH`));
  }
  return { ...meta, members, fields };
}

/** The JSON descriptor of a layout: encodings and the revision as hex strings, offsets as numbers. */
export function toDescriptor(layout: Layout): LayoutDescriptor {
  return {
    format: 'nvmx-layout/1',
    structure: layout.structure,
    name: layout.name,
    revision: layout.revision === null ? null : hex(layout.revision, 8),
    size: layout.size,
    members: layout.members.map((m) => ({
      name: m.name,
      offset: m.offset,
      size: m.size,
      type: m.type,
      ...(m.count !== 1 ? { count: m.count } : {}),
      ...(m.padding ? { padding: true } : {}),
      ...(m.ctype !== undefined ? { ctype: m.ctype } : {}),
    })),
    fields: layout.fields.map((f) => ({
      encoding: hex(f.encoding, 4),
      member: f.member,
      ...(f.name !== undefined ? { name: f.name } : {}),
      ...(f.high ? { high: true } : {}),
      ...(f.cleanGroup !== undefined ? { cleanGroup: f.cleanGroup } : {}),
    })),
  };
}

/** The end of the last member: bytes past it are not part of the structure proper. */
export const membersEnd = (layout: Layout): number => layout.members.reduce((e, m) => Math.max(e, m.offset + m.size), 0);
