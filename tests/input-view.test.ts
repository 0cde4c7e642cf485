// A shrunk counterexample as fields and hex (harness/input-view.ts): records by field name with
// offsets, bytes as non-zero hex lines, operations one per row with VMCS encodings by name,
// objects as dotted paths, fc.commands one command per row; and a real failure carries it into a
// schema-valid report.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { codecFor, decode as realDecode } from '../model/codec.js';
import { findProfile } from '../model/profiles.js';
import { structRecord } from '../generators/struct-record.js';
import { describeInput, hexRuns } from '../harness/input-view.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { referenceTarget } from '../targets/reference.js';
import { buildReport, propertyRecord } from '../reports/report.js';
import { validate } from '../base/schemas.js';
import { expectCaught } from './expect-caught.js';

describe('describeInput', () => {
  test('a generated vmcs12 record: its non-zero fields by name and offset, unknown bytes as hex', () => {
    const codec = codecFor(findProfile('linux-6.12')!.vmcs12);
    const [rec] = fc.sample(structRecord(codec, 'sparse'), { seed: 3, numRuns: 1 });
    const i = codec.slots.findIndex((s) => s.name === 'guest_rip');
    rec!.lo.fill(0);
    rec!.hi.fill(0);
    rec!.hi[i] = 1;
    rec!.rest[20] = 0xab;
    const [part] = describeInput([rec]);
    expect(part).toEqual({
      label: 'input 1 (linux-6.12 vmcs12)',
      fields: [{ field: 'guest_rip', value: '0x0000000100000000', offset: 544 }],
      hex: [{ offset: 16, bytes: '00 00 00 00 ab 00 00 00 00 00 00 00 00 00 00 00' }],
      note: `${codec.slots.length - 1} of ${codec.slots.length} fields are zero; bytes no field covers, non-zero:`,
    });
  });

  test('bytes: only the non-zero lines, adjacent ones merged, and what was left out', () => {
    const b = new Uint8Array(4096);
    b[0x20] = 1;
    b[0x30] = 2;
    b[0x800] = 3;
    const h = hexRuns(b);
    expect(h.runs.map((r) => r.offset)).toEqual([0x20, 0x800]);
    expect(h.runs[0]!.bytes.split(' ')).toHaveLength(32);
    expect(h.note).toBe('every other byte is zero');
    expect(hexRuns(new Uint8Array(8)).note).toBe('all 8 bytes are zero');
  });

  test('operations: one row each, VMCS encodings by name', () => {
    const [part] = describeInput([[{ op: 'vmwrite', field: 0x681en, value: 0x10n }, { op: 'vmwrite', field: 0x2801n, value: 1n }, { op: 'vmxon', pa: 0x1000n }]]);
    expect(part!.fields).toEqual([
      { field: '#1 vmwrite', value: 'field=GUEST_RIP (0x681e) value=0x10' },
      { field: '#2 vmwrite', value: 'field=VMCS_LINK_POINTER_HIGH (0x2801) value=0x1' },
      { field: '#3 vmxon', value: 'pa=0x1000' },
    ]);
  });

  test('objects flatten to dotted paths; nested lists get parts of their own; big zero arrays say so', () => {
    const parts = describeInput([{ start: { host: 'linux-5.6', vm: { nested: true } }, hops: [{ host: 'linux-6.12', opsAfter: [{ op: 'run' }] }] }, Array(40).fill(0n)]);
    expect(parts[0]).toEqual({ label: 'input 1', fields: [{ field: 'start.host', value: 'linux-5.6' }, { field: 'start.vm.nested', value: 'true' }] });
    expect(parts.find((p) => p.label === 'input 1.hops')!.fields).toEqual([{ field: '[0].host', value: 'linux-6.12' }]);
    expect(parts.find((p) => p.label === 'input 1.hops[0].opsAfter')!.fields).toEqual([{ field: '#1 run', value: '' }]);
    expect(parts.at(-1)).toEqual({ label: 'input 2', fields: [], note: '40 of 40 elements are zero' });
  });

  test('never throws, whatever it is given', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = [cyclic];
    expect(() => describeInput([cyclic, Symbol('x'), null, () => 1])).not.toThrow();
    expect(describeInput([cyclic]).at(-1)!.note).toContain('nested too deeply');
  });
});

test('a real failure carries its input view into a schema-valid report, with no JavaScript literal in it', async () => {
  const def = ALL_PROPERTIES.find((p) => p.id === 'vmcs12.codec.round-trip')!;
  const decode: typeof realDecode = (c, p) => {
    const r = realDecode(c, p);
    c.slots.forEach((s, i) => s.member === 'guest_rip' && (r.hi[i] = 0));
    return r;
  };
  const o = await expectCaught(def, referenceTarget(), { deps: { decode }, seeds: [5], runs: 300 });
  expect(o.counterexample.input).toContain('Uint32Array');
  expect(o.counterexample.view).toEqual([expect.objectContaining({ label: 'input 1 (linux-6.12 vmcs12)', fields: [{ field: 'guest_rip', value: '0x0000000100000000', offset: 544 }] })]);
  const run = { target: 'reference', profile: 'linux-6.12', seed: 5 };
  const report = buildReport({ run, records: [propertyRecord(def, o, run)], expected: [def.id], startedAt: new Date(0), finishedAt: new Date(1) });
  expect(validate('report', report)).toEqual([]);
  expect(JSON.stringify(report.properties[0]!.counterexample)).not.toMatch(/\dn[,\]]/);
});
