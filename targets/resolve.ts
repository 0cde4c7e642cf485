// Turns a --target argument into a target. Kinds not built yet are refused up front, by name.
import { findProfile, profileNames } from '../model/profiles.js';
import { referenceTarget } from './reference.js';
import type { Target } from './target.js';

export interface TargetSpec {
  readonly target: string;
  readonly profile: string;
}

/** Checks a spec without starting anything; returns a one-line problem or null. */
export function targetSpecProblem(spec: TargetSpec): string | null {
  if (!findProfile(spec.profile)) return `unknown profile "${spec.profile}" (known: ${profileNames().join(', ')})`;
  if (spec.target === 'reference') return null;
  if (spec.target.startsWith('exec:') || spec.target.startsWith('linux:'))
    return `target kind "${spec.target.split(':')[0]}:" is not available in this version (only "reference")`;
  return `unknown target "${spec.target}" (expected reference, exec:<command> or linux:<tree>)`;
}

export async function openTarget(spec: TargetSpec): Promise<Target> {
  const problem = targetSpecProblem(spec);
  if (problem) throw new Error(problem);
  return referenceTarget({ profile: spec.profile });
}
