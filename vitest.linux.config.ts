// Tests that need real kernel trees (NVMX_LINUX_TREES). Not part of `npm test`: .ci/run installs
// linux-source-6.1 and 6.12 and runs them with `vitest run --config vitest.linux.config.ts`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/linux/**/*.linux.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
