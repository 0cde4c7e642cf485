// Plants a one-line bug in a model source file and loads the planted copy, so a test can show a
// property catching a bug *inside* the function it judges, not only a wrapper around its answer.
// The line must occur exactly once: a refactor that removes it fails loudly instead of testing nothing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export async function plantBug<M>(modelFile: string, line: string, bug: string): Promise<M> {
  const file = fileURLToPath(new URL(`../model/${modelFile}`, import.meta.url));
  const src = readFileSync(file, 'utf8');
  const found = src.split(line).length - 1;
  if (found !== 1) throw new Error(`model/${modelFile}: the line to plant a bug in occurs ${found} times, not once: ${line}`);
  // the copy lives elsewhere, so its relative imports point back at the real modules
  const planted = src.replace(line, bug).replace(/from '(\.\.?\/[^']+)'/g, (_m, p: string) => `from '${resolve(dirname(file), p)}'`);
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-planted-'));
  const copy = join(dir, basename(file));
  writeFileSync(copy, planted);
  try {
    return (await import(copy)) as M;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
