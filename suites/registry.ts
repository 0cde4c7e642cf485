// Every suite, in report order. A suite is a list of properties about one invariant.
import type { PropertyDef } from '../harness/property.js';
import { layoutDiffSuite } from './layout-diff.js';
import { oldRevisionSuite } from './old-revision-readability.js';
import { revisionsMatchProfile } from './revisions-matches-profile.js';
import { vmcs12RoundTrip } from './vmcs12-round-trip.js';
import { evmcsSyncSuite } from './evmcs-sync.js';
import { msrFilterSuite } from './msr-filter.js';
import { evmcsCheckSuite } from './evmcs-check.js';
import { nestedRoundTrip } from './nested-round-trip.js';
import { evmcsFlagWhenActive } from './nested-evmcs-flag.js';
import { nestedRestoreSuite } from './nested-restore.js';
import { migrationSuite } from './migration.js';
import { vmmSuite } from './vmm.js';
import { evmcsFilterSuite } from './evmcs-filter.js';
import { goldenSuite } from './golden.js';
import { validGuestRoundTrip, vmentryChecksSuite } from './vmentry-checks.js';
import { nestedMatchesProfile } from './nested-matches-profile.js';

export interface Suite {
  /** also the name of its vitest entry file: suites/vitest/<name>.suite.ts */
  readonly name: string;
  readonly properties: readonly PropertyDef[];
}

export const SUITES: readonly Suite[] = [
  { name: 'vmcs12-round-trip', properties: vmcs12RoundTrip },
  { name: 'layout-diff', properties: layoutDiffSuite },
  { name: 'old-revision-readability', properties: oldRevisionSuite },
  { name: 'revisions-matches-profile', properties: [revisionsMatchProfile] },
  { name: 'evmcs-sync', properties: evmcsSyncSuite },
  { name: 'msr-filter', properties: msrFilterSuite },
  { name: 'evmcs-check', properties: evmcsCheckSuite },
  { name: 'nested-round-trip', properties: [nestedRoundTrip] },
  { name: 'nested-evmcs-flag', properties: [evmcsFlagWhenActive] },
  { name: 'nested-restore', properties: nestedRestoreSuite },
  { name: 'nested-matches-profile', properties: [nestedMatchesProfile] },
  { name: 'migration', properties: migrationSuite },
  { name: 'vmm', properties: vmmSuite },
  { name: 'evmcs-filter', properties: evmcsFilterSuite },
  { name: 'golden', properties: goldenSuite },
  { name: 'vmentry-checks', properties: vmentryChecksSuite },
  { name: 'vmentry-restore', properties: [validGuestRoundTrip] },
];

export const ALL_PROPERTIES: readonly PropertyDef[] = SUITES.flatMap((s) => s.properties);

/** `--only` patterns: property ids, `*` matching any run of characters (e.g. `nested.*`). */
export function selectedBy(only: readonly string[] | undefined): (id: string) => boolean {
  if (!only?.length) return () => true;
  const res = only.map((p) => new RegExp(`^${p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (id) => res.some((r) => r.test(id));
}

export const findProperty = (id: string): PropertyDef | undefined => ALL_PROPERTIES.find((p) => p.id === id);
