// Where the command line writes: a directory made step by step (node's recursive mkdir never
// returns on a path like /proc/x), and file-system errors as one line and exit 2 (bad input: a
// directory where a file goes, a file where a directory goes, no permission, a full disk).
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../base/errors.js';

const FS_SYSCALLS = new Set(['open', 'mkdir', 'rename', 'write', 'read', 'unlink', 'rmdir', 'rm', 'stat', 'lstat', 'scandir', 'opendir', 'access', 'copyfile', 'close', 'fsync', 'realpath', 'chmod', 'utime', 'symlink', 'link', 'mkdtemp']);

/** One line for an error the file system raised, or null for any other error. */
export function fsProblem(e: unknown): string | null {
  const err = e as (NodeJS.ErrnoException & { dest?: string }) | null;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string' || !/^E[A-Z]+$/.test(err.code) || !err.syscall || !FS_SYSCALLS.has(err.syscall)) return null;
  // node's message: "EISDIR: illegal operation on a directory, open '/tmp/x'"
  const what = /^E[A-Z]+: ([^,]*)/.exec(err.message)?.[1] ?? err.code;
  return `cannot ${err.syscall} ${err.path ?? ''}${err.dest ? ` -> ${err.dest}` : ''}: ${what}`.replace(/ +:/, ':');
}

function usage(prefix: string, e: unknown): never {
  const err = e as NodeJS.ErrnoException;
  throw new UsageError(`${prefix}: ${/^E[A-Z]+: ([^,]*)/.exec(err.message)?.[1] ?? err.message}`);
}

/** Makes `dir` (and missing parents) a writable directory, or says in one line why it cannot be. */
export function ensureDir(dir: string, what = 'directory'): string {
  const abs = resolve(dir);
  const missing: string[] = [];
  let p = abs;
  while (!existsSync(p)) {
    missing.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  if (existsSync(p) && !statSync(p).isDirectory()) throw new UsageError(`cannot use ${abs} as the ${what}: ${p} is not a directory`);
  for (const m of missing) {
    try {
      mkdirSync(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') usage(`cannot create the ${what} ${abs}`, e);
    }
  }
  if (!statSync(abs).isDirectory()) throw new UsageError(`cannot use ${abs} as the ${what}: not a directory`);
  try {
    accessSync(abs, constants.W_OK);
  } catch (e) {
    usage(`cannot write to the ${what} ${abs}`, e);
  }
  return abs;
}

/** writeFileSync, with a file-system error as one line. */
export function writeOutFile(path: string, data: string | Uint8Array): void {
  try {
    writeFileSync(path, data);
  } catch (e) {
    usage(`cannot write ${path}`, e);
  }
}
