// eVMCS sync: vmcs12 -> eVMCS -> vmcs12 keeps exactly the fields both directions copy, and under
// a clean-fields mask exactly the fields of clean groups keep their old vmcs12 value. The round trip
// cannot see a field only one direction copies; evmcs.sync.matches-profile judges each direction.
import fc from 'fast-check';
import { CLEAN_FIELDS, EVMCS_FIELDS, type EvmcsFieldSpec } from '../model/catalog/evmcs.js';
import { codecFor, decode, diffBytes, encode, slotValue, type FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import type { Layout } from '../model/layout.js';
import { anyStructRecord } from '../generators/struct-record.js';
import { profileOf } from '../harness/common.js';
import { expectNoDiff, must, type PropertyContext, type PropertyDef } from '../harness/property.js';

/** Hyper-V's own masks are 16 bits; KVM tests every bit it knows and ignores the rest. */
export const cleanMask = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }), fc.nat());

async function setup(ctx: PropertyContext) {
  const p = profileOf(ctx.target);
  if (!p.evmcs) throw new Error(`profile ${p.name} has no eVMCS model`);
  return { v: p.vmcs12, e: p.evmcs.layout };
}

/**
 * Oracles from the catalog's copy rules (never the model's copy functions): each direction alone.
 * Copy-out writes every `…out` field of the eVMCS from the vmcs12 and leaves the rest; copy-in writes
 * every `always…` field and every `in…` field whose clean group is dirty (its mask bit clear).
 */
const copiedOut = (f: EvmcsFieldSpec) => f.copy.endsWith('out');
const copiedIn = (f: EvmcsFieldSpec, mask: number) => f.copy.startsWith('always') || (f.copy.startsWith('in') && (mask & CLEAN_FIELDS[f.cleanGroup]) === 0);

function copyByName(from: Layout, to: Layout, src: Uint8Array, dst: Uint8Array, copies: (f: EvmcsFieldSpec) => boolean): Uint8Array {
  const sc = codecFor(from);
  const tc = codecFor(to);
  const S = decode(sc, src);
  const out = decode(tc, dst);
  for (const f of EVMCS_FIELDS.filter(copies)) {
    const i = tc.slotIndex.get(f.member)!;
    const j = sc.slotIndex.get(f.member)!;
    out.lo[i] = S.lo[j]!;
    out.hi[i] = S.hi[j]!;
  }
  return encode(tc, out);
}

/** copy_vmcs12_to_enlightened(A) into eVMCS E, by the catalog. */
export const expectedCopyOut = (v: Layout, e: Layout, a: Uint8Array, ev: Uint8Array): Uint8Array => copyByName(v, e, a, ev, copiedOut);
/** copy_enlightened_to_vmcs12(E, mask) into vmcs12 B, by the catalog. */
export const expectedCopyIn = (v: Layout, e: Layout, ev: Uint8Array, b: Uint8Array, mask: number): Uint8Array => copyByName(e, v, ev, b, (f) => copiedIn(f, mask));

/** Member by member (and, with `unnamed`, the bytes no member names, as byte runs). */
function diffPages(v: Layout, want: Uint8Array, got: Uint8Array, label: (member: string) => string, unnamed = false): FieldDiff[] {
  const c = codecFor(v);
  const w = decode(c, want);
  const g = decode(c, got);
  const out: FieldDiff[] = [];
  c.slots.forEach((s, i) => {
    if (slotValue(w, i) !== slotValue(g, i)) out.push({ field: label(s.member), offset: s.offset, expected: hex(slotValue(w, i), s.bytes * 2), actual: hex(slotValue(g, i), s.bytes * 2) });
  });
  return unnamed ? [...out, ...diffBytes(w.rest, g.rest, `${v.structure} bytes no member names`, { max: 8 })] : out;
}

const groupOf = new Map(EVMCS_FIELDS.map((f) => [f.member, `${f.cleanGroup}, ${f.copy}`]));
const label = (m: string) => `${m} (${groupOf.get(m) ?? 'no eVMCS field'})`;

/** One sync case: a vmcs12 A, an eVMCS E, an old vmcs12 B (every field random) and a clean-fields mask. */
interface SyncCase {
  readonly v: Layout;
  readonly e: Layout;
  readonly a: Uint8Array;
  readonly ev: Uint8Array;
  readonly b: Uint8Array;
  readonly m: number;
}

async function syncCases(ctx: PropertyContext, mask: fc.Arbitrary<number>, check: (c: SyncCase) => Promise<void>) {
  const { v, e } = await setup(ctx);
  const vc = codecFor(v);
  const ec = codecFor(e);
  return fc.asyncProperty(anyStructRecord(vc), anyStructRecord(ec), anyStructRecord(vc), mask, (ra, re, rb, m) => check({ v, e, a: encode(vc, ra), ev: encode(ec, re), b: encode(vc, rb), m }));
}

function syncProperty(id: string, invariant: string, description: string, mask: fc.Arbitrary<number>): PropertyDef {
  return {
    id,
    invariant,
    description,
    groups: ['evmcs-sync'],
    runs: 200,
    build: (ctx) =>
      syncCases(ctx, mask, async ({ v, e, a, ev, b, m }) => {
        const e2 = must(await ctx.target.vmcs12ToEvmcs(a, ev));
        const b2 = must(await ctx.target.evmcsToVmcs12(e2, b, m));
        const want = expectedCopyIn(v, e, expectedCopyOut(v, e, a, ev), b, m);
        expectNoDiff(`vmcs12 after vmcs12 -> eVMCS -> vmcs12 with hv_clean_fields ${hex(m, 8)}`, diffPages(v, want, b2, label));
      }),
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

export const syncMatchesProfile: PropertyDef = {
  id: 'evmcs.sync.matches-profile',
  invariant:
    "each copy direction alone gives the profile's result field by field: copy-out writes exactly the fields the profile copies out (those only copy-out writes included), copy-in exactly the fields it copies in under any hv_clean_fields mask, and neither touches another byte",
  description:
    "Generates a vmcs12, an eVMCS, an old vmcs12 and a clean-fields mask; runs vmcs12 -> eVMCS and, apart, eVMCS -> vmcs12 on the target and compares each result with the profile's copy rules, every eVMCS and vmcs12 member by name (differential).",
  groups: ['evmcs-sync'],
  runs: 200,
  build: (ctx) =>
    syncCases(ctx, cleanMask, async ({ v, e, a, ev, b, m }) => {
      const out = must(await ctx.target.vmcs12ToEvmcs(a, ev));
      const into = must(await ctx.target.evmcsToVmcs12(ev, b, m));
      expectNoDiff('copy-out (vmcs12 -> eVMCS) differs from the profile', diffPages(e, expectedCopyOut(v, e, a, ev), out, label, true));
      expectNoDiff(`copy-in (eVMCS -> vmcs12, hv_clean_fields ${hex(m, 8)}) differs from the profile`, diffPages(v, expectedCopyIn(v, e, ev, b, m), into, label, true));
    }),
};

export const evmcsSyncSuite: readonly PropertyDef[] = [syncRoundTrip, syncCleanGroups, syncMatchesProfile];
