// A fleet: the hosts a migration moves a guest across, each a target that plays a host, and the VMM
// between them. A host's facts (nested=, KVM_CAP_NESTED_STATE, the eVMCS capability, the VMX MSRs)
// are what the VMM knows of that machine; its profile is the one its target claims. Hosts are named
// as paths name them: a property's fleet by the library's host names (model/migration/hosts.ts),
// `matrix --hosts` by the target specs given.
import { findHost, hostFor, HOSTS, type Host } from '../model/migration/hosts.js';
import { findProfile } from '../model/profiles.js';
import { REFERENCE_VMM_NAMES, type ReferenceVmmName } from '../model/vmm/reference.js';
import { referenceTarget } from '../targets/reference.js';
import type { Target } from '../targets/target.js';
import type { GuestMemory } from '../model/nested/guest-memory.js';
import type { ScenarioLimits } from '../generators/nested.js';
import type { ModelDeps } from './model-deps.js';
import { profileOf } from './common.js';

export interface FleetHost {
  /** the name paths use */
  readonly name: string;
  readonly host: Host;
  readonly target: Target;
}

export interface Fleet {
  /** the host a path names (a name the fleet lacks is a bug of the caller: it throws) */
  host(name: string): FleetHost;
  /** the VMM between the hosts: QEMU's rules, or a QEMU that drops hdr.vmx.flags */
  vmm(dropsVmxFlags: boolean): Target;
}

/** The reference VMM's save and load a fleet goes through (mutant tests replace them). */
export type VmmDeps = Pick<ModelDeps, 'vmmSave' | 'vmmLoad'>;

/** The reference VMMs, one per variant, built on `deps`. */
function referenceVmms(deps?: VmmDeps): (drops: boolean) => Target {
  const model = deps ? { vmmSave: deps.vmmSave, vmmLoad: deps.vmmLoad } : {};
  const vmms = new Map(REFERENCE_VMM_NAMES.map((n) => [n, referenceTarget({ vmm: n, model, name: `vmm ${n}` })]));
  return (drops) => vmms.get((drops ? 'qemu-drops-vmx-flags' : 'qemu') satisfies ReferenceVmmName)!;
}

export function fleetOf(hosts: readonly FleetHost[], deps?: VmmDeps): Fleet {
  const byName = new Map(hosts.map((h) => [h.name, h]));
  return {
    host(name) {
      const h = byName.get(name);
      if (!h) throw new RangeError(`no host ${name} in the fleet (it has ${[...byName.keys()].join(', ')})`);
      return h;
    },
    vmm: referenceVmms(deps),
  };
}

/**
 * The fleet a migration property drives when `check --target T` runs: every library host, played by
 * the reference target of its profile, except the hosts of the profile T claims, which T plays (with
 * the host's own facts: `linux-6.12-nonested` is T with nested=0). So a real target sits at the ends
 * of the hops that reach its kernel, and the model of every other kernel at the other end. `played`
 * names the hosts T plays.
 */
export function standInFleet(target: Target, deps?: VmmDeps): Fleet & { readonly played: readonly string[] } {
  const claimed = profileOf(target).name;
  const references = new Map<string, Target>();
  const referenceFor = (profile: string) => {
    let t = references.get(profile);
    if (!t) references.set(profile, (t = referenceTarget({ profile })));
    return t;
  };
  // a reference target is built only when a path asks for its host
  const hosts = HOSTS.map((host) => ({ name: host.name, host, get target() { return host.profile === claimed ? target : referenceFor(host.profile); } }));
  return { ...fleetOf(hosts, deps), played: HOSTS.filter((h) => h.profile === claimed).map((h) => h.name) };
}

/**
 * What every host of a fleet can do with a guest (generated activity stays within it): the guest
 * operations none refuses, the guest memory all have (the least, with every host's own ranges).
 */
export function fleetLimits(hosts: readonly FleetHost[]): ScenarioLimits {
  const unsupportedGuestOps = Object.assign({}, ...hosts.map((h) => h.target.unsupportedGuestOps ?? {})) as Record<string, string>;
  const memories = hosts.flatMap((h) => (h.target.guestMemory ? [h.target.guestMemory] : []));
  const guestMemory: GuestMemory | undefined = memories.length
    ? { bytes: memories.reduce((m, g) => (g.bytes < m ? g.bytes : m), memories[0]!.bytes), reserved: memories.flatMap((g) => g.reserved) }
    : undefined;
  return { unsupportedGuestOps, guestMemory };
}

/**
 * The host a target spec plays (`matrix --hosts`): `reference:<host>` is that library host (e.g.
 * `reference:linux-6.12-nonested`), any other target the library host of the profile it claims;
 * either way named by the spec.
 */
export function hostOfSpec(spec: string, target: Target): Host {
  const named = spec.startsWith('reference:') ? findHost(spec.slice('reference:'.length)) : undefined;
  if (named) return { ...named, name: spec };
  const profile = target.identity.profile !== undefined ? findProfile(target.identity.profile) : undefined;
  if (!profile) throw new RangeError(`${spec} claims no profile (its hello has none, or one this tool does not know: ${target.identity.profile}): a host's profile is the one its target claims`);
  return hostFor(profile, { name: spec });
}
