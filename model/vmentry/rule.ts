// What one VM-entry rule is. Its own module so that the rule tables (rules.ts, segments.ts) can
// share the type without importing each other.
import type { View } from './input.js';

export type Stage = 'controls' | 'host' | 'guest' | 'prepare' | 'msr-load';

export interface VmentryRule {
  readonly id: string;
  readonly stage: Stage;
  /** the KVM function that holds the check */
  readonly fn: string;
  readonly desc: string;
  readonly fails: (v: View) => boolean;
  /** checked only on VMLAUNCH/VMRESUME (from_vmentry), not on KVM_SET_NESTED_STATE */
  readonly vmentryOnly?: boolean;
  /** enum vm_entry_failure_code in the exit qualification (guest and prepare stages) */
  readonly qualification?: number;
  /** an exit qualification that depends on the state (the MSR-load list: the failing entry + 1) */
  readonly qualificationOf?: (v: View) => number;
  /** why no vmcs12 breaks this rule alone under the modelled CPU (an earlier rule pre-empts it, or it cannot fail) */
  readonly unreachable?: string;
}
