// The target against its profile, op by op: random VMREAD/VMWRITE sequences on a random page give
// the same results and the same final page as the profile's model (the differential check a real
// target needs: write-read starts from a zero page and writes every field in table order).
import fc from 'fast-check';
import { diffBytes, type FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import { access, accessTableFor, type AccessOutcome } from '../model/vmcs12-access.js';
import type { Vmcs12Op } from '../targets/target.js';
import { profileOf } from '../harness/common.js';
import { expectNoDiff, must, type PropertyDef } from '../harness/property.js';

const show = (o: AccessOutcome) => (o.ok ? hex(o.value) : `VMfail ${o.error}`);

export const accessMatchesProfile: PropertyDef = {
  id: 'vmcs12.access.matches-profile',
  description: "Runs random VMREAD/VMWRITE sequences (any encoding, any value) on random pages through the target and through the profile's model, and diffs every result and the final page (differential).",
  invariant: "any sequence of VMREAD/VMWRITEs on any vmcs12 page gives the profile's results and leaves the profile's page, encoding by encoding and byte by byte",
  groups: ['vmcs12-access'],
  runs: 200,
  async build(ctx) {
    const layout = profileOf(ctx.target).vmcs12;
    const table = accessTableFor(layout);
    const path = ctx.target.vmcs12AccessPath ?? 'table';
    // mostly encodings the profile knows, and their neighbours (holes, _HIGH of narrow fields, bit 15)
    const encoding = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...table.encodings).map(BigInt) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...table.encodings), fc.constantFrom(1, 2, 0x8000, 0x10000)).map(([e, d]) => BigInt(e ^ d)) },
      { weight: 1, arbitrary: fc.bigInt(0n, (1n << 64n) - 1n) },
    );
    const op: fc.Arbitrary<Vmcs12Op> = fc.oneof(
      encoding.map((e) => ({ op: 'read' as const, encoding: e })),
      fc.tuple(encoding, fc.bigInt(0n, (1n << 64n) - 1n)).map(([e, v]) => ({ op: 'write' as const, encoding: e, value: v })),
    );
    return fc.asyncProperty(fc.uint8Array({ minLength: layout.size, maxLength: layout.size }), fc.array(op, { minLength: 1, maxLength: 60 }), async (page, ops) => {
      const got = must(await ctx.target.vmcs12Access(page, ops));
      const want = page.slice();
      const diff: FieldDiff[] = [];
      ops.forEach((o, i) => {
        const w = access(table, want, o, path);
        const g = got.results[i];
        if (!g || show(g) !== show(w)) diff.push({ field: `#${i} ${o.op} ${hex(o.encoding)}${o.op === 'write' ? ` = ${hex(o.value)}` : ''}`, offset: -1, expected: show(w), actual: g ? show(g) : 'no result' });
      });
      expectNoDiff('VMREAD/VMWRITE results differ from the profile', diff);
      expectNoDiff('page after the VMWRITEs differs from the profile', diffBytes(want, got.page, 'page bytes'));
    });
  },
};
