// What a property is: its definition, the context its body gets, the violations it throws, the
// target answers it insists on (must), and the outcome the runner (runner.ts) makes of it.
import fc from 'fast-check';
import type { FieldDiff } from '../model/codec.js';
import type { Group, Target, TargetResult } from '../targets/target.js';
import type { InputPart } from './input-view.js';
import type { ModelDeps } from './model-deps.js';

export interface PropertyContext {
  readonly target: Target;
  /** model functions the tool itself relies on (mutant tests replace one) */
  readonly model: ModelDeps;
  /** fc.commands' own replay path, for model-based properties being replayed */
  readonly replayPath?: string;
  /**
   * A case differed from the profile's model only in a way the profile documents (a named quirk):
   * counted and reported with the verdict, never a failure. Call it once per case and name.
   */
  readonly documented?: (name: string) => void;
  /**
   * A part of a case the target cannot show the invariant on (a golden blob whose L2 needs VMX
   * controls the target's vCPU does not offer), though it was checked against what the target must
   * answer instead: counted once per key with the skipped cases (`unsupportedCases`), never as checked.
   */
  readonly skipPart?: (key: string, reason: string) => void;
}

export interface PropertyDef {
  /** stable id: reports, JUnit names and replay commands use it; never rename lightly */
  readonly id: string;
  /** the invariant as a sentence */
  readonly invariant: string;
  /** what is generated and how it is checked, for reports */
  readonly description?: string;
  /** target operation groups the property needs; [] for properties of the tool itself */
  readonly groups: readonly Group[];
  readonly runs?: number;
  /** model-based (fc.commands): a replay needs the failure's --replay-path as well as its path */
  readonly modelBased?: boolean;
  /**
   * Where the kernel is known to break the invariant (a historical bug, a named quirk), the reason;
   * the property must then fail, and its counterexample is reported as the expected verdict.
   */
  expectedFailure?(ctx: PropertyContext): string | null;
  build(ctx: PropertyContext): Promise<fc.IAsyncPropertyWithHooks<any>>;
}

/** A property body throws this when the invariant does not hold, with a readable field diff. */
export class Violation extends Error {
  constructor(
    message: string,
    readonly diff: readonly FieldDiff[] = [],
  ) {
    super(message);
  }
}

/**
 * For properties with an expected failure: a violation that is NOT the known bug. It fails the
 * property even where a failure is expected, so an unrelated break is never filed under the quirk.
 */
export class UnexpectedViolation extends Violation {}

/** Thrown when the target answered `unsupported` or `error` mid-property: not a property failure (the runner tells them apart). */
export class TargetStop extends Error {
  constructor(readonly result: Exclude<TargetResult<unknown>, { status: 'ok' }>) {
    super(result.reason);
  }
}

/** The target's `error` answer behind a thrown TargetStop (the target broke: crashed, hung, lied), else undefined. */
export function targetErrorOf(e: unknown): Extract<TargetResult<unknown>, { status: 'error' }> | undefined {
  return e instanceof TargetStop && e.result.status === 'error' ? e.result : undefined;
}

export function must<T>(r: TargetResult<T>): T {
  if (r.status === 'ok') return r.value;
  throw new TargetStop(r);
}

export interface Counterexample {
  readonly summary: string;
  readonly diff: readonly FieldDiff[];
  /** fast-check's rendering of the shrunk input */
  readonly input: string;
  /** the shrunk input as named fields and hex (harness/input-view.ts) */
  readonly view?: readonly InputPart[];
  /** for model-based properties: fc.commands' replay path, needed with the path to replay */
  readonly replayPath?: string;
}

/** A documented difference (a named quirk of the profile) and how many passing cases showed it. */
export interface DocumentedSeen {
  readonly name: string;
  readonly cases: number;
}

/** Cases skipped because the target does not offer an operation they need: never counted as checked. */
export interface UnsupportedCases {
  readonly count: number;
  /** the target's reason, from the first such case */
  readonly reason: string;
}

/** What a failing outcome carries, expected or not: where it failed and the shrunk counterexample. */
interface FailureOutcome {
  readonly id: string;
  readonly cases: number;
  readonly unsupportedCases?: UnsupportedCases;
  readonly seed: number;
  readonly path: string;
  readonly shrinks: number;
  readonly counterexample: Counterexample;
}

export type PropertyOutcome =
  | {
      readonly id: string;
      readonly verdict: 'pass';
      readonly cases: number;
      readonly seed: number;
      readonly unsupportedCases?: UnsupportedCases;
      /** differences from the profile's model that the profile documents, with the cases that showed them */
      readonly documented?: readonly DocumentedSeen[];
    }
  | (FailureOutcome & { readonly verdict: 'fail' })
  | (FailureOutcome & {
      readonly verdict: 'expected-fail';
      /** the known bug or quirk the counterexample shows */
      readonly reason: string;
    })
  | { readonly id: string; readonly verdict: 'unsupported'; readonly reason: string }
  | { readonly id: string; readonly verdict: 'error'; readonly reason: string; readonly stderr?: readonly string[] };

/** Asserts inside a property body: throws a Violation with the diff when the list is not empty. */
export function expectNoDiff(what: string, diff: readonly FieldDiff[]): void {
  if (diff.length) throw new Violation(`${what}: ${diff.length} field(s) differ`, diff);
}
