// Running the VM-entry rules: KVM stops at the first failure, so that is what decides; the full
// list of failures is for properties (a state with one rule broken must fail that rule only).
import { View, type CheckInput } from './input.js';
import type { Stage, VmentryRule } from './rules.js';

/** restore: KVM_SET_NESTED_STATE (from_vmentry = false); vmentry: VMLAUNCH/VMRESUME */
export type CheckMode = 'restore' | 'vmentry';

const applies = (rule: VmentryRule, mode: CheckMode, stages: readonly Stage[]) => stages.includes(rule.stage) && (mode === 'vmentry' || !rule.vmentryOnly);

const ALL_STAGES: readonly Stage[] = ['controls', 'host', 'guest', 'prepare', 'msr-load'];

export function firstFailure(rules: readonly VmentryRule[], input: CheckInput, mode: CheckMode, stages: readonly Stage[] = ALL_STAGES): VmentryRule | null {
  const v = new View(input);
  return rules.find((r) => applies(r, mode, stages) && r.fails(v)) ?? null;
}

export function allFailures(rules: readonly VmentryRule[], input: CheckInput, mode: CheckMode, stages: readonly Stage[] = ALL_STAGES): VmentryRule[] {
  const v = new View(input);
  return rules.filter((r) => applies(r, mode, stages) && r.fails(v));
}

/** What a failure means for VMLAUNCH/VMRESUME: a VMfailValid error number, or a VM-exit on entry failure. */
export type EntryOutcome = { readonly kind: 'VMfailValid'; readonly error: 7 | 8 } | { readonly kind: 'vmexit'; readonly exitReason: number; readonly qualification: number };

/** EXIT_REASON_INVALID_STATE (33) with bit 31, "VM-entry failure" */
export const ENTRY_FAILURE_INVALID_STATE = 0x8000_0021;
/** EXIT_REASON_MSR_LOAD_FAIL (34) with bit 31 */
export const ENTRY_FAILURE_MSR_LOAD = 0x8000_0022;

/** The exit reason of an entry failure at this stage (guest, prepare, msr-load). */
export const entryFailureReason = (stage: Stage | undefined): number => (stage === 'msr-load' ? ENTRY_FAILURE_MSR_LOAD : ENTRY_FAILURE_INVALID_STATE);

/** The outcome of a failing rule; `qualification` for the rules whose qualification depends on the state. */
export function entryOutcome(rule: VmentryRule, qualification: number = rule.qualification ?? 0): EntryOutcome {
  if (rule.stage === 'controls') return { kind: 'VMfailValid', error: 7 };
  if (rule.stage === 'host') return { kind: 'VMfailValid', error: 8 };
  return { kind: 'vmexit', exitReason: entryFailureReason(rule.stage), qualification };
}
