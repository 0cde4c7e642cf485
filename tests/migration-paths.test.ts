// Generated migration paths move the guest: a hop stays on the host it left only when it was drawn
// as a deliberate same-host hop, and says so. (The rollback branch used to give X -> X in most
// two-hop paths, e.g. linux-6.12 -> linux-5.6 -> linux-5.6.)
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { migrationPath } from '../generators/migration.js';
import type { MigrationPath } from '../targets/target.js';

/** Every hop of a path with the host it left. */
const hopsOf = (p: MigrationPath) => p.hops.map((h, i) => ({ from: i === 0 ? p.start.host : p.hops[i - 1]!.host, ...h }));

describe.each<[string, Parameters<typeof migrationPath>[0] & {}]>([
  ['every host', {}],
  ['three hosts', { hosts: ['linux-5.6', 'linux-5.7', 'linux-6.12'] }],
  ['one hop', { maxHops: 1 }],
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
