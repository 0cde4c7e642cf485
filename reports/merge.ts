// `report merge`: shard reports of one run -> one report. Every property must have run exactly
// once: a property in two shards is refused (bad input); one in no shard (a missing shard, an
// interrupted one) is listed in run.missing and leaves the verdict `unknown`.
import type { Report, ReportBody, Sections, Shard, WaiverResult } from './report.js';
import { finalize } from './report.js';
import { REPORT_FORMAT } from './report-types.js';
import { allFindings } from './verdict.js';

export interface MergeInput {
  /** where the report came from, for messages */
  source: string;
  report: Report;
}

type Result = { report: Report } | { problem: string };

export function mergeReports(inputs: readonly MergeInput[], expectedIds: readonly string[]): Result {
  const first = inputs[0];
  if (!first) return { problem: 'report merge needs at least one report directory' };
  for (const i of inputs.slice(1)) {
    const problem = sameRunProblem(first, i);
    if (problem) return { problem };
  }
  const shards = shardsOf(inputs);
  if ('problem' in shards) return shards;
  const owner = new Map<string, string>();
  for (const i of inputs)
    for (const f of allFindings(i.report)) {
      const other = owner.get(f.id);
      if (other) return { problem: `"${f.id}" ran more than once: in ${other} and in ${i.source}` };
      owner.set(f.id, i.source);
    }
  const reports = inputs.map((i) => i.report);
  const order = new Map(expectedIds.map((id, n) => [id, n]));
  const properties = reports.flatMap((r) => r.properties).sort((a, b) => (order.get(a.id) ?? order.size) - (order.get(b.id) ?? order.size));
  const missing = expectedIds.filter((id) => !owner.has(id));
  const runs = reports.map((r) => r.run);
  const stopped = runs.find((r) => r.stopped)?.stopped;
  const target = reports.find((r) => r.target.name)?.target ?? first.report.target;
  const sections = mergeSections(reports.map((r) => r.sections));
  const waivers = mergeWaivers(reports.map((r) => r.waivers));
  const body: ReportBody = {
    format: REPORT_FORMAT,
    tool: first.report.tool,
    target,
    run: {
      seed: first.report.run.seed,
      seeds: unique(runs.flatMap((r) => r.seeds)),
      profiles: unique(runs.flatMap((r) => r.profiles)),
      runs: first.report.run.runs,
      startedAt: runs.map((r) => r.startedAt).sort()[0]!,
      finishedAt: runs.map((r) => r.finishedAt).sort().at(-1)!,
      complete: runs.every((r) => r.complete) && missing.length === 0,
      host: unique(runs.map((r) => r.host ?? '')).filter(Boolean).join(', '),
      node: unique(runs.map((r) => r.node ?? '')).filter(Boolean).join(', '),
      ...(stopped ? { stopped } : {}),
      ...(first.report.run.only ? { only: first.report.run.only } : {}),
      mergedShards: shards.list,
      ...(missing.length ? { missing } : {}),
    },
    properties,
    ...(waivers ? { waivers } : {}),
    ...(sections ? { sections } : {}),
  };
  return { report: finalize(body) };
}

function sameRunProblem(a: MergeInput, b: MergeInput): string | null {
  const facts: [string, (r: Report) => unknown][] = [
    ['tool version', (r) => r.tool.version],
    ['target', (r) => r.target.spec],
    ['profile', (r) => r.target.profile],
    ['runs', (r) => r.run.runs],
    ['--only', (r) => (r.run.only ?? []).join(' ')],
  ];
  for (const [what, get] of facts)
    if (get(a.report) !== get(b.report)) return `${a.source} and ${b.source} are not shards of one run: ${what} differs (${String(get(a.report))} vs ${String(get(b.report))})`;
  return null;
}

function shardsOf(inputs: readonly MergeInput[]): { list: Shard[] } | { problem: string } {
  const list: Shard[] = [];
  const seen = new Map<number, string>();
  for (const i of inputs) {
    const own = i.report.run.shard ? [i.report.run.shard] : (i.report.run.mergedShards ?? []);
    if (!own.length) return { problem: `${i.source} is not a shard report (run it with check --shard i/N)` };
    for (const s of own) {
      if (s.count !== (list[0] ?? s).count) return { problem: `${i.source} is shard ${s.index}/${s.count}, but others are of ${list[0]!.count}` };
      if (seen.has(s.index)) return { problem: `shard ${s.index}/${s.count} appears twice: ${seen.get(s.index)} and ${i.source}` };
      seen.set(s.index, i.source);
      list.push(s);
    }
  }
  return { list: list.sort((a, b) => a.index - b.index) };
}

function mergeSections(all: readonly (Sections | undefined)[]): Sections | undefined {
  const present = all.filter((s): s is Sections => s !== undefined);
  if (!present.length) return undefined;
  const layoutDiffs = present.flatMap((s) => s.layoutDiffs ?? []);
  // only the shard that ran the golden suite reads the corpus (a second copy was refused above as
  // findings that ran twice)
  const golden = present.find((s) => s.golden)?.golden;
  return { ...(layoutDiffs.length ? { layoutDiffs } : {}), ...(golden ? { golden } : {}) };
}

/** One entry per waiver id; it matched what it matched in any shard. */
function mergeWaivers(all: readonly (WaiverResult[] | undefined)[]): WaiverResult[] | undefined {
  const present = all.filter((w): w is WaiverResult[] => w !== undefined);
  if (!present.length) return undefined;
  const byId = new Map<string, WaiverResult>();
  for (const w of present.flat()) {
    const had = byId.get(w.id);
    byId.set(w.id, had ? { ...had, matched: [...had.matched, ...w.matched] } : { ...w, matched: [...w.matched] });
  }
  return [...byId.values()];
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}
