// The vmcs12 catalog reproduces the kernel tables of both Debian trees exactly.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { VMCS12_FIELDS, VMCS12_MEMBERS, VMCS12_REVISION } from '../model/catalog/vmcs12.js';
import { fieldIndex, isReadOnly, widthOf, vmcsEnumFor, rol16 } from '../model/encoding.js';
import { findProfile } from '../model/profiles.js';

const load = (v: string, f: string) => JSON.parse(readFileSync(new URL(`./fixtures/kernel-tables/${v}/${f}.json`, import.meta.url), 'utf8'));

describe.each(['6.1', '6.12'])('vmcs12 catalog against linux %s', (v) => {
  const layout = load(v, 'vmcs12-layout');
  const fields = load(v, 'vmcs12-fields');
  const profile = findProfile(`linux-${v}`)!;

  test('every member with its offset and size, in order', () => {
    expect(VMCS12_MEMBERS.map((m) => [m.name, m.offset, m.size])).toEqual(layout.members.map((m: { name: string; offset: number; size: number }) => [m.name, m.offset, m.size]));
    expect(Number(layout.VMCS12_REVISION)).toBe(VMCS12_REVISION);
    const end = VMCS12_MEMBERS.reduce((e, m) => (expect(m.offset).toBe(e), m.offset + m.size), 0);
    expect(end).toBe(layout.sizeofVmcs12);
  });

  test('every populated encoding slot: member, offset, width, _HIGH', () => {
    const mine = profile.vmcs12.fields.map((f) => ({ encoding: f.encoding, member: f.member, offset: f.offset, width: f.width === 'natural' ? 'natural' : f.width, high: f.high }));
    const theirs = fields.entries.map((e: { encoding: string; member: string; offset: number; width: number | string; high: boolean }) => ({
      encoding: Number(e.encoding),
      member: e.member,
      offset: e.offset,
      width: e.width,
      high: e.high,
    }));
    const byEnc = (a: { encoding: number }, b: { encoding: number }) => a.encoding - b.encoding;
    expect(mine.sort(byEnc)).toEqual(theirs.sort(byEnc));
    expect(mine).toHaveLength(178);
    expect(VMCS12_FIELDS.filter((f) => f.has64High)).toHaveLength(37);
    expect(VMCS12_FIELDS.filter((f) => !f.has64High)).toHaveLength(104);
  });

  test('width class from the encoding bits agrees with the member type', () => {
    for (const f of profile.vmcs12.fields) {
      const m = VMCS12_MEMBERS.find((x) => x.name === f.member)!;
      const w = widthOf(f.encoding);
      expect(f.high ? 8 : w === 'natural' ? 8 : w / 8, `${f.name}`).toBe(m.size);
    }
  });

  test("KVM's encoding arithmetic gives each entry's table index, width, read-only bit and field index", () => {
    type E = { encoding: string; name: string; tableIndex: number; width: number | string; readonly: boolean; fieldIndex: number };
    const got = (e: E) => { const x = Number(e.encoding); return [e.name, rol16(x), widthOf(x), isReadOnly(x), fieldIndex(x)]; };
    const want = (e: E) => [e.name, e.tableIndex, e.width, e.readonly, e.fieldIndex];
    expect(fields.entries.map(got)).toEqual(fields.entries.map(want));
    // the eVMCS table is indexed the same way
    const evmcs = load(v, 'evmcs-fields').entries as { encoding: string; name: string; tableIndex: number }[];
    expect(evmcs.map((e) => [e.name, rol16(Number(e.encoding))])).toEqual(evmcs.map((e) => [e.name, e.tableIndex]));
  });

  test('VMCS_ENUM and the table size come out of the table', () => {
    expect(vmcsEnumFor(profile.vmcs12.fields.map((f) => f.encoding))).toBe(Number(fields.vmcsEnumMsr.value));
    expect(Math.max(...profile.vmcs12.fields.map((f) => rol16(f.encoding))) + 1).toBe(fields.indexing.nr_vmcs12_fields);
  });

  test('enum encodings outside the table are not in the catalog', () => {
    for (const e of fields.enumEncodingsNotInTable) expect(profile.vmcs12.fields.some((f) => f.encoding === Number(e.encoding))).toBe(false);
  });
});
