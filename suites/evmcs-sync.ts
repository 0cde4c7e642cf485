// eVMCS sync: vmcs12 -> eVMCS -> vmcs12 keeps exactly the fields both directions copy, and under
// a clean-fields mask exactly the fields of clean groups keep their old vmcs12 value.
import fc from 'fast-check';
import { CLEAN_FIELDS, EVMCS_FIELDS } from '../model/catalog/evmcs.js';
import { codecFor, decode, encode, slotValue, type FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import type { Layout } from '../model/layout.js';
import { anyStructRecord } from '../generators/struct-record.js';
import { profileOf } from './common.js';
import { expectNoDiff, must, type PropertyContext, type PropertyDef } from './harness.js';

/** Hyper-V's own masks are 16 bits; KVM tests every bit it knows and ignores the rest. */
export const cleanMask = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }), fc.nat());

async function setup(ctx: PropertyContext) {
  const p = profileOf(ctx.target);
  if (!p.evmcs) throw new Error(`profile ${p.name} has no eVMCS model`);
  return { v: p.vmcs12, e: p.evmcs.layout };
}

/** What vmcs12 member m holds after toEvmcs(A, E) then toVmcs12(E', B, mask), from the catalog's copy rules. */
function expectedAfterSync(v: Layout, a: Uint8Array, e: Uint8Array, b: Uint8Array, mask: number, eLayout: Layout): Uint8Array {
  const vc = codecFor(v);
  const ec = codecFor(eLayout);
  const A = decode(vc, a);
  const E = decode(ec, e);
  const out = decode(vc, b);
  for (const f of EVMCS_FIELDS) {
    const copiedIn = f.copy.startsWith('always') || (f.copy.startsWith('in') && (mask & CLEAN_FIELDS[f.cleanGroup]) === 0);
    if (!copiedIn) continue;
    const i = vc.slotIndex.get(f.member)!;
    const src = f.copy.endsWith('out') ? { rec: A, j: i } : { rec: E, j: ec.slotIndex.get(f.member)! };
    out.lo[i] = src.rec.lo[src.j]!;
    out.hi[i] = src.rec.hi[src.j]!;
  }
  return encode(vc, out);
}

function diffPages(v: Layout, want: Uint8Array, got: Uint8Array, label: (member: string) => string): FieldDiff[] {
  const c = codecFor(v);
  const w = decode(c, want);
  const g = decode(c, got);
  const out: FieldDiff[] = [];
  c.slots.forEach((s, i) => {
    if (slotValue(w, i) !== slotValue(g, i)) out.push({ field: label(s.member), offset: s.offset, expected: hex(slotValue(w, i), s.bytes * 2), actual: hex(slotValue(g, i), s.bytes * 2) });
  });
  return out;
}

const groupOf = new Map(EVMCS_FIELDS.map((f) => [f.member, `${f.cleanGroup}, ${f.copy}`]));
const label = (m: string) => `${m} (${groupOf.get(m) ?? 'no eVMCS field'})`;

function syncProperty(id: string, invariant: string, description: string, mask: fc.Arbitrary<number>): PropertyDef {
  return {
    id,
    invariant,
    description,
    groups: ['evmcs-sync'],
    runs: 200,
    async build(ctx) {
      const { v, e } = await setup(ctx);
      const vc = codecFor(v);
      const ec = codecFor(e);
      return fc.asyncProperty(anyStructRecord(vc), anyStructRecord(ec), anyStructRecord(vc), mask, async (ra, re, rb, m) => {
        const a = encode(vc, ra);
        const ev = encode(ec, re);
        const b = encode(vc, rb);
        const e2 = must(await ctx.target.vmcs12ToEvmcs(a, ev));
        const b2 = must(await ctx.target.evmcsToVmcs12(e2, b, m));
        const want = expectedAfterSync(v, a, ev, b, m, e);
        expectNoDiff(`vmcs12 after vmcs12 -> eVMCS -> vmcs12 with hv_clean_fields ${hex(m, 8)}`, diffPages(v, want, b2, label));
      });
    },
  };
}

export const syncRoundTrip = syncProperty(
  'evmcs.sync.round-trip',
  'vmcs12 -> eVMCS -> vmcs12 with mask 0 preserves every field both directions copy, takes copy-in-only fields from the eVMCS, and leaves every other field as it was',
  "Generates a vmcs12, an eVMCS and an old vmcs12; copies vmcs12 -> eVMCS -> vmcs12 with mask 0 through the target and compares every member with the catalog's copy rules.",
  fc.constant(0),
);

export const syncCleanGroups = syncProperty(
  'evmcs.sync.clean-groups-kept',
  'with a clean-fields mask, exactly the fields of clean groups keep their old vmcs12 value; unconditional fields are always copied',
  'The same round trip under a random hv_clean_fields mask: members of clean groups must keep their old vmcs12 value, unconditional ones must be copied.',
  cleanMask,
);

export const evmcsSyncSuite: readonly PropertyDef[] = [syncRoundTrip, syncCleanGroups];
