// A vitest reporter that hands each property's outcome back to `check` as soon as its test ends
// (so CI logs get a line per finished property). A test that died before recording an outcome
// becomes an `error` outcome: nothing is lost or passed. Skipped tests without an outcome
// (cancelled before they started, or not selected by replay) are not recorded: the report lists
// them as missing.
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import type { PropertyOutcome } from '../harness/property.js';
import type { TargetIdentity } from '../targets/target.js';

export interface Collected {
  outcome: PropertyOutcome;
  durationMs: number;
}

export interface CollectorEvents {
  onStart?(id: string): void;
  onProperty?(c: Collected): void;
}

export class OutcomeCollector implements Reporter {
  readonly outcomes = new Map<string, Collected>();
  readonly moduleErrors: string[] = [];
  target: TargetIdentity | undefined;
  constructor(private readonly events: CollectorEvents = {}) {}

  onTestCaseReady(t: TestCase): void {
    this.events.onStart?.(t.name);
  }

  onTestCaseResult(t: TestCase): void {
    const result = t.result();
    const meta = t.meta();
    this.target ??= meta.nvmxTarget;
    let outcome: PropertyOutcome | undefined = meta.nvmx;
    if (!outcome && result.state === 'failed') {
      const err = result.errors?.[0];
      const reason = err?.name === 'TestRunAbortError' ? 'interrupted before it finished: the run was cancelled' : (err?.message ?? 'test failed without an outcome').split('\n')[0]!;
      outcome = { id: t.name, verdict: 'error', reason };
    }
    if (!outcome) return;
    const c = { outcome, durationMs: t.diagnostic()?.duration ?? 0 };
    this.outcomes.set(t.name, c);
    this.events.onProperty?.(c);
  }

  onTestRunEnd(modules: readonly TestModule[]): void {
    for (const m of modules) for (const e of m.errors()) this.moduleErrors.push(`${m.moduleId}: ${e.message}`);
  }
}
