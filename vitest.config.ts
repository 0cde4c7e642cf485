import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, started first: the rest fill the other worker around them instead of
 * one of them starting last. vitest orders by the durations it cached from the last run when it
 * has them; a fresh clone (CI) has none and would go by file size.
 */
const LONGEST = ['tests/exec-target.test.ts', 'tests/report-cli.test.ts'];
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = LONGEST.findIndex((l) => f.moduleId.endsWith(`/${l}`));
      return i < 0 ? LONGEST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // installs Debian's chromium and gcc when missing and apt-get can (tests/setup/system-packages.ts)
    globalSetup: ['tests/setup/system-packages.ts'],
    // a guard against a hung test, not a speed limit: no test should ever get near it, even on a
    // loaded machine (npm test takes under 3 minutes on an idle 2-core one)
    testTimeout: 20 * 60_000,
    // most test time is spent waiting for child processes (check, the CLI, chromium): one worker per
    // core, not vitest's default of one less (a single worker on a 2-core machine, files one by one)
    maxWorkers: Math.max(2, availableParallelism()),
    // a worker runs file after file in one process with the modules it has loaded (the model, the
    // schemas, fast-check): a fresh process per file loaded them again, 87 CPU-s against 63 for the
    // 31 files that start no CLI processes. No test keeps state between files (none mocks modules or
    // stubs globals; the one that sets process.env restores it).
    isolate: false,
    hookTimeout: 5 * 60_000,
    sequence: { sequencer: LongestFirst },
    coverage: { provider: 'v8', include: ['base/**', 'model/**', 'generators/**', 'targets/**', 'harness/**', 'suites/**', 'reports/**', 'golden/**', 'cli/**'] },
  },
});
