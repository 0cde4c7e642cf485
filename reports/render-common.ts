// What the markdown and HTML renderers share: the run line, verdict labels, record shapes.
import type { DiffBytes } from './hexdump.js';
import type { Report } from './report.js';

export interface CounterexampleRecord {
  seed: number;
  path: string;
  replay: string;
  counterexample: {
    summary: string;
    input: string;
    diff: { field: string; offset: number; expected: string; actual: string; bytes?: DiffBytes }[];
  };
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
