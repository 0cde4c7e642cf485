import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

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
    // schemas, fast-check): a fresh process per file spent a fifth of the CPU time on loading them
    // again. No test keeps state between files (none mocks modules or stubs globals; the one that sets
    // process.env restores it).
    isolate: false,
    hookTimeout: 5 * 60_000,
    coverage: { provider: 'v8', include: ['base/**', 'model/**', 'generators/**', 'targets/**', 'harness/**', 'suites/**', 'reports/**', 'golden/**', 'cli/**'] },
  },
});
