// How a property runs against a target: fast-check with a recorded seed, a shrunk counterexample
// rendered as a field diff, and verdicts that never turn missing evidence into a pass
// (unsupported and target errors are their own verdicts).
import fc from 'fast-check';
import type { Target } from '../targets/target.js';
import { describeInput } from './input-view.js';
import { MODEL_DEPS, type ModelDeps } from './model-deps.js';
import { TargetStop, UnexpectedViolation, Violation, type PropertyDef, type PropertyOutcome } from './property.js';

export interface RunOptions {
  readonly seed: number;
  readonly runs?: number;
  readonly path?: string;
  /** model-based properties also need fc.commands' replay path (printed with the failure) */
  readonly replayPath?: string;
  /** aborted when the run is cancelled (SIGINT, time budget): the property stops between cases */
  readonly signal?: AbortSignal;
}

const MAX_INPUT_CHARS = 2000;
/**
 * skipped cases allowed per case run (fast-check's budget): the cases a target cannot run and those a
 * property's own fc.pre discards share it (on kvm: 14 of 15 malformation cases checked ran out of 10)
 */
const MAX_SKIPS_PER_RUN = 20;
/** with no case run yet, this many skipped cases in a row make the property unsupported */
const FIRST_SKIPS_GIVE_UP = 20;

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
  const seen = new Map<string, number>();
  const documented = (name: string) => void seen.set(name, (seen.get(name) ?? 0) + 1);
  const parts = new Map<string, string>();
  const skipPart = (key: string, reason: string) => void (parts.has(key) || parts.set(key, reason));
  const scope = vcpuScope(target);
  try {
    prop = await def.build({ target: scope.target, model, documented, skipPart, ...(opts.replayPath !== undefined ? { replayPath: opts.replayPath } : {}) });
  } catch (e) {
    return stopOutcome(def.id, e);
  }
  prop = prop.afterEach(async (previous) => {
    await previous();
    await scope.release();
  });
  const expected = def.expectedFailure?.({ target, model }) ?? null;
  // a property with one case is a fixed check: --runs does not multiply it; one that must show a
  // known bug runs at least its own count, so a small --runs cannot pass off missing evidence as a failure
  // a slow target caps the default count of the properties that need it (kvm: 100, about a minute
  // each); --runs overrides, and the report shows the cases each property ran
  const own = def.runs ?? 100;
  const runs = opts.runs ?? (def.groups.length && target.defaultRuns ? Math.min(own, target.defaultRuns) : own);
  const numRuns = opts.path !== undefined || def.runs === 1 ? 1 : expected ? Math.max(runs, own) : runs;
  let details: fc.RunDetails<unknown>;
  const skipped = skipUnsupported(prop);
  const bounded = boundShrinking(skipped.prop, target.shrinkBudget);
  try {
    details = await fc.check(opts.signal ? stopOnAbort(bounded.prop, opts.signal) : bounded.prop, {
      seed: opts.seed,
      numRuns,
      // a target without some operation skips the cases that need it; the rest still count
      maxSkipsPerRun: MAX_SKIPS_PER_RUN,
      ...(opts.path !== undefined ? { path: opts.path, endOnFailure: true } : {}),
    });
  } catch (e) {
    // fast-check refuses a path that does not belong to this property and seed
    return { id: def.id, verdict: 'error', reason: `cannot run: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (skipped.gaveUp)
    return { id: def.id, verdict: 'unsupported', reason: `the first ${FIRST_SKIPS_GIVE_UP} cases all need an operation the target does not offer: ${skipped.reason}` };
  // fewer cases than asked is not a pass: the evidence is incomplete
  if (details.interrupted && details.counterexample === null)
    return { id: def.id, verdict: 'error', reason: `interrupted after ${details.numRuns} of ${numRuns} cases: the run was cancelled` };
  // cases the target could not run; cases a property's own fc.pre discarded are neither run nor counted
  const skips = (skipped.reason ? skipped.skips : 0) + parts.size;
  const unsupportedCases = skips ? { unsupportedCases: { count: skips, reason: skipped.reason || parts.values().next().value! } } : {};
  if (!details.failed && details.numRuns === 0 && skipped.reason)
    return { id: def.id, verdict: 'unsupported', reason: `every case needs an operation the target does not offer (${details.numSkips} cases): ${skipped.reason}` };
  // fast-check gives up after too many skipped cases: a failure without a counterexample
  if (details.failed && !details.interrupted && details.counterexample === null && skipped.reason)
    return { id: def.id, verdict: 'unsupported', reason: `too few cases the target can run (${details.numRuns} run, ${details.numSkips} skipped): ${skipped.reason}` };
  if (!details.failed) {
    const docs = seen.size ? { documented: [...seen].map(([name, cases]) => ({ name, cases })) } : {};
    if (!expected) return { id: def.id, verdict: 'pass', cases: details.numRuns, seed: opts.seed, ...unsupportedCases, ...docs };
    return {
      id: def.id,
      verdict: 'fail',
      cases: details.numRuns,
      ...unsupportedCases,
      seed: opts.seed,
      path: '',
      shrinks: 0,
      // nothing to shrink or replay by path: the failure is a counterexample that never came; the diff says which
      counterexample: {
        summary: `expected this target to show "${expected}", but ${details.numRuns} cases found no counterexample`,
        diff: [{ field: 'expected failure', offset: -1, expected: expected, actual: `not shown in ${details.numRuns} cases` }],
        input: '',
      },
    };
  }
  const err = details.errorInstance;
  if (err instanceof TargetStop) return stopOutcome(def.id, err);
  const input = fc.stringify(details.counterexample);
  const replayPath = /replayPath="([^"]*)"/.exec(input)?.[1];
  return {
    id: def.id,
    ...(expected && !(err instanceof UnexpectedViolation) ? { verdict: 'expected-fail' as const, reason: expected } : { verdict: 'fail' as const }),
    cases: details.numRuns,
    ...unsupportedCases,
    seed: details.seed,
    path: details.counterexamplePath ?? '',
    shrinks: details.numShrinks,
    counterexample: {
      summary: (err instanceof Error ? err.message : String(err)) + (bounded.cut ? ` (shrinking stopped after ${target.shrinkBudget} attempts, this target's budget)` : ''),
      diff: err instanceof Violation ? err.diff : [],
      input: input.length > MAX_INPUT_CHARS ? input.slice(0, MAX_INPUT_CHARS) + ' …' : input,
      view: describeInput(details.counterexample),
      ...(replayPath !== undefined ? { replayPath } : {}),
    },
  };
}

/**
 * The same property, except that a case the target cannot run (it answered `unsupported` to an
 * operation the case needs) is a skipped case, as fc.pre makes one: it is neither a pass nor a
 * failure, and the report counts it apart.
 */
function skipUnsupported<T>(prop: fc.IAsyncPropertyWithHooks<T>): { prop: fc.IAsyncPropertyWithHooks<T>; reason: string; gaveUp: boolean; skips: number } {
  const out = { prop, reason: '', gaveUp: false, skips: 0 };
  let ran = 0;
  const run = async (v: T) => {
    // a property no case of which the target can run stops early: each case may cost a second on a slow target
    if (!ran && out.skips >= FIRST_SKIPS_GIVE_UP) {
      out.gaveUp = true;
      return new fc.PreconditionFailure(true);
    }
    const r = await prop.run(v);
    if (r && typeof r === 'object' && 'error' in r && r.error instanceof TargetStop && r.error.result.status === 'unsupported') {
      out.reason ||= r.error.result.reason;
      out.skips++;
      return new fc.PreconditionFailure();
    }
    ran++;
    return r;
  };
  out.prop = Object.assign(Object.create(prop) as fc.IAsyncPropertyWithHooks<T>, { run });
  return out;
}

/**
 * A slow target (kvm: costs seconds per case) bounds shrinking by a number of attempts after the
 * first failure: later candidates count as passing, so fast-check keeps the smallest failure found
 * so far. A count, not a time, so the same seed shrinks to the same counterexample.
 */
function boundShrinking<T>(prop: fc.IAsyncPropertyWithHooks<T>, budget: number | undefined): { prop: fc.IAsyncPropertyWithHooks<T>; cut: boolean } {
  const out = { prop, cut: false };
  if (budget === undefined) return out;
  let attempts = -1;
  const run = async (v: T) => {
    if (attempts >= budget) {
      out.cut = true;
      return null;
    }
    const r = await prop.run(v);
    if (attempts >= 0) attempts++;
    else if (r !== null && !(r instanceof fc.PreconditionFailure)) attempts = 0;
    return r;
  };
  out.prop = Object.assign(Object.create(prop) as fc.IAsyncPropertyWithHooks<T>, { run });
  return out;
}

/**
 * The same property, except that once `signal` aborts, the next run asks fast-check to stop (an
 * interrupting precondition failure). An in-process target answers with resolved promises, so a
 * run never leaves the microtask queue; yielding to the event loop every 50 ms lets the abort
 * (a message from vitest's main process) arrive at all.
 */
/**
 * The vCPUs a case creates are destroyed when the case ends, whatever the property does: a long run
 * (a sweep, a large --runs) kept every one before, and the reference target ran out of memory after
 * 200 sweep seeds. A property that destroys its own is not destroyed twice.
 */
function vcpuScope(target: Target): { target: Target; release: () => Promise<void> } {
  const live = new Set<string>();
  const scoped = new Proxy(target, {
    get(t, key) {
      if (key === 'createVcpu')
        return async (...a: Parameters<Target['createVcpu']>) => {
          const r = await t.createVcpu(...a);
          if (r.status === 'ok') live.add(r.value);
          return r;
        };
      if (key === 'destroyVcpu')
        return async (v: string) => (live.delete(v), t.destroyVcpu(v));
      const x = Reflect.get(t, key, t) as unknown;
      return typeof x === 'function' ? x.bind(t) : x;
    },
  });
  const release = async () => {
    const vs = [...live];
    live.clear();
    await Promise.allSettled(vs.map((v) => target.destroyVcpu(v))); // one batch on a process target; a failure here is not the case's
  };
  return { target: scoped, release };
}

function stopOnAbort<T>(prop: fc.IAsyncPropertyWithHooks<T>, signal: AbortSignal): fc.IAsyncPropertyWithHooks<T> {
  let lastYield = Date.now();
  const run = async (v: T) => {
    if (Date.now() - lastYield > 50) {
      await new Promise((r) => setImmediate(r));
      lastYield = Date.now();
    }
    return signal.aborted ? new fc.PreconditionFailure(true) : prop.run(v);
  };
  return Object.assign(Object.create(prop) as fc.IAsyncPropertyWithHooks<T>, { run });
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
