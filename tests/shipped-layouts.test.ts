// The descriptor files shipped in layouts/: each is what its profile derives (none left stale), and
// the 6.1 and 6.12 ones are the kernel's own struct vmcs12 and field table, member by member and
// encoding by encoding (tests/fixtures/kernel-tables, extracted from the Debian sources).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { toDescriptor } from '../model/layout.js';
import { PROFILES } from '../model/profiles.js';

const shipped = (name: string) => JSON.parse(readFileSync(new URL(`../layouts/${name}.vmcs12.json`, import.meta.url), 'utf8'));
const kernel = (v: string, f: string) => JSON.parse(readFileSync(new URL(`./fixtures/kernel-tables/${v}/${f}.json`, import.meta.url), 'utf8'));

test.each(PROFILES.map((p) => p.name))('layouts/%s.vmcs12.json is current', (name) => {
  expect(shipped(name)).toEqual(toDescriptor(PROFILES.find((p) => p.name === name)!.vmcs12));
});

describe.each(['6.1', '6.12'])('layouts/linux-%s.vmcs12.json is the kernel source', (v) => {
  const file = shipped(`linux-${v}`);
  const layout = kernel(v, 'vmcs12-layout');

  test('revision, and every member at its offset with its size', () => {
    expect(Number(file.revision)).toBe(Number(layout.VMCS12_REVISION));
    type M = { name: string; offset: number; size: number };
    expect(file.members.map((m: M) => [m.name, m.offset, m.size])).toEqual(layout.members.map((m: M) => [m.name, m.offset, m.size]));
  });

  test('every encoding of vmcs12_field_offsets[] selects the member the kernel maps it to', () => {
    type F = { encoding: string; member: string; name: string };
    const rows = (fs: F[]) => fs.map((f) => [Number(f.encoding), f.member, f.name]).sort((a, b) => (a[0] as number) - (b[0] as number));
    expect(rows(file.fields)).toEqual(rows(kernel(v, 'vmcs12-fields').entries));
  });
});
