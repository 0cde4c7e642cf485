// report.md: a short summary for a pull-request comment. A count for every verdict; failures get
// their replay command first, then the field diff and the input's fields (capped); everything else
// is a count or one line. report.json has the rest.
import { hexdumpLines } from './hexdump.js';
import type { Finding, Report } from './report.js';
import { allFindings } from './verdict.js';
import { unmatchedWaiverWarnings } from './waivers.js';
import { goldenSummary, runLine, verdictLabel, VERDICTS, type CounterexampleRecord } from './render-common.js';

const MAX_DIFF_ROWS = 8;
/** input lines in all, and field rows per input part */
const MAX_INPUT_LINES = 10;
const MAX_PART_ROWS = 4;

export function renderMarkdown(r: Report): string {
  const s = r.summary;
  const out: string[] = [
    `## nvmx-conformance: ${verdictLabel(r.verdict)}`,
    '',
    runLine(r),
    '',
    `**${r.verdictReason}**`,
    '',
    `| ${VERDICTS.join(' | ')} |`,
    `|${VERDICTS.map(() => '---:').join('|')}|`,
    `| ${VERDICTS.map((v) => String((s as unknown as Record<string, number>)[v] ?? 0)).join(' | ')} |`,
  ];
  if (r.sections?.golden) out.push('', `Golden corpus: ${goldenSummary(r.sections.golden)}.`);
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
    out.push(...gapLines(gaps));
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
  const input: string[] = [];
  for (const part of c.view ?? []) {
    if (input.length >= MAX_INPUT_LINES) break;
    const fields = part.fields ?? [];
    const hex = (part.hex ?? []).flatMap((h) => hexdumpLines(h.offset, h.bytes));
    input.push(`${part.label}${part.note ? ` (${part.note})` : ''}`, ...fields.slice(0, MAX_PART_ROWS).map((f) => `  ${f.field} = ${f.value}`), ...hex.slice(0, 2).map((l) => `  ${l}`));
    if (fields.length > MAX_PART_ROWS || hex.length > 2) input.push('  …');
  }
  if (input.length > MAX_INPUT_LINES) input.splice(MAX_INPUT_LINES, Infinity, '… more in report.html');
  return [
    `**\`${id}\`** — ${c.summary} (seed ${p.seed}, path \`${p.path}\`)`,
    '',
    `replay: \`${p.replay}\``,
    ...(rows.length ? ['```', ...rows, '```'] : []),
    ...(input.length ? ['<details><summary>input</summary>', '', '```', ...input, '```', '</details>'] : []),
  ];
}

/**
 * One line per gap, except that gaps with the same verdict and reason share a line: a target without
 * nested-state leaves every golden nested-state blob unsupported for one reason, and the comment stays short.
 */
function gapLines(gaps: readonly Finding[]): string[] {
  const byWhy = new Map<string, string[]>();
  for (const f of gaps) {
    const why = `${f.verdict} — ${String(f.reason ?? f.detail ?? '')}`;
    byWhy.set(why, [...(byWhy.get(why) ?? []), f.id]);
  }
  return [...byWhy].map(([why, ids]) => `- ${ids.length === 1 ? `\`${ids[0]}\`` : `${ids.length} findings (\`${ids[0]}\`, …)`}: ${why}`);
}

const waiverLine = (f: Finding): string => `- \`${f.id}\`: ${f.waiver!.reason}${f.waiver!.expires ? ` (until ${f.waiver!.expires})` : ''}`;
