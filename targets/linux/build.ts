// Compiles the linux: harness with gcc into a cache directory keyed by a hash of everything that
// goes into it (extracted kernel text, harness.c, compiler), outside the kernel tree. A build lands
// by renaming a finished directory into place, so parallel workers never see half a binary.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../base/schemas.js';
import { TargetStartError } from '../exec.js';
import { generate, type Generated } from './generate.js';

export const cacheRoot = (): string => process.env.NVMX_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nvmx-conformance');

const GCC_FLAGS = ['-O2', '-std=gnu11', '-Wall', '-Wno-unused-function', '-Werror=override-init'];

let gccVersion: string | undefined;

export interface Harness extends Generated {
  readonly binary: string;
  readonly dir: string;
}

/**
 * Builds (or finds) the harness of a tree. When gcc rejects the extracted code and the tree offers
 * msr-filter, the build is retried without that group, which then reports gcc's first error as
 * its reason: the filter's code changes most between versions, and layout must not pay for it.
 */
export function buildHarness(tree: string): Harness {
  try {
    return buildOnce(tree, generate(tree));
  } catch (e) {
    const gen = generate(tree);
    if (!(e instanceof TargetStartError) || e.message.startsWith('the tree fails its own offset checks') || !gen.hello.groups.includes('msr-filter')) throw e;
    return buildOnce(tree, generate(tree, { drop: { 'msr-filter': `gcc could not compile the extracted filter code: ${e.message}` } }));
  }
}

function buildOnce(tree: string, gen: Generated): Harness {
  const source = readFileSync(join(packageRoot(), 'targets', 'linux', 'harness.c'), 'utf8');
  gccVersion ??= spawnSync('gcc', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? '';
  if (!gccVersion) throw new TargetStartError('linux: target needs gcc on PATH');
  const hash = createHash('sha256').update(gen.header).update('\0').update(source).update('\0').update(gccVersion + GCC_FLAGS.join(' ')).digest('hex').slice(0, 20);
  const dir = join(cacheRoot(), 'harness', hash);
  const binary = join(dir, 'harness');
  if (existsSync(binary)) return { ...gen, binary, dir };
  mkdirSync(join(cacheRoot(), 'harness'), { recursive: true });
  const tmp = mkdtempSync(join(cacheRoot(), 'harness', `.build-${hash}-`));
  try {
    writeFileSync(join(tmp, 'nvmx-kernel.h'), gen.header);
    writeFileSync(join(tmp, 'harness.c'), source);
    const cc = spawnSync('gcc', [...GCC_FLAGS, '-I', tmp, '-o', join(tmp, 'harness'), join(tmp, 'harness.c')], { encoding: 'utf8' });
    if (cc.status !== 0) {
      const lines = (cc.stderr ?? '').split('\n').filter(Boolean);
      const asserts = [...(cc.stderr ?? '').matchAll(/static assertion failed: "([^"]+)"/g)].map((m) => m[1]!);
      const reason = asserts.length
        ? `the tree fails its own offset checks: ${asserts.join('; ')}`
        : `gcc could not build the harness from ${tree}: ${lines.find((l) => l.includes('error')) ?? lines[0] ?? `exit ${cc.status}`}`;
      throw new TargetStartError(reason, lines.slice(-12));
    }
    try {
      renameSync(tmp, dir);
    } catch {
      // another worker got there first: same hash, same binary (tmp goes below)
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true }); // a failed build leaves nothing in the cache; a landed one has moved
  }
  return { ...gen, binary, dir };
}
