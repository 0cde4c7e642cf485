import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    coverage: { provider: 'v8', include: ['model/**', 'generators/**', 'suites/**', 'targets/**', 'reports/**', 'golden/**', 'cli/**'] },
  },
});
