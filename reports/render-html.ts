// report.html: one self-contained file (inline CSS, no scripts, no network: the CSP forbids any
// fetch). A summary with a count for every verdict and the failures linked, each with its replay
// command first; properties; failures with field diffs and hex, long inputs folded; layout diffs as
// side-by-side member maps, the golden blobs as a table, and the waivers.
import type { LayoutDiff, MemberRef } from '../model/layout-diff.js';
import type { InputPart } from '../harness/input-view.js';
import { documentedText } from '../harness/format.js';
import { hexdumpLines } from './hexdump.js';
import type { Finding, GoldenReportSection, PropertyRecord, Report, WaiverRef } from './report.js';
import { allFindings } from './verdict.js';
import { failedProperties, failureAnchor, runLine, verdictLabel, VERDICTS, type CounterexampleRecord } from './render-common.js';
import { unmatchedWaiverWarnings } from './waivers.js';

const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const code = (s: unknown): string => `<code>${esc(s)}</code>`;
const badge = (v: string): string => `<span class="v v-${esc(v)}">${esc(v)}</span>`;

/** Diff rows shown before the rest is folded; hex lines shown before a dump is folded. */
const DIFF_ROWS = 8;
const FIELD_ROWS = 12;
const HEX_LINES = 4;

// every verdict has a colour with white text on it; `.v-*` is used by badges and count cells alike
const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}h3{margin:.2em 0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f7f7f7;padding:.5em;margin:.3em 0;white-space:pre-wrap;overflow-wrap:anywhere}
.v{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-weight:600;white-space:nowrap}
.v-pass,.v-compatible{background:#2e7d32}.v-expected-fail{background:#00695c}.v-fail,.v-incompatible{background:#c62828}.v-waived{background:#ef6c00}
.v-unsupported,.v-unknown{background:#616161}.v-error{background:#6a1b9a}
td.v{display:table-cell;border-radius:0;text-align:center;min-width:6em}
table.counts td{text-align:center;min-width:5em;font-weight:600}table.counts td.zero{color:#999;font-weight:400}
tr.c-unchanged td{color:#888}tr.c-shifted,tr.c-resized,tr.c-removed,tr.c-inserted{background:#fde0dc}
tr.c-appended,tr.c-used-padding,tr.c-renamed,tr.c-retyped-same-size{background:#fff3cd}
.num{text-align:right}details{margin:.4em 0}summary{cursor:pointer}.bad{background:#fde0dc}
ol.failure-links li{margin:.3em 0}
article.failure{border:1px solid #e0b4b4;border-left:6px solid #c62828;padding:.4em .8em;margin:1em 0;scroll-margin-top:.5em}
article.failure.waived{border-color:#f3c9a0;border-left-color:#ef6c00}
.replay{font-weight:600}.replay pre{background:#263238;color:#fff;font-weight:400;margin:.2em 0}
td.detail{max-width:40em}
`;

export function renderHtml(r: Report): string {
  const failures = failedProperties(r);
  const body = [
    `<h1>nvmx-conformance report <span id="verdict" class="v v-${r.verdict}" data-verdict="${r.verdict}">${esc(verdictLabel(r.verdict).replace(/^\S+ /, ''))}</span></h1>`,
    `<section id="summary"><p>${esc(r.verdictReason)}</p>`,
    countsHtml(r),
    failures.length ? `<h3>Failures</h3><ol class="failure-links">${failures.map((p) => `<li><a href="#${esc(failureAnchor(p.id))}">${esc(p.id)}</a>${p.verdict === 'waived' ? ` ${badge('waived')}` : ''}: ${esc(p.counterexample.summary)}</li>`).join('')}</ol>` : '',
    failingFindingsHtml(r),
    `<p>${esc(runLine(r).replace(/`/g, ''))}</p>`,
    table(['tool', 'target', 'host', 'node', 'started', 'finished'], [[`${r.tool.name} ${r.tool.version}`, `${r.target.spec} ${r.target.name ?? ''} ${r.target.version ?? ''}`, r.run.host, r.run.node, r.run.startedAt, r.run.finishedAt].map((x) => esc(x ?? ''))]),
    r.run.missing?.length ? `<p class="bad">did not run: ${r.run.missing.map(code).join(', ')}</p>` : '',
    '</section>',
    failures.length ? `<section id="failures"><h2>Failures</h2>${failures.map(failureHtml).join('\n')}</section>` : '',
    propertiesHtml(r),
    r.sections?.layoutDiffs?.length ? `<section id="layout-diffs"><h2>Layout diffs</h2>${r.sections.layoutDiffs.map(layoutDiffHtml).join('')}</section>` : '',
    r.sections?.golden ? goldenHtml(r.sections.golden) : '',
    waiversHtml(r),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nvmx-conformance: ${esc(r.verdict)}</title><style>${CSS}</style></head>
<body>
${body.filter(Boolean).join('\n')}
</body></html>
`;
}

function table(head: string[], rows: string[][], rowClass: (i: number) => string = () => '', rowId: (i: number) => string = () => ''): string {
  const tr = rows.map((cells, i) => `<tr${rowId(i) ? ` id="${esc(rowId(i))}"` : ''}${rowClass(i) ? ` class="${rowClass(i)}"` : ''}>${cells.map((c) => (c.startsWith('<td') ? c : `<td>${c}</td>`)).join('')}</tr>`);
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${tr.join('')}</tbody></table>`;
}

/** One column per verdict, expected-fail included; a count of 0 is greyed, never hidden. */
function countsHtml(r: Report): string {
  const s = r.summary as unknown as Record<string, number>;
  const cells = VERDICTS.map((v) => `<td class="${s[v] ? `v v-${v}` : 'zero'}" data-verdict="${v}">${s[v] ?? 0}</td>`);
  return `<table class="counts"><thead><tr>${VERDICTS.map((v) => `<th>${badge(v)}</th>`).join('')}</tr></thead><tbody><tr>${cells.join('')}</tr></tbody></table>`;
}

function propertiesHtml(r: Report): string {
  const rows = r.properties.map((p) => {
    const cx = p as unknown as CounterexampleRecord;
    let detail: string;
    if ((p.verdict === 'fail' || p.verdict === 'waived') && cx.counterexample) detail = `<a href="#${esc(failureAnchor(p.id))}">${esc(cx.counterexample.summary)}</a>`;
    else if (p.verdict === 'expected-fail' && cx.counterexample)
      detail = `${esc(p.reason ?? '')}<details class="counterexample"><summary>the counterexample (seed ${cx.seed}, path ${esc(cx.path)})</summary>${counterexampleHtml(cx)}</details>`;
    else
      detail =
        esc(p.reason ?? (p.cases !== undefined ? `${p.cases} cases, seed ${p.seed}` : '')) +
        (p.documented?.length ? `<p>${esc(documentedText(p.documented))}</p>` : '') +
        (Array.isArray(p.stderr) && p.stderr.length ? `<pre>${esc(p.stderr.join('\n'))}</pre>` : '');
    const waiver = waiverNote(p.waiver);
    return [`${code(p.id)}<br><small>${esc(p.invariant)}</small>${p.description ? `<details><summary><small>how</small></summary><small>${esc(p.description)}</small></details>` : ''}`, badge(p.verdict), esc(p.groups.join(', ') || '(tool)'), p.durationMs !== undefined ? `${p.durationMs} ms` : '', `<td class="detail">${waiver}${detail}</td>`];
  });
  return `<section id="properties"><h2>Properties</h2>${table(['property', 'verdict', 'groups', 'time', 'detail'], rows, (i) => `property p-${r.properties[i]!.verdict}`, (i) => `p-${r.properties[i]!.id}`)}</section>`;
}

/** A failure, open: the replay command first, then what differs, then the input (folded when long). */
function failureHtml(p: PropertyRecord & CounterexampleRecord): string {
  const waived = p.verdict === 'waived';
  return `<article class="failure${waived ? ' waived' : ''}" id="${esc(failureAnchor(p.id))}">
<h3>${code(p.id)} ${badge(p.verdict)}</h3>
${waived ? waiverNote(p.waiver) : ''}
${counterexampleHtml(p)}
</article>`;
}

function hexPre(lines: string[]): string {
  if (lines.length <= HEX_LINES) return `<pre>${esc(lines.join('\n'))}</pre>`;
  return `<pre>${esc(lines.slice(0, HEX_LINES).join('\n'))}</pre><details><summary>${lines.length - HEX_LINES} more lines</summary><pre>${esc(lines.slice(HEX_LINES).join('\n'))}</pre></details>`;
}

function foldRows(rows: string[][], head: string[], shown: number, what: string): string {
  if (rows.length <= shown) return table(head, rows);
  return `${table(head, rows.slice(0, shown))}<details><summary>${rows.length - shown} more ${what}</summary>${table(head, rows.slice(shown))}</details>`;
}

function counterexampleHtml(p: CounterexampleRecord): string {
  const c = p.counterexample;
  const shrunk = p.shrinks !== undefined ? `, shrunk ${p.shrinks} times` : '';
  // the offset and bytes columns only where some difference has them
  const offsets = c.diff.some((d) => d.offset >= 0);
  const bytes = c.diff.some((d) => d.bytes);
  const diffHead = ['field', ...(offsets ? ['offset'] : []), 'expected', 'actual', ...(bytes ? ['bytes'] : [])];
  const diffRows = c.diff.map((d) => [
    code(d.field),
    ...(offsets ? [d.offset >= 0 ? String(d.offset) : ''] : []),
    code(d.expected),
    code(d.actual),
    ...(bytes ? [d.bytes ? hexPre([...hexdumpLines(d.offset, d.bytes.expected).map((l) => `expected ${l}`), ...hexdumpLines(d.offset, d.bytes.actual).map((l) => `actual   ${l}`)]) : ''] : []),
  ]);
  const parts = c.view ?? [];
  const nFields = parts.reduce((n, x) => n + (x.fields?.length ?? 0), 0);
  const nHex = parts.reduce((n, x) => n + (x.hex?.length ?? 0), 0);
  const input = parts.length
    ? `<details class="input"${nFields <= 16 && nHex <= 4 ? ' open' : ''}><summary>the input: ${parts.length} part(s), ${nFields} field(s)${nHex ? `, ${nHex} hex run(s)` : ''}</summary>${parts.map(inputPartHtml).join('')}</details>`
    : '';
  const raw = c.input ? `<details class="raw-input"><summary><small>fast-check's value (${c.input.length} characters)</small></summary><pre>${esc(c.input)}</pre></details>` : '';
  return `<div class="replay">replay:<pre>${esc(p.replay)}</pre></div>
<p>${esc(c.summary)} <small>(seed ${p.seed}, path ${esc(p.path || '-')}${shrunk})</small></p>
${diffRows.length ? foldRows(diffRows, diffHead, DIFF_ROWS, 'differences') : ''}
${input}${raw}`;
}

function inputPartHtml(part: InputPart): string {
  const withOffset = (part.fields ?? []).some((f) => f.offset !== undefined);
  const rows = (part.fields ?? []).map((f) => [code(f.field), ...(withOffset ? [f.offset !== undefined ? String(f.offset) : ''] : []), code(f.value)]);
  const fields = rows.length ? foldRows(rows, withOffset ? ['field', 'offset', 'value'] : ['field', 'value'], FIELD_ROWS, 'fields') : '';
  const hex = part.hex?.length ? hexPre(part.hex.flatMap((h) => hexdumpLines(h.offset, h.bytes))) : '';
  return `<div class="input-part"><p><b>${esc(part.label)}</b>${part.note ? ` <small>(${esc(part.note)})</small>` : ''}</p>${fields}${hex}</div>`;
}

const waiverNote = (w: WaiverRef | undefined): string => (w ? `<p>waived: ${esc(w.reason)}${w.expires ? ` (until ${esc(w.expires)})` : ''}</p>` : '');

/** Section findings that failed (waived ones too), linked to their rows: properties have their own list above. */
function failingFindingsHtml(r: Report): string {
  const failed = allFindings({ properties: [], sections: r.sections }).filter((f) => f.verdict === 'fail' || f.verdict === 'waived');
  if (!failed.length) return '';
  const item = (f: Finding) => `<li><a href="#${esc(f.id)}">${esc(f.id)}</a>${f.verdict === 'waived' ? ` ${badge('waived')}` : ''}: ${esc(f.detail ?? f.verdict)}</li>`;
  return `<h3>Failing findings</h3><ol class="failure-links">${failed.map(item).join('')}</ol>`;
}

/** One row per judged blob, failures coloured by their badge; blobs the profile has no result for are only listed. */
function goldenHtml(g: GoldenReportSection): string {
  const rows = g.blobs.map((b) => [code(b.blob), badge(b.verdict), esc(b.kind), esc(b.producer), code(b.expected ?? ''), code(b.observed ?? ''), `<td class="detail">${waiverNote(b.waiver)}${esc(b.detail ?? '')}</td>`]);
  const na = g.notApplicable.length
    ? `<details><summary>${g.notApplicable.length} blob(s) with no expected result on ${esc(g.profile)}: not judged</summary><p>${g.notApplicable.map(code).join(', ')}</p></details>`
    : '';
  const head = ['blob', 'verdict', 'kind', 'producer', 'expected', 'observed', 'detail'];
  return `<section id="golden"><h2>Golden blobs on ${esc(g.profile)}</h2>${table(head, rows, (i) => `golden g-${g.blobs[i]!.verdict}`, (i) => g.blobs[i]!.id)}${na}</section>`;
}

function layoutDiffHtml(f: Finding & { diff: unknown }): string {
  const d = f.diff as LayoutDiff;
  const side = (m?: MemberRef) => (m ? [String(m.offset), String(m.size), code(m.name), esc(m.type)] : ['', '', '–', '']);
  const rows = d.members.map((m) => [...side(m.old), esc(m.class + (m.padding ? ' (padding)' : '')), ...side(m.new)]);
  const changed = d.members.filter((m) => m.class !== 'unchanged').length;
  const dir = (label: string, x: LayoutDiff['newReadsOld']) =>
    `<li>${esc(label)}: ${esc(x.verdict)}${x.corrupted.length ? `<ul>${x.corrupted.map((c) => `<li>${code(c.member)}: ${esc(c.reason)}</li>`).join('')}</ul>` : ''}</li>`;
  return `<details class="layout-diff" id="${esc(f.id)}" open><summary>${code(f.id)} ${badge(f.verdict)} ${esc(d.old.name)} (${esc(d.old.revision ?? '-')}) → ${esc(d.new.name)} (${esc(d.new.revision ?? '-')}): ${esc(f.detail ?? d.finding)}, ${changed} member(s) changed</summary>
<ul>${dir(`can ${d.new.name} read what ${d.old.name} wrote`, d.newReadsOld)}${dir(`can ${d.old.name} read what ${d.new.name} wrote`, d.oldReadsNew)}</ul>
${table([`${d.old.name} offset`, 'size', 'member', 'type', 'class', `${d.new.name} offset`, 'size', 'member', 'type'], rows, (i) => `c-${d.members[i]!.class}`)}</details>`;
}

function waiversHtml(r: Report): string {
  if (!r.waivers?.length) return '';
  const warnings = new Set(unmatchedWaiverWarnings(r.waivers));
  const rows = r.waivers.map((w) => [code(w.id), esc(w.reason), esc(w.expires ?? ''), w.matched.length ? w.matched.map(code).join(', ') : '<span class="bad">matched nothing</span>']);
  return `<section id="waivers"><h2>Waivers</h2>${table(['id', 'reason', 'expires', 'matched'], rows)}${warnings.size ? `<p class="bad">${warnings.size} waiver(s) matched nothing</p>` : ''}</section>`;
}
