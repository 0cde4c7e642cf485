// The vocabulary of KVM_SET_NESTED_STATE's answers: the ids of kernel-facts §9's rules that decide an
// outcome (the S steps that only change state, and W0, never do). set.ts answers with them (the
// migration step and its prediction pass set.ts's answer on), the malformation table names the rule
// it expects, and the golden manifest's schema lists them (tests/vocabulary.test.ts keeps the
// schema in step).
export const RESTORE_RULES = [
  ...['W1', 'W2', 'W3', 'W4', 'V1', 'V2a', 'V2b', 'V2c', 'V2d', 'V2e', 'V3', 'V4', 'V5', 'V6', 'V7', 'V8'],
  ...['S2', 'V9', 'V10', 'V10c', 'V11', 'V12', 'S5', 'V13a', 'V13b', 'V13c', 'V14', 'S8', 'S9'],
] as const;
export type RestoreRule = (typeof RESTORE_RULES)[number];
