// A layout argument: a profile name or a descriptor file. Bad files fail with one line naming the
// file, the JSON path and the problem.
import { existsSync } from 'node:fs';
import { readJsonFile } from './json-input.js';
import { compileLayout, type Layout } from '../model/layout.js';
import { findProfile, profileNames } from '../model/profiles.js';
import { validate } from '../reports/schemas.js';
import { UsageError } from './errors.js';

export function loadLayout(arg: string, structure: string): Layout {
  const profile = findProfile(arg);
  if (profile) {
    if (structure === 'vmcs12') return profile.vmcs12;
    if (structure === 'evmcs' && profile.evmcs) return profile.evmcs.layout;
    throw new UsageError(`profile ${arg} has no ${structure} layout (structures: vmcs12${profile.evmcs ? ', evmcs' : ''})`);
  }
  if (arg.startsWith('linux:')) throw new UsageError(`"${arg}": reading layouts from a kernel tree is not available in this version`);
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
