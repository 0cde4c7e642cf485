// `check` and `replay`: run the suites against a target through vitest (cli/suite-run.ts), read the
// golden corpus through it, then write report.json, report.md, report.html and junit.xml (reports/)
// into the locked report directory as one set (cli/report-dir.ts).
import { join, relative } from 'node:path';
import { ALL_PROPERTIES, SUITES, findProperty, selectedBy, type Suite } from '../suites/registry.js';
import type { RunParams } from '../suites/vitest/register.js';
import { formatOutcome } from '../harness/format.js';
import { buildReport, propertyRecord, type GoldenReportSection, type PropertyRecord, type Sections, type Shard } from '../reports/report.js';
import { layoutDiffFinding } from '../reports/sections.js';
import { exitCodeFor } from '../reports/verdict.js';
import { loadWaivers, unmatchedWaiverWarnings, type WaiverEntry } from '../reports/waivers.js';
import { REPORT_FILES } from '../reports/write.js';
import { goldenSummary } from '../reports/render-common.js';
import type { ReportSet } from '../reports/report-set.js';
import { diffLayouts } from '../model/layout-diff.js';
import { openTarget, targetSpecProblem } from '../targets/resolve.js';
import { TargetStartError } from '../targets/exec.js';
import { NotAKernelTree } from '../targets/linux/generate.js';
import { startKvmRun, type KvmRun } from '../targets/kvm/target.js';
import { KvmSetupError } from '../targets/kvm/image.js';
import { bochsVersion } from '../targets/kvm/machine.js';
import type { TargetIdentityRecord } from '../reports/report.js';
import { DEFAULT_PROFILE, findProfile } from '../model/profiles.js';
import { goldenSection } from '../golden/report-section.js';
import { EXIT, UsageError } from '../base/errors.js';
import { loadLayout } from './load-layout.js';
import { durationMs, intValue, parse, type CommonValues } from './options.js';
import { Progress } from './progress.js';
import { commitReport, openReportSet } from './report-dir.js';
import { RunStop } from './stop.js';
import { runSuites } from './suite-run.js';
import { checkSpec, replaySpec } from './spec.js';

function targetOptions(values: CommonValues): Pick<RunParams, 'targetTimeoutMs' | 'targetShell' | 'targetPackage'> {
  const timeout = durationMs(values['target-timeout']);
  return {
    ...(timeout !== undefined ? { targetTimeoutMs: timeout } : {}),
    ...(values['target-shell'] ? { targetShell: true } : {}),
    ...(values['target-package'] !== undefined ? { targetPackage: values['target-package'] } : {}),
  };
}

/**
 * The golden corpus read through the target; a target that cannot start leaves the section out (its
 * properties already say why). A stop (signal, time budget) ends it: the target is closed at once,
 * so a request in flight ends too, and there is no section.
 */
async function goldenOn(params: RunParams, signal: AbortSignal): Promise<Awaited<ReturnType<typeof goldenSection>>> {
  if (signal.aborted) return undefined;
  let target: Awaited<ReturnType<typeof openTarget>>;
  try {
    target = await openTarget(params);
  } catch {
    return undefined;
  }
  const onAbort = () => void target.close();
  signal.addEventListener('abort', onAbort);
  try {
    return await goldenSection(target, undefined, signal);
  } finally {
    signal.removeEventListener('abort', onAbort);
    await target.close();
  }
}

/**
 * Opens a process target once before the run: a linux: harness gets built here rather than in
 * every vitest worker, a command that cannot be started is bad input, and the report records what
 * the target said it is. A target that starts but fails its hello is left to the run (error verdicts).
 */
async function probeTarget(params: RunParams): Promise<TargetIdentityRecord | undefined> {
  if (params.target === 'reference') return params.targetPackage !== undefined ? { package: params.targetPackage } : undefined;
  let target;
  try {
    target = await openTarget(params);
  } catch (e) {
    if (e instanceof NotAKernelTree) throw new UsageError(e.message);
    if (e instanceof TargetStartError && /^cannot run target: spawn .* ENOENT/.test(e.message)) throw new UsageError(`${params.target}: ${e.message}`);
    return params.targetPackage !== undefined ? { package: params.targetPackage } : undefined;
  }
  await target.close();
  const { name, version, profile } = target.identity;
  return { name, version, ...(profile !== undefined ? { claimedProfile: profile } : {}), ...(params.targetPackage !== undefined ? { package: params.targetPackage } : {}) };
}

interface CheckExtras {
  shard?: Shard;
  timeBudgetSeconds?: number;
  waivers?: WaiverEntry[];
  layoutBaselines?: string[];
}

export async function checkCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, checkSpec);
  for (const p of values.only ?? []) if (!ALL_PROPERTIES.some((d) => selectedBy([p])(d.id))) throw new UsageError(`--only ${p} matches no property (known: ${ALL_PROPERTIES.map((d) => d.id).join(', ')})`);
  const runs = intValue(checkSpec, 'runs', values.runs);
  const seed = intValue(checkSpec, 'seed', values.seed) ?? (Math.random() * 2 ** 31) | 0;
  const timeBudgetSeconds = intValue(checkSpec, 'time-budget', values['time-budget']);
  const extras: CheckExtras = {
    ...(values.shard !== undefined ? { shard: parseShard(values.shard) } : {}),
    ...(timeBudgetSeconds !== undefined ? { timeBudgetSeconds } : {}),
    ...(values.waivers !== undefined ? { waivers: waiversOrThrow(values.waivers) } : {}),
    ...(values['layout-diff'] ? { layoutBaselines: values['layout-diff'] } : {}),
  };
  return run({ target: values.target, profile: values.profile, seed, ...(runs !== undefined ? { runs } : {}), ...(values.only ? { only: values.only } : {}), ...targetOptions(values) }, values.report, extras);
}

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, replaySpec);
  const id = positionals[0];
  if (!id) throw new UsageError('replay needs a property id (see report.json)');
  const def = findProperty(id);
  if (!def) throw new UsageError(`unknown property "${id}" (known: ${ALL_PROPERTIES.map((p) => p.id).join(', ')})`);
  const seed = intValue(replaySpec, 'seed', values.seed)!;
  if (!/^\d+(:\d+)*$/.test(values.path)) throw new UsageError(`--path must look like 12:0:3, got "${values.path}"`);
  const replayPath = values['replay-path'];
  if (def.modelBased && replayPath === undefined) throw new UsageError(`replay ${id} also needs --replay-path R: a model-based property replays its command sequence from it (the failure's replay command has it)`);
  return run({ target: values.target, profile: values.profile, seed, only: [id], path: values.path, ...(replayPath !== undefined ? { replayPath } : {}), ...targetOptions(values) }, values.report, {});
}

function parseShard(spec: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(spec);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || index < 1 || count < 1 || index > count) throw new UsageError(`--shard must be i/N with 1 <= i <= N, got "${spec}"`);
  // vitest shards files, and each suite is one file: more shards than suites leaves one empty
  if (count > SUITES.length) throw new UsageError(`--shard count ${count} is more than the number of suites (${SUITES.length})`);
  return { index, count };
}

function waiversOrThrow(path: string): WaiverEntry[] {
  const r = loadWaivers(path);
  if ('problem' in r) throw new UsageError(r.problem);
  return r.waivers;
}

/** kvm: one machine for the whole run, booting while the run starts; its broker goes to every worker. */
async function startKvm(params: RunParams): Promise<KvmRun | undefined> {
  if (!params.target.startsWith('kvm:')) return undefined;
  try {
    return await startKvmRun(params.target.slice(4), { ...(params.targetTimeoutMs !== undefined ? { timeoutMs: params.targetTimeoutMs } : {}), log: (l) => console.error(l) });
  } catch (e) {
    if (e instanceof KvmSetupError) throw new UsageError(e.message);
    throw e;
  }
}

async function run(params: RunParams, reportDir: string, extras: CheckExtras): Promise<number> {
  const problem = targetSpecProblem(params);
  if (problem) throw new UsageError(problem);
  // locked before anything slow starts: a second run into the directory is refused at once
  const set = openReportSet(reportDir);
  const stop = new RunStop();
  const unhandle = stop.handleSignals();
  try {
    const kvm = await startKvm(params);
    // the budget covers the run itself: the suites and the golden section
    const unbudget = stop.budget(extras.timeBudgetSeconds);
    try {
      return await runWith(kvm ? { ...params, kvm: kvm.link } : params, set, extras, kvm, stop);
    } finally {
      unbudget();
      await kvm?.close();
    }
  } finally {
    unhandle();
    set.release(); // after a commit, nothing left to do; else the previous set stays as it was
  }
}

/** What a kvm: run tested, for the report: the kernel, the modules, Bochs and its CPU model. */
function kvmIdentity(kvm: KvmRun, params: RunParams): TargetIdentityRecord {
  const i = kvm.image;
  const pkg = `${i.kernelSource}; modules: ${i.modulesSource}; ${bochsVersion()}`;
  return { name: 'kvm', version: i.release, claimedProfile: i.profile, package: params.targetPackage ?? pkg };
}

/**
 * The golden section is the per-blob view of the golden properties: the run (or the shard) that runs
 * the golden suite has it, with or without --only, as long as a golden property is selected; a replay
 * never does. One shard only, so that a merge finds each blob once.
 */
function goldenWanted(params: RunParams, suites: readonly Suite[]): boolean {
  const golden = suites.find((s) => s.name === 'golden')?.properties ?? [];
  return params.path === undefined && golden.some((p) => selectedBy(params.only)(p.id));
}

/** The blobs by verdict (waivers applied), then each failing blob and the first errors. */
function goldenLines(g: GoldenReportSection): string[] {
  const lines = [`golden: ${goldenSummary(g)}`];
  for (const b of g.blobs) if (b.verdict === 'fail') lines.push(`    FAIL ${b.id}: ${b.detail}`);
  const errors = g.blobs.filter((b) => b.verdict === 'error');
  for (const b of errors.slice(0, 3)) lines.push(`    ERROR ${b.id}: ${b.detail}`);
  if (errors.length > 3) lines.push(`    … ${errors.length - 3} more golden errors in report.json`);
  return lines;
}

async function runWith(params: RunParams, set: ReportSet, extras: CheckExtras, kvm: KvmRun | undefined, stop: RunStop): Promise<number> {
  // layout baselines are loaded before the run, so a bad one fails fast
  const baselines = await Promise.all((extras.layoutBaselines ?? []).map((b) => loadLayout(b, 'vmcs12')));
  const identity = kvm ? kvmIdentity(kvm, params) : await probeTarget(params);
  // a process target claims its profile; properties and replay commands go by that claim
  if (identity?.claimedProfile !== undefined && findProfile(identity.claimedProfile)) params = { ...params, profile: identity.claimedProfile };
  const dir = set.dir;
  const startedAt = new Date();
  const selected = selectedBy(params.only);
  const waived = new Map((extras.waivers ?? []).map((w) => [w.id, w]));
  let progress: Progress | undefined;
  const suiteRun = await runSuites({
    params,
    shard: extras.shard,
    stop,
    onPlan: (suites) => {
      const n = suites.reduce((k, s) => k + s.properties.length, 0);
      const shard = extras.shard ? `, shard ${extras.shard.index}/${extras.shard.count}` : '';
      const m = suites.reduce((k, s) => k + s.properties.filter((p) => selected(p.id)).length, 0);
      if (params.path === undefined) console.log(`running ${params.only ? `${m} of ${n}` : n} properties from ${suites.length} suite(s)${shard}, seed ${params.seed}`);
      progress = new Progress(m);
    },
    events: {
      onStart: (id) => progress?.start(id),
      onProperty: ({ outcome }) => {
        const lines = formatOutcome(outcome, params);
        if (outcome.verdict === 'fail' && waived.has(outcome.id)) lines.push(`    waived: ${waived.get(outcome.id)!.reason}`);
        progress!.finish(outcome.id, lines);
      },
    },
  });
  progress?.stop();
  const wanted = suiteRun.suites.flatMap((s) => s.properties).filter((p) => selected(p.id));
  const records: PropertyRecord[] = [];
  for (const def of wanted) {
    const c = suiteRun.collector.outcomes.get(def.id);
    if (c) records.push(propertyRecord(def, c.outcome, params, c.durationMs));
  }
  for (const e of suiteRun.collector.moduleErrors) console.error(`nvmx-conformance: suite error: ${e}`);
  // the target's own layout equals its profile's (layout.matches-profile checks that)
  const current = baselines.length ? await loadLayout(params.profile, 'vmcs12') : null;
  // the golden corpus, read back through the target: a finding per blob; a stop (signal, time
  // budget) before or during it leaves it out, and the report says the run stopped
  const golden = goldenWanted(params, suiteRun.suites) && !stop.reason ? await goldenOn(params, stop.signal) : undefined;
  const sections: Sections = {
    ...(current ? { layoutDiffs: baselines.map((b) => layoutDiffFinding(diffLayouts(b, current))) } : {}),
    ...(golden ? { golden } : {}),
  };
  const report = buildReport({
    run: params,
    targetIdentity: { ...suiteRun.collector.target, ...identity },
    records,
    expected: wanted.map((p) => p.id),
    startedAt,
    finishedAt: new Date(),
    stopped: stop.reason,
    shard: extras.shard,
    sections,
    waivers: extras.waivers,
  });
  if (report.sections?.golden) for (const l of goldenLines(report.sections.golden)) console.log(l);
  commitReport(set, report);
  for (const w of unmatchedWaiverWarnings(report.waivers)) console.error(`nvmx-conformance: warning: ${w}`);
  const s = report.summary;
  if (report.run.stopped) console.log(`stopped: ${report.run.stopped === 'interrupted' ? 'interrupted by a signal' : 'time budget reached'}; the report is marked incomplete`);
  console.log(`verdict: ${report.verdict} (${s.pass} pass, ${s['expected-fail']} expected-fail, ${s.fail} fail, ${s.waived} waived, ${s.unsupported} unsupported, ${s.error} error; seed ${params.seed}): ${report.verdictReason}`);
  console.log(`report: ${Object.values(REPORT_FILES).map((f) => relative(process.cwd(), join(dir, f)) || f).join(', ')}`);
  return report.run.stopped === 'interrupted' ? EXIT.interrupted : exitCodeFor(report);
}
