// Running the built CLI as CI scripts do: a child process, its exit code, stdout and stderr.
import { spawn, spawnSync, type SpawnOptions, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from 'node:util';

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

/** Commands that run the suites (vitest in the child), serve the protocol on stdin, or take signals: always a process. */
const NEEDS_A_PROCESS = new Set(['check', 'replay', 'serve']);
let inProcessQueue: Promise<unknown> = Promise.resolve();

/**
 * The CLI's main() in this process, with what it prints captured: for tests of what a command
 * answers (its output, exit code and one-line errors), where starting node and loading the modules
 * again for each call cost more than the command (bin/nvmx-conformance.js sets the exit code to what
 * main returns; cli-contract.test.ts checks that both ways answer alike). Calls run one at a time.
 */
export function cliHere(args: string[]): Promise<{ code: number; out: string; err: string }> {
  if (NEEDS_A_PROCESS.has(args[0]!)) throw new Error(`cliHere: ${args[0]} runs in a process of its own (cli or cliAsync)`);
  const run = inProcessQueue.then(async () => {
    const { main } = await import('../cli/main.js');
    const out: string[] = [];
    const err: string[] = [];
    const text = (chunk: string | Uint8Array) => (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const saved = { log: console.log, info: console.info, error: console.error, warn: console.warn, out: process.stdout.write, err: process.stderr.write };
    const tty = [process.stdout, process.stderr].map((s) => Object.getOwnPropertyDescriptor(s, 'isTTY'));
    console.log = console.info = (...a: unknown[]) => void out.push(format(...a) + '\n');
    console.error = console.warn = (...a: unknown[]) => void err.push(format(...a) + '\n');
    process.stdout.write = ((chunk: string | Uint8Array) => out.push(text(chunk)) > 0) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => err.push(text(chunk)) > 0) as typeof process.stderr.write;
    // as in a child process whose output is a pipe
    for (const s of [process.stdout, process.stderr]) Object.defineProperty(s, 'isTTY', { value: undefined, configurable: true, writable: true });
    try {
      const code = await main(args);
      return { code, out: out.join(''), err: err.join('') };
    } finally {
      Object.assign(console, { log: saved.log, info: saved.info, error: saved.error, warn: saved.warn });
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
      [process.stdout, process.stderr].forEach((s, i) => (tty[i] ? Object.defineProperty(s, 'isTTY', tty[i]!) : delete (s as { isTTY?: boolean }).isTTY));
    }
  });
  inProcessQueue = run.catch(() => undefined);
  return run;
}

/** A command's answer: in this process (cliHere) unless it needs a process of its own (cliAsync). */
export const cliQuick = (args: string[]) => (NEEDS_A_PROCESS.has(args[0]!) ? cliAsync(args) : cliHere(args));
