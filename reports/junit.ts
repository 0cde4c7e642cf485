// junit.xml, written from report.json's content (never from the test runner), so the two always
// agree: one <testcase> per finding the report holds (properties, then section findings), none for
// a property that did not run; `failures` counts `fail`, `errors` counts `error` (an interrupted
// property is one), `skipped` counts `unsupported` and `waived`. expected-fail is a pass (the
// known bug showed, as it should) with the reason in <system-out>.
import { formatOutcome } from '../harness/format.js';
import type { Finding, Report } from './report.js';
import type { PropertyOutcome } from '../harness/property.js';

// XML 1.0 allows tab, newline, CR and everything from U+0020 on, except lone surrogates and U+FFFE/U+FFFF
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const esc = (s: string): string =>
  s
    .replace(NOT_XML, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\n/g, '&#10;');
const text = (s: string): string => s.replace(NOT_XML, '\ufffd').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const firstLine = (s: string): string => s.split('\n')[0]!;
const seconds = (ms: number | undefined): string => ((ms ?? 0) / 1000).toFixed(3);

interface Counts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  time: number;
}

const count = (findings: readonly Finding[]): Counts => ({
  tests: findings.length,
  failures: findings.filter((f) => f.verdict === 'fail').length,
  errors: findings.filter((f) => f.verdict === 'error').length,
  skipped: findings.filter((f) => f.verdict === 'unsupported' || f.verdict === 'waived').length,
  time: findings.reduce((t, f) => t + (typeof f.durationMs === 'number' ? f.durationMs : 0), 0),
});

const countAttrs = (c: Counts): string => `tests="${c.tests}" failures="${c.failures}" errors="${c.errors}" skipped="${c.skipped}" time="${seconds(c.time)}"`;

/** The text a failure prints on the terminal (seed, path, field diff, replay command), from its record. */
function details(f: Finding, report: Report): string {
  if (typeof f.seed !== 'number' || typeof f.counterexample !== 'object') return typeof f.reason === 'string' ? f.reason : '';
  return formatOutcome({ ...f, verdict: 'fail' } as unknown as PropertyOutcome, { target: report.target.spec, profile: report.target.profile }).join('\n');
}

function testcase(f: Finding, classname: string, report: Report): string {
  const reason = typeof f.reason === 'string' ? f.reason : typeof f.detail === 'string' ? f.detail : '';
  const props = [
    ['verdict', f.verdict],
    ...(typeof f.seed === 'number' ? [['seed', String(f.seed)]] : []),
    ...(typeof f.cases === 'number' ? [['cases', String(f.cases)]] : []),
  ];
  const body = [`      <properties>${props.map(([n, v]) => `<property name="${esc(n!)}" value="${esc(v!)}"/>`).join('')}</properties>`];
  switch (f.verdict) {
    case 'fail': {
      const d = details(f, report);
      body.push(`      <failure message="${esc(firstLine(typeof f.counterexample === 'object' ? String((f.counterexample as { summary?: unknown }).summary ?? reason) : reason))}" type="fail">${text(d)}</failure>`);
      break;
    }
    case 'error': {
      const stderr = Array.isArray(f.stderr) ? (f.stderr as string[]).map((l) => `stderr: ${l}`) : [];
      body.push(`      <error message="${esc(firstLine(reason))}" type="error">${text([reason, ...stderr].join('\n'))}</error>`);
      break;
    }
    case 'unsupported':
      body.push(`      <skipped message="${esc(`unsupported: ${firstLine(reason)}`)}"/>`);
      break;
    case 'waived':
      body.push(`      <skipped message="${esc(`waived failure: ${f.waiver?.reason ?? ''}`)}"/>`);
      body.push(`      <system-out>${text(details(f, report))}</system-out>`);
      break;
    case 'expected-fail':
      body.push(`      <system-out>${text(`expected failure (a known bug of the profile, shown as expected): ${reason}`)}</system-out>`);
      break;
    case 'pass':
      break;
  }
  const time = typeof f.durationMs === 'number' ? f.durationMs : 0;
  return `    <testcase classname="${esc(classname)}" name="${esc(f.id)}" time="${seconds(time)}">\n${body.join('\n')}\n    </testcase>`;
}

/**
 * junit.xml for a report. `suiteOf` names the suite of a property id (one <testsuite> each, in the
 * report's order); section findings go into one <testsuite> per section. Every <testsuite> carries
 * the run's target, profile, seed and whether the run was complete.
 */
export function renderJunit(report: Report, suiteOf: (id: string) => string | undefined): string {
  const groups = new Map<string, Finding[]>();
  const add = (name: string, f: Finding) => (groups.get(name) ?? groups.set(name, []).get(name)!).push(f);
  for (const p of report.properties) add(suiteOf(p.id) ?? 'other', p);
  const s = report.sections ?? {};
  for (const [name, list] of [
    ['sections.layout-diffs', s.layoutDiffs],
    ['sections.golden', s.golden?.blobs],
  ] as const)
    for (const f of list ?? []) add(name, f);
  const run = report.run;
  const runProps = [
    ['target', report.target.spec],
    ['profile', report.target.profile],
    ['seed', String(run.seed)],
    ['complete', String(run.complete)],
    ...(run.stopped ? [['stopped', run.stopped]] : []),
    ...(run.missing?.length ? [['missing', run.missing.join(' ')]] : []),
    ['verdict', report.verdict],
  ];
  // a run stopped before any property ended still says what ran and that it is incomplete
  if (!groups.size) groups.set('nvmx-conformance', []);
  const suites = [...groups].map(([name, findings]) =>
    [
      `  <testsuite name="${esc(name)}" timestamp="${esc(run.startedAt)}" hostname="${esc(run.host)}" ${countAttrs(count(findings))}>`,
      `    <properties>${runProps.map(([n, v]) => `<property name="${esc(n!)}" value="${esc(v!)}"/>`).join('')}</properties>`,
      ...findings.map((f) => testcase(f, name, report)),
      '  </testsuite>',
    ].join('\n'),
  );
  const all = count([...groups.values()].flat());
  return `<?xml version="1.0" encoding="UTF-8" ?>\n<testsuites name="nvmx-conformance" ${countAttrs(all)}>\n${suites.join('\n')}\n</testsuites>\n`;
}
