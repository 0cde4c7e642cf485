// The VMM step's inputs: what a source host's KVM_GET_NESTED_STATE answers, reached the way a guest
// reaches it (a migration scenario's recipe, then a little more guest activity) on a host of any
// nested-state profile. Scenarios cover the header-only state (VMXON, no vmcs12), a vmcs12, L2 with
// and without run pending, the shadow vmcs12, the armed preemption timer, MTF, SMM and the eVMCS.
import fc from 'fast-check';
import { HOSTS } from '../model/migration/hosts.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { findProfile } from '../model/profiles.js';
import type { GuestOp } from '../model/nested/vcpu.js';
import { step } from './nested.js';

/** One VMM step to check: the source host, the scenario the guest went through, what it did after. */
export interface VmmCase {
  readonly scenario: string;
  readonly host: string;
  readonly extra: readonly GuestOp[];
}

const NESTED_HOSTS = HOSTS.filter((h) => findProfile(h.profile)?.nested && h.nested).map((h) => h.name);

export function vmmCase(opts: { hosts?: readonly string[]; scenarios?: readonly string[] } = {}): fc.Arbitrary<VmmCase> {
  const hosts = (opts.hosts ?? NESTED_HOSTS).filter((h) => NESTED_HOSTS.includes(h));
  // a scenario needing eVMCS is drawn on hosts that have it only (shrinking then keeps it valid)
  const scenarios = SCENARIOS.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  return fc
    .record({ scenario: fc.constantFrom(...scenarios), host: fc.constantFrom(...hosts), extra: fc.array(step, { maxLength: 2 }).map((s) => s.flat()) })
    .filter(({ scenario, host }) => scenario.needs !== 'evmcs' || HOSTS.find((h) => h.name === host)!.evmcsCap)
    .map(({ scenario, host, extra }) => ({ scenario: scenario.name, host, extra }));
}
