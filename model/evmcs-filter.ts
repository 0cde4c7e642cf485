// What KVM's eVMCS control filtering does, per profile (kernel-facts §6, kernel-tables/<ver>/
// evmcs-filter.json): which half of which VMX capability MSR a guest's RDMSR sees masked, with
// which mask for a given Hyper-V CPUID 0x4000000A.EBX, and the order of nested_evmcs_check_controls.
// An independent re-statement of the filter's arithmetic, used as the oracle that judges targets
// offering the msr-filter group; the facts themselves come from the catalog.
import type { FilterRule } from './catalog/vmx-controls.js';
import { findProfile, type Profile } from './profiles.js';

export interface FilteredMsr {
  readonly index: number;
  readonly name: string;
  /** the 32-bit half that is masked: allowed-1 settings (high) or the VMFUNC bitmap (low) */
  readonly half: 'high' | 'low';
  /** the mask applied to that half: without / with HV_X64_NESTED_EVMCS1_PERF_GLOBAL_CTRL in EBX */
  readonly keep: readonly [without: number, withPerf: number];
}

export interface ControlRule {
  /** the vmcs12 field the check reads (what a target reports as the failed rule) */
  readonly field: string;
  /** bits the field may have set; any other bit fails the check */
  readonly allowed: bigint;
}

export interface FilterFacts {
  readonly msrs: readonly FilteredMsr[];
  readonly checks: readonly ControlRule[];
}

const U32 = 0xffffffffn;

/**
 * The facts in the shape a differential check wants (keep-masks, allowed bits per field), derived
 * from the one table of them: the profile's filter and check rules (model/catalog/vmx-controls.ts).
 */
function factsOf(p: Profile): FilterFacts | undefined {
  if (!p.evmcs) return undefined;
  const keep = (r: FilterRule, mask: number) => (r.op === 'keep' ? mask : ~mask >>> 0);
  return {
    msrs: p.evmcs.filter.map((r) => ({ index: r.msr, name: r.name, half: r.half, keep: [keep(r, r.maskWithoutPerfGlobalCtrl), keep(r, r.mask)] as const })),
    checks: p.evmcs.check.map((r) => ({
      field: r.field,
      allowed: r.kind === 'high-bits' ? U32 : r.kind === 'allow' ? BigInt(r.mask >>> 0) : U32 & ~BigInt(r.mask >>> 0),
    })),
  };
}

export const filterFactsFor = (profile: string): FilterFacts | undefined => {
  const p = findProfile(profile);
  return p ? factsOf(p) : undefined;
};

/** The vmcs12 field a check rule reads: targets name a failed rule by its id or by its field. */
export function ruleField(profile: string, rule: string): string {
  return findProfile(profile)?.evmcs?.check.find((r) => r.rule === rule)?.field ?? rule;
}

/** What the guest reads: the masked half, the other half untouched; unfiltered MSRs unchanged. */
export function filterMsr(facts: FilterFacts, index: number, value: bigint, hvNestedEbx: number): bigint {
  const m = facts.msrs.find((x) => x.index === index);
  if (!m) return value;
  const keep = BigInt(m.keep[hvNestedEbx & 1 ? 1 : 0]);
  return m.half === 'high' ? (value & U32) | (((value >> 32n) & keep) << 32n) : (value & (U32 << 32n)) | (value & keep);
}

/** nested_evmcs_check_controls: the first rule a field breaks, or null when all hold. */
export function failedControlRule(facts: FilterFacts, fields: ReadonlyMap<string, bigint>): string | null {
  for (const r of facts.checks) if ((fields.get(r.field) ?? 0n) & ~r.allowed) return r.field;
  return null;
}
