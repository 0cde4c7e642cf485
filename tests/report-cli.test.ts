// The report files as CI uses them: a fresh check writes all four, shards merge into what an
// unsharded run writes, SIGINT and --time-budget leave a valid incomplete report whose junit.xml
// agrees with it, kill -9 leaves the previous set as it was, a second run into a directory in use
// is refused, waivers and replay on a real failure (a mutant injected through NVMX_VITEST_SETUP),
// and bad input. `report` commands run as main() in this process (tests/cli-helpers.ts), check and
// replay in processes of their own.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { validate } from '../base/schemas.js';
import type { Report } from '../reports/report.js';
import { allFindings } from '../reports/verdict.js';
import { ALL_PROPERTIES, selectedBy } from '../suites/registry.js';
import { BIN, cli, cliAsync, cliHere, cliQuick, tmp } from './cli-helpers.js';
import { sampleReport } from './fixtures/sample-report.js';
import { junitCounts, junitTestcases, wellFormed } from './junit-helpers.js';

const MUTANT = { env: { ...process.env, NVMX_VITEST_SETUP: new URL('./fixtures/mutant-round-trip.setup.js', import.meta.url).pathname } };
const FILES = ['report.json', 'report.md', 'report.html', 'junit.xml'];
const readJson = (dir: string): Report => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
const only = (patterns: string[]) => patterns.flatMap((p) => ['--only', p]);
/**
 * The properties most runs here check (the whole suite runs in .ci/run): four suites, so a stop
 * finds several, and the golden ones, so the golden section is in the report.
 */
const SOME = ['vmcs12.*', 'layout.*', 'golden.*'];
const SOME_IDS = ALL_PROPERTIES.filter((p) => selectedBy(SOME)(p.id)).map((p) => p.id);

function validReport(dir: string): Report {
  const r = readJson(dir);
  expect(validate('report', r)).toEqual([]);
  return r;
}

/** junit.xml says what report.json says: the same findings (properties, section entries), each with its outcome, and the same counts. */
function junitAgrees(dir: string, report: Report): void {
  const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
  expect(wellFormed(xml)).toEqual([]);
  const cases = junitTestcases(xml);
  const findings = allFindings(report);
  expect(cases.map((c) => c.name).sort()).toEqual(findings.map((p) => p.id).sort());
  const outcome = { fail: 'failure', error: 'error', unsupported: 'skipped', waived: 'skipped', pass: 'pass', 'expected-fail': 'pass' } as const;
  for (const p of findings) expect(cases.find((c) => c.name === p.id)!.outcome, p.id).toBe(outcome[p.verdict]);
  const s = report.summary;
  expect(junitCounts(xml)).toEqual({ tests: findings.length, failures: s.fail, errors: s.error, skipped: s.unsupported + s.waived });
}

/**
 * A check in its own process group, with its stdout so far. Each property, as it starts, leaves a
 * file in `started` (tests/fixtures/started-marker.setup.js): `running()` waits until a property of
 * many cases runs, so a signal or a kill lands while one is under way, whatever the machine's load.
 */
function startCheck(args: string[]) {
  const started = tmp();
  const env = { ...process.env, NVMX_VITEST_SETUP: new URL('./fixtures/started-marker.setup.js', import.meta.url).pathname, NVMX_STARTED_DIR: started };
  const child = spawn(process.execPath, [BIN, 'check', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  const io = { out: '', err: '' };
  child.stdout.on('data', (d: Buffer) => (io.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const until = async (what: RegExp) => {
    while (!what.test(io.out) && alive()) await new Promise((r) => setTimeout(r, 100));
  };
  const manyCases = new Set(ALL_PROPERTIES.filter((p) => p.runs !== 1).map((p) => p.id));
  /** the id of a property of many cases that has started */
  const running = async (): Promise<string | undefined> => {
    for (;;) {
      const id = readdirSync(started).find((f) => manyCases.has(f));
      if (id || !alive()) return id;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** the process and whatever it left in its group (vitest's workers) */
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return { child, io, exited, until, running, killGroup };
}

/** Drops what legitimately differs between a sharded and an unsharded run: timing and shard bookkeeping. */
function comparable(r: Report): unknown {
  const { startedAt: _s, finishedAt: _f, shard: _sh, mergedShards: _m, ...run } = r.run;
  return { ...r, run, properties: r.properties.map(({ durationMs: _d, ...p }) => p) };
}

/** The fresh check of the first test, run once; the tests that need a previous report set start from a copy of it. */
let freshRun: (ReturnType<typeof cli> & { dir: string }) | undefined;
const fresh = () => {
  if (!freshRun) {
    const dir = tmp();
    freshRun = { dir, ...cli(['check', '--runs', '10', '--seed', '4', '--report', dir, '--layout-diff', 'linux-6.1', ...only(SOME)]) };
  }
  return freshRun;
};
const copyOfFresh = (): string => {
  const from = fresh();
  expect(from.code).toBe(0);
  const dir = tmp();
  for (const f of FILES) copyFileSync(join(from.dir, f), join(dir, f));
  return dir;
};

test('a fresh check writes report.json, report.md, report.html and junit.xml', () => {
  const { dir, ...r } = fresh();
  expect(r.code).toBe(0);
  for (const f of FILES) expect(existsSync(join(dir, f)), f).toBe(true);
  const report = validReport(dir);
  expect(report.verdict).toBe('compatible');
  expect(report.target).toEqual({ spec: 'reference', profile: 'linux-6.12', name: 'reference', version: '0.1.0' });
  expect(report.properties.filter((p) => !p.description || !p.invariant || p.durationMs === undefined)).toEqual([]);
  expect(report.sections!.layoutDiffs!.map((d) => [d.id, d.verdict])).toEqual([['layout-diff.linux-6.1.to.linux-6.12', 'pass']]);
  expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('## nvmx-conformance: ✅ compatible');
  expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('data-verdict="compatible"');
  expect(r.out).toMatch(/^PASS {2}vmcs12\.codec\.round-trip {2}\(10 cases, seed 4\)$/m);
});

test('report merge of a 2-shard run equals the unsharded run apart from timing', async () => {
  const [whole, s1, s2, merged] = [tmp(), tmp(), tmp(), tmp()];
  const args = ['check', '--runs', '15', '--seed', '21', ...only(SOME)];
  // the three runs at once, as shards run on a CI matrix
  const runs = await Promise.all([cliAsync([...args, '--report', whole]), cliAsync([...args, '--shard', '1/2', '--report', s1]), cliAsync([...args, '--shard', '2/2', '--report', s2])]);
  expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
  const a = validReport(s1);
  const b = validReport(s2);
  expect(a.run.shard).toEqual({ index: 1, count: 2 });
  expect(a.properties.length + b.properties.length).toBe(SOME_IDS.length);
  expect(a.properties.length * b.properties.length).toBeGreaterThan(0);
  const m = await cliHere(['report', 'merge', s2, s1, '--out', merged]);
  expect(m.code).toBe(0);
  for (const f of FILES) expect(existsSync(join(merged, f)), f).toBe(true);
  const report = validReport(merged);
  expect(report.run.mergedShards).toEqual([{ index: 1, count: 2 }, { index: 2, count: 2 }]);
  expect(comparable(report)).toEqual(comparable(validReport(whole)));
  // the shards of an --only run owe what it selected, and the golden section came with them, from
  // the one shard that ran the golden suite
  expect(report.run.only).toEqual(SOME);
  expect(report.sections?.golden?.blobs.length).toBeGreaterThan(0);
  expect([a, b].filter((s) => s.sections?.golden)).toHaveLength(1);
  // junit.xml: a testcase per property and per golden blob
  expect(readFileSync(join(merged, 'junit.xml'), 'utf8').match(/<testcase /g)).toHaveLength(SOME_IDS.length + report.sections!.golden!.blobs.length);

  // one shard alone: merged, but the missing properties make it unknown
  const lonely = tmp();
  const one = await cliHere(['report', 'merge', s1, '--out', lonely]);
  expect(one.code).toBe(3);
  expect(validReport(lonely)).toMatchObject({ verdict: 'unknown', run: { complete: false, missing: b.properties.map((p) => p.id) } });
});

// 'as the run starts': vitest resets a cancel that comes before its run begins; the stop must survive that
test.each(['mid-run', 'as the run starts'])('SIGINT %s leaves a valid report marked incomplete with verdict unknown, and junit.xml agrees', async (when) => {
  const dir = tmp();
  const run = startCheck(['--runs', '10000000', '--seed', '8', '--report', dir, ...only(SOME)]);
  const { child } = run;
  // wait until the suites are running; mid-run, until a property of many cases is under way
  await run.until(new RegExp(`running ${SOME_IDS.length} of \\d+ properties`));
  const interrupted = when === 'mid-run' ? await run.running() : undefined;
  expect(child.exitCode).toBeNull(); // still running: the interrupt lands during the run
  if (when === 'mid-run') {
    // meanwhile a second run into the same directory is refused: one line, exit 2
    const second = cli(['check', '--runs', '1', '--report', dir]);
    expect(second.code).toBe(2);
    expect(second.err).toMatch(new RegExp(`^nvmx-conformance: report directory \\S+ is in use by another run \\(pid ${child.pid} on [^,]+, since [^)]+\\); wait for it to end or write the report elsewhere\n$`));
  }
  child.kill('SIGINT');
  expect(await run.exited).toBe(130);
  const out = run.io.out;
  const report = validReport(dir);
  expect(report.run).toMatchObject({ complete: false, stopped: 'interrupted' });
  expect(report.verdict).toBe('unknown');
  expect(report.properties.every((p) => p.verdict !== 'pass' || p.cases === 10_000_000 || p.cases === 1)).toBe(true);
  expect(report.properties.length + (report.run.missing?.length ?? 0)).toBe(SOME_IDS.length);
  expect(out).toContain('stopped: interrupted by a signal');
  expect(out).not.toMatch(/^PASS {2}vmcs12\.codec\.round-trip/m);
  expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('INCOMPLETE (interrupted)');
  // a property cut short is an error in both files; those that never started are in neither
  if (interrupted) expect(report.properties.find((p) => p.id === interrupted)).toMatchObject({ verdict: 'error', reason: expect.stringMatching(/^interrupted after \d+ of 10000000 cases/) });
  junitAgrees(dir, report);
  expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<property name="stopped" value="interrupted"/>');
  expect(readdirSync(dir).filter((e) => e.startsWith('.'))).toEqual([]); // lock and staging directory gone
});

test('kill -9 mid-run leaves the previous report set as it was; the next run takes the stale lock over', async () => {
  // the previous report set: the fresh check's
  const dir = copyOfFresh();
  const before = Object.fromEntries(FILES.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
  expect(before['junit.xml']).toContain('<testcase ');
  const run = startCheck(['--runs', '10000000', '--seed', '8', '--report', dir, ...only(SOME)]);
  try {
    // a property of many cases is under way
    expect(await run.running()).toBeDefined();
    expect(run.child.exitCode).toBeNull();
    run.child.kill('SIGKILL');
    await run.exited;
  } finally {
    run.killGroup();
  }
  expect(Object.fromEntries(FILES.map((f) => [f, readFileSync(join(dir, f), 'utf8')]))).toEqual(before);
  expect(readdirSync(dir).filter((e) => e.startsWith('.')).sort()).toEqual(['.nvmx-lock', expect.stringMatching(/^\.nvmx-staging-/)]);
  const next = cli(['check', '--runs', '3', '--seed', '5', '--only', 'vmcs12.codec.round-trip', '--report', dir]);
  expect(next.code).toBe(0);
  expect(next.err).toMatch(new RegExp(`^nvmx-conformance: warning: report directory \\S+ was locked by pid ${run.child.pid} \\(since [^)]+\\), which is no longer running: taking the lock over\n$`));
  const report = validReport(dir);
  expect(report.run.seed).toBe(5);
  junitAgrees(dir, report);
  expect(readdirSync(dir).sort()).toEqual([...FILES].sort());
});

test('--time-budget ends the run cleanly: incomplete, unknown, exit 3', () => {
  const dir = tmp();
  // ten million cases cannot end in time: only the budget can have stopped the run
  const r = cli(['check', '--runs', '10000000', '--time-budget', '2', '--report', dir, ...only(SOME)]);
  expect(r.code).toBe(3);
  expect(validReport(dir)).toMatchObject({ verdict: 'unknown', run: { complete: false, stopped: 'time-budget' } });
  expect(r.out).toContain('stopped: time budget reached');
});

describe('a real failure: waivers and replay', () => {
  const dir = tmp();
  const WAIVER_RUN = only(['vmcs12.codec.round-trip', 'layout.matches-profile']);
  const waivers = (w: unknown[]) => {
    const f = join(tmp(), 'waivers.json');
    writeFileSync(f, JSON.stringify({ format: 'nvmx-waivers/1', waivers: w }));
    return f;
  };

  test('check fails with exit 1, then a waiver makes it waived (exit 0) but not compatible', async () => {
    const w = waivers([
      { id: 'vmcs12.codec.round-trip', reason: 'decode bug, issue 7', expires: '2999-12-31' },
      { id: 'layout.matches-profile', reason: 'stale' },
    ]);
    const waivedDir = tmp();
    // the broken property and the one the stale waiver names, without and with the waivers (both runs at once)
    const [failing, r] = await Promise.all([
      cliAsync(['check', '--runs', '50', '--seed', '5', '--report', dir, ...WAIVER_RUN], MUTANT),
      cliAsync(['check', '--runs', '50', '--seed', '5', '--report', waivedDir, '--waivers', w, ...WAIVER_RUN], MUTANT),
    ]);
    expect(failing.code).toBe(1);
    expect(validReport(dir).verdict).toBe('incompatible');
    expect(r.code).toBe(0);
    expect(r.out).toContain('    waived: decode bug, issue 7');
    expect(r.err).toBe('nvmx-conformance: warning: waiver "layout.matches-profile" matched no failure in this run (reason: stale)\n');
    const report = validReport(waivedDir);
    expect(report.verdict).toBe('incompatible');
    expect(report.summary).toMatchObject({ fail: 0, waived: 1 });
    expect(report.properties.find((p) => p.id === 'vmcs12.codec.round-trip')).toMatchObject({ verdict: 'waived', waiver: { reason: 'decode bug, issue 7' } });
    expect(report.waivers!.map((x) => x.matched)).toEqual([['vmcs12.codec.round-trip'], []]);
  });

  test('an expired waiver refuses the run: one line, exit 2', () => {
    const r = cli(['check', '--waivers', waivers([{ id: 'vmcs12.codec.round-trip', reason: 'old', expires: '2020-01-01' }]), '--report', tmp()]);
    expect(r.code).toBe(2);
    expect(r.err).toBe('nvmx-conformance: waiver "vmcs12.codec.round-trip" expired on 2020-01-01 (reason: old); renew or remove it\n');
  });

  test('replay prints the counterexample and exits 1 while it still fails', async () => {
    const failed = readJson(dir).properties.find((p) => p.verdict === 'fail')!;
    // the rule of tests/expect-caught.ts, through the CLI: shrunk, a field diff, a replay that reproduces it
    expect(failed.shrinks).toBeGreaterThan(0);
    expect((failed.counterexample as { diff: unknown[] }).diff.length).toBeGreaterThan(0);
    const replay = (failed.replay as string).split(' ').slice(1);
    // with the mutant (r), and without it (fixed), at once
    const [r, fixed] = await Promise.all([cliAsync([...replay, '--report', tmp()], MUTANT), cliAsync([...replay, '--report', tmp()])]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`FAIL  vmcs12.codec.round-trip  (after 1 cases, seed 5, path ${failed.path as string}`);
    expect(r.out).toMatch(/guest_rip\s+0x0000000100000000\s+->\s+0x0000000000000000\s+\(offset 544\)/);
    expect(r.out).toContain(`replay: ${failed.replay as string}`);
    // without the mutant the same replay passes
    expect(fixed.code).toBe(0);
  });
});

test('report render re-renders md and html from a validated report.json', async () => {
  // a report set a check wrote: the fresh check's
  const dir = copyOfFresh();
  rmSync(join(dir, 'report.md'));
  rmSync(join(dir, 'report.html'));
  const r = await cliHere(['report', 'render', dir]);
  expect(r.code).toBe(0);
  expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('✅ compatible');
  expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<section id="properties">');
  const report = readJson(dir);
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ ...report, summary: { ...report.summary, pass: -1 } }));
  const bad = await cliHere(['report', 'render', dir]);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain('is not a valid nvmx report: /summary/pass: must be >= 0');
});

describe('bad input: one line on stderr, exit 2, never a stack trace', () => {
  const notJson = join(tmp(), 'report.json');
  writeFileSync(notJson, '{');
  const otherVersion = tmp();
  writeFileSync(join(otherVersion, 'report.json'), JSON.stringify({ ...sampleReport(), tool: { name: 'nvmx-conformance', version: '9.9.9' } }));
  test.each([
    [['check', '--shard', '3/2'], '--shard must be i/N with 1 <= i <= N, got "3/2"'],
    [['check', '--shard', 'half'], '--shard must be i/N'],
    [['check', '--shard', '99/99'], '--shard count 99 is more than the number of suites'],
    [['check', '--time-budget', '0'], '--time-budget must be between 1 and'],
    [['check', '--waivers', '/no/such/waivers.json'], 'waiver file /no/such/waivers.json: no such file'],
    [['check', '--layout-diff', 'linux-9'], 'linux-9: no such file, and not a profile'],
    [['report', 'merge'], 'report merge needs the shard report directories'],
    [['report', 'merge', '/no/such/dir'], '/no/such/dir: no such report directory'],
    [['report', 'render', join(notJson, '..')], 'is not JSON'],
    [['report', 'frob'], 'unknown report command "frob"'],
    [['report', 'merge', otherVersion], 'was written by nvmx-conformance 9.9.9; merge it with that version'],
  ])('%j', async (args, message) => {
    const r = await cliQuick(args);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(message);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
