// A vitest reporter that hands each property's outcome back to `check`, in suite order. A test
// that died before recording an outcome becomes an `error` outcome: nothing is lost or passed.
import type { Reporter, TestModule } from 'vitest/node';
import type { PropertyOutcome } from '../suites/harness.js';

export interface Collected {
  outcome: PropertyOutcome;
  durationMs: number;
}

export class OutcomeCollector implements Reporter {
  readonly outcomes = new Map<string, Collected>();
  readonly moduleErrors: string[] = [];
  constructor(private readonly onProperty?: (c: Collected) => void) {}

  onTestRunEnd(modules: readonly TestModule[]): void {
    for (const m of modules) {
      for (const e of m.errors()) this.moduleErrors.push(`${m.moduleId}: ${e.message}`);
      for (const t of m.children.allTests()) {
        const result = t.result();
        const meta = t.meta().nvmx;
        const durationMs = t.diagnostic()?.duration ?? 0;
        let outcome: PropertyOutcome | undefined = meta;
        if (!outcome && result.state === 'failed')
          outcome = { id: t.name, verdict: 'error', reason: (result.errors?.[0]?.message ?? 'test failed without an outcome').split('\n')[0]! };
        if (!outcome) continue;
        const c = { outcome, durationMs };
        this.outcomes.set(t.name, c);
        this.onProperty?.(c);
      }
    }
  }
}
