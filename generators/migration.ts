// Migration paths: 1-6 hops over hosts of different profiles, guest activity between hops drawn
// from the scenarios and guest-operation steps, upgrade-then-rollback shapes included.
import fc from 'fast-check';
import { HOSTS } from '../model/migration/hosts.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { findProfile } from '../model/profiles.js';
import type { MigrationPath } from '../targets/target.js';
import { step } from './nested.js';

const NESTED_HOSTS = HOSTS.filter((h) => findProfile(h.profile)?.nested).map((h) => h.name);

export function migrationPath(
  opts: { hosts?: readonly string[]; scenarios?: readonly string[]; qemuDropsVmxFlags?: boolean; maxHops?: number; withoutEvmcs?: boolean; quietGuest?: boolean } = {},
): fc.Arbitrary<MigrationPath> {
  const hosts = opts.hosts ?? HOSTS.map((h) => h.name);
  const starts = (opts.hosts ?? NESTED_HOSTS).filter((h) => NESTED_HOSTS.includes(h));
  const scenarios = SCENARIOS.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  const steps = opts.withoutEvmcs ? step.filter((s) => !s.some((o) => o.op === 'enable-evmcs')) : step;
  // a quiet guest does nothing between hops: its state stays the scenario's (valid) one
  const activity = opts.quietGuest ? fc.constant([]) : fc.array(steps, { maxLength: 2 }).map((s) => s.flat());
  const hop = fc.record({ host: fc.constantFrom(...hosts), opsAfter: activity });
  const hops = fc.oneof(
    fc.array(hop, { minLength: 1, maxLength: opts.maxHops ?? 6 }),
    // upgrade then rollback: there and back again
    fc.tuple(hop, activity).map(([h, back]) => [h, { host: '', opsAfter: back }]),
  );
  return fc
    .record({
      start: fc.constantFrom(...starts),
      scenario: fc.constantFrom(...scenarios),
      extra: activity,
      hops,
      qemuDropsVmxFlags: opts.qemuDropsVmxFlags === undefined ? fc.boolean() : fc.constant(opts.qemuDropsVmxFlags),
    })
    .map(({ start, scenario, extra, hops, qemuDropsVmxFlags }) => ({
      start: { host: start, vm: scenario.vm, ops: [...scenario.ops, ...extra] },
      // '' is the way back to where the previous hop came from
      hops: hops.map((h, i) => ({ ...h, host: h.host || (i === 0 ? start : hops[i - 1]!.host) || start })),
      qemuDropsVmxFlags,
    }));
}
