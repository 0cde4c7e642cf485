// report.json: the full, schema-validated record of one run. Three-valued verdict: any missing
// evidence (unsupported, error, incomplete run) makes it `unknown`, never `compatible`.
import { hostname } from 'node:os';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { PropertyDef, PropertyOutcome } from '../harness/property.js';
import { REPORT_FORMAT, type PropertyRecord, type ReportBody, type Report, type Sections, type Shard, type StopReason, type TargetIdentityRecord } from './report-types.js';
import { replayCommand, type RunIdentity } from '../harness/format.js';
import { withBytes } from './hexdump.js';
import { validate } from '../base/schemas.js';
import { TOOL_VERSION } from '../targets/reference.js';
import { applyWaivers, type WaiverEntry } from './waivers.js';
import { judge } from './verdict.js';

export type { FindingVerdict, WaiverRef, Finding, TargetIdentityRecord, PropertyRecord, GoldenFinding, GoldenReportSection, Sections, WaiverResult, Shard, StopReason, RunInfo, Report, ReportBody } from './report-types.js';

export function propertyRecord(def: PropertyDef, o: PropertyOutcome, run: RunIdentity, durationMs?: number): PropertyRecord {
  const { id: _id, ...rest } = o;
  return {
    id: def.id,
    invariant: def.invariant,
    ...(def.description ? { description: def.description } : {}),
    groups: [...def.groups],
    ...rest,
    ...(o.verdict === 'fail' || o.verdict === 'expected-fail' ? { counterexample: { ...o.counterexample, diff: o.counterexample.diff.map(withBytes) }, replay: replayCommand(o, run) } : {}),
    ...(durationMs !== undefined ? { durationMs: Math.round(durationMs * 10) / 10 } : {}),
  } as PropertyRecord;
}

/** Summary and verdict from the findings: the one place both are computed (check, merge, render). */
export function finalize(body: ReportBody): Report {
  const { summary, verdict, reason } = judge(body);
  return { ...body, summary, verdict, verdictReason: reason };
}

const definedOnly = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export function buildReport(a: {
  run: RunIdentity & { seed: number; runs?: number; only?: readonly string[] | undefined };
  targetIdentity?: TargetIdentityRecord | undefined;
  records: PropertyRecord[];
  /** ids the run should have produced; any without a record makes the run incomplete */
  expected: readonly string[];
  startedAt: Date;
  finishedAt: Date;
  stopped?: StopReason | undefined;
  shard?: Shard | undefined;
  sections?: Sections | undefined;
  waivers?: readonly WaiverEntry[] | undefined;
}): Report {
  const have = new Set(a.records.map((r) => r.id));
  const missing = a.expected.filter((id) => !have.has(id));
  const body: ReportBody = {
    format: REPORT_FORMAT,
    tool: { name: 'nvmx-conformance', version: TOOL_VERSION },
    target: { spec: a.run.target, profile: a.run.profile, ...definedOnly(a.targetIdentity ?? {}) },
    run: {
      seed: a.run.seed,
      seeds: [a.run.seed],
      profiles: [a.run.profile],
      runs: a.run.runs ?? null,
      startedAt: a.startedAt.toISOString(),
      finishedAt: a.finishedAt.toISOString(),
      complete: missing.length === 0 && !a.stopped,
      host: hostname(),
      node: process.version,
      ...(a.stopped ? { stopped: a.stopped } : {}),
      ...(a.run.only?.length ? { only: [...a.run.only] } : {}),
      ...(a.shard ? { shard: a.shard } : {}),
      ...(missing.length ? { missing } : {}),
    },
    properties: a.records,
    ...(a.sections && Object.keys(a.sections).length ? { sections: a.sections } : {}),
  };
  return finalize(a.waivers ? applyWaivers(body, a.waivers) : body);
}

/** Validates, then writes through a temporary file and a rename, so a reader never sees half a file. */
export function writeJsonAtomically(path: string, schema: 'report' | 'matrix', data: unknown): void {
  const problems = validate(schema, data);
  if (problems.length) throw new Error(`refusing to write an invalid ${schema}: ${problems[0]}`);
  writeTextAtomically(path, JSON.stringify(data, null, 2) + '\n');
}

export function writeTextAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Reads and validates a report.json; a one-line problem instead of a report when it is not one. */
export function readReport(path: string): { report: Report } | { problem: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { problem: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}` };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { problem: `${path} is not JSON: ${(e as Error).message.split('\n')[0]}` };
  }
  const format = (data as { format?: unknown } | null)?.format;
  // an older (or newer) report: say which, rather than every schema difference's first symptom
  if (typeof format === 'string' && format.startsWith('nvmx-report/') && format !== REPORT_FORMAT)
    return { problem: `${path} is an ${format} report; this version reads ${REPORT_FORMAT} (run check again, or use the tool version that wrote it)` };
  const problems = validate('report', data);
  if (problems.length) return { problem: `${path} is not a valid nvmx report: ${problems[0]}` };
  return { report: data as Report };
}
