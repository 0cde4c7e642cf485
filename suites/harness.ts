// What a property is, and how one runs against a target: fast-check with a recorded seed, a
// shrunk counterexample rendered as a field diff, and verdicts that never turn missing evidence
// into a pass (unsupported and target errors are their own verdicts).
import fc from 'fast-check';
import type { FieldDiff } from '../model/codec.js';
import type { Group, Target, TargetResult } from '../targets/target.js';
import { MODEL_DEPS, type ModelDeps } from './model-deps.js';

export interface PropertyContext {
  readonly target: Target;
  /** model functions the tool itself relies on (mutant tests replace one) */
  readonly model: ModelDeps;
}

export interface PropertyDef {
  /** stable id: reports, JUnit names and replay commands use it; never rename lightly */
  readonly id: string;
  /** the invariant as a sentence */
  readonly invariant: string;
  /** target operation groups the property needs; [] for properties of the tool itself */
  readonly groups: readonly Group[];
  readonly runs?: number;
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

/** Thrown when the target answered `unsupported` or `error` mid-property: not a property failure. */
class TargetStop extends Error {
  constructor(readonly result: Exclude<TargetResult<unknown>, { status: 'ok' }>) {
    super(result.reason);
  }
}

export function must<T>(r: TargetResult<T>): T {
  if (r.status === 'ok') return r.value;
  throw new TargetStop(r);
}

export interface RunOptions {
  readonly seed: number;
  readonly runs?: number;
  readonly path?: string;
}

export interface Counterexample {
  readonly summary: string;
  readonly diff: readonly FieldDiff[];
  /** fast-check's rendering of the shrunk input */
  readonly input: string;
}

export type PropertyOutcome =
  | { readonly id: string; readonly verdict: 'pass'; readonly cases: number; readonly seed: number }
  | {
      readonly id: string;
      readonly verdict: 'fail';
      readonly cases: number;
      readonly seed: number;
      readonly path: string;
      readonly shrinks: number;
      readonly counterexample: Counterexample;
    }
  | { readonly id: string; readonly verdict: 'unsupported'; readonly reason: string }
  | { readonly id: string; readonly verdict: 'error'; readonly reason: string; readonly stderr?: readonly string[] };

const MAX_INPUT_CHARS = 2000;

export async function runProperty(def: PropertyDef, target: Target, opts: RunOptions, model: ModelDeps = MODEL_DEPS): Promise<PropertyOutcome> {
  const missing = def.groups.filter((g) => !target.groups.has(g));
  if (missing.length) {
    const why = missing.map((g) => target.unsupportedReasons?.[g]).filter(Boolean);
    return { id: def.id, verdict: 'unsupported', reason: `unsupported by target ${target.identity.name}: needs ${missing.join(', ')}${why.length ? ` (${why.join('; ')})` : ''}` };
  }
  if (def.groups.length && target.beforeProperty) {
    const ready = await target.beforeProperty();
    if (ready.status !== 'ok') return stopOutcome(def.id, new TargetStop(ready));
  }
  let prop: fc.IAsyncPropertyWithHooks<unknown>;
  try {
    prop = await def.build({ target, model });
  } catch (e) {
    return stopOutcome(def.id, e);
  }
  // a property with one case is a fixed check: --runs does not multiply it
  const numRuns = opts.path !== undefined || def.runs === 1 ? 1 : (opts.runs ?? def.runs ?? 100);
  const details = await fc.check(prop, { seed: opts.seed, numRuns, ...(opts.path !== undefined ? { path: opts.path, endOnFailure: true } : {}) });
  if (!details.failed) return { id: def.id, verdict: 'pass', cases: details.numRuns, seed: opts.seed };
  const err = details.errorInstance;
  if (err instanceof TargetStop) return stopOutcome(def.id, err);
  const input = fc.stringify(details.counterexample);
  return {
    id: def.id,
    verdict: 'fail',
    cases: details.numRuns,
    seed: details.seed,
    path: details.counterexamplePath ?? '',
    shrinks: details.numShrinks,
    counterexample: {
      summary: err instanceof Error ? err.message : String(err),
      diff: err instanceof Violation ? err.diff : [],
      input: input.length > MAX_INPUT_CHARS ? input.slice(0, MAX_INPUT_CHARS) + ' …' : input,
    },
  };
}

function stopOutcome(id: string, e: unknown): PropertyOutcome {
  if (e instanceof TargetStop) {
    const r = e.result;
    return r.status === 'unsupported'
      ? { id, verdict: 'unsupported', reason: r.reason }
      : { id, verdict: 'error', reason: r.reason, ...(r.stderr ? { stderr: r.stderr } : {}) };
  }
  return { id, verdict: 'error', reason: `property setup failed: ${e instanceof Error ? e.message : String(e)}` };
}

/** Asserts inside a property body: throws a Violation with the diff when the list is not empty. */
export function expectNoDiff(what: string, diff: readonly FieldDiff[]): void {
  if (diff.length) throw new Violation(`${what}: ${diff.length} field(s) differ`, diff);
}
