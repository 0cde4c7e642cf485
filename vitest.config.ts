import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // installs Debian's chromium and gcc when missing and apt-get can (tests/setup/system-packages.ts)
    globalSetup: ['tests/setup/system-packages.ts'],
    testTimeout: 120_000,
    coverage: { provider: 'v8', include: ['model/**', 'generators/**', 'suites/**', 'targets/**', 'reports/**', 'golden/**', 'cli/**'] },
  },
});
