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

export const DOCUMENTED_DIFFERENCES: readonly DocumentedDifference[] = [
  {
    name: 'VMCS12_CACHE_TAIL',
    source: 'kernel-facts §8 (GET, step 3); fidelity-audit F10.5',
    why: "GET copies all 4096 bytes of KVM's vmcs12 cache, but only 998 have a meaning: bytes 998..4095 are whatever the cache holds (the guest page after VMPTRLD, zero after SET; an enlightened VMLAUNCH clears only 998, where the model clears 4096)",
    fields: /^(vmcs12|shadow vmcs12) tail\b/,
  },
];

/** The documented difference of `profile` that explains a diff field, if any. */
export function documentedDifference(profile: string, field: string): DocumentedDifference | undefined {
  return DOCUMENTED_DIFFERENCES.find((d) => (!d.profiles || d.profiles.includes(profile)) && d.fields.test(field));
}
