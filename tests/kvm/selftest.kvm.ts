// The kernel's own vmx_set_nested_state_test, answered by the real kernel: every scenario through
// `nested restore --target kvm:<kernel>` (one machine for all of them), each on a fresh vCPU
// configured as the selftest's vCPU is at that step. The expected answers are the selftest's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { SELFTEST_STEPS, selftestConfigAt } from '../fixtures/selftest-steps.js';

const BIN = new URL('../../bin/nvmx-conformance.js', import.meta.url).pathname;

describe.each(['debian-6.1', 'debian-6.12'])('vmx_set_nested_state_test on kvm:%s', (kernel) => {
  test('every scenario gets the selftest\'s answer from the real kernel, and the model agrees', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvmx-kvm-selftest-'));
    const args: string[] = [];
    SELFTEST_STEPS.forEach(([, blob], i) => {
      const b = blob();
      if (b) writeFileSync(join(dir, `${i + 1}.bin`), b);
      writeFileSync(join(dir, `${i + 1}.json`), JSON.stringify(selftestConfigAt(i + 1)));
      args.push('--vcpu', join(dir, `${i + 1}.json`), '--blob', b ? join(dir, `${i + 1}.bin`) : '@null');
    });
    const r = spawnSync(process.execPath, [BIN, 'nested', 'restore', '--target', `kvm:${kernel}`, ...args, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const answers = JSON.parse(r.stdout) as { ret: number; agrees: boolean; model: { rule: string } }[];
    expect(answers).toHaveLength(SELFTEST_STEPS.length);
    const got = answers.map((a, i) => ({ step: `${i + 1}. ${SELFTEST_STEPS[i]![0]}`, ret: a.ret, agrees: a.agrees }));
    const want = SELFTEST_STEPS.map(([what, , ret], i) => ({ step: `${i + 1}. ${what}`, ret, agrees: true }));
    expect(got).toEqual(want);
  });
});
