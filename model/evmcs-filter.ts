// What KVM's eVMCS control filtering does, per profile (kernel-facts §6, kernel-tables/<ver>/
// evmcs-filter.json): which half of which VMX capability MSR a guest's RDMSR sees masked, with
// which mask for a given Hyper-V CPUID 0x4000000A.EBX, and the order of nested_evmcs_check_controls.
// Facts only, used to judge targets that offer the msr-filter group. (The full eVMCS model of
// issue 3 may absorb this table.)

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

const MSR_NAMES: Readonly<Record<number, string>> = {
  0x481: 'MSR_IA32_VMX_PINBASED_CTLS',
  0x482: 'MSR_IA32_VMX_PROCBASED_CTLS',
  0x483: 'MSR_IA32_VMX_EXIT_CTLS',
  0x484: 'MSR_IA32_VMX_ENTRY_CTLS',
  0x48b: 'MSR_IA32_VMX_PROCBASED_CTLS2',
  0x48d: 'MSR_IA32_VMX_TRUE_PINBASED_CTLS',
  0x48e: 'MSR_IA32_VMX_TRUE_PROCBASED_CTLS',
  0x48f: 'MSR_IA32_VMX_TRUE_EXIT_CTLS',
  0x490: 'MSR_IA32_VMX_TRUE_ENTRY_CTLS',
  0x491: 'MSR_IA32_VMX_VMFUNC',
};
/** A filtered MSR and its TRUE_ twin (same masks), or one MSR when there is no twin. */
const msrs = (indexes: readonly number[], half: 'high' | 'low', without: number, withPerf = without): FilteredMsr[] =>
  indexes.map((index) => ({ index, name: MSR_NAMES[index]!, half, keep: [without, withPerf] }));
const rule = (field: string, allowed: bigint): ControlRule => ({ field, allowed });
const U32 = 0xffffffffn;
/** vm_function_control: bits 63:32 fail first (a WARN), then the 32-bit mask applies */
const vmfunc = (allowed32: bigint) => [rule('vm_function_control', U32), rule('vm_function_control', allowed32)];

const LINUX_6_1: FilterFacts = {
  // deny-list: EVMCS1_UNSUPPORTED_* bits are cleared
  msrs: [
    ...msrs([0x481, 0x48d], 'high', 0xffffff3f),
    ...msrs([0x483, 0x48f], 'high', 0xffbfefff, 0xffbfffff),
    ...msrs([0x484, 0x490], 'high', 0xffffdfff, 0xffffffff),
    ...msrs([0x48b], 'high', 0xfdfd98fe),
    ...msrs([0x491], 'low', 0xfffffffe),
  ],
  checks: [
    rule('pin_based_vm_exec_control', U32 & ~0xc0n),
    rule('secondary_vm_exec_control', U32 & ~0x02026701n),
    rule('vm_exit_controls', U32 & ~0x00400000n),
    rule('vm_entry_controls', U32),
    ...vmfunc(U32 & ~0x1n),
  ],
};

const LINUX_6_12: FilterFacts = {
  // allow-list: only EVMCS1_SUPPORTED_* bits are kept; the primary controls are filtered too
  msrs: [
    ...msrs([0x481, 0x48d], 'high', 0x0000003f),
    ...msrs([0x482, 0x48e], 'high', 0xfff9fffe),
    ...msrs([0x483, 0x48f], 'high', 0x03bfefff, 0x03bfffff),
    ...msrs([0x484, 0x490], 'high', 0x0007d3ff, 0x0007f3ff),
    ...msrs([0x48b], 'high', 0xc51998fe),
    ...msrs([0x491], 'low', 0),
  ],
  checks: [
    rule('pin_based_vm_exec_control', 0x3fn),
    rule('cpu_based_vm_exec_control', 0xfff9fffen),
    rule('secondary_vm_exec_control', 0xc51998fen),
    rule('vm_exit_controls', 0x03bfffffn),
    rule('vm_entry_controls', 0x0007f3ffn),
    ...vmfunc(0n),
  ],
};

const FACTS: Readonly<Record<string, FilterFacts>> = { 'linux-6.1': LINUX_6_1, 'linux-6.12': LINUX_6_12 };

export const filterFactsFor = (profile: string): FilterFacts | undefined => FACTS[profile];

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
