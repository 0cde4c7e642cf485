// report.html: one self-contained file (inline CSS, no scripts, no network: the CSP forbids any
// fetch). Summary, properties, collapsible counterexamples with hex dumps, the migration matrix as
// a coloured grid, layout diffs as side-by-side member maps, the other sections and the waivers.
import type { LayoutDiff, MemberRef } from '../model/layout-diff.js';
import { hexdumpLines } from './hexdump.js';
import type { Finding, MatrixSection, Report } from './report.js';
import { runLine, verdictLabel, type CounterexampleRecord } from './render-common.js';
import { unmatchedWaiverWarnings } from './waivers.js';

const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const code = (s: unknown): string => `<code>${esc(s)}</code>`;
const badge = (v: string): string => `<span class="v v-${esc(v)}">${esc(v)}</span>`;

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f7f7f7;padding:.5em;overflow-x:auto}
.v{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-weight:600}
.v-pass,.v-compatible{background:#2e7d32}.v-fail,.v-incompatible{background:#c62828}.v-waived{background:#ef6c00}
.v-unsupported,.v-unknown{background:#757575}.v-error{background:#6a1b9a}
td.v{display:table-cell;border-radius:0;text-align:center;min-width:6em}
tr.c-unchanged td{color:#888}tr.c-shifted,tr.c-resized,tr.c-removed,tr.c-inserted{background:#fde0dc}
tr.c-appended,tr.c-used-padding,tr.c-renamed,tr.c-retyped-same-size{background:#fff3cd}
.num{text-align:right}details{margin:.4em 0}summary{cursor:pointer}.bad{background:#fde0dc}
`;

export function renderHtml(r: Report): string {
  const s = r.summary;
  const body = [
    `<h1>nvmx-conformance report <span id="verdict" class="v v-${r.verdict}" data-verdict="${r.verdict}">${esc(verdictLabel(r.verdict).replace(/^\S+ /, ''))}</span></h1>`,
    `<section id="summary"><p>${esc(r.verdictReason)}</p>`,
    table(['pass', 'fail', 'waived', 'unsupported', 'error'], [[s.pass, s.fail, s.waived, s.unsupported, s.error].map(String)]),
    `<p>${esc(runLine(r).replace(/`/g, ''))}</p>`,
    table(['tool', 'target', 'host', 'node', 'started', 'finished'], [[`${r.tool.name} ${r.tool.version}`, `${r.target.spec} ${r.target.name ?? ''} ${r.target.version ?? ''}`, r.run.host, r.run.node, r.run.startedAt, r.run.finishedAt].map((x) => esc(x ?? ''))]),
    r.run.missing?.length ? `<p class="bad">did not run: ${r.run.missing.map(code).join(', ')}</p>` : '',
    '</section>',
    propertiesHtml(r),
    r.sections?.migrationMatrix ? matrixHtml(r.sections.migrationMatrix) : '',
    r.sections?.layoutDiffs?.length ? `<section id="layout-diffs"><h2>Layout diffs</h2>${r.sections.layoutDiffs.map(layoutDiffHtml).join('')}</section>` : '',
    r.sections?.filterDifferences?.length
      ? `<section id="filter-differences"><h2>Filter differences</h2>${table(['id', 'verdict', 'MSR', 'name', 'expected', 'actual', 'detail'], r.sections.filterDifferences.map((f) => [code(f.id), badge(f.verdict), code(f.msr), esc(f.name ?? ''), code(f.expected), code(f.actual), esc(f.detail ?? '')]))}</section>`
      : '',
    r.sections?.golden?.length
      ? `<section id="golden"><h2>Golden blobs</h2>${table(['id', 'verdict', 'blob', 'producer', 'detail'], r.sections.golden.map((g) => [code(g.id), badge(g.verdict), code(g.blob), esc(g.producer ?? ''), esc(g.detail ?? '')]))}</section>`
      : '',
    waiversHtml(r),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>nvmx-conformance: ${esc(r.verdict)}</title><style>${CSS}</style></head>
<body>
${body.filter(Boolean).join('\n')}
</body></html>
`;
}

function table(head: string[], rows: string[][], rowClass: (i: number) => string = () => ''): string {
  const tr = rows.map((cells, i) => `<tr${rowClass(i) ? ` class="${rowClass(i)}"` : ''}>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`);
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${tr.join('')}</tbody></table>`;
}

function propertiesHtml(r: Report): string {
  const rows = r.properties.map((p) => {
    const detail = p.verdict === 'fail' || p.verdict === 'waived' ? counterexampleHtml(p as unknown as CounterexampleRecord) : esc(p.reason ?? (p.cases !== undefined ? `${p.cases} cases, seed ${p.seed}` : '')) + (Array.isArray(p.stderr) && p.stderr.length ? `<pre>${esc(p.stderr.join('\n'))}</pre>` : '');
    const waiver = p.waiver ? `<p>waived: ${esc(p.waiver.reason)}${p.waiver.expires ? ` (until ${esc(p.waiver.expires)})` : ''}</p>` : '';
    return [`${code(p.id)}<br><small>${esc(p.invariant)}</small>${p.description ? `<details><summary><small>how</small></summary><small>${esc(p.description)}</small></details>` : ''}`, badge(p.verdict), esc(p.groups.join(', ') || '(tool)'), p.durationMs !== undefined ? `${p.durationMs} ms` : '', waiver + detail];
  });
  return `<section id="properties"><h2>Properties</h2>${table(['property', 'verdict', 'groups', 'time', 'detail'], rows, (i) => `property p-${r.properties[i]!.verdict}`)}</section>`;
}

function counterexampleHtml(p: CounterexampleRecord): string {
  const c = p.counterexample;
  const diffRows = c.diff.map((d) => [
    code(d.field),
    d.offset >= 0 ? String(d.offset) : '',
    code(d.expected),
    code(d.actual),
    d.bytes ? `<pre>${esc([...hexdumpLines(d.offset, d.bytes.expected).map((l) => `expected ${l}`), ...hexdumpLines(d.offset, d.bytes.actual).map((l) => `actual   ${l}`)].join('\n'))}</pre>` : '',
  ]);
  return `<details class="counterexample"><summary>${esc(c.summary)} (seed ${p.seed}, path ${esc(p.path)})</summary>
${table(['field', 'offset', 'expected', 'actual', 'bytes'], diffRows)}
<p>input:</p><pre>${esc(c.input)}</pre><p>replay: ${code(p.replay)}</p></details>`;
}

function matrixHtml(m: MatrixSection): string {
  const grids = m.scenarios.map((scenario) => {
    const cell = (src: string, dst: string) => m.cells.find((c) => c.source === src && c.destination === dst && c.scenario === scenario);
    const rows = m.sources.map((src) => {
      const tds = m.destinations.map((dst) => {
        const c = cell(src, dst);
        return c ? `<td class="v v-${esc(c.verdict)}" title="${esc(`${c.id}: ${c.detail ?? c.verdict}`)}">${esc(c.verdict)}</td>` : '<td class="v v-unknown" title="no result">–</td>';
      });
      return `<tr><th>${esc(src)}</th>${tds.join('')}</tr>`;
    });
    return `<h3>${esc(scenario)}</h3><table class="matrix"><thead><tr><th>source \\ destination</th>${m.destinations.map((d) => `<th>${esc(d)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
  });
  return `<section id="matrix"><h2>Migration matrix</h2>${grids.join('')}</section>`;
}

function layoutDiffHtml(f: Finding & { diff: unknown }): string {
  const d = f.diff as LayoutDiff;
  const side = (m?: MemberRef) => (m ? [String(m.offset), String(m.size), code(m.name), esc(m.type)] : ['', '', '–', '']);
  const rows = d.members.map((m) => [...side(m.old), esc(m.class + (m.padding ? ' (padding)' : '')), ...side(m.new)]);
  const changed = d.members.filter((m) => m.class !== 'unchanged').length;
  const dir = (label: string, x: LayoutDiff['newReadsOld']) =>
    `<li>${esc(label)}: ${esc(x.verdict)}${x.corrupted.length ? `<ul>${x.corrupted.map((c) => `<li>${code(c.member)}: ${esc(c.reason)}</li>`).join('')}</ul>` : ''}</li>`;
  return `<details class="layout-diff" open><summary>${code(f.id)} ${badge(f.verdict)} ${esc(d.old.name)} (${esc(d.old.revision ?? '-')}) → ${esc(d.new.name)} (${esc(d.new.revision ?? '-')}): ${esc(f.detail ?? d.finding)}, ${changed} member(s) changed</summary>
<ul>${dir(`can ${d.new.name} read what ${d.old.name} wrote`, d.newReadsOld)}${dir(`can ${d.old.name} read what ${d.new.name} wrote`, d.oldReadsNew)}</ul>
${table([`${d.old.name} offset`, 'size', 'member', 'type', 'class', `${d.new.name} offset`, 'size', 'member', 'type'], rows, (i) => `c-${d.members[i]!.class}`)}</details>`;
}

function waiversHtml(r: Report): string {
  if (!r.waivers?.length) return '';
  const warnings = new Set(unmatchedWaiverWarnings(r.waivers));
  const rows = r.waivers.map((w) => [code(w.id), esc(w.reason), esc(w.expires ?? ''), w.matched.length ? w.matched.map(code).join(', ') : '<span class="bad">matched nothing</span>']);
  return `<section id="waivers"><h2>Waivers</h2>${table(['id', 'reason', 'expires', 'matched'], rows)}${warnings.size ? `<p class="bad">${warnings.size} waiver(s) matched nothing</p>` : ''}</section>`;
}
