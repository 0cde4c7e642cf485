// Migration paths: 1-6 hops over hosts of different profiles, guest activity between hops drawn
// from the scenarios and guest-operation steps, upgrade-then-rollback shapes included. A hop goes to
// another host than the one the guest is on, unless it is a deliberate (and labelled) move between
// two hosts of the same kind. With `ends`, every path touches one of those hosts (the ones the target
// under test plays): it starts on one, or its first hop goes to one.
import fc from 'fast-check';
import { HOSTS } from '../model/migration/hosts.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { findProfile } from '../model/profiles.js';
import type { MigrationPath } from '../model/migration/path.js';
import { stepFor, type ScenarioLimits } from './nested.js';

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

export interface PathOptions {
  readonly hosts?: readonly string[];
  readonly scenarios?: readonly string[];
  readonly qemuDropsVmxFlags?: boolean;
  readonly maxHops?: number;
  readonly withoutEvmcs?: boolean;
  readonly quietGuest?: boolean;
  /** hosts every path touches (at its start or its first hop's destination) */
  readonly ends?: readonly string[];
  /** what the target under test says of its vCPUs: guest activity stays within it */
  readonly limits?: ScenarioLimits;
}

/** A step uses only operations the target offers (a case that needs another would be skipped, not checked). */
const offers = (limits: ScenarioLimits | undefined) => (s: readonly { op: string }[]) => !s.some((o) => limits?.unsupportedGuestOps?.[o.op] !== undefined);

export function migrationPath(opts: PathOptions = {}): fc.Arbitrary<MigrationPath> {
  const hosts = opts.hosts ?? HOSTS.map((h) => h.name);
  const starts = (opts.hosts ?? NESTED_HOSTS).filter((h) => NESTED_HOSTS.includes(h));
  const scenarios = SCENARIOS.filter((s) => (!opts.scenarios || opts.scenarios.includes(s.name)) && offers(opts.limits)(s.ops));
  const step = stepFor(opts.limits?.guestMemory).filter(offers(opts.limits));
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
      // where the path touches `ends` when it does not by itself: its start (if it can start there) or its first hop
      endAtStart: fc.boolean(),
      endPick: fc.nat(Math.max(0, (opts.ends?.length ?? 1) - 1)),
    })
    .map(({ start: drawn, scenario, extra, hops, qemuDropsVmxFlags, endAtStart, endPick }) => {
      const h0 = hops.hs[0]!;
      const touch = touching(opts.ends, hosts, starts, drawn, h0.sameHost ? drawn : otherHost(hosts, drawn, h0.pick), endAtStart, endPick);
      const start = touch.start;
      const path: MigrationPath['hops'][number][] = [];
      let at = start;
      hops.hs.forEach((h, i) => {
        // the way back goes to where the previous hop came from
        const host = i === 0 && touch.first !== undefined ? touch.first : hops.rollback && i === 1 ? start : h.sameHost ? at : otherHost(hosts, at, h.pick);
        path.push({ host, opsAfter: h.opsAfter, ...(host === at && h.sameHost ? { sameHost: true as const } : {}) });
        at = host;
      });
      return { start: { host: start, vm: scenario.vm, ops: [...scenario.ops, ...extra] }, hops: path, qemuDropsVmxFlags };
    });
}

/**
 * The start and (when it must move) the first hop's host of a path that touches `ends`: the drawn
 * ones when they do, else the start moves to an end (when `atStart` and an end can start a path) or
 * the first hop goes to one.
 */
function touching(ends: readonly string[] | undefined, hosts: readonly string[], starts: readonly string[], start: string, first: string, atStart: boolean, endPick: number): { start: string; first?: string } {
  if (!ends?.length || ends.includes(start) || ends.includes(first)) return { start };
  const startEnds = ends.filter((e) => starts.includes(e));
  if (atStart && startEnds.length) return { start: startEnds[endPick % startEnds.length]! };
  const hopEnds = ends.filter((e) => e !== start && hosts.includes(e));
  return hopEnds.length ? { start, first: hopEnds[endPick % hopEnds.length]! } : { start: startEnds[endPick % startEnds.length] ?? start };
}
