// The scenarios of linux-6.12's tools/testing/selftests/kvm/x86_64/vmx_set_nested_state_test.c, in
// its order, on one vCPU (state carries over between calls, as in the selftest). Each gives the
// kernel's result, and the rule of kernel-facts §9 that decides it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { encodeBlob, readHeader, type NestedHeader } from '../model/nested/blob.js';
import { FLAGS, INVALID_GPA, SMM_FLAGS } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { DEFAULT_VCPU, Vcpu } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';

const BIN = new URL('../bin/nvmx-conformance.js', import.meta.url).pathname;
const p = findProfile('linux-6.12')!;
const vcpu = new Vcpu({ ...p, nested: p.nested! }, { ...DEFAULT_VCPU, vmxInCpuid: false });
const REV = new Uint8Array(4096);
new DataView(REV.buffer).setUint32(0, 0x11e57ed0, true);

/** set_default_state: zeroed 128 bytes, GUEST_MODE|RUN_PENDING */
const defaultState = (h: Partial<NestedHeader> = {}) => encodeBlob({ flags: FLAGS.RUN_PENDING | FLAGS.GUEST_MODE, size: 128, ...h });
/** set_default_vmx_state(state, 128 + 4096): EVMCS (have_evmcs), vmxon 0x1000, vmcs12 0x2000, revision set */
const vmxState = (h: Partial<NestedHeader> = {}) => {
  const b = encodeBlob({ flags: FLAGS.EVMCS, size: 4224, vmxonPa: 0x1000n, vmcs12Pa: 0x2000n, ...h }, REV);
  return b;
};

const steps: [string, () => Uint8Array | null, number, string, (() => void)?][] = [
  ['a NULL kvm_nested_state faults', () => null, -14, 'W1'],
  ['size 0 is smaller than the header', () => defaultState({ size: 0 }), -22, 'W2'],
  ['flags 0xf: -EINVAL comes from "nested not allowed" (vmxon_pa 0), not the flag check (kernel-facts §13.10)', () => defaultState({ flags: 0xf }), -22, 'V2d'],
  ['RUN_PENDING needs GUEST_MODE', () => defaultState({ flags: FLAGS.RUN_PENDING }), -22, 'W4'],
  ['format must be 0', () => vmxState({ format: 1 }), -22, 'V1'],
  ['no VMX in guest CPUID', () => vmxState(), -22, 'V2d'],
  ['vmxon_pa -1 with a vmcs12_pa', () => vmxState({ vmxonPa: INVALID_GPA }), -22, 'V2b'],
  ['vmxon_pa -1, EVMCS, VMX not in CPUID', () => vmxState({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA }), -22, 'V8'],
  ['vmxon_pa -1, flags 0: accepted', () => vmxState({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA, flags: 0 }), 0, 'S2', () => vcpu.reconfigure({ vmxInCpuid: true })],
  ['VMX enabled: vmxon_pa and vmcs12_pa -1, flags 0', () => vmxState({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA, flags: 0 }), 0, 'S2'],
  ['EVMCS before the capability is enabled', () => vmxState({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA }), -22, 'V8', () => (vcpu.evmcsEnabled = true)],
  ['EVMCS after vcpu_enable_evmcs', () => vmxState({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA }), 0, 'S2'],
  ['vmxon_pa -1 with SMM flags', () => vmxState({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA, smmFlags: 1 }), -22, 'V2a'],
  ['hdr.vmx.flags ~0', () => vmxState({ vmxFlags: 0xffffffff }), -22, 'V5'],
  ['vmxon_pa -1, vmcs12_pa set, flags 0', () => vmxState({ vmxonPa: INVALID_GPA, flags: 0 }), -22, 'V2b'],
  ['vmxon_pa not page aligned', () => vmxState({ vmxonPa: 1n }), -22, 'V2e'],
  ['SMM guest mode with guest mode', () => vmxState({ flags: FLAGS.GUEST_MODE | FLAGS.RUN_PENDING, smmFlags: SMM_FLAGS.GUEST_MODE }), -22, 'V3'],
  ['unknown SMM flags', () => vmxState({ smmFlags: 0xfffc }), -22, 'V4'],
  ['SMM flags outside SMM', () => vmxState({ flags: 0, smmFlags: SMM_FLAGS.GUEST_MODE }), -22, 'V6'],
  ['size 128 with a vmcs12_pa', () => vmxState({ size: 128, flags: 0 }), -22, 'V9'],
  ['size 128, vmcs12_pa -1: VMX on, no VMCS', () => vmxState({ size: 128, flags: 0, vmcs12Pa: INVALID_GPA }), 0, 'V9'],
  ['invalid VMCS contents but L2 not running', () => vmxState({ flags: 0 }), 0, 'S5'],
  ['hdr.vmx.flags ~0 even without a VMCS', () => vmxState({ size: 128, flags: 0, vmcs12Pa: INVALID_GPA, vmxFlags: 0xffffffff }), -22, 'V5'],
  ['vmxon_pa equal to vmcs12_pa', () => vmxState({ vmxonPa: 0n, vmcs12Pa: 0n }), -22, 'V10'],
  ['leaving nesting', () => vmxState({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA, flags: 0 }), 0, 'S2'],
];

/** The same scenarios through `nested restore`, each on a fresh vCPU configured as the selftest's is at that step. */
describe('vmx_set_nested_state_test through the CLI: nested restore --json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-selftest-'));
  const configAt = (i: number) => ({ vmxInCpuid: i >= 9, evmcsEnabled: i >= 12 });
  const cases = steps.map(([what, blob, ret, rule], i) => ({ step: i + 1, what, blob, ret, rule })).filter((c) => c.step > 1);
  test.each(cases)("$step. $what", ({ step: i, blob, ret, rule }) => {
    writeFileSync(join(dir, `${i}.bin`), blob()!);
    writeFileSync(join(dir, `${i}.json`), JSON.stringify(configAt(i)));
    const r = spawnSync(process.execPath, [BIN, 'nested', 'restore', '--profile', 'linux-6.12', '--vcpu', join(dir, `${i}.json`), '--blob', join(dir, `${i}.bin`), '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ret, rule });
  });
});

describe('vmx_set_nested_state_test (linux 6.12), in order on one vCPU', () => {
  test.each(steps.map((s, i) => [i + 1, ...s] as const))('%i. %s', (_i, _what, blob, ret, rule, after) => {
    const r = setNestedState(vcpu, blob());
    expect({ ret: r.ret, rule: r.rule }).toEqual({ ret, rule });
    after?.();
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
