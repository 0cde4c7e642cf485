// The linux: target's C harness on malformed input, without a kernel tree: a tree with only a
// Makefile gives the harness with every group left out, which still reads every request line.
// Built here with AddressSanitizer and UBSan; each bad line must cost one line on stderr and
// nothing else. Also: putf never cuts its output, and a failed build leaves nothing in the cache.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync as mkdtemp, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { buildHarness } from '../targets/linux/build.js';
import { generate } from '../targets/linux/generate.js';
import { TargetStartError } from '../targets/exec.js';
import { missingLine, missingPackages } from './setup/system-packages.js';

const HARNESS_C = new URL('../targets/linux/harness.c', import.meta.url).pathname;
const ASAN = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all'];
const NO_LEAK_CHECK = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' };

/** Temporary directories, removed when the file is done. */
const made: string[] = [];
const mkdtempSync = (prefix: string): string => (made.push(mkdtemp(prefix)), made.at(-1)!);
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A directory that is a kernel tree only as far as its Makefile goes. */
function bareTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'nvmx-bare-tree-'));
  writeFileSync(join(root, 'Makefile'), 'VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n');
  return root;
}

function gcc(args: string[]) {
  const cc = spawnSync('gcc', args, { encoding: 'utf8' });
  // gcc and libc6-dev come from the test setup where apt-get can install them
  if (cc.error) throw new Error(`cannot run gcc: ${missingLine(missingPackages().filter((p) => p !== 'chromium'))}`);
  return cc;
}

describe('harness.c with AddressSanitizer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-harness-'));
  writeFileSync(join(dir, 'nvmx-kernel.h'), generate(bareTree()).header);
  const bin = join(dir, 'harness');
  const cc = gcc(['-O1', '-std=gnu11', '-Wall', '-Wno-unused-function', '-Werror', ...ASAN, '-I', dir, '-o', bin, HARNESS_C]);

  test('compiles without warnings', () => {
    expect(cc.stderr).toBe('');
    expect(cc.status).toBe(0);
  });

  test('a malformed line gets one line on stderr naming what is wrong; the lines around it are answered', () => {
    const bad: [string, RegExp][] = [
      ['{"id":1,"op":"x\\', /a string ends in a backslash/],
      ['{"id":1,"op":"\\u', /a \\u escape without four hex digits/],
      ['{"id":1,"op":"\\u12', /a \\u escape without four hex digits/],
      ['{"id":1,"op":"\\u12"}', /a \\u escape without four hex digits/],
      ['{"id":1,"op":"\\q"}', /an unknown escape/],
      ['{"id":1,"op":"unterminated', /an unterminated string/],
      ['{"id":1,"op"', /expected ':'/],
      ['{"id":1 "op":"x"}', /expected ',' or a closing bracket/],
      ['{"id":1}{"id":2}', /text after the JSON value/],
      ['{"id":1}\0{"id":2}', /a NUL byte/],
      ['[' .repeat(100_000) + ']'.repeat(100_000), /nested more than 64 deep/],
      [`[${'0,'.repeat(70_000)}0]`, /more than 65536 JSON values/],
      ['["an array"]', /not a JSON object/],
      ['\x01\x1b[2J', /not JSON/],
    ];
    const lines = bad.flatMap(([line], i) => [line, JSON.stringify({ id: 100 + i, op: 'no-such-op' })]);
    const r = spawnSync(bin, [], { input: lines.join('\n') + '\n', encoding: 'utf8', env: NO_LEAK_CHECK, maxBuffer: 64 << 20 });
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
    expect(r.status).toBe(0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out[0]).toMatchObject({ type: 'hello', groups: [] });
    expect(out.slice(1).map((a: { id: number; status: string }) => [a.id, a.status])).toEqual(bad.map((_b, i) => [100 + i, 'unsupported']));
    const err = r.stderr.split('\n').filter(Boolean);
    expect(err).toHaveLength(bad.length);
    err.forEach((e, i) => {
      expect(e).toMatch(/^harness: unreadable request \(.+\), ignored: /);
      expect(e).toMatch(bad[i]![1]);
      expect(e.length).toBeLessThan(200); // the line's start, printable, never the whole line
    });
  });

  test.each(['{"id":1,"op":"x\\', '{"id":1,"op":"\\u', '{"id":1,"op":"\\u0'])('input that ends inside an escape, %s, is an error, not a read past the line', (input) => {
    // the last bytes of the input, with no newline after them: the case AddressSanitizer caught
    const r = spawnSync(bin, [], { input, encoding: 'utf8', env: NO_LEAK_CHECK });
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^harness: unreadable request \((a string ends in a backslash|a \\u escape without four hex digits)\), ignored: [^\n]*\n$/);
  });

  test('an id or op of the wrong JSON type is read as absent, not dereferenced', () => {
    const r = spawnSync(bin, [], { input: '{"id":{},"op":["layout"],"args":7}\n{"id":null,"op":true}\n', encoding: 'utf8', env: NO_LEAK_CHECK });
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
    const out = r.stdout.trim().split('\n').slice(1).map((l) => JSON.parse(l));
    expect(out).toEqual([
      { id: 0, status: 'unsupported', reason: 'unknown op ""' },
      { id: 0, status: 'unsupported', reason: 'unknown op ""' },
    ]);
  });

  test('putf writes output longer than its stack buffer whole', () => {
    // harness.c's statics are reachable from a driver that includes it (its main renamed)
    const driver = join(dir, 'putf-driver.c');
    writeFileSync(driver, `#define main harness_main\n#include "${HARNESS_C}"\n#undef main\nint main(void) { char s[5000]; memset(s, 'x', sizeof(s) - 1); s[sizeof(s) - 1] = 0; putf("<%s|%d>", s, 42); fwrite(out, 1, outlen, stdout); return 0; }\n`);
    const c = gcc(['-O1', '-std=gnu11', '-Wall', '-Wno-unused-function', ...ASAN, '-I', dir, '-o', join(dir, 'putf'), driver]);
    expect(c.status, c.stderr).toBe(0);
    const r = spawnSync(join(dir, 'putf'), [], { encoding: 'utf8', env: NO_LEAK_CHECK });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`<${'x'.repeat(4999)}|42>`);
  });
});

describe('the build cache', () => {
  const saved = { PATH: process.env.PATH, NVMX_CACHE_DIR: process.env.NVMX_CACHE_DIR };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });
  const cacheOf = () => {
    const cache = mkdtempSync(join(tmpdir(), 'nvmx-cache-'));
    process.env.NVMX_CACHE_DIR = cache;
    return join(cache, 'harness');
  };

  test('a build gcc refuses is removed from the cache, and the error says what gcc said', () => {
    const fake = mkdtempSync(join(tmpdir(), 'nvmx-fake-gcc-'));
    mkdirSync(join(fake, 'bin'));
    writeFileSync(join(fake, 'bin', 'gcc'), '#!/bin/sh\n[ "$1" = --version ] && { echo "gcc (planted) 0"; exit 0; }\necho "harness.c:1:1: error: planted failure" >&2\nexit 1\n');
    chmodSync(join(fake, 'bin', 'gcc'), 0o755);
    const harness = cacheOf();
    process.env.PATH = `${join(fake, 'bin')}:${process.env.PATH}`;
    let thrown: unknown;
    try {
      buildHarness(bareTree());
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(TargetStartError);
    expect((thrown as Error).message).toMatch(/gcc could not build the harness from .*: harness\.c:1:1: error: planted failure$/);
    expect(readdirSync(harness)).toEqual([]);
  });

  test('a build that lands leaves only its own directory, and the binary says hello', () => {
    const harness = cacheOf();
    const h = buildHarness(bareTree());
    expect(readdirSync(harness)).toEqual([h.dir.split('/').pop()]);
    const r = spawnSync(h.binary, [], { input: '', encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'hello', name: 'linux 6.12.0' });
  });
});
