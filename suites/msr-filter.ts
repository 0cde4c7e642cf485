// Monotonic filtering: the eVMCS filter only narrows what a guest sees (allowed-1 shrinks, allowed-0
// never changes), is idempotent, grows with the PERF_GLOBAL_CTRL CPUID bit, and distributes over the
// meet of two capability sets (what a migration pool's common set relies on).
import fc from 'fast-check';
import type { FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import { capabilityProblems, MSR_NAMES, meet, type MsrSet } from '../model/vmx-msrs.js';
import type { Target } from '../targets/target.js';
import { capabilitySet, capabilitySetWithin, hvNestedEbx } from '../generators/capabilities.js';
import { expectNoDiff, must, Violation, type PropertyDef } from '../harness/property.js';

async function filtered(t: Target, msrs: MsrSet, ebx: number): Promise<Map<number, bigint>> {
  const list = [...msrs].map(([index, value]) => ({ index, value }));
  const out = must(await t.filterVmxMsrs(list, ebx));
  if (out.length !== list.length) throw new Violation(`target filtered ${out.length} of ${list.length} MSRs`);
  return new Map(list.map((m, i) => [m.index, out[i]!]));
}

/** Capability sets the target can be given: inside the VMX MSRs it reports, when it reports them. */
export const capabilitiesFor = (t: Target): fc.Arbitrary<MsrSet> => (t.vmxMsrs ? capabilitySetWithin(t.vmxMsrs) : capabilitySet);

const name = (i: number) => MSR_NAMES[i] ?? hex(i);
const row = (i: number, what: string, expected: bigint, actual: bigint): FieldDiff => ({ field: `${name(i)} ${what}`, offset: -1, expected: hex(expected, 16), actual: hex(actual, 16) });

export const filterOnlyNarrows: PropertyDef = {
  id: 'msr.filter.only-narrows',
  description: 'Generates KVM-shaped capability sets and Hyper-V CPUID values; filters them through the target and checks subset, untouched allowed-0, consistency and idempotence.',
  invariant: 'the filtered MSRs are a subset of the unfiltered ones (only allowed-1 bits, or VMFUNC bits, are removed; allowed-0 never changes), still a consistent capability set, and filtering twice changes nothing',
  groups: ['msr-filter'],
  runs: 300,
  async build(ctx) {
    return fc.asyncProperty(capabilitiesFor(ctx.target), hvNestedEbx, async (caps, ebx) => {
      const once = await filtered(ctx.target, caps, ebx);
      const twice = await filtered(ctx.target, once, ebx);
      const diff: FieldDiff[] = [];
      for (const [i, raw] of caps) {
        const f = once.get(i)!;
        const lowKept = i === 0x491 ? (f & 0xffffffffn & ~raw) === 0n && f >> 32n === raw >> 32n : (f & 0xffffffffn) === (raw & 0xffffffffn);
        const highShrinks = (f >> 32n & ~(raw >> 32n)) === 0n;
        if (!lowKept || !highShrinks) diff.push(row(i, 'filtered ⊆ unfiltered', raw, f));
        if (twice.get(i) !== f) diff.push(row(i, 'filter(filter(x)) = filter(x)', f, twice.get(i)!));
      }
      for (const problem of capabilityProblems(once)) diff.push({ field: 'filtered set is consistent', offset: -1, expected: 'no problem', actual: problem });
      expectNoDiff('filter widened or changed a capability', diff);
    });
  },
};

export const filterMonotoneInCpuid: PropertyDef = {
  id: 'msr.filter.monotone-in-cpuid',
  description: 'Filters each generated capability set with CPUID 0x4000000A.EBX bit 0 set and clear and checks that the set bit never hides a control.',
  invariant: 'with Hyper-V CPUID 0x4000000A.EBX bit 0 set, a guest sees a superset of what it sees with the bit clear',
  groups: ['msr-filter'],
  runs: 300,
  async build(ctx) {
    return fc.asyncProperty(capabilitiesFor(ctx.target), hvNestedEbx, async (caps, ebx) => {
      const withBit = await filtered(ctx.target, caps, ebx | 1);
      const without = await filtered(ctx.target, caps, ebx & ~1);
      const diff: FieldDiff[] = [];
      for (const [i, w] of without) if ((w & ~withBit.get(i)!) !== 0n) diff.push(row(i, 'bit set ⊇ bit clear', withBit.get(i)!, w));
      expectNoDiff('setting the PERF_GLOBAL_CTRL CPUID bit hid a control', diff);
    });
  },
};

export const filterDistributesOverMeet: PropertyDef = {
  id: 'msr.filter.distributes-over-meet',
  description: 'Filters the meet of two generated capability sets and compares it with the meet of the two filtered sets, MSR by MSR.',
  invariant: "filter(a ∧ b) = filter(a) ∧ filter(b): filtering a pool's common capability set equals the common set of the filtered hosts",
  groups: ['msr-filter'],
  runs: 300,
  async build(ctx) {
    return fc.asyncProperty(capabilitiesFor(ctx.target), capabilitiesFor(ctx.target), hvNestedEbx, async (a, b, ebx) => {
      const left = await filtered(ctx.target, meet(a, b), ebx);
      const right = meet(await filtered(ctx.target, a, ebx), await filtered(ctx.target, b, ebx));
      const diff: FieldDiff[] = [];
      for (const [i, l] of left) if (right.get(i) !== l) diff.push(row(i, 'filter(a ∧ b) vs filter(a) ∧ filter(b)', right.get(i)!, l));
      expectNoDiff('filtering does not distribute over the meet', diff);
    });
  },
};

export const msrFilterSuite: readonly PropertyDef[] = [filterOnlyNarrows, filterMonotoneInCpuid, filterDistributesOverMeet];
