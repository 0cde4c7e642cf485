// The report directory as a set (reports/report-set.ts): the lock refuses a live holder and takes
// over a dead one's, staged files move in together, nothing outside the staging directory changes
// until the commit, and a move cut short by a kill is finished by the next run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { LOCK_FILE, ReportDirBusy, ReportSet, SET_FILES } from '../reports/report-set.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'nvmx-set-'));
const previousSet = (dir: string) => {
  for (const f of SET_FILES) writeFileSync(join(dir, f), `old ${f}\n`);
};
const contents = (dir: string) => Object.fromEntries(SET_FILES.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
/** a pid that is certainly not running: a child that has exited */
const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
const writeLock = (dir: string, lock: object) => writeFileSync(join(dir, LOCK_FILE), JSON.stringify(lock));

test('staged files stay out of the directory until the commit, then all four move in', () => {
  const dir = tmp();
  previousSet(dir);
  const set = ReportSet.open(dir, () => {});
  for (const f of SET_FILES) writeFileSync(join(set.staging, f), `new ${f}\n`);
  expect(contents(dir)).toEqual(Object.fromEntries(SET_FILES.map((f) => [f, `old ${f}\n`])));
  expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
  set.commit();
  expect(contents(dir)).toEqual(Object.fromEntries(SET_FILES.map((f) => [f, `new ${f}\n`])));
  expect(readdirSync(dir).sort()).toEqual([...SET_FILES].sort()); // no lock, no staging directory
});

test('a run that ends without committing leaves the previous set and no lock', () => {
  const dir = tmp();
  previousSet(dir);
  const set = ReportSet.open(dir, () => {});
  writeFileSync(join(set.staging, 'junit.xml'), 'half a run');
  set.release();
  expect(contents(dir)).toEqual(Object.fromEntries(SET_FILES.map((f) => [f, `old ${f}\n`])));
  expect(readdirSync(dir).sort()).toEqual([...SET_FILES].sort());
});

test('a live holder is refused in one line; the directory is free again once it is released', () => {
  const dir = tmp();
  const first = ReportSet.open(dir, () => {});
  expect(() => ReportSet.open(dir, () => {}, 'out')).toThrow(ReportDirBusy);
  expect(() => ReportSet.open(dir, () => {}, 'out')).toThrow(new RegExp(`^report directory out is in use by another run \\(pid ${process.pid} on ${hostname()}, since [^)]+\\); wait for it to end or write the report elsewhere$`));
  first.release();
  ReportSet.open(dir, () => {}).release();
});

test.each([
  ['a dead pid', () => ({ pid: deadPid(), host: hostname(), since: '2026-01-01T00:00:00.000Z' }), /was locked by pid \d+ \(since 2026-01-01T00:00:00.000Z\), which is no longer running: taking the lock over/],
  // the pid runs, but it is another process than the one that took the lock (a reused pid)
  ['a reused pid', () => ({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z', start: '1' }), /which is no longer running: taking the lock over/],
  ['an unreadable lock', () => 'not json', /had an unreadable lock file \(\.nvmx-lock\): taking the lock over/],
])('a stale lock (%s) is taken over, saying so, with what killed runs left behind', (_what, lock, warning) => {
  const dir = tmp();
  previousSet(dir);
  const l = lock();
  if (typeof l === 'string') writeFileSync(join(dir, LOCK_FILE), l);
  else writeLock(dir, l);
  mkdirSync(join(dir, '.nvmx-staging-1-abcdef'));
  writeFileSync(join(dir, '.nvmx-staging-1-abcdef', 'junit.xml'), '');
  const warnings: string[] = [];
  const set = ReportSet.open(dir, (w) => warnings.push(w));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(warning);
  expect(readdirSync(dir).filter((e) => e.startsWith('.nvmx-staging-')).map((e) => join(dir, e))).toEqual([set.staging]);
  expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
  set.release();
  expect(contents(dir)).toEqual(Object.fromEntries(SET_FILES.map((f) => [f, `old ${f}\n`])));
});

test('a lock from another host is never taken over (its pid cannot be checked)', () => {
  const dir = tmp();
  writeLock(dir, { pid: deadPid(), host: `not-${hostname()}`, since: '2026-01-01T00:00:00.000Z' });
  expect(() => ReportSet.open(dir, () => {})).toThrow(/is in use by another run \(pid \d+ on not-/);
});

test('a move cut short by a kill is finished by the next run into the directory', () => {
  const dir = tmp();
  previousSet(dir);
  // the killed run had marked its set complete (renamed staging to ready) and moved junit.xml and report.md
  const ready = join(dir, '.nvmx-ready-1-abcdef');
  mkdirSync(ready);
  writeFileSync(join(dir, 'junit.xml'), 'new junit.xml\n');
  writeFileSync(join(dir, 'report.md'), 'new report.md\n');
  writeFileSync(join(ready, 'report.html'), 'new report.html\n');
  writeFileSync(join(ready, 'report.json'), 'new report.json\n');
  writeLock(dir, { pid: deadPid(), host: hostname(), since: '2026-01-01T00:00:00.000Z' });
  const warnings: string[] = [];
  ReportSet.open(dir, (w) => warnings.push(w), 'out').release();
  expect(contents(dir)).toEqual(Object.fromEntries(SET_FILES.map((f) => [f, `new ${f}\n`])));
  expect(warnings[1]).toBe('report directory out: finished moving in the report files of a run killed while it moved them');
  expect(readdirSync(dir).sort()).toEqual([...SET_FILES].sort());
});
