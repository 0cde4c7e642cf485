// The command line's contract beyond each command's job: --help on every command (generated from
// the option declarations), --version, range errors in one line, file-system errors as exit 2,
// replay's own directory, model-based replay without its replay path, nested restore seeding guest
// memory as golden verify does, golden add's plausibility warnings, and what the npm package ships.
// What a command answers comes from its main() in this process where it can (tests/cli-helpers.ts;
// check, replay and serve run in a process of their own), and a test shows both ways answer alike.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CLI } from '../cli/spec.js';
import { allCommands, isGroup } from '../cli/spec-types.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { cli as run, cliHere, cliQuick, spawnAsync, tmp } from './cli-helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const cli = (...args: string[]) => cliQuick(args);
const GROUPS = CLI.filter(isGroup);
const COMMANDS = allCommands(CLI);

/** An error as CI sees it: one line on stderr, nothing on stdout's error path, no stack. */
function oneLine(r: { code: number | null; err: string }, code = 2): string {
  expect(r.code).toBe(code);
  const lines = r.err.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(r.err).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('main() in this process answers as the command line in a process of its own', () => {
  // most tests here and in cli.test.ts, golden.test.ts and nested-selftest.test.ts take a command's
  // answer from main() in the test's process (tests/cli-helpers.ts): the same exit code, stdout and
  // stderr as bin/nvmx-conformance.js gives, for an answer, a failure (exit 1) and bad input (exit 2)
  /** linux-6.12's layout with guest_rip and guest_rsp swapped: a silent break */
  const brokenLayout = () => {
    const d = JSON.parse(readFileSync(join(ROOT, 'layouts/linux-6.12.vmcs12.json'), 'utf8'));
    const [rip, rsp] = ['guest_rip', 'guest_rsp'].map((n) => d.members.find((m: { name: string }) => m.name === n));
    [rip.offset, rsp.offset] = [rsp.offset, rip.offset];
    const f = join(tmp(), 'broken.json');
    writeFileSync(f, JSON.stringify(d));
    return f;
  };
  test.each([
    [['--version'], 0],
    [['layout', 'show', 'linux-6.1'], 0],
    [['nested', 'decode', join(ROOT, 'golden/blobs/shadow-l2.linux-6.12.bin')], 0],
    [['golden', 'verify'], 0],
    [['layout', 'diff', 'linux-6.12', brokenLayout()], 1],
    [['filter', 'diff', '--from', 'linux-6.1'], 2],
    [['report', 'merge', '/no/such/dir'], 2],
    [['nested', 'frob'], 2],
  ])('%j', async (args, code) => {
    const here = await cliHere(args);
    expect(here).toEqual(run(args));
    expect(here.code).toBe(code);
    expect(here.out + here.err).not.toBe('');
  });
});

describe('--help and --version', () => {
  test.each(COMMANDS.map((c) => [c.name, c] as const))('%s --help: exit 0, usage and every declared option', async (name, spec) => {
    const r = await cli(...name.split(' '), '--help');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(new RegExp(`^usage: nvmx-conformance ${name}\\b`));
    const text = r.out.replace(/\s+/g, ' ');
    expect(text).toContain(spec.summary);
    for (const [opt, o] of Object.entries(spec.options)) {
      expect(text).toContain(`--${opt}`);
      expect(text).toContain(o.help);
      if (typeof o.default === 'string') expect(text).toContain(`default ${o.default}`);
      if (o.int) expect(text).toContain(`${o.int[0]} to ${o.int[1]}`);
    }
  });

  test('-h works too, anywhere before --', async () => {
    expect((await cli('check', '--runs', '5', '-h')).out).toMatch(/^usage: nvmx-conformance check/);
  });

  test.each(GROUPS.map((g) => [g.name, g] as const))('%s --help lists its commands', async (name, g) => {
    const r = await cli(name, '--help');
    expect(r.code).toBe(0);
    for (const c of g.commands) expect(r.out).toContain(c.name);
  });

  test('the top-level usage lists every command, from the same declarations', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.out).toContain(`  ${c.name}`);
  });

  test('--version prints the package version', async () => {
    const r = await cli('--version');
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(`nvmx-conformance ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`);
  });
});

describe('range errors are one line', () => {
  test.each([
    [['check', '--runs', '-1'], '--runs must be between 1 and 10000000, got -1'],
    [['check', '--runs', '0'], '--runs must be between 1 and 10000000, got 0'],
    [['check', '--seed', '99999999999'], '--seed must be between -2147483648 and 2147483647'],
    [['check', '--time-budget', '-3'], '--time-budget must be between 1 and 604800, got -3'],
    [['matrix', '--paths', '-2'], '--paths must be between 0 and 10000, got -2'],
    [['filter', 'show', '--profile', 'linux-6.12', '--msrs', 'x', '--hv-nested-ebx', '-1'], 'no such file'],
    [['check', '--runs'], "check: Option '--runs <value>' argument missing"],
    [['check', '--frob'], "check: Unknown option '--frob'"],
  ])('%j', async (args, text) => {
    expect(oneLine(await cli(...args))).toContain(text);
  });

  test('a negative seed is a value, not an option', async () => {
    const dir = tmp();
    const r = await cli('matrix', '--seed', '-5', '--paths', '0', '--scenarios', 'mtf-pending', '--profiles', 'linux-5.6,linux-6.12', '--report', dir);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')).seed).toBe(-5);
  });
});

describe('file-system errors: exit 2, one line', () => {
  // a blob's JSON description, decoded once, in a directory of each test's own
  let decoded: Promise<string> | undefined;
  const spec = async () => {
    decoded ??= cli('nested', 'decode', join(ROOT, 'golden/blobs/shadow-l2.linux-6.12.bin'), '--json').then((r) => r.out);
    const dir = tmp();
    const f = join(dir, 'spec.json');
    writeFileSync(f, await decoded);
    return { dir, f };
  };

  test('nested encode --out <a directory>', async () => {
    const { dir, f } = await spec();
    expect(oneLine(await cli('nested', 'encode', f, '--out', dir))).toContain(`cannot write ${dir}`);
  });

  test('nested encode --out under a file', async () => {
    const { f } = await spec();
    expect(oneLine(await cli('nested', 'encode', f, '--out', join(f, 'x.bin')))).toContain('not a directory');
  });

  test('matrix --report <a file>', async () => {
    const { f } = await spec();
    expect(oneLine(await cli('matrix', '--paths', '0', '--report', f))).toContain('is not a directory');
  });

  test('check --report under /proc answers at once (node\'s recursive mkdir never returns there)', async () => {
    expect(oneLine(await cli('check', '--only', 'vmcs12.codec.round-trip', '--runs', '1', '--report', '/proc/nvmx-no-such/x'))).toContain('cannot create the report directory /proc/nvmx-no-such/x');
  });

  test('report merge --out <a file>', async () => {
    const { f } = await spec();
    const shard = tmp();
    expect((await cli('check', '--shard', '1/1', '--only', 'vmcs12.codec.round-trip', '--runs', '1', '--report', shard)).code).toBe(0);
    expect(oneLine(await cli('report', 'merge', shard, '--out', f))).toContain('is not a directory');
  });
});

describe('replay', () => {
  test('writes to reports/replay, never over reports/latest', () => {
    const cwd = tmp();
    const r = run(['replay', 'vmcs12.codec.round-trip', '--seed', '1', '--path', '0'], { cwd });
    expect(r.code).toBe(0);
    expect(existsSync(join(cwd, 'reports/replay/report.json'))).toBe(true);
    expect(existsSync(join(cwd, 'reports/latest'))).toBe(false);
  });

  test('a model-based property without --replay-path says so in one line', async () => {
    const ids = ALL_PROPERTIES.filter((p) => p.modelBased).map((p) => p.id);
    expect(ids).toEqual(['nested.evmcs-flag-when-active']);
    const line = oneLine(await cli('replay', ids[0]!, '--seed', '1', '--path', '0:1', '--report', tmp()));
    expect(line).toContain('also needs --replay-path');
  });
});

describe('nested restore seeds guest memory', () => {
  const blob = join(ROOT, 'golden/blobs/shadow-l2.linux-6.12.bin');

  test('a golden shadow blob restores as golden verify says: the link page comes from the blob', async () => {
    const r = await cli('nested', 'restore', '--profile', 'linux-6.12', '--blob', blob, '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o).toMatchObject({ ok: true, rule: 'S9' });
    expect(o.memory).toEqual([{ op: 'write-memory', pa: '0x5000', value: '0x91e57ed0', from: "the blob's shadow vmcs12 at its link pointer" }]);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'golden/manifest.json'), 'utf8'));
    expect(manifest.entries.find((e: { id: string }) => e.id === 'shadow-l2.linux-6.12').consumers['linux-6.12']).toEqual({ result: 'valid' });
  });

  test('--memory writes after the blob\'s seed: a link page without the shadow revision fails V14', async () => {
    const dir = tmp();
    const mem = join(dir, 'memory.json');
    writeFileSync(mem, JSON.stringify([{ op: 'write-memory', pa: '0x5000', value: '0x1' }, { op: 'set-vp-assist', currentNestedVmcs: '0x9000', enlightenVmentry: false }]));
    const r = await cli('nested', 'restore', '--profile', 'linux-6.12', '--blob', blob, '--memory', mem);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`memory: 8 bytes 0x1 at 0x5000 (${mem}#0)`);
    expect(r.out).toContain('VP-assist page: current nested VMCS 0x9000');
    expect(r.out).toMatch(/returns -22 \(-EINVAL\) at rule V14: VM-entry check guest\.link-pointer\.revision/);
  });

  test('--memory takes memory operations only', async () => {
    const mem = join(tmp(), 'memory.json');
    writeFileSync(mem, JSON.stringify([{ op: 'vmxon', pa: '0x1000' }]));
    expect(oneLine(await cli('nested', 'restore', '--blob', blob, '--memory', mem))).toContain('/0/op: --memory takes only write-memory, init-vmcs, init-evmcs, set-vp-assist');
  });
});

describe('golden add warns about a blob that does not decode plausibly', () => {
  const add = (file: string, kind: string, dir: string) => cli('golden', 'add', '--file', file, '--kind', kind, '--id', 'captured.x', '--producer', 'captured from a test', '--golden', dir);
  const corpus = () => {
    const dir = tmp();
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 'nvmx-golden/1', entries: [] }));
    return dir;
  };

  test('a page of the wrong size and revision', async () => {
    const dir = corpus();
    const f = join(dir, 'page.bin');
    writeFileSync(f, new Uint8Array(1000).fill(7));
    const r = await add(f, 'vmcs12', dir);
    expect(r.err).toContain('warning: ');
    expect(r.err).toContain('the vmcs12 page is 1000 bytes; a linux-6.12 vmcs12 page is 4096');
    expect(r.err).toContain("revision id 0x07070707, not linux-6.12's 0x11e57ed0");
  });

  test('a nested-state blob whose size field lies and whose vmcs12 has no revision', async () => {
    const dir = corpus();
    const f = join(dir, 'blob.bin');
    copyFileSync(join(ROOT, 'golden/blobs/invalid-v12-revision.linux-6.12.bin'), f);
    const r = await add(f, 'nested-state', dir);
    expect(r.err).toContain("its vmcs12 has revision id 0x00000000, not linux-6.12's 0x11e57ed0");
  });

  test('a good blob: no warning', async () => {
    const dir = corpus();
    const f = join(dir, 'blob.bin');
    copyFileSync(join(ROOT, 'golden/blobs/shadow-l2.linux-6.12.bin'), f);
    const r = await add(f, 'nested-state', dir);
    expect(r.code).toBe(0);
    expect(r.err).not.toContain('warning');
  });
});

describe('the npm package ships only what runs', () => {
  // one `npm pack`: the file list it prints is what the tarball holds, and the tarball is unpacked and run
  const dir = tmp();
  const pack = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  const packed: { filename: string; files: { path: string }[] } | undefined = pack.status === 0 ? JSON.parse(pack.stdout)[0] : undefined;
  const files: string[] = packed?.files.map((f) => f.path) ?? [];

  test('dist, bin, schemas, golden data, layouts, the C sources the targets compile, the example VMM adapter, README; no TypeScript, no source maps', () => {
    expect(pack.status).toBe(0);
    expect(files.filter((f) => /\.ts$|\.map$/.test(f))).toEqual([]);
    expect(files.filter((f) => /^(tests|suites|model|cli|generators|bench)\/|^dist\/bench\/|^golden\/tools\//.test(f))).toEqual([]);
    for (const f of ['README.md', 'bin/nvmx-conformance.js', 'dist/cli/main.js', 'reports/schema/report.schema.json', 'golden/manifest.json', 'layouts/linux-6.12.vmcs12.json', 'targets/linux/harness.c', 'targets/kvm/agent/agent.c', 'targets/kvm/host/nodelay.c', 'examples/vmm-adapter.mjs']) expect(files).toContain(f);
    const tops = new Set(files.map((f) => f.split('/')[0]));
    expect([...tops].sort()).toEqual(['README.md', 'bin', 'dist', 'examples', 'golden', 'layouts', 'package.json', 'reports', 'targets']);
  });

  test('what it ships runs: check and golden verify from the unpacked package', async () => {
    expect(pack.status).toBe(0);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    expect(tgz).toBe(packed!.filename);
    mkdirSync(join(dir, 'x'));
    expect(spawnSync('tar', ['xzf', join(dir, tgz), '-C', join(dir, 'x')]).status).toBe(0);
    const pkg = join(dir, 'x', 'package');
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
    const bin = join(pkg, 'bin', 'nvmx-conformance.js');
    const [check, golden] = await Promise.all([
      spawnAsync(process.execPath, [bin, 'check', '--only', 'vmcs12.codec.round-trip', '--runs', '2', '--report', join(dir, 'r')], { cwd: dir }),
      spawnAsync(process.execPath, [bin, 'golden', 'verify'], { cwd: dir }),
    ]);
    expect(check.err).toBe('');
    expect(check.code).toBe(0);
    expect(golden.code).toBe(0);
  });
});
