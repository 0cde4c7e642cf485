// eVMCS control filtering against the profile's facts: what a guest's RDMSR of a VMX capability MSR
// returns with eVMCS enabled, and which control check rejects a vmcs12 first. Runs on targets with
// the msr-filter group (linux: trees); a profile without filter facts leaves it unsupported.
import fc from 'fast-check';
import type { FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import { failedControlRule, filterFactsFor, filterMsr, ruleField, type FilterFacts } from '../model/evmcs-filter.js';
import { writeBytes } from '../model/vmcs12-access.js';
import type { Profile } from '../model/profiles.js';
import { profileOf } from '../harness/common.js';
import { capabilitiesFor } from './msr-filter.js';
import { expectNoDiff, must, Violation, type PropertyDef } from '../harness/property.js';

function factsOf(profile: Profile): FilterFacts {
  const f = filterFactsFor(profile.name);
  if (!f) must({ status: 'unsupported', reason: `profile ${profile.name} has no eVMCS filter facts (only linux-6.1 and linux-6.12)` });
  return f!;
}

const u64 = fc.bigInt(0n, (1n << 64n) - 1n);
/** Capability values: all ones shows every mask bit, random ones show the untouched half. */
const msrValue = fc.oneof(fc.constant((1n << 64n) - 1n), u64);
const msrIndex = fc.integer({ min: 0x480, max: 0x492 });

export const filterMatchesProfile: PropertyDef = {
  id: 'msr-filter.filter.matches-profile',
  description: "Sends random lists of VMX capability MSR values and Hyper-V CPUID EBX values through the target's filter and compares each with the profile's masks (differential).",
  invariant: "with eVMCS enabled a guest reads each VMX capability MSR with exactly the profile's half masked by the profile's mask for its Hyper-V CPUID 0x4000000A.EBX, and every other bit and MSR untouched",
  groups: ['msr-filter'],
  runs: 200,
  async build(ctx) {
    const facts = factsOf(profileOf(ctx.target));
    // any values, any order, repeats, a stray index; a target that reports its VMX MSRs accepts only
    // capability sets inside them from a VMM, so it gets such a set, every MSR once, shuffled
    const msrs = ctx.target.vmxMsrs
      ? capabilitiesFor(ctx.target).chain((caps) => fc.shuffledSubarray([...caps].map(([index, value]) => ({ index, value })), { minLength: caps.size, maxLength: caps.size }))
      : fc.array(fc.record({ index: msrIndex, value: msrValue }), { minLength: 1, maxLength: 19 });
    return fc.asyncProperty(msrs, fc.nat(0xffffffff), async (list, ebx) => {
      const got = must(await ctx.target.filterVmxMsrs(list, ebx));
      if (got.length !== list.length) throw new Violation(`target filtered ${got.length} of ${list.length} MSRs`);
      const diff: FieldDiff[] = [];
      list.forEach((m, i) => {
        const want = filterMsr(facts, m.index, m.value, ebx);
        if (got[i] !== want) diff.push({ field: `${facts.msrs.find((x) => x.index === m.index)?.name ?? hex(m.index)} (EBX ${hex(ebx)}) of ${hex(m.value)}`, offset: -1, expected: hex(want, 16), actual: hex(got[i]!, 16) });
      });
      expectNoDiff('filtered VMX capability MSRs', diff);
    });
  },
};

export const checkControlsMatchesProfile: PropertyDef = {
  id: 'msr-filter.check-controls.matches-profile',
  description: "Writes control fields that mostly keep to the profile's eVMCS masks (sometimes one stray bit) and compares the target's first failed check with the profile's order (differential).",
  invariant: "nested_evmcs_check_controls accepts a vmcs12 exactly when every control field keeps to the profile's eVMCS masks, and otherwise names the first field the profile's order checks",
  groups: ['msr-filter'],
  runs: 300,
  async build(ctx) {
    const profile = profileOf(ctx.target);
    const facts = factsOf(profile);
    const fields = [...new Set(facts.checks.map((r) => r.field))];
    const allowedOf = (f: string) => facts.checks.filter((r) => r.field === f).reduce((a, r) => a & r.allowed, (1n << 64n) - 1n);
    // mostly allowed values, sometimes with one stray bit, so every rule gets to be the first to fail
    const value = (f: string) => {
      const width = f === 'vm_function_control' ? 64 : 32;
      const allowed = allowedOf(f);
      return fc.oneof(
        { weight: 4, arbitrary: fc.bigInt(0n, (1n << BigInt(width)) - 1n).map((v) => v & allowed) },
        { weight: 1, arbitrary: fc.tuple(fc.bigInt(0n, (1n << BigInt(width)) - 1n), fc.nat(width - 1)).map(([v, b]) => (v & allowed) | (1n << BigInt(b))) },
      );
    };
    return fc.asyncProperty(fc.tuple(...fields.map(value)), async (values) => {
      const page = new Uint8Array(profile.vmcs12.size);
      const set = new Map<string, bigint>();
      fields.forEach((f, i) => {
        const m = profile.vmcs12.members.find((x) => x.name === f)!;
        writeBytes(page, m.offset, m.size, values[i]!);
        set.set(f, values[i]!);
      });
      const got = must(await ctx.target.evmcsCheckControls(page));
      const want = failedControlRule(facts, set);
      const gotRule = got.ok ? null : ruleField(profile.name, got.rule);
      if (gotRule !== want)
        throw new Violation(`nested_evmcs_check_controls disagrees with profile ${profile.name}`, [
          { field: 'first failed rule', offset: -1, expected: want ?? '(accepted)', actual: gotRule ?? '(accepted)' },
          ...fields.map((f) => ({ field: f, offset: profile.vmcs12.members.find((x) => x.name === f)!.offset, expected: `allowed ${hex(allowedOf(f))}`, actual: hex(set.get(f)!) })),
        ]);
    });
  },
};

export const evmcsFilterSuite: readonly PropertyDef[] = [filterMatchesProfile, checkControlsMatchesProfile];
