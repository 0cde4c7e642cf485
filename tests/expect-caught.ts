// The rule every test that plants a bug follows, in one place: the property fails, and the failure is
// one a person can act on. (a) Its counterexample was shrunk: fast-check's numShrinks > 0, each
// shrink being a strictly smaller input that still fails. (b) It says what differs: a non-empty
// field diff, a summary, the input. (c) The printed replay (seed and path, and fc.commands' replay
// path) reproduces it: the same summary and diff in one run.
import { expect } from 'vitest';
import { formatOutcome, type RunIdentity } from '../harness/format.js';
import { MODEL_DEPS, type ModelDeps } from '../harness/model-deps.js';
import type { PropertyDef, PropertyOutcome } from '../harness/property.js';
import { runProperty } from '../harness/runner.js';
import type { Target } from '../targets/target.js';

export type Failure = Extract<PropertyOutcome, { verdict: 'fail' }>;

export interface CaughtOptions {
  deps?: Partial<ModelDeps> | undefined;
  /** tried in turn until one fails: a bug few inputs reach may need a second seed */
  seeds?: readonly number[];
  runs?: number;
  /**
   * Why this failure cannot shrink (a one-case property over a constant input): it must then not
   * have shrunk, so the exemption goes stale loudly instead of hiding a missing shrink.
   */
  unshrinkable?: string | undefined;
  run?: RunIdentity;
}

const REFERENCE_RUN: RunIdentity = { target: 'reference', profile: 'linux-6.12' };

/** Runs `def` against the planted bug and asserts (a), (b) and (c); returns the failure for the test's own checks. */
export async function expectCaught(def: PropertyDef, target: Target, o: CaughtOptions = {}): Promise<Failure> {
  const deps = { ...MODEL_DEPS, ...o.deps };
  let outcome: PropertyOutcome | undefined;
  for (const seed of o.seeds ?? [1, 2, 3]) {
    outcome = await runProperty(def, target, { seed, ...(o.runs !== undefined ? { runs: o.runs } : {}) }, deps);
    if (outcome.verdict === 'fail') break;
  }
  expect(outcome?.verdict, `${def.id} does not catch the bug`).toBe('fail');
  const f = outcome as Failure;
  // (a)
  expect(f.path).toMatch(/^\d+(:\d+)*$/);
  if (o.unshrinkable === undefined) expect(f.shrinks, `${def.id}: the counterexample was never shrunk`).toBeGreaterThan(0);
  else expect(f.shrinks, `${def.id} is declared unshrinkable (${o.unshrinkable}), yet it shrank`).toBe(0);
  // (b)
  expect(f.counterexample.diff.length, `${def.id}: the failure names no field that differs`).toBeGreaterThan(0);
  expect(f.counterexample.summary).not.toBe('');
  expect(f.counterexample.input).not.toMatch(/^(\[\s*\])?$/);
  // (c), as printed
  const text = formatOutcome(f, o.run ?? REFERENCE_RUN).join('\n');
  expect(text).toContain(`seed ${f.seed}, path ${f.path}, shrunk ${f.shrinks} times`);
  expect(text).toContain(`replay: nvmx-conformance replay ${def.id} --seed ${f.seed} --path ${f.path}`);
  const replayPath = f.counterexample.replayPath;
  if (replayPath !== undefined) expect(text).toContain(`--replay-path '${replayPath}'`);
  const again = await runProperty(def, target, { seed: f.seed, path: f.path, ...(replayPath !== undefined ? { replayPath } : {}) }, deps);
  expect(again.verdict, `${def.id}: the replay does not fail`).toBe('fail');
  if (again.verdict === 'fail') expect({ summary: again.counterexample.summary, diff: again.counterexample.diff }).toEqual({ summary: f.counterexample.summary, diff: f.counterexample.diff });
  return f;
}

/**
 * A property that must show its profile's known bug, on a target without the bug: the failure is a
 * counterexample that never came, so there is nothing to shrink and no path to replay. What can be
 * asserted instead: the diff names the missing bug, and the same seed fails the same way again.
 */
export async function expectMissingBugCaught(def: PropertyDef, target: Target, o: { seed?: number; runs?: number; deps?: Partial<ModelDeps> } = {}): Promise<Failure> {
  const opts = { seed: o.seed ?? 1, ...(o.runs !== undefined ? { runs: o.runs } : {}) };
  const deps = { ...MODEL_DEPS, ...o.deps };
  const outcome = await runProperty(def, target, opts, deps);
  expect(outcome.verdict, `${def.id} passes on a target without its known bug`).toBe('fail');
  const f = outcome as Failure;
  expect(f.counterexample.summary).toMatch(/^expected this target to show ".+", but \d+ cases found no counterexample$/);
  expect({ path: f.path, shrinks: f.shrinks }).toEqual({ path: '', shrinks: 0 });
  expect(f.counterexample.diff).toEqual([{ field: 'expected failure', offset: -1, expected: expect.any(String), actual: `not shown in ${f.cases} cases` }]);
  expect(await runProperty(def, target, opts, deps)).toEqual(f);
  return f;
}
