// Migration paths: 1-6 hops over hosts of different profiles, guest activity between hops drawn
// from the scenarios and guest-operation steps, upgrade-then-rollback shapes included. A hop goes to
// another host than the one the guest is on, unless it is a deliberate (and labelled) move between
// two hosts of the same kind.
import fc from 'fast-check';
import { HOSTS } from '../model/migration/hosts.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { findProfile } from '../model/profiles.js';
import type { MigrationPath } from '../model/migration/path.js';
import { step } from './nested.js';

const NESTED_HOSTS = HOSTS.filter((h) => findProfile(h.profile)?.nested).map((h) => h.name);

/** One hop as drawn: `pick` chooses among the hosts other than the current one, so it shrinks to the first of them. */
interface HopDraw {
  readonly pick: number;
  readonly sameHost: boolean;
  readonly opsAfter: MigrationPath['hops'][number]['opsAfter'];
}

/** The host `pick` names among `hosts` without `from` (every host but the one the guest is on). */
function otherHost(hosts: readonly string[], from: string, pick: number): string {
  const others = hosts.filter((h) => h !== from);
  return others[pick % others.length] ?? from;
}

export function migrationPath(
  opts: { hosts?: readonly string[]; scenarios?: readonly string[]; qemuDropsVmxFlags?: boolean; maxHops?: number; withoutEvmcs?: boolean; quietGuest?: boolean } = {},
): fc.Arbitrary<MigrationPath> {
  const hosts = opts.hosts ?? HOSTS.map((h) => h.name);
  const starts = (opts.hosts ?? NESTED_HOSTS).filter((h) => NESTED_HOSTS.includes(h));
  const scenarios = SCENARIOS.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  const steps = opts.withoutEvmcs ? step.filter((s) => !s.some((o) => o.op === 'enable-evmcs')) : step;
  // a quiet guest does nothing between hops: its state stays the scenario's (valid) one
  const activity = opts.quietGuest ? fc.constant([]) : fc.array(steps, { maxLength: 2 }).map((s) => s.flat());
  // one hop in ten stays on a host of the same kind; with one host there is nowhere else to go
  const sameHost = hosts.length < 2 ? fc.constant(true) : fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
  const hop: fc.Arbitrary<HopDraw> = fc.record({ pick: fc.nat(Math.max(0, hosts.length - 2)), sameHost, opsAfter: activity });
  const anyHops = fc.array(hop, { minLength: 1, maxLength: opts.maxHops ?? 6 }).map((hs) => ({ rollback: false, hs }));
  // upgrade then rollback: there and back again
  const rollback = fc.tuple(hop, activity).map(([h, back]) => ({ rollback: true, hs: [{ ...h, sameHost: false }, { pick: 0, sameHost: false, opsAfter: back }] }));
  const hops = hosts.length < 2 || (opts.maxHops ?? 6) < 2 ? anyHops : fc.oneof(anyHops, rollback);
  return fc
    .record({
      start: fc.constantFrom(...starts),
      scenario: fc.constantFrom(...scenarios),
      extra: activity,
      hops,
      qemuDropsVmxFlags: opts.qemuDropsVmxFlags === undefined ? fc.boolean() : fc.constant(opts.qemuDropsVmxFlags),
    })
    .map(({ start, scenario, extra, hops, qemuDropsVmxFlags }) => {
      const path: MigrationPath['hops'][number][] = [];
      let at = start;
      hops.hs.forEach((h, i) => {
        // the way back goes to where the previous hop came from
        const host = hops.rollback && i === 1 ? start : h.sameHost ? at : otherHost(hosts, at, h.pick);
        path.push({ host, opsAfter: h.opsAfter, ...(h.sameHost ? { sameHost: true as const } : {}) });
        at = host;
      });
      return { start: { host: start, vm: scenario.vm, ops: [...scenario.ops, ...extra] }, hops: path, qemuDropsVmxFlags };
    });
}
