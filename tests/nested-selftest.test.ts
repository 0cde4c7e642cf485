// The scenarios of linux-6.12's tools/testing/selftests/kvm/x86_64/vmx_set_nested_state_test.c, in
// its order, on one vCPU (state carries over between calls, as in the selftest). Each gives the
// kernel's result, and the rule of kernel-facts §9 that decides it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readHeader } from '../model/nested/blob.js';
import { INVALID_GPA } from '../model/nested/constants.js';
import { SELFTEST_STEPS, selftestConfigAt } from './fixtures/selftest-steps.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { DEFAULT_VCPU, Vcpu } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { cliHere } from './cli-helpers.js';

const p = findProfile('linux-6.12')!;
const vcpu = new Vcpu({ ...p, nested: p.nested! }, { ...DEFAULT_VCPU, vmxInCpuid: false });
/** The same scenarios through `nested restore`, each on a fresh vCPU configured as the selftest's is at that step. */
describe('vmx_set_nested_state_test through the CLI: nested restore --json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-selftest-'));
  const cases = SELFTEST_STEPS.map(([what, blob, ret, rule], i) => ({ step: i + 1, what, blob, ret, rule })).filter((c) => c.step > 1);
  test.each(cases)("step $step: $what", async ({ step: i, blob, ret, rule }) => {
    writeFileSync(join(dir, `${i}.bin`), blob()!);
    writeFileSync(join(dir, `${i}.json`), JSON.stringify(selftestConfigAt(i)));
    // the command's main() in this process: 24 node start-ups cost more than the restores
    const r = await cliHere(['nested', 'restore', '--profile', 'linux-6.12', '--vcpu', join(dir, `${i}.json`), '--blob', join(dir, `${i}.bin`), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ret, rule });
  });
});

describe('vmx_set_nested_state_test (linux 6.12), in order on one vCPU', () => {
  test.each(SELFTEST_STEPS.map((s, i) => [i + 1, ...s] as const))('%i. %s', (_i, _what, blob, ret, rule, after) => {
    const r = setNestedState(vcpu, blob());
    expect({ ret: r.ret, rule: r.rule }).toEqual({ ret, rule });
    after?.(vcpu);
  });

  test('after leaving nesting, GET reports vmxon_pa = vmcs12_pa = -1 and a size within the buffer', () => {
    const g = getNestedState(vcpu, 4224);
    expect(g.errno).toBeNull();
    const h = readHeader(g.buffer);
    expect(h.size).toBeGreaterThanOrEqual(128);
    expect(h.size).toBeLessThanOrEqual(4224);
    expect([h.vmxonPa, h.vmcs12Pa]).toEqual([INVALID_GPA, INVALID_GPA]);
  });
});
