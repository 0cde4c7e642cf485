// `report render DIR` (report.md and report.html again from a validated report.json) and
// `report merge DIR... [--out DIR]` (shard reports -> one report; junit.xml from the merged report).
import { existsSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ALL_PROPERTIES, selectedBy } from '../suites/registry.js';
import { TOOL_VERSION } from '../targets/reference.js';
import { mergeReports, type MergeInput } from '../reports/merge.js';
import { readReport, type Report } from '../reports/report.js';
import { exitCodeFor } from '../reports/verdict.js';
import { unmatchedWaiverWarnings } from '../reports/waivers.js';
import { REPORT_FILES, writeRenderings } from '../reports/write.js';
import { UsageError } from '../base/errors.js';
import { commitReport, openReportSet } from './report-dir.js';
import { dispatch, parse } from './options.js';
import { reportGroup, reportMergeSpec as mergeSpec, reportRenderSpec as renderSpec } from './spec.js';

export async function reportCommand(argv: string[]): Promise<number> {
  return dispatch(reportGroup, argv, { render, merge });
}

function reportIn(dir: string): Report {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${dir}: no such report directory`);
  const r = readReport(join(dir, REPORT_FILES.json));
  if ('problem' in r) throw new UsageError(r.problem);
  return r.report;
}

function render(argv: string[]): number {
  const { positionals } = parse(argv, renderSpec);
  if (!positionals[0]) throw new UsageError('report render needs a report directory (one with report.json)');
  const dir = resolve(positionals[0]);
  const report = reportIn(dir);
  writeRenderings(dir, report);
  console.log(`rendered: ${[REPORT_FILES.md, REPORT_FILES.html].map((f) => relative(process.cwd(), join(dir, f))).join(', ')}`);
  return 0;
}

function merge(argv: string[]): number {
  const { values, positionals } = parse(argv, mergeSpec);
  if (!positionals.length) throw new UsageError('report merge needs the shard report directories');
  const dirs = positionals.map((p) => resolve(p));
  const inputs: MergeInput[] = dirs.map((d, i) => ({ source: positionals[i]!, report: reportIn(d) }));
  // the properties a run owes come from this tool's registry, so the shards must come from this version
  const foreign = inputs.find((i) => i.report.tool.version !== TOOL_VERSION);
  if (foreign) throw new UsageError(`${foreign.source} was written by nvmx-conformance ${foreign.report.tool.version}; merge it with that version (this is ${TOOL_VERSION})`);
  // shards of a check --only run owe only what --only selected (shards with another --only are refused)
  const merged = mergeReports(inputs, ALL_PROPERTIES.map((p) => p.id).filter(selectedBy(inputs[0]!.report.run.only)));
  if ('problem' in merged) throw new UsageError(merged.problem);
  const report = merged.report;
  const set = openReportSet(values.out);
  const out = set.dir;
  try {
    // junit.xml agrees with the merged report.json: it is written from it, not pasted from the shards'
    commitReport(set, report);
  } finally {
    set.release();
  }
  for (const w of unmatchedWaiverWarnings(report.waivers)) console.error(`nvmx-conformance: warning: ${w}`);
  const s = report.summary;
  const shards = report.run.mergedShards!.map((x) => `${x.index}/${x.count}`).join(', ');
  console.log(`merged shards ${shards}: ${report.properties.length} properties${report.run.missing?.length ? `, missing ${report.run.missing.join(', ')}` : ''}`);
  console.log(`verdict: ${report.verdict} (${s.pass} pass, ${s.fail} fail, ${s.waived} waived, ${s.unsupported} unsupported, ${s.error} error): ${report.verdictReason}`);
  console.log(`report: ${relative(process.cwd(), out) || '.'}/`);
  return exitCodeFor(report);
}
