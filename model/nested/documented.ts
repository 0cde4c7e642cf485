// Differences from the model that a profile's facts allow (named quirks): where the kernel's answer
// depends on state the model does not track, a target may differ from the model there and still be
// the kernel. The differential properties report such a difference by name and do not fail on it;
// every other difference fails. Facts: spec/kernel-facts.md and spec/fidelity-audit.md.

export interface DocumentedDifference {
  readonly name: string;
  /** where the facts say so */
  readonly source: string;
  readonly why: string;
  /** the diff fields (suites' FieldDiff.field) it covers */
  readonly fields: RegExp;
  /** the profiles it applies to; every nested profile when absent */
  readonly profiles?: readonly string[];
}

/** How a comparison names vmx_preemption_timer_value where GET wrote the timer's remaining time into it. */
export const TIMER_AT_GET = '(remaining time at GET)';
/** How a comparison names the preemption-timer deadline where both blobs have one: each was fixed from a clock. */
export const DEADLINE_FROM_CLOCK = '(fixed from the clock)';

export const DOCUMENTED_DIFFERENCES: readonly DocumentedDifference[] = [
  {
    name: 'VMCS12_CACHE_TAIL',
    source: 'kernel-facts §8 (GET, step 3); fidelity-audit F10.5',
    why: "GET copies all 4096 bytes of KVM's vmcs12 cache, but only 998 have a meaning: bytes 998..4095 are whatever the cache holds (the guest page after VMPTRLD, zero after SET; an enlightened VMLAUNCH clears only the 998)",
    fields: /^(vmcs12|shadow vmcs12) tail\b/,
  },
  {
    name: 'PREEMPTION_TIMER_VALUE_AT_GET',
    source: 'fidelity-audit F8 (sync_vmcs02_to_vmcs12, vmx_get_preemption_timer_value)',
    why: "in guest mode with no entry pending, under the preemption timer and its save exit control, GET writes the hrtimer's remaining time into vmx_preemption_timer_value: it depends on when GET runs, and the model's clock is L1's TSC advanced by KVM_RUN only",
    fields: new RegExp(`^vmcs12\\.vmx_preemption_timer_value ${TIMER_AT_GET.replace(/[()]/g, '\\$&')}$`),
  },
  {
    name: 'DEADLINE_FROM_THE_CLOCK',
    source: 'kernel-facts §8 (hdr.vmx.preemption_timer_deadline); fidelity-audit F8; README MODEL_CLOCK',
    why: "the preemption-timer deadline is fixed when L2 is entered, at VMLAUNCH/VMRESUME or a SET without one in the blob, as vmcs12's timer value plus L1's TSC >> 5 at that moment: a target's TSC is its own and the model's is MODEL_CLOCK, so where both blobs carry a deadline its value is not compared (a deadline lost or not carried still is: the flag, migration.state-preserved, the VMM properties)",
    fields: new RegExp(`^header\\.preemptionTimerDeadline ${DEADLINE_FROM_CLOCK.replace(/[()]/g, '\\$&')}$`),
  },
  {
    name: 'L2_RUNS_ITS_CODE',
    source: 'README "Real KVM" (the kvm: agent); fidelity-audit F8 (the model\'s L2 runs no code)',
    why: "a real L2 runs the code of its generated state, usually to a fault and a VM-exit to L1 at its first stop, which a target reports as `l2: exited`; the model's L2 runs none and stays in guest mode, so what follows (L1's next instructions, GET) is compared no further in that case. An L2 that ran and stayed in guest mode (`l2: entered`: a scenario's L2 halts at its entry point) differs from the model's in its execution state only (L2_EXECUTION_FIELDS), which is then not compared",
    fields: /^L2 ran (to its first stop|its code)\b/,
  },
  {
    name: 'ENTRY_NOT_PENDING',
    source: 'README "Real KVM" (the kvm: agent); kernel-facts §8 (KVM_STATE_NESTED_RUN_PENDING)',
    why: "a real VMLAUNCH is emulated inside KVM_RUN, which enters L2 before it returns: a target whose L1 runs the instruction reports `l2: entered` and saves no RUN_PENDING, where the model's entry stays pending until the next KVM_RUN; a migration path whose guest is saved in that state is compared no further",
    fields: /^the entry was carried out at once\b/,
  },
];

/**
 * The vmcs12 fields L2's own execution changes (and GET syncs from vmcs02): where they stand apart
 * from the model's after a target's L2 ran its code (L2_RUNS_ITS_CODE). A halted L2 has moved its
 * RIP past the HLT, its activity state is HLT, and the HLT's exit to L0 left its linear address.
 */
export const L2_EXECUTION_FIELDS: readonly string[] = ['guest_rip', 'guest_rsp', 'guest_rflags', 'guest_activity_state', 'guest_interruptibility_info', 'guest_pending_dbg_exceptions', 'guest_linear_address'];

/** The documented difference of `profile` that explains a diff field, if any. */
export function documentedDifference(profile: string, field: string): DocumentedDifference | undefined {
  return DOCUMENTED_DIFFERENCES.find((d) => (!d.profiles || d.profiles.includes(profile)) && d.fields.test(field));
}
