// Generated migration paths move the guest: a hop stays on the host it left only when it was drawn
// as a deliberate same-host hop, and says so. (The rollback branch used to give X -> X in most
// two-hop paths, e.g. linux-6.12 -> linux-5.6 -> linux-5.6.) With `ends`, every path touches one of
// those hosts (the target under test plays them), at its start or at its first hop.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { migrationPath } from '../generators/migration.js';
import { HOSTS } from '../model/migration/hosts.js';
import type { MigrationPath } from '../model/migration/path.js';

/** Every hop of a path with the host it left. */
const hopsOf = (p: MigrationPath) => p.hops.map((h, i) => ({ from: i === 0 ? p.start.host : p.hops[i - 1]!.host, ...h }));

describe.each<[string, Parameters<typeof migrationPath>[0] & {}]>([
  ['every host', {}],
  ['three hosts', { hosts: ['linux-5.6', 'linux-5.7', 'linux-6.12'] }],
  ['one hop', { maxHops: 1 }],
  ['every host, touching 6.12', { ends: ['linux-6.12', 'linux-6.12-nonested'] }],
  ['one hop, touching 5.6', { maxHops: 1, ends: ['linux-5.6'] }],
])('migrationPath (%s)', (_name, opts) => {
  const paths = fc.sample(migrationPath(opts), { seed: 15, numRuns: 2000 });
  const hops = paths.flatMap(hopsOf);

  test('no unlabelled X -> X hop; every labelled one stays, and they are few', () => {
    expect(hops.filter((h) => h.from === h.host && !h.sameHost)).toEqual([]);
    const labelled = hops.filter((h) => h.sameHost);
    expect(labelled.filter((h) => h.from !== h.host)).toEqual([]);
    expect(labelled.length).toBeGreaterThan(0);
    expect(labelled.length / hops.length).toBeLessThan(0.2);
  });

  test('two-hop paths go somewhere: most come back to the start (upgrade then rollback) through another host', () => {
    const twoHop = paths.filter((p) => p.hops.length === 2);
    if (opts.maxHops === 1) return expect(twoHop).toEqual([]);
    const roundTrips = twoHop.filter((p) => p.hops[0]!.host !== p.start.host && p.hops[1]!.host === p.start.host);
    expect(roundTrips.length / twoHop.length).toBeGreaterThan(0.5);
  });
});

describe.each<[string, readonly string[], number]>([
  ['6.12 (either host of it)', ['linux-6.12', 'linux-6.12-nonested'], 6],
  ['5.6', ['linux-5.6'], 1],
  ['4.18 (a host no path starts on)', ['linux-4.18'], 3],
])('migrationPath with ends %s', (_name, ends, maxHops) => {
  const paths = fc.sample(migrationPath({ ends, maxHops }), { seed: 9, numRuns: 2000 });

  test('every path starts on one, or its first hop goes to one; both happen', () => {
    const at = (p: MigrationPath) => (ends.includes(p.start.host) ? 'start' : ends.includes(p.hops[0]!.host) ? 'first hop' : 'nowhere');
    const where = paths.map(at);
    expect(where.filter((w) => w === 'nowhere')).toEqual([]);
    expect(where.filter((w) => w === 'first hop').length).toBeGreaterThan(100);
    if (!ends.includes('linux-4.18')) expect(where.filter((w) => w === 'start').length).toBeGreaterThan(100);
  });

  test('the other end still varies: every other host meets the ends', () => {
    const other = new Set(paths.flatMap((p) => [p.start.host, ...p.hops.map((h) => h.host)]).filter((h) => !ends.includes(h)));
    expect([...other].sort()).toEqual(HOSTS.map((h) => h.name).filter((h) => !ends.includes(h)).sort());
  });
});
