// A report directory holds one set: report.json, report.md, report.html and junit.xml of one run.
// A run (check, report merge) locks the directory, writes its files into a fresh staging directory
// inside it, and moves them into place together at the end. A run killed at any moment (kill -9)
// leaves the previous set as it was: until the end nothing outside the staging directory changes.
//
// The move is four renames. The staging directory is renamed to `.nvmx-ready-…` first, which marks
// the set complete; a run killed during the renames (a window of microseconds) leaves that
// directory behind, and the next run into the directory finishes the move before it starts.
//
// The lock is a file naming the process that holds it (pid, host, and the process's start time, so
// a reused pid is not taken for the holder). A lock whose process is gone is taken over, saying so.
import { linkSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';

/** The set, in the order it is moved into place: report.json, which readers look at first, last. */
export const SET_FILES = ['junit.xml', 'report.md', 'report.html', 'report.json'] as const;

export const LOCK_FILE = '.nvmx-lock';
const STAGING = '.nvmx-staging-';
const READY = '.nvmx-ready-';

/** The directory is locked by a run that is still going (one line, for a usage error). */
export class ReportDirBusy extends Error {}

interface LockInfo {
  pid: number;
  host: string;
  since: string;
  /** the holder's start time in clock ticks since boot (/proc/PID/stat field 22), where there is a /proc */
  start?: string;
}

function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "(comm)" start at field 3; the command name may itself hold spaces and parentheses
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Is the lock's holder still running? A lock from another host cannot be checked: it counts as held. */
function holderAlive(l: LockInfo): boolean {
  if (l.host !== hostname()) return true;
  try {
    process.kill(l.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = l.start !== undefined ? procStart(l.pid) : undefined;
  return start === undefined || start === l.start;
}

/** The lock's content; 'gone' when there is none, null when it is not a lock this tool wrote. */
function readLock(path: string): LockInfo | null | 'gone' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw e;
  }
  try {
    const l = JSON.parse(text) as LockInfo;
    return Number.isSafeInteger(l.pid) && l.pid > 0 && typeof l.host === 'string' ? l : null;
  } catch {
    return null;
  }
}

/** the pid in a lock draft's or a moved-aside lock's name (.nvmx-lock.PID, .nvmx-lock.stale-PID) */
const LOCK_LEFTOVER = /^\.nvmx-lock\.(?:stale-)?(\d+)$/;
const gone = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
};

function acquire(dir: string, name: string, warn: (line: string) => void): LockInfo {
  const lockPath = join(dir, LOCK_FILE);
  const start = procStart(process.pid);
  const mine: LockInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString(), ...(start !== undefined ? { start } : {}) };
  const busy = (l: LockInfo) => new ReportDirBusy(`report directory ${name} is in use by another run (pid ${l.pid} on ${l.host}, since ${l.since}); wait for it to end or write the report elsewhere`);
  // the lock appears with its content or not at all: written aside, then hard-linked into place
  const draft = join(dir, `${LOCK_FILE}.${process.pid}`);
  writeFileSync(draft, JSON.stringify(mine) + '\n');
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(draft, lockPath);
        return mine;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readLock(lockPath);
      if (holder === 'gone') continue;
      if (holder && holderAlive(holder)) throw busy(holder);
      // stale: move it aside (of several runs doing this at once, one moves it), then check what was moved
      const aside = join(dir, `${LOCK_FILE}.stale-${process.pid}`);
      try {
        renameSync(lockPath, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const moved = readLock(aside);
      if (moved !== 'gone' && moved && JSON.stringify(moved) !== JSON.stringify(holder)) {
        // another run took the stale lock over in between: give its lock back
        try {
          linkSync(aside, lockPath);
        } catch {
          // a third run holds it now; either way this one does not
        }
        unlinkSync(aside);
        throw busy(moved);
      }
      rmSync(aside, { force: true });
      warn(
        holder
          ? `report directory ${name} was locked by pid ${holder.pid} (since ${holder.since}), which is no longer running: taking the lock over`
          : `report directory ${name} had an unreadable lock file (${LOCK_FILE}): taking the lock over`,
      );
    }
    throw new ReportDirBusy(`report directory ${name}: could not take the lock (other runs keep taking it); try again`);
  } finally {
    rmSync(draft, { force: true });
  }
}

function release(dir: string, mine: LockInfo): void {
  const lockPath = join(dir, LOCK_FILE);
  const l = readLock(lockPath);
  if (l !== 'gone' && l && l.pid === mine.pid && l.since === mine.since) rmSync(lockPath, { force: true });
}

/** Moves a finished set's files into the report directory (the files it still holds), then removes it. */
function moveInto(ready: string, dir: string): void {
  for (const f of SET_FILES) {
    try {
      renameSync(join(ready, f), join(dir, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  rmSync(ready, { recursive: true, force: true });
}

/** With the lock held: finishes a move a killed run began, and removes what killed runs left behind. */
function recover(dir: string, name: string, warn: (line: string) => void): void {
  for (const e of readdirSync(dir).sort()) {
    if (e.startsWith(READY)) {
      moveInto(join(dir, e), dir);
      warn(`report directory ${name}: finished moving in the report files of a run killed while it moved them`);
    } else if (e.startsWith(STAGING)) rmSync(join(dir, e), { recursive: true, force: true });
    else if (LOCK_LEFTOVER.test(e) && gone(Number(LOCK_LEFTOVER.exec(e)![1]))) rmSync(join(dir, e), { force: true });
  }
}

export class ReportSet {
  private done = false;
  private readonly onExit = () => this.release();

  private constructor(
    readonly dir: string,
    /** where the run writes its files */
    readonly staging: string,
    private readonly lock: LockInfo,
  ) {
    // process.exit (a second stop signal) still removes the staging directory and the lock
    process.once('exit', this.onExit);
  }

  /**
   * Locks `dir` (which must exist) for this run and prepares a staging directory in it. Throws
   * ReportDirBusy while another live run holds it; `warn` hears about a lock taken over or a move
   * finished for a killed run. `name` is how messages name the directory.
   */
  static open(dir: string, warn: (line: string) => void, name = dir): ReportSet {
    const lock = acquire(dir, name, warn);
    try {
      recover(dir, name, warn);
      return new ReportSet(dir, mkdtempSync(join(dir, `${STAGING}${process.pid}-`)), lock);
    } catch (e) {
      release(dir, lock);
      throw e;
    }
  }

  /** Moves the staged files into the report directory together, then unlocks it. */
  commit(): void {
    if (this.done) throw new Error('report set already committed or released');
    const ready = join(this.dir, READY + basename(this.staging).slice(STAGING.length));
    renameSync(this.staging, ready);
    moveInto(ready, this.dir);
    this.release();
  }

  /** Unlocks the directory; staged files not committed are dropped, the previous set stays. */
  release(): void {
    if (this.done) return;
    this.done = true;
    process.off('exit', this.onExit);
    rmSync(this.staging, { recursive: true, force: true });
    release(this.dir, this.lock);
  }
}
