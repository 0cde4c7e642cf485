// What the markdown and HTML renderers share: the run line, verdict labels, record shapes, the
// order of verdicts in a summary, and which findings are the failures a reader looks at first.
import type { InputPart } from '../harness/input-view.js';
import type { DiffBytes } from './hexdump.js';
import type { FindingVerdict, GoldenReportSection, PropertyRecord, Report } from './report.js';

export interface CounterexampleRecord {
  seed: number;
  path: string;
  replay: string;
  shrinks?: number;
  cases?: number;
  counterexample: {
    summary: string;
    input: string;
    view?: InputPart[];
    diff: { field: string; offset: number; expected: string; actual: string; bytes?: DiffBytes }[];
  };
}

/** Every verdict, in the order a summary lists them. */
export const VERDICTS: readonly FindingVerdict[] = ['pass', 'expected-fail', 'fail', 'waived', 'unsupported', 'error'];

/** Properties whose counterexample is a failure to act on (waived ones too: accepted for now, not fixed). */
export const failedProperties = (r: Report): (PropertyRecord & CounterexampleRecord)[] =>
  r.properties.filter((p) => (p.verdict === 'fail' || p.verdict === 'waived') && p.counterexample) as unknown as (PropertyRecord & CounterexampleRecord)[];

/** The anchor of a failure in report.html. */
export const failureAnchor = (id: string): string => `fail-${id}`;

/** The golden section in one line (terminal and report.md): blobs by verdict, then those not judged. */
export function goldenSummary(g: GoldenReportSection): string {
  const n = (v: FindingVerdict) => g.blobs.filter((b) => b.verdict === v).length;
  const rare = (['waived', 'unsupported', 'error'] as const).filter((v) => n(v)).map((v) => `, ${n(v)} ${v}`);
  return `${g.blobs.length + g.notApplicable.length} blobs on ${g.profile}: ${n('pass')} pass, ${n('fail')} fail${rare.join('')}, ${g.notApplicable.length} not applicable`;
}

export const verdictLabel = (v: Report['verdict']): string => ({ compatible: '✅ compatible', incompatible: '❌ incompatible', unknown: '⚠️ unknown' })[v];

export function runLine(r: Report): string {
  const t = r.target;
  const run = r.run;
  const shard = run.shard ? ` · shard ${run.shard.index}/${run.shard.count}` : run.mergedShards ? ` · merged from ${run.mergedShards.length} shards` : '';
  const state = run.complete ? 'complete' : `INCOMPLETE${run.stopped ? ` (${run.stopped})` : ''}`;
  return (
    `target \`${t.spec}\`${t.name ? ` (${[t.name, t.version].filter(Boolean).join(' ')})` : ''} · profile ${run.profiles.join(', ')}` +
    ` · seed ${run.seeds.join(', ')} · ${run.runs ?? 'default'} runs${shard} · ${state}`
  );
}
