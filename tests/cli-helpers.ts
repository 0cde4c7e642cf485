// Running the built CLI as CI scripts do: a child process, its exit code, stdout and stderr.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = new URL('../bin/nvmx-conformance.js', import.meta.url).pathname;

export const cli = (args: string[], opts: SpawnSyncOptions = {}) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', ...opts });
  return { code: r.status, out: String(r.stdout), err: String(r.stderr) };
};

export const tmp = () => mkdtempSync(join(tmpdir(), 'nvmx-cli-'));
