// Tests on real KVM: a Debian kernel booted in Bochs (the kvm: target). Not part of `npm test`,
// because each boot takes minutes: .ci/run installs the Debian packages and runs them with
// `npm run test:kvm`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/kvm/**/*.kvm.ts'],
    // a boot is about 80 s on an idle machine and several minutes under load; no test is timed
    testTimeout: 0,
    hookTimeout: 0,
    fileParallelism: false,
  },
});
