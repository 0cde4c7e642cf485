// Turns a --target argument into a target: `reference` (the model in process; `reference:<profile>`
// the model of that profile, or of a library host's, e.g. reference:linux-6.12-nonested), `exec:<command>`
// (a program speaking nvmx-target/1), `linux:<tree>` (the kernel's own code, built from a tree) or
// `kvm:<kernel>` (real KVM in a Debian kernel booted in Bochs).
import { statSync } from 'node:fs';
import { findProfile, profileNames } from '../model/profiles.js';
import { findHost, HOSTS } from '../model/migration/hosts.js';
import { openExecTarget, splitCommandLine } from './exec.js';
import { openLinuxTarget } from './linux/target.js';
import { openKvmTarget, type KvmRunLink } from './kvm/target.js';
import { parseKvmSpec } from './kvm/spec.js';
import { referenceTarget } from './reference.js';
import { KERNEL_HAS_NO_VMM, type Target } from './target.js';

export interface TargetSpec {
  readonly target: string;
  readonly profile: string;
  /** per-request timeout of process targets */
  readonly targetTimeoutMs?: number;
  /** exec: hand the command line to /bin/sh instead of splitting it */
  readonly targetShell?: boolean;
  /** kvm: the machine a run shares (started by `check`); without it the target boots its own */
  readonly kvm?: KvmRunLink;
}

export const DEFAULT_TARGET_TIMEOUT_MS = 10_000;

/** Checks a spec without starting anything; returns a one-line problem or null. */
export function targetSpecProblem(spec: TargetSpec): string | null {
  if (!findProfile(spec.profile)) return `unknown profile "${spec.profile}" (known: ${profileNames().join(', ')})`;
  if (spec.target === 'reference') return null;
  if (spec.target.startsWith('reference:'))
    return referenceProfile(spec.target) ? null : `unknown profile or host in "${spec.target}" (known: ${HOSTS.map((h) => h.name).join(', ')})`;
  if (spec.target.startsWith('exec:')) {
    const cmd = spec.target.slice(5);
    if (!cmd.trim()) return 'exec: needs a command, e.g. exec:"./my-vmm --nvmx"';
    if (spec.targetShell) return null;
    try {
      splitCommandLine(cmd);
    } catch (e) {
      return `exec: command line: ${(e as Error).message}`;
    }
    return null;
  }
  if (spec.target.startsWith('linux:')) {
    const tree = spec.target.slice(6);
    try {
      if (!statSync(tree).isDirectory()) return `linux: ${tree} is not a directory`;
    } catch {
      return `linux: no such directory: ${tree}`;
    }
    return null;
  }
  if (spec.target.startsWith('kvm:')) {
    const k = parseKvmSpec(spec.target.slice(4));
    return 'problem' in k ? k.problem : null;
  }
  return `unknown target "${spec.target}" (expected reference, reference:<profile>, exec:<command>, linux:<tree> or kvm:<kernel>)`;
}

/** The profile of `reference:<profile or library host>` (a host's facts beyond its profile are the fleet's: harness/fleet.ts). */
function referenceProfile(target: string): string | undefined {
  const name = target.slice('reference:'.length);
  return findProfile(name)?.name ?? findHost(name)?.profile;
}

/** A kvm: machine is a host: the groups its agent does not speak of get the reason here. */
export function withKvmReasons(t: Target): Target {
  if (t.groups.has('vmm') || t.unsupportedReasons?.vmm) return t;
  return { ...t, unsupportedReasons: { ...t.unsupportedReasons, vmm: KERNEL_HAS_NO_VMM('the kvm: machine is a host (real KVM answers GET and SET)') } };
}

export async function openTarget(spec: TargetSpec): Promise<Target> {
  const problem = targetSpecProblem(spec);
  if (problem) throw new Error(problem);
  if (spec.target.startsWith('kvm:'))
    return withKvmReasons(await openKvmTarget(spec.target.slice(4), { ...(spec.targetTimeoutMs !== undefined ? { timeoutMs: spec.targetTimeoutMs } : {}), ...(spec.kvm ? { link: spec.kvm } : {}) }));
  const timeoutMs = spec.targetTimeoutMs ?? DEFAULT_TARGET_TIMEOUT_MS;
  if (spec.target.startsWith('exec:')) {
    const cmd = spec.target.slice(5);
    return openExecTarget({ argv: spec.targetShell ? [cmd] : splitCommandLine(cmd), shell: spec.targetShell ?? false, timeoutMs });
  }
  if (spec.target.startsWith('linux:')) return openLinuxTarget(spec.target.slice(6), { timeoutMs });
  if (spec.target.startsWith('reference:')) return referenceTarget({ profile: referenceProfile(spec.target)!, name: spec.target });
  return referenceTarget({ profile: spec.profile });
}
