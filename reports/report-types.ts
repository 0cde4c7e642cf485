// The shape of report.json, in one place: report.ts builds it, verdict.ts judges it, waivers.ts
// marks it, merge and the renderers read it. Types only, so none of those imports another for them.
import type { PropertyOutcome } from '../harness/property.js';
import type { GoldenBlobResult, GoldenSection } from '../golden/report-section.js';

/**
 * report.json's format. /2: the golden results moved from a top-level `golden` object, outside the
 * verdict, into `sections.golden`, one finding per blob; the `filterDifferences` and
 * `migrationMatrix` slots, which nothing filled, are gone. Readers refuse other versions by name.
 */
export const REPORT_FORMAT = 'nvmx-report/2';

export type FindingVerdict = PropertyOutcome['verdict'] | 'waived';

export interface WaiverRef {
  id: string;
  reason: string;
  expires?: string;
}

/** What properties and section entries share: an id a waiver can name, and a verdict. */
export interface Finding {
  id: string;
  verdict: FindingVerdict;
  waiver?: WaiverRef;
  [k: string]: unknown;
}

/** What a target said about itself (hello), and the package it came from when the run was told. */
export interface TargetIdentityRecord {
  name?: string;
  version?: string;
  /** the profile a process target claims in its hello (properties compare against it) */
  claimedProfile?: string;
  /** e.g. "linux-source-6.12 6.12.117-1~deb12u1" (check --target-package) */
  package?: string;
}

export interface PropertyRecord extends Finding {
  invariant: string;
  description?: string;
  groups: string[];
  durationMs?: number;
  /** named quirks of the profile a passing property saw (harness/property.ts DocumentedSeen) */
  documented?: { name: string; cases: number }[];
}

/** One golden blob judged on the target: a finding like any other once waivers may mark it. */
export type GoldenFinding = Omit<GoldenBlobResult, 'verdict'> & Finding;

export interface GoldenReportSection extends Omit<GoldenSection, 'blobs'> {
  blobs: GoldenFinding[];
}

/** Evidence beside the properties; each is absent until the run produces it. */
export interface Sections {
  /** `check --layout-diff OLD` */
  layoutDiffs?: (Finding & { diff: unknown })[];
  /** the golden corpus read back through the target (golden/report-section.ts) */
  golden?: GoldenReportSection;
}

export interface WaiverResult extends WaiverRef {
  matched: string[];
}

export interface Shard {
  index: number;
  count: number;
}

export type StopReason = 'time-budget' | 'interrupted';

export interface RunInfo {
  seed: number;
  seeds: number[];
  profiles: string[];
  runs: number | null;
  startedAt: string;
  finishedAt: string;
  complete: boolean;
  host: string;
  node: string;
  stopped?: StopReason;
  /** check --only: the run owes only the properties these patterns select */
  only?: string[];
  shard?: Shard;
  mergedShards?: Shard[];
  missing?: string[];
}

export interface Report {
  format: typeof REPORT_FORMAT;
  tool: { name: 'nvmx-conformance'; version: string };
  target: { spec: string; profile: string } & TargetIdentityRecord;
  run: RunInfo;
  properties: PropertyRecord[];
  summary: Summary;
  verdict: 'compatible' | 'incompatible' | 'unknown';
  verdictReason: string;
  waivers?: WaiverResult[];
  sections?: Sections;
}

/** A report before its summary and verdict, which `finalize` derives. */
export type ReportBody = Omit<Report, 'summary' | 'verdict' | 'verdictReason'>;

export interface Summary {
  pass: number;
  /** the known bug or quirk of the profile showed, as expected: conformance, not a failure */
  'expected-fail': number;
  fail: number;
  unsupported: number;
  error: number;
  waived: number;
}
