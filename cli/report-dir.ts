// The report directory of a run (check, replay, report merge): created, locked and written as one
// set (reports/report-set.ts), with junit.xml generated from the same report as report.json.
import { relative, resolve } from 'node:path';
import { SUITES } from '../suites/registry.js';
import { renderJunit } from '../reports/junit.js';
import type { Report } from '../reports/report.js';
import { ReportDirBusy, ReportSet } from '../reports/report-set.js';
import { writeReportFiles } from '../reports/write.js';
import { UsageError } from '../base/errors.js';
import { ensureDir } from './fs-out.js';

/** Creates and locks the directory; another live run's lock is a usage error (one line, exit 2). */
export function openReportSet(reportDir: string): ReportSet {
  const dir = resolve(reportDir);
  const name = relative(process.cwd(), dir) || '.';
  ensureDir(dir, 'report directory'); // step by step: a recursive mkdir never returns on /proc/x
  try {
    return ReportSet.open(dir, (line) => console.error(`nvmx-conformance: warning: ${line}`), name);
  } catch (e) {
    if (e instanceof ReportDirBusy) throw new UsageError(e.message);
    throw new UsageError(`cannot write in report directory ${name}: ${(e as Error).message}`);
  }
}

const suiteOf = (id: string): string | undefined => SUITES.find((s) => s.properties.some((p) => p.id === id))?.name;

/** Writes the report's four files into the set's staging directory and moves them into place together. */
export function commitReport(set: ReportSet, report: Report): void {
  writeReportFiles(set.staging, report, renderJunit(report, suiteOf));
  set.commit();
}
