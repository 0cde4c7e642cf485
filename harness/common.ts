// Small helpers the suites share.
import { compileLayout, type Layout } from '../model/layout.js';
import { findProfile, type Profile } from '../model/profiles.js';
import type { Target } from '../targets/target.js';
import type { VcpuConfig } from '../model/nested/vcpu.js';
import { must, type PropertyContext } from './property.js';

/** The profile the target claims; the reference default when it claims none. */
export function profileOf(target: Target): Profile {
  const p = findProfile(target.identity.profile ?? 'linux-6.12');
  if (!p) throw new Error(`target claims unknown profile ${target.identity.profile}`);
  return p;
}

/**
 * A target that reports its vCPUs' VMX MSRs refuses others from a VMM: a configuration gets them
 * said, on the target and on the model alike. Only for a vCPU that has VMX, as a VMM restores them:
 * 6.1 refuses VMX MSR writes without it.
 */
export const withTargetMsrs =
  (target: Target) =>
  (c: VcpuConfig): VcpuConfig =>
    target.vmxMsrs && c.nested && c.vmxInCpuid ? { ...c, vmxMsrs: target.vmxMsrs } : c;

/** The target's own layout of a structure, compiled; a malformed descriptor is the target's error. */
export async function targetLayout(target: Target, structure: 'vmcs12' | 'evmcs'): Promise<Layout> {
  const c = compileLayout(must(await target.layout(structure)));
  if (!c.ok) throw new Error(`target's ${structure} descriptor is invalid: ${c.problems[0]!.path}: ${c.problems[0]!.message}`);
  return c.value;
}

/**
 * Resolves once a target request issued just before has gone out: a process target's connection
 * writes the tick's requests from a microtask the call queued, so this one runs after it. A
 * property awaits it to work out its expectations while the target works, not before sending.
 */
export const requestSent = (): Promise<void> => new Promise((resolve) => queueMicrotask(resolve));

export const targetVmcs12Layout = (ctx: PropertyContext): Promise<Layout> => targetLayout(ctx.target, 'vmcs12');
