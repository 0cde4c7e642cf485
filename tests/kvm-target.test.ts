// The kvm: target's parts that need no emulator: the spec, the bzImage header, the wire's zero runs,
// --only patterns, the runner's accounting of cases a target cannot run, and the agent's JSON
// handling (compiled here with gcc and driven on stdin; without /dev/kvm it must still say hello).
// The machine itself is tested by `npm run test:kvm` (tests/kvm/).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { bzImageRelease, parseKvmSpec } from '../targets/kvm/spec.js';
import { hexToBytes } from '../targets/protocol/wire.js';
import { findProperty, selectedBy } from '../suites/registry.js';
import { must, type PropertyDef } from '../harness/property.js';
import { runProperty } from '../harness/runner.js';
import { referenceTarget } from '../targets/reference.js';
import { DEFAULT_VCPU } from '../model/nested/vcpu.js';
import type { Target } from '../targets/target.js';
import { missingLine, missingPackages } from './setup/system-packages.js';

describe('kvm:<spec>', () => {
  test.each([
    ['debian-6.12', { kind: 'package', package: 'linux-image-6.12.117+deb12-amd64' }, undefined, false, true],
    ['linux-image-6.1.0-57-amd64,modules=/m', { kind: 'package', package: 'linux-image-6.1.0-57-amd64' }, '/m', false, true],
    ['/k/bzImage,modules=/k/lib/modules/6.13.0', { kind: 'bzImage', path: '/k/bzImage' }, '/k/lib/modules/6.13.0', false, true],
    ['debian-6.1,shadow-vmcs=on', { kind: 'package', package: 'linux-image-6.1.0-57-amd64' }, undefined, true, true],
    ['debian-6.12,entries=off', { kind: 'package', package: 'linux-image-6.12.117+deb12-amd64' }, undefined, false, false],
    ['debian-6.12,entries=on', { kind: 'package', package: 'linux-image-6.12.117+deb12-amd64' }, undefined, false, true],
  ])('%s', (text, kernel, modules, shadowVmcs, entries) => {
    const s = parseKvmSpec(text);
    expect(s).toEqual({ text, kernel, shadowVmcs, entries, ...(modules ? { modules } : {}) });
  });

  test.each([
    ['/k/bzImage', /needs its modules/],
    ['debian-6.12,frob=1', /unknown option "frob=1"/],
    ['fedora-40', /neither an alias/],
  ])('%s is refused in one line', (text, problem) => {
    const s = parseKvmSpec(text);
    expect('problem' in s && s.problem).toMatch(problem);
  });

  test('the release comes from the bzImage setup header', () => {
    const img = new Uint8Array(0x1000);
    img.set([...'HdrS'].map((c) => c.charCodeAt(0)), 0x202);
    img[0x20e] = 0x00;
    img[0x20f] = 0x04; // version string at 0x400 + 0x200
    img.set([...'6.12.117+deb12-amd64 (debian-kernel@lists.debian.org) #1 SMP'].map((c) => c.charCodeAt(0)), 0x600);
    expect(bzImageRelease(img)).toBe('6.12.117+deb12-amd64');
    expect(bzImageRelease(new Uint8Array(0x1000))).toBeNull();
  });
});

test('bytes on the wire: hex, with runs of zero bytes as ~<count>.; a target that claims too many is refused', () => {
  expect([...hexToBytes('01~4.02')]).toEqual([1, 0, 0, 0, 0, 2]);
  expect(hexToBytes('~1080.').length).toBe(4224);
  expect(() => hexToBytes('~fffff.'.repeat(65))).toThrow(/more than/);
});

test('--only patterns', () => {
  const only = selectedBy(['nested.restore.*', 'vmcs12.codec.round-trip']);
  expect(['nested.restore.random-bytes', 'vmcs12.codec.round-trip', 'nested.round-trip', 'vmcs12.codec.round-trips'].map(only)).toEqual([true, true, false, false]);
  expect(selectedBy(undefined)('anything')).toBe(true);
});

describe('cases a target cannot run are skipped and counted, never passed', () => {
  /** the reference, except that it does not offer VMLAUNCH (as the kvm: agent today) */
  const withoutVmlaunch = (): Target => {
    const t = referenceTarget({ profile: 'linux-6.12' });
    return { ...t, guestOp: async (v, o) => (o.op === 'vmlaunch' ? { status: 'unsupported', reason: 'no L2 here' } : t.guestOp(v, o)) };
  };
  const property = (launches: fc.Arbitrary<boolean>): PropertyDef => ({
    id: 'test.launch-maybe',
    invariant: 'a VMXON succeeds',
    groups: ['nested-state'],
    runs: 50,
    async build(ctx) {
      return fc.asyncProperty(launches, async (launch) => {
        const v = must(await ctx.target.createVcpu(DEFAULT_VCPU));
        must(await ctx.target.guestOp(v, { op: 'init-vmcs', pa: 0x1000n }));
        must(await ctx.target.guestOp(v, { op: 'vmxon', pa: 0x1000n }));
        if (launch) must(await ctx.target.guestOp(v, { op: 'vmlaunch' }));
      });
    },
  });

  test('some cases skipped: pass, with the cases that reached the check and the skipped ones apart', async () => {
    const o = await runProperty(property(fc.boolean()), withoutVmlaunch(), { seed: 7 });
    expect(o.verdict).toBe('pass');
    if (o.verdict !== 'pass') return;
    expect(o.cases).toBe(50);
    expect(o.unsupportedCases).toMatchObject({ reason: 'no L2 here' });
    expect(o.unsupportedCases!.count).toBeGreaterThan(10);
  });

  test('every case skipped: unsupported', async () => {
    const o = await runProperty(property(fc.constant(true)), withoutVmlaunch(), { seed: 7 });
    expect(o).toMatchObject({ verdict: 'unsupported' });
    expect(o.verdict === 'unsupported' && o.reason).toMatch(/no L2 here/);
  });
});

describe('the agent (C) on stdin, where there is no /dev/kvm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-agent-'));
  const bin = join(dir, 'agent');
  const src = new URL('../targets/kvm/agent/', import.meta.url).pathname;
  const cc = spawnSync('gcc', ['-O1', '-Wall', '-Werror', '-pthread', '-fsanitize=address,undefined', '-o', bin, ...['agent.c', 'json.c', 'l1.S'].map((f) => join(src, f)), '-lz'], { encoding: 'utf8' });

  test('compiles without warnings (with AddressSanitizer)', () => {
    // gcc, libc6-dev and zlib1g-dev come from the test setup where apt-get can install them
    if (cc.error) throw new Error(`cannot run gcc: ${missingLine(missingPackages().filter((p) => p !== 'chromium'))}`);
    expect(cc.stderr).toBe('');
  });

  test('says hello without KVM, answers every request line, and survives malformed ones', () => {
    const lines = [
      '{"id":1,"op":"create-vcpu","args":{"config":{"nested":true}}}',
      '{"id":2,"op":"x","args":{"s":"ends in a backslash\\',
      '{"id":3,"op":"x","args":{"s":"\\u12"}}',
      '{"batch":[{"id":4,"op":"get-nested-state","args":{"vcpu":"v1","userSize":8}},{"id":5,"op":"frob","args":{}}]}',
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
      // the deflate feature: a whole batch, compressed
      JSON.stringify({ deflate: deflateRawSync(JSON.stringify({ batch: [{ id: 6, op: 'destroy-vcpu', args: { vcpu: 'v1' } }, { id: 7, op: 'frob', args: {} }] })).toString('base64') }),
      JSON.stringify({ deflate: deflateRawSync('x'.repeat(5 << 20)).toString('base64') }),
    ];
    const r = spawnSync(bin, [], { input: lines.join('\n') + '\n', encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    expect(r.status).toBe(0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out[0]).toMatchObject({ type: 'hello', protocol: 'nvmx-target/1', name: 'kvm', groups: [], features: ['deflate'] });
    expect(out[0].unsupported['nested-state']).toBeTruthy();
    expect(out[1]).toMatchObject({ id: 1, status: 'error' });
    expect(out[2].batch.map((x: { id: number }) => x.id)).toEqual([4, 5]);
    expect(out[3].batch.map((x: { id: number }) => x.id)).toEqual([6, 7]);
    expect(r.stderr).toMatch(/deflated line too long/);
    expect(r.stderr).toMatch(/unreadable request \(unterminated string\)/);
    expect(r.stderr).toMatch(/unreadable request \(bad \\u escape\)/);
    expect(r.stderr).toMatch(/nested too deeply/);
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
  });

  test('answers a deflated request of 1 KB or more deflated, a plain one plain', () => {
    const batch = JSON.stringify({ batch: Array.from({ length: 30 }, (_, i) => ({ id: 10 + i, op: 'frob', args: {} })) });
    const lines = [batch, JSON.stringify({ deflate: deflateRawSync(batch).toString('base64') }), JSON.stringify({ deflate: deflateRawSync('{"id":9,"op":"frob","args":{}}').toString('base64') })];
    const r = spawnSync(bin, [], { input: lines.join('\n') + '\n', encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    const [, plain, packed, short] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(JSON.stringify(plain).length).toBeGreaterThan(1024);
    expect(Object.keys(packed)).toEqual(['deflate']);
    expect(JSON.parse(inflateRawSync(Buffer.from(packed.deflate, 'base64')).toString())).toEqual(plain);
    expect(short).toMatchObject({ id: 9, status: expect.any(String) }); // under 1 KB: plain
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
  });
});

test("a slow target's shrink budget: shrinking stops after that many attempts, says so, and the path replays the failure", async () => {
  const failsAbove100: PropertyDef = {
    id: 'test.fails-above-100',
    invariant: 'every number is at most 100',
    groups: ['nested-state'],
    runs: 200,
    async build() {
      return fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 20, maxLength: 40 }), async (xs) => {
        if (xs.some((x) => x > 100)) throw new Error('a number above 100');
      });
    },
  };
  const slow: Target = { ...referenceTarget({ profile: 'linux-6.12' }), shrinkBudget: 5 };
  const bounded = await runProperty(failsAbove100, slow, { seed: 3 });
  const free = await runProperty(failsAbove100, referenceTarget({ profile: 'linux-6.12' }), { seed: 3 });
  expect(bounded.verdict).toBe('fail');
  expect(free.verdict).toBe('fail');
  if (bounded.verdict !== 'fail' || free.verdict !== 'fail') return;
  expect(bounded.counterexample.summary).toMatch(/shrinking stopped after 5 attempts/);
  expect(bounded.shrinks).toBeLessThanOrEqual(5);
  expect(free.shrinks).toBeGreaterThan(bounded.shrinks);
  const again = await runProperty(failsAbove100, slow, { seed: 3, path: bounded.path });
  expect(again).toMatchObject({ verdict: 'fail' });
});

test('a case counts only when it reaches the check: nested.restore.rejects-malformed reports as many cases as it made restore calls', async () => {
  const t = referenceTarget({ profile: 'linux-6.12' });
  let restores = 0;
  const counting: Target = { ...t, setNestedState: async (v, b) => (restores++, t.setNestedState(v, b)) };
  const o = await runProperty(findProperty('nested.restore.rejects-malformed')!, counting, { seed: 11, runs: 60 });
  expect(o.verdict).toBe('pass');
  if (o.verdict !== 'pass') return;
  expect(o.cases).toBe(60);
  expect(restores).toBe(60);
  expect(o.unsupportedCases).toBeUndefined(); // malformations that do not apply are not the target's doing
});

test("a slow target's default case count: the properties that need it run at most that many, the others their own, and --runs overrides both", async () => {
  const counted = (groups: PropertyDef['groups']): PropertyDef => ({
    id: `count.${groups.join('-') || 'model'}`,
    description: 'counts its cases',
    invariant: 'every case passes',
    groups,
    runs: 200,
    async build() {
      return fc.asyncProperty(fc.nat(), async () => {});
    },
  });
  const slow: Target = { ...referenceTarget({ profile: 'linux-6.12' }), defaultRuns: 7 };
  expect(await runProperty(counted(['nested-state']), slow, { seed: 1 })).toMatchObject({ verdict: 'pass', cases: 7 });
  expect(await runProperty(counted([]), slow, { seed: 1 })).toMatchObject({ verdict: 'pass', cases: 200 });
  expect(await runProperty(counted(['nested-state']), slow, { seed: 1, runs: 12 })).toMatchObject({ verdict: 'pass', cases: 12 });
  expect(await runProperty(counted(['nested-state']), referenceTarget({ profile: 'linux-6.12' }), { seed: 1 })).toMatchObject({ verdict: 'pass', cases: 200 });
});

test('nested.round-trip, nested.evmcs-flag-when-active and migration.matches-profile on a target that names no SET rule (a real kernel) judge its refusals by errno', async () => {
  const base = referenceTarget({ profile: 'linux-6.12' });
  const unnamed: Target = {
    ...base,
    setNestedState: async (v, b) => {
      const r = await base.setNestedState(v, b);
      return r.status === 'ok' ? { ...r, value: { ret: r.value.ret, errno: r.value.errno, rule: '' } } : r;
    },
  };
  expect(await runProperty(findProperty('nested.round-trip')!, unnamed, { seed: 812888808, runs: 300 })).toMatchObject({ verdict: 'pass', cases: 300 });
  expect(await runProperty(findProperty('nested.evmcs-flag-when-active')!, unnamed, { seed: 812888808, runs: 300 })).toMatchObject({ verdict: 'pass', cases: 300 });
  // a hop's SET refused on the target's host (kvm:debian-6.12, seed 11: V9 on a path from 4.20)
  expect(await runProperty(findProperty('migration.matches-profile')!, unnamed, { seed: 11, runs: 100 })).toMatchObject({ verdict: 'pass' });
});
