// The `packed-access` feature of nvmx-target/1: vmcs12-access ops and results as base64 records.
// Records round-trip every 64-bit value; malformed records are refused in one line naming the
// record; the runner packs only for a target that announces the feature; a packer bug is caught
// by vmcs12.access.write-read with a seed, a path, a shrunk counterexample and a replay. And the
// `zero-runs` feature: zero runs in request bytes, only to a target that announces it.
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { AccessOutcome } from '../model/vmcs12-access.js';
import { validateDef } from '../base/schemas.js';
import { must } from '../harness/property.js';
import { runProperty } from '../harness/runner.js';
import { findProperty } from '../suites/registry.js';
import { openExecTarget } from '../targets/exec.js';
import { packOps, packResults, unpackOps, unpackResults } from '../targets/protocol/packed.js';
import { answer, helloOf, serveTarget } from '../targets/protocol/serve.js';
import { bytesToHex, bytesToZeroRunHex, hexToBytes, runnerCodec, serverCodec } from '../targets/protocol/wire.js';
import { referenceTarget } from '../targets/reference.js';
import { ok, type Target, type Vmcs12Op } from '../targets/target.js';
import { expectCaught } from './expect-caught.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/nvmx-conformance.js');
const MISBEHAVING = join(ROOT, 'tests/fixtures/targets/misbehaving.mjs');
const u64 = fc.bigInt(0n, (1n << 64n) - 1n);
const vmcs12Op: fc.Arbitrary<Vmcs12Op> = fc.oneof(
  u64.map((encoding) => ({ op: 'read' as const, encoding })),
  fc.tuple(u64, u64).map(([encoding, value]) => ({ op: 'write' as const, encoding, value })),
);
const outcome: fc.Arbitrary<AccessOutcome> = fc.oneof(
  u64.map((value) => ({ ok: true as const, value })),
  fc.tuple(fc.nat(0xffffffff), fc.constantFrom('unsupported VMCS component 0x6008', 'read-only', '')).map(([error, reason]) => ({ ok: false as const, vmfail: 'valid' as const, error, reason })),
);
const b64 = (bytes: number[]) => Buffer.from(bytes).toString('base64');
const PAGE = '00'.repeat(4096);

describe('records', () => {
  test('ops and results round-trip, every 64-bit value, and their wire form passes the schema', () => {
    fc.assert(
      fc.property(fc.array(vmcs12Op, { maxLength: 40 }), fc.array(outcome, { maxLength: 40 }), (ops, results) => {
        expect(unpackOps(packOps(ops))).toEqual(ops);
        const packed = packResults(results);
        expect(unpackResults(packed.packedResults, packed.reasons)).toEqual(results);
        expect(new Set(packed.reasons).size).toBe(packed.reasons.length); // each reason once
        expect(validateDef('target-protocol', 'args-vmcs12-access', { page: PAGE, packedOps: packOps(ops) })).toEqual([]);
        expect(validateDef('target-protocol', 'value-vmcs12-access', { page: PAGE, ...packed })).toEqual([]);
      }),
    );
  });

  test('the record layout is the documented one (PROTOCOL.md example)', () => {
    const ops: Vmcs12Op[] = [{ op: 'write', encoding: 0x681en, value: 0x1000n }, { op: 'read', encoding: 0x681en }, { op: 'read', encoding: 0x6008n }];
    expect(packOps(ops)).toBe('AR5oAAAAAAAAABAAAAAAAAAAHmgAAAAAAAAACGAAAAAAAAA=');
    expect(packResults([{ ok: true, value: 0x1000n }, { ok: true, value: 0x1000n }, { ok: false, vmfail: 'valid', error: 12, reason: 'unsupported VMCS component 0x6008' }])).toEqual({
      packedResults: 'AAAQAAAAAAAAAAAQAAAAAAAAAQwAAAAAAAAA',
      reasons: ['unsupported VMCS component 0x6008'],
    });
  });

  test.each([
    ['an unknown kind', b64([1, ...Array(16).fill(0), 0, ...Array(8).fill(0), 7, 0, 0]), 'packedOps: op 2 (byte 26) has kind 7; kinds are 0 (read) and 1 (write)'],
    ['a record cut short', b64([0, ...Array(8).fill(0), 1, 0x1e, 0x68, 0, 0]), 'packedOps: op 1 (byte 9) needs 17 bytes, 5 are left'],
    ['base64 without its padding', 'AR5oAAAAAAAAABAAAAAAAAAAHmgAAAAAAAAACGAAAAAAAAA', 'packedOps: base64 of 47 characters is not a whole number of 4-character groups'],
  ])('packed ops with %s: one line naming the record', (_what, packedOps, reason) => {
    expect(() => unpackOps(packedOps)).toThrow(reason);
  });

  test.each([
    ['not whole records', b64(Array(10).fill(0)), [], 'packedResults: 10 bytes are not a whole number of 9-byte records'],
    ['an unknown tag', b64([0, ...Array(8).fill(0), 2, ...Array(8).fill(0)]), [], 'packedResults: result 1 (byte 9) has tag 2; tags are 0 (ok) and 1 (VMfailValid)'],
    ['a reason that is not there', b64([1, 12, 0, 0, 0, 1, 0, 0, 0]), ['only one'], 'packedResults: result 0 names reason 1; there are 1'],
  ])('packed results with %s: one line naming the record', (_what, packedResults, reasons, reason) => {
    expect(() => unpackResults(packedResults, reasons)).toThrow(reason);
  });
});

describe('serve reads packed requests and answers them packed', () => {
  const t = referenceTarget();
  const ops: Vmcs12Op[] = [{ op: 'write', encoding: 0x681en, value: 0x123456789abcdef0n }, { op: 'read', encoding: 0x681en }, { op: 'read', encoding: 0x6008n }];

  test('the same results as the JSON form, and the hello announces the feature', async () => {
    expect(helloOf(t).features).toEqual(['packed-access', 'zero-runs']);
    const packed = runnerCodec('vmcs12Access', ['packed-access']);
    const plain = runnerCodec('vmcs12Access', []);
    expect(Object.keys(packed.encodeArgs(new Uint8Array(4096), ops))).toEqual(['page', 'packedOps']);
    expect(Object.keys(plain.encodeArgs(new Uint8Array(4096), ops))).toEqual(['page', 'ops']);
    const viaPacked = await answer(t, { id: 1, op: 'vmcs12-access', args: packed.encodeArgs(new Uint8Array(4096), ops) });
    const viaJson = await answer(t, { id: 2, op: 'vmcs12-access', args: plain.encodeArgs(new Uint8Array(4096), ops) });
    expect(viaPacked.status === 'ok' && Object.keys(viaPacked.value as object)).toEqual(['page', 'packedResults', 'reasons']);
    expect(validateDef('target-protocol', 'responseLine', viaPacked)).toEqual([]);
    expect(validateDef('target-protocol', 'value-vmcs12-access', viaPacked.status === 'ok' && viaPacked.value)).toEqual([]);
    if (viaPacked.status !== 'ok' || viaJson.status !== 'ok') throw new Error('not ok');
    expect(packed.decodeValue(viaPacked.value)).toEqual(plain.decodeValue(viaJson.value));
  });

  test.each([
    ['records that do not decode', { page: PAGE, packedOps: b64([1, ...Array(16).fill(0), 0, ...Array(8).fill(0), 7, 0, 0]) }, 'bad vmcs12-access args: packedOps: op 2 (byte 26) has kind 7; kinds are 0 (read) and 1 (write)'],
    ['characters outside base64', { page: PAGE, packedOps: 'AR5o!AAA' }, /^bad vmcs12-access args: \/packedOps: must match pattern/],
    ['both forms at once', { page: PAGE, ops: [], packedOps: '' }, 'bad vmcs12-access args: /: unknown key "ops"'],
  ])('%s: an error answer in one line', async (_what, args, reason) => {
    const r = await answer(t, { id: 3, op: 'vmcs12-access', args });
    expect(r).toMatchObject({ id: 3, status: 'error', reason: typeof reason === 'string' ? reason : expect.stringMatching(reason) });
    expect(r.status !== 'ok' && r.reason).not.toContain('\n');
  });

  test('a JSON results list to a packed request does not decode', () => {
    expect(() => serverCodec('vmcs12Access', { packedOps: '' }).decodeValue({ page: '', results: [] })).toThrow('a packed request was answered with a results list, not packedResults');
  });
});

test("serve's line reader: a line split across chunks, CRLF, blank lines and a last line without a newline", async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  const log: string[] = [];
  const served = serveTarget(referenceTarget(), input, output, (l) => log.push(l));
  const packedOps = packOps([{ op: 'read', encoding: 0x681en }]);
  const line = JSON.stringify({ id: 1, op: 'vmcs12-access', args: { page: PAGE, packedOps } });
  input.write(line.slice(0, 5000));
  input.write(line.slice(5000) + '\r\n\n{"id":2,"op":"frob","args":{}}\nnot json\n');
  input.end('{"id":3,"op":"frob","args":{}}');
  await served;
  const answers = (output.read() as Buffer).toString().trim().split('\n').map((l) => JSON.parse(l));
  expect(answers.map((a) => [a.type ?? a.id, a.status])).toEqual([['hello', undefined], [1, 'ok'], [2, 'unsupported'], [3, 'unsupported']]);
  expect(log).toEqual(['not JSON, ignored: not json']);
});

describe('the runner packs only for a target that announces it', () => {
  const def = findProperty('vmcs12.access.write-read')!;

  test('exec:"serve" passes write-read packed; a target without the feature gets (and passes on) plain JSON', async () => {
    for (const argv of [[process.execPath, BIN, 'serve'], [process.execPath, MISBEHAVING, 'json-only']]) {
      const target = await openExecTarget({ argv, shell: false, timeoutMs: 30_000 });
      try {
        expect(await runProperty(def, target, { seed: 3, runs: 20 })).toMatchObject({ verdict: 'pass', cases: 20 });
      } finally {
        await target.close();
      }
    }
  });

  test('the deflate feature: long requests go deflated and deflated answers are read; one that does not inflate breaks the connection, naming it', async () => {
    const good = await openExecTarget({ argv: [process.execPath, MISBEHAVING, 'deflate'], shell: false, timeoutMs: 30_000 });
    try {
      expect(await runProperty(def, good, { seed: 3, runs: 5 })).toMatchObject({ verdict: 'pass', cases: 5 });
    } finally {
      await good.close();
    }
    const bad = await openExecTarget({ argv: [process.execPath, MISBEHAVING, 'bad-deflate'], shell: false, timeoutMs: 30_000 });
    try {
      const o = await runProperty(def, bad, { seed: 3, runs: 5 });
      expect(o).toMatchObject({ verdict: 'error' });
      expect(o.verdict === 'error' && o.reason).toMatch(/target sent a deflated line that does not inflate \(.*\): "\{\\"deflate\\":\\"bm90IGRlZmxhdGU=\\"\}"/);
    } finally {
      await bad.close();
    }
  });

  test('packed results that do not decode are an error verdict naming them; the connection stays up', async () => {
    const target = await openExecTarget({ argv: [process.execPath, MISBEHAVING, 'bad-packed'], shell: false, timeoutMs: 30_000 });
    try {
      const o = await runProperty(def, target, { seed: 3, runs: 5 });
      expect(o).toMatchObject({ verdict: 'error', reason: "target's vmcs12-access value does not decode: packedResults: 10 bytes are not a whole number of 9-byte records" });
      expect((await target.layout('vmcs12')).status).toBe('ok');
    } finally {
      await target.close();
    }
  });
});

describe('zero runs', () => {
  // mostly zero bytes, so runs of every length occur, some of them at the ends
  const sparse = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 255 }) }), { maxLength: 300 }).map((a) => new Uint8Array(a));

  test('bytes round-trip; every run of 16 or more zero bytes is written as a run, shorter ones as hex; the schema takes it', () => {
    fc.assert(
      fc.property(sparse, (b) => {
        const s = bytesToZeroRunHex(b);
        expect(hexToBytes(s)).toEqual(b);
        expect(validateDef('target-protocol', 'bytes', s)).toEqual([]);
        expect(s.replace(/~[0-9a-f]+\./g, '')).not.toMatch(/(00){16}/);
        for (const [, n] of s.matchAll(/~([0-9a-f]+)\./g)) expect(parseInt(n!, 16)).toBeGreaterThanOrEqual(16);
      }),
    );
    expect(bytesToZeroRunHex(new Uint8Array(4096))).toBe('~1000.');
    expect(bytesToZeroRunHex(new Uint8Array([1, ...Array(15).fill(0), 2]))).toBe('01' + '00'.repeat(15) + '02');
    // a run longer than ~fffff. is split; the rest (6 bytes) stays hex
    expect(bytesToZeroRunHex(new Uint8Array(0xfffff + 6))).toBe('~fffff.' + '00'.repeat(6));
  });

  test('the runner writes zero runs in request bytes only to a target that lists zero-runs; serve lists it and answers with them', async () => {
    const zero = new Uint8Array(4096);
    expect(runnerCodec('vmcs12Access', ['packed-access', 'zero-runs']).encodeArgs(zero, [])).toEqual({ page: '~1000.', packedOps: '' });
    expect(runnerCodec('vmcs12Access', ['packed-access']).encodeArgs(zero, [])).toEqual({ page: PAGE, packedOps: '' });
    expect(runnerCodec('vmcs12Access', ['zero-runs']).encodeArgs(zero, [])).toEqual({ page: '~1000.', ops: [] });
    expect(runnerCodec('setNestedState', ['zero-runs']).encodeArgs('v0', new Uint8Array(128))).toEqual({ vcpu: 'v0', blob: '~80.' });
    expect(runnerCodec('setNestedState', []).encodeArgs('v0', new Uint8Array(128))).toEqual({ vcpu: 'v0', blob: '00'.repeat(128) });
    const t = referenceTarget();
    const codec = runnerCodec('vmcs12Access', helloOf(t).features!);
    const r = await answer(t, { id: 1, op: 'vmcs12-access', args: codec.encodeArgs(zero, [{ op: 'write', encoding: 0x681en, value: 0x1000n }]) });
    expect(validateDef('target-protocol', 'responseLine', r)).toEqual([]);
    if (r.status !== 'ok') throw new Error(r.reason);
    expect((r.value as { page: string }).page).toMatch(/^[0-9a-f]*~[0-9a-f]+\.[0-9a-f]*/);
    const back = codec.decodeValue(r.value);
    expect(back).toEqual(must(await t.vmcs12Access(zero, [{ op: 'write', encoding: 0x681en, value: 0x1000n }])));
  });

  test('a target from before zero-runs (packed-access only, refusing a zero run) gets plain hex and passes write-read', async () => {
    const target = await openExecTarget({ argv: [process.execPath, MISBEHAVING, 'no-zero-runs'], shell: false, timeoutMs: 30_000 });
    try {
      expect(await runProperty(findProperty('vmcs12.access.write-read')!, target, { seed: 3, runs: 20 })).toMatchObject({ verdict: 'pass', cases: 20 });
    } finally {
      await target.close();
    }
  });
});

/** The reference behind the packed framing in process (what exec:"serve" does, less the pipe), with the packer given. */
function packedLoopback(pack: typeof packResults): Target {
  const ref = referenceTarget({ name: 'packed-loopback' });
  const runner = runnerCodec('vmcs12Access', ['packed-access']);
  return {
    ...ref,
    async vmcs12Access(page, ops) {
      const args = JSON.parse(JSON.stringify(runner.encodeArgs(page, ops)));
      const r = must(await ref.vmcs12Access(...serverCodec('vmcs12Access', args).decodeArgs(args)));
      return ok(runner.decodeValue(JSON.parse(JSON.stringify({ page: bytesToHex(r.page), ...pack(r.results) }))));
    },
  };
}

test('a packer that stores the low 32 bits of a value is caught by vmcs12.access.write-read, shrunk and replayed', async () => {
  const def = findProperty('vmcs12.access.write-read')!;
  expect(await runProperty(def, packedLoopback(packResults), { seed: 1, runs: 50 })).toMatchObject({ verdict: 'pass' });
  // the bug a setUint32 in place of setBigUint64 makes
  const target = packedLoopback((rs) => packResults(rs.map((r) => (r.ok ? { ok: true, value: r.value & 0xffffffffn } : r))));
  const o = await expectCaught(def, target, { seeds: [1], runs: 100, run: { target: 'packed-loopback', profile: 'linux-6.12' } });
  // shrunk to one field whose value needs bit 32, read back without it
  expect(o.counterexample.diff).toEqual([expect.objectContaining({ expected: '0x100000000', actual: '0x0' })]);
});
