// Small helpers the suites share.
import { compileLayout, type Layout } from '../model/layout.js';
import { findProfile, type Profile } from '../model/profiles.js';
import type { Target } from '../targets/target.js';
import { must, type PropertyContext } from './harness.js';

/** The profile the target claims; the reference default when it claims none. */
export function profileOf(target: Target): Profile {
  const p = findProfile(target.identity.profile ?? 'linux-6.12');
  if (!p) throw new Error(`target claims unknown profile ${target.identity.profile}`);
  return p;
}

/** The target's own vmcs12 layout, compiled; a malformed descriptor is the target's error. */
export async function targetVmcs12Layout(ctx: PropertyContext): Promise<Layout> {
  const d = must(await ctx.target.layout('vmcs12'));
  const c = compileLayout(d);
  if (!c.ok) throw new Error(`target's vmcs12 descriptor is invalid: ${c.problems[0]!.path}: ${c.problems[0]!.message}`);
  return c.value;
}
