// `check` and `replay`: run the suites against a target through vitest (its runner, JUnit reporter
// and sharding), collect every property's outcome, and write report.json and junit.xml.
import { mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { ALL_PROPERTIES, SUITES, findProperty } from '../suites/registry.js';
import type { RunParams } from '../suites/vitest/register.js';
import { OutcomeCollector } from '../reports/collector.js';
import { formatOutcome } from '../reports/format.js';
import { buildReport, propertyRecord, writeJsonAtomically, type PropertyRecord } from '../reports/report.js';
import { packageRoot } from '../reports/schemas.js';
import { openTarget, targetSpecProblem } from '../targets/resolve.js';
import { TargetStartError } from '../targets/exec.js';
import { NotAKernelTree } from '../targets/linux/generate.js';
import type { TargetIdentityRecord } from '../reports/report.js';
import { DEFAULT_PROFILE, findProfile } from '../model/profiles.js';
import { EXIT, UsageError } from './errors.js';
import { intOption, parse } from './options.js';

const common = {
  target: { type: 'string', default: 'reference' },
  profile: { type: 'string', default: DEFAULT_PROFILE },
  report: { type: 'string', default: 'reports/latest' },
  seed: { type: 'string' },
  'target-timeout': { type: 'string' },
  'target-shell': { type: 'boolean', default: false },
  'target-package': { type: 'string' },
} as const;

type CommonValues = { 'target-timeout'?: string | undefined; 'target-shell'?: boolean | undefined; 'target-package'?: string | undefined };

/** --target-timeout: seconds by default, or with an ms/s suffix (10, 2.5s, 500ms). */
export function durationMs(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v);
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms >= 1 && ms <= 3_600_000)) throw new UsageError(`--target-timeout must be a duration between 1ms and 3600s (e.g. 10, 2.5s, 500ms), got "${v}"`);
  return Math.round(ms);
}

function targetOptions(values: CommonValues): Pick<RunParams, 'targetTimeoutMs' | 'targetShell' | 'targetPackage'> {
  const timeout = durationMs(values['target-timeout']);
  return {
    ...(timeout !== undefined ? { targetTimeoutMs: timeout } : {}),
    ...(values['target-shell'] ? { targetShell: true } : {}),
    ...(values['target-package'] !== undefined ? { targetPackage: values['target-package'] } : {}),
  };
}

export async function checkCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...common, runs: { type: 'string' } });
  const runs = intOption('runs', values.runs, 1, 10_000_000);
  const seed = intOption('seed', values.seed, -(2 ** 31), 2 ** 31 - 1) ?? (Math.random() * 2 ** 31) | 0;
  return run({ target: values.target, profile: values.profile, seed, ...(runs !== undefined ? { runs } : {}), ...targetOptions(values) }, values.report);
}

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...common, path: { type: 'string' } }, 1);
  const id = positionals[0];
  if (!id) throw new UsageError('replay needs a property id (see report.json)');
  if (!findProperty(id)) throw new UsageError(`unknown property "${id}" (known: ${ALL_PROPERTIES.map((p) => p.id).join(', ')})`);
  const seed = intOption('seed', values.seed, -(2 ** 31), 2 ** 31 - 1);
  if (seed === undefined || values.path === undefined) throw new UsageError('replay needs --seed and --path (from the failure report)');
  if (!/^\d+(:\d+)*$/.test(values.path)) throw new UsageError(`--path must look like 12:0:3, got "${values.path}"`);
  return run({ target: values.target, profile: values.profile, seed, only: id, path: values.path, ...targetOptions(values) }, values.report);
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

async function run(params: RunParams, reportDir: string): Promise<number> {
  const problem = targetSpecProblem(params);
  if (problem) throw new UsageError(problem);
  const identity = await probeTarget(params);
  // a process target claims its profile; properties and replay commands go by that claim
  if (identity?.claimedProfile !== undefined && findProfile(identity.claimedProfile)) params = { ...params, profile: identity.claimedProfile };
  const dir = resolve(reportDir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`cannot create report directory ${dir}: ${(e as Error).message}`);
  }
  const selected = params.only ? SUITES.filter((s) => s.properties.some((p) => p.id === params.only)) : SUITES;
  const root = packageRoot();
  const suitesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'suites', 'vitest');
  const include = selected.map((s) => `${relative(root, suitesDir)}/${s.name}.suite.{js,ts}`);
  const startedAt = new Date();
  const collector = new OutcomeCollector((c) => console.log(formatOutcome(c.outcome, params).join('\n')));
  const { startVitest } = await import('vitest/node');
  const vitest = await startVitest(
    'test',
    [],
    {
      root,
      config: false,
      watch: false,
      include,
      reporters: [collector, ['junit', { outputFile: join(dir, 'junit.xml'), suiteName: 'nvmx-conformance' }]],
      provide: { nvmxRun: params },
      testTimeout: 0,
    },
    { cacheDir: join(tmpdir(), 'nvmx-conformance-vite'), logLevel: 'silent' },
  );
  await vitest?.close();
  const wanted = params.only ? ALL_PROPERTIES.filter((p) => p.id === params.only) : ALL_PROPERTIES;
  const records: PropertyRecord[] = [];
  for (const def of wanted) {
    const c = collector.outcomes.get(def.id);
    if (c) records.push(propertyRecord(def, c.outcome, params, c.durationMs));
  }
  for (const e of collector.moduleErrors) console.error(`nvmx-conformance: suite error: ${e}`);
  const report = buildReport({ run: params, ...(identity ? { targetIdentity: identity } : {}), records, expected: wanted.length, startedAt, finishedAt: new Date() });
  writeJsonAtomically(join(dir, 'report.json'), 'report', report);
  const s = report.summary;
  console.log(`verdict: ${report.verdict} (${s.pass} pass, ${s.fail} fail, ${s.unsupported} unsupported, ${s.error} error; seed ${params.seed})`);
  console.log(`report: ${relative(process.cwd(), join(dir, 'report.json')) || 'report.json'}, ${relative(process.cwd(), join(dir, 'junit.xml'))}`);
  if (s.fail) return EXIT.failure;
  if (s.error || !report.run.complete) return EXIT.target;
  return EXIT.ok;
}
