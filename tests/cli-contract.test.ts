// The command line's contract beyond each command's job: --help on every command (generated from
// the option declarations), --version, range errors in one line, file-system errors as exit 2,
// replay's own directory, model-based replay without its replay path, nested restore seeding guest
// memory as golden verify does, golden add's plausibility warnings, and what the npm package ships.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CLI } from '../cli/spec.js';
import { allCommands, isGroup } from '../cli/spec-types.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { cli as run, tmp } from './cli-helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const cli = (...args: string[]) => run(args);
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

describe('--help and --version', () => {
  test.each(COMMANDS.map((c) => [c.name, c] as const))('%s --help: exit 0, usage and every declared option', (name, spec) => {
    const r = cli(...name.split(' '), '--help');
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

  test('-h works too, anywhere before --', () => {
    expect(cli('check', '--runs', '5', '-h').out).toMatch(/^usage: nvmx-conformance check/);
  });

  test.each(GROUPS.map((g) => [g.name, g] as const))('%s --help lists its commands', (name, g) => {
    const r = cli(name, '--help');
    expect(r.code).toBe(0);
    for (const c of g.commands) expect(r.out).toContain(c.name);
  });

  test('the top-level usage lists every command, from the same declarations', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.out).toContain(`  ${c.name}`);
  });

  test('--version prints the package version', () => {
    const r = cli('--version');
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
  ])('%j', (args, text) => {
    expect(oneLine(cli(...args))).toContain(text);
  });

  test('a negative seed is a value, not an option', () => {
    const dir = tmp();
    const r = cli('matrix', '--seed', '-5', '--paths', '0', '--scenarios', 'mtf-pending', '--profiles', 'linux-5.6,linux-6.12', '--report', dir);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')).seed).toBe(-5);
  });
});

describe('file-system errors: exit 2, one line', () => {
  const spec = () => {
    const dir = tmp();
    const f = join(dir, 'spec.json');
    writeFileSync(f, cli('nested', 'decode', join(ROOT, 'golden/blobs/shadow-l2.linux-6.12.bin'), '--json').out);
    return { dir, f };
  };

  test('nested encode --out <a directory>', () => {
    const { dir, f } = spec();
    expect(oneLine(cli('nested', 'encode', f, '--out', dir))).toContain(`cannot write ${dir}`);
  });

  test('nested encode --out under a file', () => {
    const { f } = spec();
    expect(oneLine(cli('nested', 'encode', f, '--out', join(f, 'x.bin')))).toContain('not a directory');
  });

  test('matrix --report <a file>', () => {
    const { f } = spec();
    expect(oneLine(cli('matrix', '--paths', '0', '--report', f))).toContain('is not a directory');
  });

  test('check --report under /proc answers at once (node\'s recursive mkdir never returns there)', () => {
    expect(oneLine(cli('check', '--only', 'vmcs12.codec.round-trip', '--runs', '1', '--report', '/proc/nvmx-no-such/x'))).toContain('cannot create the report directory /proc/nvmx-no-such/x');
  });

  test('report merge --out <a file>', () => {
    const { f } = spec();
    const shard = tmp();
    expect(cli('check', '--shard', '1/1', '--only', 'vmcs12.codec.round-trip', '--runs', '1', '--report', shard).code).toBe(0);
    expect(oneLine(cli('report', 'merge', shard, '--out', f))).toContain('is not a directory');
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

  test('a model-based property without --replay-path says so in one line', () => {
    const ids = ALL_PROPERTIES.filter((p) => p.modelBased).map((p) => p.id);
    expect(ids).toEqual(['nested.evmcs-flag-when-active']);
    const line = oneLine(cli('replay', ids[0]!, '--seed', '1', '--path', '0:1', '--report', tmp()));
    expect(line).toContain('also needs --replay-path');
  });
});

describe('nested restore seeds guest memory', () => {
  const blob = join(ROOT, 'golden/blobs/shadow-l2.linux-6.12.bin');

  test('a golden shadow blob restores as golden verify says: the link page comes from the blob', () => {
    const r = cli('nested', 'restore', '--profile', 'linux-6.12', '--blob', blob, '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o).toMatchObject({ ok: true, rule: 'S9' });
    expect(o.memory).toEqual([{ op: 'write-memory', pa: '0x5000', value: '0x91e57ed0', from: "the blob's shadow vmcs12 at its link pointer" }]);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'golden/manifest.json'), 'utf8'));
    expect(manifest.entries.find((e: { id: string }) => e.id === 'shadow-l2.linux-6.12').consumers['linux-6.12']).toEqual({ result: 'valid' });
  });

  test('--memory writes after the blob\'s seed: a link page without the shadow revision fails V14', () => {
    const dir = tmp();
    const mem = join(dir, 'memory.json');
    writeFileSync(mem, JSON.stringify([{ op: 'write-memory', pa: '0x5000', value: '0x1' }, { op: 'set-vp-assist', currentNestedVmcs: '0x9000', enlightenVmentry: false }]));
    const r = cli('nested', 'restore', '--profile', 'linux-6.12', '--blob', blob, '--memory', mem);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`memory: 8 bytes 0x1 at 0x5000 (${mem}#0)`);
    expect(r.out).toContain('VP-assist page: current nested VMCS 0x9000');
    expect(r.out).toMatch(/returns -22 \(-EINVAL\) at rule V14: VM-entry check guest\.link-pointer\.revision/);
  });

  test('--memory takes memory operations only', () => {
    const mem = join(tmp(), 'memory.json');
    writeFileSync(mem, JSON.stringify([{ op: 'vmxon', pa: '0x1000' }]));
    expect(oneLine(cli('nested', 'restore', '--blob', blob, '--memory', mem))).toContain('/0/op: --memory takes only write-memory, init-vmcs, init-evmcs, set-vp-assist');
  });
});

describe('golden add warns about a blob that does not decode plausibly', () => {
  const add = (file: string, kind: string, dir: string) => cli('golden', 'add', '--file', file, '--kind', kind, '--id', 'captured.x', '--producer', 'captured from a test', '--golden', dir);
  const corpus = () => {
    const dir = tmp();
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 'nvmx-golden/1', entries: [] }));
    return dir;
  };

  test('a page of the wrong size and revision', () => {
    const dir = corpus();
    const f = join(dir, 'page.bin');
    writeFileSync(f, new Uint8Array(1000).fill(7));
    const r = add(f, 'vmcs12', dir);
    expect(r.err).toContain('warning: ');
    expect(r.err).toContain('the vmcs12 page is 1000 bytes; a linux-6.12 vmcs12 page is 4096');
    expect(r.err).toContain("revision id 0x07070707, not linux-6.12's 0x11e57ed0");
  });

  test('a nested-state blob whose size field lies and whose vmcs12 has no revision', () => {
    const dir = corpus();
    const f = join(dir, 'blob.bin');
    copyFileSync(join(ROOT, 'golden/blobs/invalid-v12-revision.linux-6.12.bin'), f);
    const r = add(f, 'nested-state', dir);
    expect(r.err).toContain("its vmcs12 has revision id 0x00000000, not linux-6.12's 0x11e57ed0");
  });

  test('a good blob: no warning', () => {
    const dir = corpus();
    const f = join(dir, 'blob.bin');
    copyFileSync(join(ROOT, 'golden/blobs/shadow-l2.linux-6.12.bin'), f);
    const r = add(f, 'nested-state', dir);
    expect(r.code).toBe(0);
    expect(r.err).not.toContain('warning');
  });
});

describe('the npm package ships only what runs', () => {
  const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  const files: string[] = pack.status === 0 ? JSON.parse(pack.stdout)[0].files.map((f: { path: string }) => f.path) : [];

  test('dist, bin, schemas, golden data, layouts, the C sources the targets compile, the example VMM adapter, README; no TypeScript, no source maps', () => {
    expect(pack.status).toBe(0);
    expect(files.filter((f) => /\.ts$|\.map$/.test(f))).toEqual([]);
    expect(files.filter((f) => /^(tests|suites|model|cli|generators|bench)\/|^dist\/bench\/|^golden\/tools\//.test(f))).toEqual([]);
    for (const f of ['README.md', 'bin/nvmx-conformance.js', 'dist/cli/main.js', 'reports/schema/report.schema.json', 'golden/manifest.json', 'layouts/linux-6.12.vmcs12.json', 'targets/linux/harness.c', 'targets/kvm/agent/agent.c', 'targets/kvm/host/nodelay.c', 'examples/vmm-adapter.mjs']) expect(files).toContain(f);
    const tops = new Set(files.map((f) => f.split('/')[0]));
    expect([...tops].sort()).toEqual(['README.md', 'bin', 'dist', 'examples', 'golden', 'layouts', 'package.json', 'reports', 'targets']);
  });

  test('what it ships runs: check and golden verify from the unpacked package', () => {
    const dir = tmp();
    const out = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
    expect(out.status).toBe(0);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    mkdirSync(join(dir, 'x'));
    expect(spawnSync('tar', ['xzf', join(dir, tgz), '-C', join(dir, 'x')]).status).toBe(0);
    const pkg = join(dir, 'x', 'package');
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
    const bin = join(pkg, 'bin', 'nvmx-conformance.js');
    const check = spawnSync(process.execPath, [bin, 'check', '--only', 'vmcs12.codec.round-trip', '--runs', '2', '--report', join(dir, 'r')], { cwd: dir, encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
    const golden = spawnSync(process.execPath, [bin, 'golden', 'verify'], { cwd: dir, encoding: 'utf8' });
    expect(golden.status).toBe(0);
  });
});
