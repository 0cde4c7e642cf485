// report.md: a short summary for a pull-request comment. Failures get their field diff (capped)
// and replay command; everything else is a count or one line. report.json has the rest.
import { hexdumpLines } from './hexdump.js';
import type { Finding, Report } from './report.js';
import { allFindings } from './verdict.js';
import { unmatchedWaiverWarnings } from './waivers.js';
import { runLine, verdictLabel, type CounterexampleRecord } from './render-common.js';

const MAX_DIFF_ROWS = 8;

export function renderMarkdown(r: Report): string {
  const s = r.summary;
  const out: string[] = [
    `## nvmx-conformance: ${verdictLabel(r.verdict)}`,
    '',
    runLine(r),
    '',
    `**${r.verdictReason}** — ${s.pass} pass, ${s.fail} fail, ${s.waived} waived, ${s.unsupported} unsupported, ${s.error} error`,
  ];
  const findings = allFindings(r);
  const failed = r.properties.filter((p) => p.verdict === 'fail');
  if (failed.length) {
    out.push('', '### Failures');
    for (const p of failed) out.push('', ...failureMd(p.id, p as unknown as CounterexampleRecord));
  }
  const otherFailed = allFindings({ properties: [], sections: r.sections }).filter((f) => f.verdict === 'fail');
  if (otherFailed.length) out.push('', '### Failing findings', '', ...otherFailed.map((f) => `- \`${f.id}\`: ${String(f.detail ?? 'fail')}`));
  const waived = findings.filter((f) => f.verdict === 'waived');
  if (waived.length) out.push('', '### Waived', '', ...waived.map(waiverLine));
  const gaps = findings.filter((f) => f.verdict === 'unsupported' || f.verdict === 'error');
  if (gaps.length || r.run.missing?.length) {
    out.push('', '### Missing evidence', '');
    out.push(...gaps.map((f) => `- \`${f.id}\`: ${f.verdict} — ${String(f.reason ?? f.detail ?? '')}`));
    if (r.run.missing?.length) out.push(`- did not run: ${r.run.missing.map((id) => `\`${id}\``).join(', ')}`);
  }
  const warnings = unmatchedWaiverWarnings(r.waivers);
  if (warnings.length) out.push('', '### Warnings', '', ...warnings.map((w) => `- ${w}`));
  out.push('', `<sub>nvmx-conformance ${r.tool.version} · full details in report.html and report.json</sub>`, '');
  return out.join('\n');
}

function failureMd(id: string, p: CounterexampleRecord): string[] {
  const c = p.counterexample;
  const rows = c.diff.slice(0, MAX_DIFF_ROWS).flatMap((d) => [
    `${d.field}: ${d.expected} -> ${d.actual}${d.offset >= 0 ? `  (offset ${d.offset})` : ''}`,
    ...(d.bytes ? [...hexdumpLines(d.offset, d.bytes.expected).map((l) => `  expected ${l}`), ...hexdumpLines(d.offset, d.bytes.actual).map((l) => `  actual   ${l}`)] : []),
  ]);
  if (c.diff.length > MAX_DIFF_ROWS) rows.push(`… ${c.diff.length - MAX_DIFF_ROWS} more in report.json`);
  return [
    `**\`${id}\`** — ${c.summary} (seed ${p.seed}, path \`${p.path}\`)`,
    ...(rows.length ? ['```', ...rows, '```'] : []),
    `replay: \`${p.replay}\``,
  ];
}

const waiverLine = (f: Finding): string => `- \`${f.id}\`: ${f.waiver!.reason}${f.waiver!.expires ? ` (until ${f.waiver!.expires})` : ''}`;
