// The `linux:<tree>` target: the kernel's own definitions and helpers, extracted from a source tree,
// compiled into a small harness and driven over nvmx-target/1 like any exec: target.
import type { Target } from '../target.js';
import { openExecTarget } from '../exec.js';
import { buildHarness } from './build.js';

export async function openLinuxTarget(tree: string, opts: { timeoutMs: number }): Promise<Target> {
  const h = buildHarness(tree);
  return openExecTarget({ argv: [h.binary], shell: false, timeoutMs: opts.timeoutMs });
}
