// A layout argument: a profile name, a descriptor file or linux:<kernel tree>. Bad files fail
// with one line naming the file, the JSON path and the problem.
import { existsSync } from 'node:fs';
import { readJsonFile } from './json-input.js';
import { compileLayout, type Layout } from '../model/layout.js';
import { DEFAULT_PROFILE, findProfile, profileNames } from '../model/profiles.js';
import { openTarget, targetSpecProblem } from '../targets/resolve.js';
import { validate } from '../base/schemas.js';
import { UsageError } from '../base/errors.js';

export async function loadLayout(arg: string, structure: string): Promise<Layout> {
  if (arg.startsWith('linux:')) return treeLayout(arg, structure);
  return fileOrProfileLayout(arg, structure);
}

/** A kernel tree's layout, as its harness reports it (from offsetof, the way `check` sees it). */
async function treeLayout(arg: string, structure: string): Promise<Layout> {
  const spec = { target: arg, profile: DEFAULT_PROFILE };
  const problem = targetSpecProblem(spec);
  if (problem) throw new UsageError(problem);
  let target;
  try {
    target = await openTarget(spec);
  } catch (e) {
    throw new UsageError(`${arg}: ${(e as Error).message}`);
  }
  try {
    const r = await target.layout(structure as 'vmcs12' | 'evmcs');
    if (r.status !== 'ok') throw new UsageError(`${arg}: no ${structure} layout: ${r.reason}`);
    const c = compileLayout(r.value);
    if (!c.ok) throw new UsageError(`${arg}: the harness reported a bad layout: ${c.problems[0]!.path}: ${c.problems[0]!.message}`);
    return c.value;
  } finally {
    await target.close();
  }
}

function fileOrProfileLayout(arg: string, structure: string): Layout {
  const profile = findProfile(arg);
  if (profile) {
    if (structure === 'vmcs12') return profile.vmcs12;
    if (structure === 'evmcs' && profile.evmcs) return profile.evmcs.layout;
    throw new UsageError(`profile ${arg} has no ${structure} layout (structures: vmcs12${profile.evmcs ? ', evmcs' : ''})`);
  }
  if (!existsSync(arg)) throw new UsageError(`${arg}: no such file, and not a profile (profiles: ${profileNames().join(', ')})`);
  const json = readJsonFile(arg);
  const format = (json as { format?: unknown } | null)?.format;
  if (format !== 'nvmx-layout/1') throw new UsageError(`${arg}: /format: must be "nvmx-layout/1" (got ${JSON.stringify(format ?? null)})`);
  const problems = validate('layout', json);
  if (problems.length) throw new UsageError(`${arg}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  const c = compileLayout(json as Parameters<typeof compileLayout>[0]);
  if (!c.ok) throw new UsageError(`${arg}: ${c.problems[0]!.path}: ${c.problems[0]!.message}${c.problems.length > 1 ? ` (and ${c.problems.length - 1} more)` : ''}`);
  if (c.value.structure !== structure) throw new UsageError(`${arg}: describes structure "${c.value.structure}", expected "${structure}"`);
  return c.value;
}
