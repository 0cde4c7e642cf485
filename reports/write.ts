// Writes a report's files: report.json (validated first), report.md, report.html and junit.xml,
// each through a temporary file and a rename. A run writes them into its ReportSet's staging
// directory (report-set.ts), which moves them into the report directory together.
import { join } from 'node:path';
import { writeJsonAtomically, writeTextAtomically, type Report } from './report.js';
import { renderHtml } from './render-html.js';
import { renderMarkdown } from './render-md.js';

export const REPORT_FILES = { json: 'report.json', md: 'report.md', html: 'report.html', junit: 'junit.xml' } as const;

/** All four files; `junitXml` comes from the same report (junit.ts). */
export function writeReportFiles(dir: string, report: Report, junitXml: string): void {
  writeJsonAtomically(join(dir, REPORT_FILES.json), 'report', report);
  writeRenderings(dir, report);
  writeTextAtomically(join(dir, REPORT_FILES.junit), junitXml);
}

/** report.md and report.html from a report already on disk (`report render`). */
export function writeRenderings(dir: string, report: Report): void {
  writeTextAtomically(join(dir, REPORT_FILES.md), renderMarkdown(report));
  writeTextAtomically(join(dir, REPORT_FILES.html), renderHtml(report));
}
