// The VMM step (`vmm` group): the reference VMM's stream format (versions 1 and 2) and its stand-in
// for the source's GET; the group over nvmx-target/1 (`serve`, the schema); the known bug of a QEMU
// that drops hdr.vmx.flags as an expected failure; the example adapter in examples/, which with its
// planted rust-vmm/kvm#385 bug fails vmm.carries-vmxon-state with a shrunk one-step counterexample
// and passes without it; and the reason kernel targets (linux:, kvm:) give for lacking the group.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { readHeader, writeHeader } from '../model/nested/blob.js';
import { HEADER_SIZE, INVALID_GPA, SIZE_WITH_SHADOW, SIZE_WITH_VMCS12 } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { applyOp, DEFAULT_VCPU, Vcpu } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { defaultVmxMsrs } from '../model/migration/hosts.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { answerGet, vmmLoad, vmmSave } from '../model/vmm/reference.js';
import { readStream, writeStream, type StreamVersion } from '../model/vmm/stream-format.js';
import { validateDef } from '../base/schemas.js';
import { runProperty } from '../harness/runner.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { openExecTarget } from '../targets/exec.js';
import { answer, helloOf } from '../targets/protocol/serve.js';
import { hexToBytes } from '../targets/protocol/wire.js';
import { referenceTarget } from '../targets/reference.js';
import { withKvmReasons } from '../targets/resolve.js';
import { generate } from '../targets/linux/generate.js';
import type { Target } from '../targets/target.js';
import { expectCaught, expectMissingBugCaught } from './expect-caught.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/nvmx-conformance.js');
const ADAPTER = join(ROOT, 'examples/vmm-adapter.mjs');
const prop = (id: string) => ALL_PROPERTIES.find((p) => p.id === id)!;
const CAP = SIZE_WITH_SHADOW;

/** Nested-state blobs as GET gives them: a header (any flags and pointers) and 0, 1 or 2 pages. */
const blob = fc
  .record({
    pages: fc.constantFrom(0, 1, 2),
    flags: fc.nat(0x1ff),
    vmxonPa: fc.oneof(fc.constant(INVALID_GPA), fc.bigInt(0n, (1n << 52n) - 1n)),
    vmcs12Pa: fc.oneof(fc.constant(INVALID_GPA), fc.bigInt(0n, (1n << 52n) - 1n)),
    smmFlags: fc.nat(3),
    vmxFlags: fc.nat(1),
    deadline: fc.bigInt(0n, (1n << 64n) - 1n),
    fill: fc.nat(255),
  })
  .map((r) => {
    const b = new Uint8Array(HEADER_SIZE + r.pages * 4096).fill(r.fill);
    b.fill(0, 0, HEADER_SIZE);
    writeHeader(b, { flags: r.flags, format: 0, size: b.length, vmxonPa: r.vmxonPa, vmcs12Pa: r.vmcs12Pa, smmFlags: r.smmFlags, pad: 0, vmxFlags: r.vmxFlags, preemptionTimerDeadline: r.deadline });
    return b;
  });

const content = (nested: Uint8Array | null, version: StreamVersion) => ({ version, config: { ...DEFAULT_VCPU, hypervCpuid: { nestedEax: 1, nestedEbx: 0 } }, vmxMsrs: defaultVmxMsrs(), nested });

describe('the reference VMM stream format', () => {
  test('version 2 carries every header field QEMU carries, hdr.vmx.flags and the deadline included, and the pages', () => {
    fc.assert(
      fc.property(blob, (b) => {
        const r = readStream(writeStream(content(b, 2)), 2);
        expect(r.ok && r.content.nested).toEqual(b);
        expect(r.ok && r.content.vmxMsrs).toEqual(defaultVmxMsrs());
        expect(r.ok && r.content.config).toEqual(content(b, 2).config);
      }),
    );
  });

  test('version 1 has no section for hdr.vmx.flags: they arrive zero, the rest as written; both readers read it alike', () => {
    fc.assert(
      fc.property(blob, (b) => {
        const stream = writeStream(content(b, 1));
        const want = b.slice();
        writeHeader(want, { ...readHeader(b), vmxFlags: 0, preemptionTimerDeadline: 0n });
        for (const reader of [1, 2] as const) {
          const r = readStream(stream, reader);
          expect(r.ok && r.content.nested).toEqual(want);
        }
      }),
    );
  });

  test('a reader refuses, in one line, a newer version, a section its version lacks, another magic, a cut section', () => {
    const b = new Uint8Array(HEADER_SIZE);
    writeHeader(b, { ...readHeader(b), size: HEADER_SIZE, vmxonPa: 0x1000n, vmcs12Pa: INVALID_GPA, vmxFlags: 1, preemptionTimerDeadline: 5n });
    const v2 = writeStream(content(b, 2));
    expect(readStream(v2, 1)).toEqual({ ok: false, problem: 'stream version 2: this VMM (version 1) reads versions 1 to 1' });
    const relabelled = v2.slice();
    relabelled[4] = 1; // a version 1 stream with version 2's section
    expect(readStream(relabelled, 2)).toMatchObject({ ok: false, problem: expect.stringMatching(/^section tag 7 at byte \d+ is not part of stream version 1$/) });
    expect(readStream(new TextEncoder().encode('QEVMxxxxxxxx'), 2)).toEqual({ ok: false, problem: 'not a stream of this VMM (no NVMS magic)' });
    expect(readStream(v2.subarray(0, v2.length - 3), 2)).toMatchObject({ ok: false, problem: expect.stringMatching(/^section vmxHdrFlags at byte \d+ is 12 bytes and runs past the end$/) });
    expect(readStream(writeStream(content(null, 2)), 2)).toMatchObject({ ok: true, content: { nested: null } });
  });
});

describe("the reference VMM's save and load", () => {
  const v = new Vcpu({ ...findProfile('linux-6.12')!, nested: findProfile('linux-6.12')!.nested! }, DEFAULT_VCPU);
  const shadow = SCENARIOS.find((s) => s.name === 'shadow-vmcs')!;
  for (const o of shadow.ops) applyOp(v, o);

  test("its stand-in for GET answers every buffer size as the model's GET does", () => {
    const state = getNestedState(v, CAP).buffer;
    for (const n of [0, 8, HEADER_SIZE, SIZE_WITH_VMCS12, SIZE_WITH_SHADOW - 1, SIZE_WITH_SHADOW, 9000]) expect([n, answerGet(state, n).errno]).toEqual([n, getNestedState(v, n).errno]);
    expect(readHeader(answerGet(state, HEADER_SIZE).buffer).size).toBe(SIZE_WITH_SHADOW);
  });

  test('save offers KVM_CAP_NESTED_STATE; with a smaller capability it follows E2BIG; with none it asks nothing', () => {
    const state = getNestedState(v, CAP).buffer;
    const input = { kernel: { nestedStateCap: CAP, state }, vmxMsrs: defaultVmxMsrs(), config: DEFAULT_VCPU };
    expect(vmmSave(input).gets).toEqual([{ userSize: CAP, errno: null }]);
    expect(vmmSave({ ...input, kernel: { nestedStateCap: HEADER_SIZE, state } }).gets).toEqual([{ userSize: HEADER_SIZE, errno: 'E2BIG' }, { userSize: CAP, errno: null }]);
    const saved = vmmSave({ ...input, kernel: { nestedStateCap: 0, state } });
    expect(saved.gets).toEqual([]);
    expect('stream' in saved && vmmLoad({ stream: saved.stream, kernel: { nestedStateCap: CAP } })).toMatchObject({ set: null });
  });

  test("load makes QEMU's post_load checks against the destination's capability", () => {
    const saved = vmmSave({ kernel: { nestedStateCap: CAP, state: getNestedState(v, CAP).buffer }, vmxMsrs: defaultVmxMsrs(), config: DEFAULT_VCPU });
    const stream = 'stream' in saved ? saved.stream : new Uint8Array();
    expect(vmmLoad({ stream, kernel: { nestedStateCap: CAP } })).toMatchObject({ set: expect.any(Uint8Array) });
    expect(vmmLoad({ stream, kernel: { nestedStateCap: 0 } })).toEqual({ refused: 'the stream carries nested state (flags 0x1) but the destination kernel has no KVM_CAP_NESTED_STATE' });
    expect(vmmLoad({ stream, kernel: { nestedStateCap: SIZE_WITH_VMCS12 } })).toEqual({ refused: 'nested state size 8320 is outside 128..4224' });
  });
});

describe('the vmm group over nvmx-target/1', () => {
  test('serve answers vmm-save and vmm-load through the shared codec, and the hello and answers pass the schema', async () => {
    const t = referenceTarget();
    expect(validateDef('target-protocol', 'hello', helloOf(t))).toEqual([]);
    expect(helloOf(t).vmm).toEqual({ streamVersions: ['1', '2'] });
    const state = new Uint8Array(HEADER_SIZE);
    writeHeader(state, { ...readHeader(state), size: HEADER_SIZE, vmxonPa: 0x1000n, vmcs12Pa: INVALID_GPA });
    const hexState = Buffer.from(state).toString('hex');
    const saved = await answer(t, { id: 1, op: 'vmm-save', args: { kernel: { nestedStateCap: CAP, state: hexState }, vmxMsrs: { '0x480': '0xda0400000004' }, config: { vmxInCpuid: true } } });
    expect(validateDef('target-protocol', 'responseLine', saved)).toEqual([]);
    expect(validateDef('target-protocol', 'value-vmm-save', (saved as { value: unknown }).value)).toEqual([]);
    const stream = (saved as { value: { stream: string } }).value.stream;
    const loaded = await answer(t, { id: 2, op: 'vmm-load', args: { stream, kernel: { nestedStateCap: CAP } } });
    expect(validateDef('target-protocol', 'value-vmm-load', (loaded as { value: unknown }).value)).toEqual([]);
    // serve writes the header-only state's 104 zero bytes past vmcs12_pa as a zero run
    expect(loaded).toEqual({ id: 2, status: 'ok', value: { set: hexState.replace(/(00){104}$/, '~68.'), vmxMsrs: { '0x480': '0xda0400000004' }, config: { vmxInCpuid: true } } });
    expect(hexToBytes((loaded as { value: { set: string } }).value.set)).toEqual(state);
    expect(await answer(t, { id: 3, op: 'vmm-load', args: { stream, kernel: { nestedStateCap: CAP }, version: '3' } })).toEqual({ id: 3, status: 'unsupported', reason: 'the reference VMM qemu has no stream version 3 (it has 1, 2)' });
    expect(await answer(t, { id: 4, op: 'vmm-load', args: { stream: 'zz', kernel: {} } })).toMatchObject({ id: 4, status: 'error', reason: expect.stringContaining('bad vmm-load args') });
  });

  test('serve --vmm qemu-drops-vmx-flags declares its known bug, and vmm.keeps-vmx-header-flags shows it as expected; an unknown --vmm is a usage error', async () => {
    const t = await openExecTarget({ argv: [process.execPath, BIN, 'serve', '--vmm', 'qemu-drops-vmx-flags'], shell: false, timeoutMs: 10_000 });
    try {
      expect(t.vmm).toEqual({ streamVersions: ['1'], knownBugs: ['drops-vmx-flags'] });
      const o = await runProperty(prop('vmm.keeps-vmx-header-flags'), t, { seed: 1, runs: 100 });
      expect(o).toMatchObject({ verdict: 'expected-fail', reason: 'QEMU versions that do not carry hdr.vmx.flags drop the preemption-timer deadline' });
      expect(o.verdict === 'expected-fail' && o.counterexample.diff.map((d) => d.field)).toEqual(['hdr.vmx.flags', 'hdr.vmx.preemption_timer_deadline']);
      expect(o.verdict === 'expected-fail' && o.shrinks).toBeGreaterThan(0);
      // one stream version: there is no older release whose stream it could load
      expect(await runProperty(prop('vmm.old-stream-loads'), t, { seed: 1 })).toMatchObject({ verdict: 'unsupported', reason: expect.stringContaining('declares no older stream version') });
    } finally {
      await t.close();
    }
    const r = spawnSync(process.execPath, [BIN, 'serve', '--vmm', 'bochs'], { encoding: 'utf8', input: '' });
    expect([r.status, r.stderr.trim()]).toEqual([2, 'nvmx-conformance: unknown --vmm "bochs" (known: qemu, qemu-drops-vmx-flags)']);
  });

  test('a VMM that declares drops-vmx-flags but carries them fails vmm.keeps-vmx-header-flags: the known bug did not show', async () => {
    await expectMissingBugCaught(prop('vmm.keeps-vmx-header-flags'), { ...referenceTarget(), vmm: { streamVersions: ['2'], knownBugs: ['drops-vmx-flags'] } }, { runs: 100 });
  });
});

describe('the example adapter (examples/vmm-adapter.mjs) as an exec: target', () => {
  const open = (...args: string[]): Promise<Target> => openExecTarget({ argv: [process.execPath, ADAPTER, ...args], shell: false, timeoutMs: 10_000 });

  test('with the planted rust-vmm/kvm#385 bug, vmm.carries-vmxon-state fails with a shrunk one-step counterexample: a header-only state not sent', async () => {
    const t = await open('--bug', 'drop-header-only');
    try {
      const f = await expectCaught(prop('vmm.carries-vmxon-state'), t, { seeds: [1], runs: 150, run: { target: `exec:node ${ADAPTER} --bug drop-header-only`, profile: 'linux-6.12' } });
      expect(f.counterexample.summary).toMatch(/\(GET: 128 bytes, vmxon_pa 0x1000, flags 0x0\): not carried, nothing sent \(no SET\)$/);
      expect(f.counterexample.diff).toEqual([{ field: 'SET', offset: -1, expected: '128 bytes, vmxon_pa 0x1000', actual: 'nothing sent (no SET)' }]);
    } finally {
      await t.close();
    }
  });

  test('without it, the adapter passes every vmm property it can be judged on; the one that needs an older stream version is unsupported, with the reason', async () => {
    const t = await open();
    try {
      expect([...t.groups]).toEqual(['vmm']);
      for (const id of ['vmm.carries-vmxon-state', 'vmm.keeps-vmx-header-flags', 'vmm.carries-whole-state', 'vmm.get-buffer'])
        expect([id, (await runProperty(prop(id), t, { seed: 1, runs: 100 })).verdict]).toEqual([id, 'pass']);
      expect(await runProperty(prop('vmm.old-stream-loads'), t, { seed: 1 })).toMatchObject({ verdict: 'unsupported', reason: expect.stringContaining('hello vmm.streamVersions: ["1"]') });
      // what the adapter is not: the kernel groups are unsupported with its reason
      expect(await runProperty(prop('nested.round-trip'), t, { seed: 1 })).toEqual({ id: 'nested.round-trip', verdict: 'unsupported', reason: expect.stringContaining('this adapter is a VMM') });
    } finally {
      await t.close();
    }
  });

  test('an unknown --bug is refused in one line', () => {
    const r = spawnSync(process.execPath, [ADAPTER, '--bug', 'nope'], { encoding: 'utf8', input: '' });
    expect([r.status, r.stderr.trim()]).toEqual([2, 'vmm-adapter: unknown --bug nope (known: drop-header-only)']);
  });
});

describe('kernel targets lack the vmm group and say why', () => {
  test('linux: the generated harness says so in its hello', () => {
    const root = mkdtempSync(join(tmpdir(), 'nvmx-bare-tree-'));
    writeFileSync(join(root, 'Makefile'), 'VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n');
    const hello = generate(root).hello;
    expect(hello.groups).not.toContain('vmm');
    expect(hello.unsupported?.vmm).toMatch(/^a kernel tree holds the kernel side of KVM_GET\/SET_NESTED_STATE: the VMM step .* is a VMM's user-space code/);
  });

  test('kvm: the target adds the reason its agent does not give, and the property is unsupported with it', async () => {
    const { vmm: _vmm, ...host } = referenceTarget();
    const kvmLike: Target = { ...host, groups: new Set([...host.groups].filter((g) => g !== 'vmm')), identity: { name: 'kvm', version: '6.12' } };
    const t = withKvmReasons(kvmLike);
    expect(await runProperty(prop('vmm.carries-vmxon-state'), t, { seed: 1 })).toEqual({
      id: 'vmm.carries-vmxon-state',
      verdict: 'unsupported',
      reason: expect.stringMatching(/^unsupported by target kvm: needs vmm \(the kvm: machine is a host \(real KVM answers GET and SET\): the VMM step/),
    });
    expect(withKvmReasons({ ...kvmLike, unsupportedReasons: { vmm: 'its own' } }).unsupportedReasons?.vmm).toBe('its own');
  });
});
