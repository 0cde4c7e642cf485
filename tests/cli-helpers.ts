// Running the built CLI as CI scripts do: a child process, its exit code, stdout and stderr.
import { spawn, spawnSync, type SpawnOptions, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = new URL('../bin/nvmx-conformance.js', import.meta.url).pathname;

export const cli = (args: string[], opts: SpawnSyncOptions = {}) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', ...opts });
  return { code: r.status, out: String(r.stdout), err: String(r.stderr) };
};

export const tmp = () => mkdtempSync(join(tmpdir(), 'nvmx-cli-'));

/**
 * How many child processes of one test file run at once (test.concurrent): a `check` keeps about a
 * core busy, and vitest runs another file beside this one. A process that mostly waits (a target
 * that never answers, a run stopped by a signal) leaves its core to the next one.
 */
const SLOTS = 3;
let free = SLOTS;
const queue: (() => void)[] = [];

/** Runs f once a slot is free; slots are given in the order they were asked for. */
export async function inSlot<T>(f: () => Promise<T>): Promise<T> {
  if (free > 0) free--;
  else await new Promise<void>((resolve) => queue.push(resolve));
  try {
    return await f();
  } finally {
    const next = queue.shift();
    if (next) next();
    else free++;
  }
}

/** A child process run to its end without blocking the test file (so concurrent tests overlap), in a slot. */
export const spawnAsync = (cmd: string, args: string[], opts: SpawnOptions = {}) =>
  inSlot(
    () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
        const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, out, err }));
      }),
  );

/** The CLI in a child process, as `cli` runs it, without blocking the test file. */
export const cliAsync = (args: string[], opts: SpawnOptions = {}) => spawnAsync(process.execPath, [BIN, ...args], opts);

