// Registers a suite's properties as vitest tests, one test per property id (stable names, no
// seeds in them). The run's parameters come from `check` through vitest's provide/inject; the
// outcome travels back to the reporter in the test's meta, and the seed goes to JUnit as an
// annotation.
import { afterAll, inject, test } from 'vitest';
import { type PropertyOutcome } from '../../harness/property.js';
import { runProperty } from '../../harness/runner.js';
import { selectedBy, type Suite } from '../registry.js';
import { openTarget } from '../../targets/resolve.js';
import type { Target, TargetIdentity } from '../../targets/target.js';
import { TargetStartError } from '../../targets/exec.js';
import { referenceTarget } from '../../targets/reference.js';
import type { KvmRunLink } from '../../targets/kvm/target.js';
import { formatOutcome } from '../../harness/format.js';

export interface RunParams {
  target: string;
  profile: string;
  targetTimeoutMs?: number;
  targetShell?: boolean;
  /** kvm: the broker of the machine `check` started for the run */
  kvm?: KvmRunLink;
  /** recorded in the report only */
  targetPackage?: string;
  seed: number;
  runs?: number;
  /** check --only (ids or globs), replay (the one id it replays) */
  only?: string[];
  path?: string;
  replayPath?: string;
}

declare module 'vitest' {
  interface ProvidedContext {
    nvmxRun: RunParams;
  }
  interface TaskMeta {
    nvmx?: PropertyOutcome;
    /** the target's identity, so the report can name what was tested */
    nvmxTarget?: TargetIdentity;
  }
}

let target: Promise<Target> | undefined;

export function registerSuite(suite: Suite): void {
  afterAll(async () => {
    const t = await target?.catch(() => undefined);
    target = undefined;
    await t?.close();
  });
  for (const def of suite.properties) {
    test(def.id, async (ctx) => {
      const run = inject('nvmxRun');
      if (!selectedBy(run.only)(def.id)) ctx.skip(`not selected (--only ${run.only!.join(' ')})`);
      let outcome: PropertyOutcome;
      try {
        // properties of the tool itself never touch the target: a broken one must not fail them
        const t = def.groups.length ? await (target ??= openTarget(run)) : referenceTarget({ profile: run.profile });
        if (def.groups.length) ctx.task.meta.nvmxTarget = { ...t.identity };
        outcome = await runProperty(def, t, {
          seed: run.seed,
          signal: ctx.signal,
          ...(run.runs !== undefined ? { runs: run.runs } : {}),
          ...(run.path !== undefined ? { path: run.path } : {}),
          ...(run.replayPath !== undefined ? { replayPath: run.replayPath } : {}),
        });
      } catch (e) {
        // the target did not even start: this property errors, the next one tries again
        target = undefined;
        outcome = { id: def.id, verdict: 'error', reason: `target did not start: ${(e as Error).message}`, ...(e instanceof TargetStartError && e.stderr.length ? { stderr: e.stderr } : {}) };
      }
      ctx.task.meta.nvmx = outcome;
      await ctx.annotate(String(run.seed), 'seed');
      if (outcome.verdict === 'pass') await ctx.annotate(String(outcome.cases), 'cases');
      if (outcome.verdict === 'expected-fail') await ctx.annotate(outcome.reason, 'expected-fail');
      if (outcome.verdict === 'unsupported') ctx.skip(outcome.reason);
      if (outcome.verdict !== 'pass' && outcome.verdict !== 'expected-fail') throw new Error(formatOutcome(outcome, run).join('\n'));
    });
  }
}
