// report.json: the full, schema-validated record of one run. Three-valued verdict: any missing
// evidence (unsupported, error, incomplete run) makes it `unknown`, never `compatible`.
import { hostname } from 'node:os';
import { renameSync, writeFileSync } from 'node:fs';
import type { PropertyDef, PropertyOutcome } from '../suites/harness.js';
import { replayCommand, type RunIdentity } from './format.js';
import { validate } from './schemas.js';
import { TOOL_VERSION } from '../targets/reference.js';

export interface PropertyRecord {
  id: string;
  invariant: string;
  groups: string[];
  verdict: PropertyOutcome['verdict'];
  durationMs?: number;
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

export interface Report {
  format: 'nvmx-report/1';
  tool: { name: 'nvmx-conformance'; version: string };
  target: { spec: string; profile: string } & TargetIdentityRecord;
  run: { seed: number; runs: number | null; startedAt: string; finishedAt: string; complete: boolean; host: string; node: string };
  properties: PropertyRecord[];
  summary: { pass: number; fail: number; unsupported: number; error: number };
  verdict: 'compatible' | 'incompatible' | 'unknown';
}

export function propertyRecord(def: PropertyDef, o: PropertyOutcome, run: RunIdentity, durationMs?: number): PropertyRecord {
  const { id: _id, ...rest } = o;
  return {
    id: def.id,
    invariant: def.invariant,
    groups: [...def.groups],
    ...rest,
    ...(o.verdict === 'fail' ? { replay: replayCommand(o, run) } : {}),
    ...(durationMs !== undefined ? { durationMs: Math.round(durationMs * 10) / 10 } : {}),
  } as PropertyRecord;
}

export function buildReport(a: {
  run: RunIdentity & { seed: number; runs?: number };
  targetIdentity?: TargetIdentityRecord;
  records: PropertyRecord[];
  expected: number;
  startedAt: Date;
  finishedAt: Date;
}): Report {
  const summary = { pass: 0, fail: 0, unsupported: 0, error: 0 };
  for (const r of a.records) summary[r.verdict]++;
  const complete = a.records.length === a.expected;
  const verdict = summary.fail ? 'incompatible' : summary.unsupported || summary.error || !complete ? 'unknown' : 'compatible';
  return {
    format: 'nvmx-report/1',
    tool: { name: 'nvmx-conformance', version: TOOL_VERSION },
    target: { spec: a.run.target, profile: a.run.profile, ...(a.targetIdentity ?? {}) },
    run: {
      seed: a.run.seed,
      runs: a.run.runs ?? null,
      startedAt: a.startedAt.toISOString(),
      finishedAt: a.finishedAt.toISOString(),
      complete,
      host: hostname(),
      node: process.version,
    },
    properties: a.records,
    summary,
    verdict,
  };
}

/** Validates, then writes through a temporary file and a rename, so a reader never sees half a report. */
export function writeJsonAtomically(path: string, schema: 'report', data: unknown): void {
  const problems = validate(schema, data);
  if (problems.length) throw new Error(`refusing to write an invalid ${schema}: ${problems[0]}`);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  renameSync(tmp, path);
}
