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
import { goldenSection } from '../golden/report-section.js';
import { DEFAULT_PROFILE } from '../model/profiles.js';
import { EXIT, UsageError } from './errors.js';
import { intOption, parse } from './options.js';

const common = {
  target: { type: 'string', default: 'reference' },
  profile: { type: 'string', default: DEFAULT_PROFILE },
  report: { type: 'string', default: 'reports/latest' },
  seed: { type: 'string' },
} as const;

export async function checkCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...common, runs: { type: 'string' } });
  const runs = intOption('runs', values.runs, 1, 10_000_000);
  const seed = intOption('seed', values.seed, -(2 ** 31), 2 ** 31 - 1) ?? (Math.random() * 2 ** 31) | 0;
  return run({ target: values.target, profile: values.profile, seed, ...(runs !== undefined ? { runs } : {}) }, values.report);
}

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...common, path: { type: 'string' }, 'replay-path': { type: 'string' } }, 1);
  const id = positionals[0];
  if (!id) throw new UsageError('replay needs a property id (see report.json)');
  if (!findProperty(id)) throw new UsageError(`unknown property "${id}" (known: ${ALL_PROPERTIES.map((p) => p.id).join(', ')})`);
  const seed = intOption('seed', values.seed, -(2 ** 31), 2 ** 31 - 1);
  if (seed === undefined || values.path === undefined) throw new UsageError('replay needs --seed and --path (from the failure report)');
  if (!/^\d+(:\d+)*$/.test(values.path)) throw new UsageError(`--path must look like 12:0:3, got "${values.path}"`);
  const replayPath = values['replay-path'];
  return run({ target: values.target, profile: values.profile, seed, only: id, path: values.path, ...(replayPath !== undefined ? { replayPath } : {}) }, values.report);
}

async function run(params: RunParams, reportDir: string): Promise<number> {
  const problem = targetSpecProblem(params);
  if (problem) throw new UsageError(problem);
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
  const report = buildReport({ run: params, records, expected: wanted.length, startedAt, finishedAt: new Date() });
  const golden = params.only ? undefined : await goldenSection(await openTarget(params));
  if (golden) console.log(`golden: ${golden.blobs.length} blobs on ${golden.profile}: ${golden.summary.pass} pass, ${golden.summary.fail} fail, ${golden.summary['not-applicable']} not applicable`);
  for (const b of golden?.blobs ?? []) if (b.verdict === 'fail') console.log(`    FAIL golden ${b.id}: ${b.reason}`);
  writeJsonAtomically(join(dir, 'report.json'), 'report', golden ? { ...report, golden } : report);
  const s = report.summary;
  console.log(`verdict: ${report.verdict} (${s.pass} pass, ${s['expected-fail']} expected-fail, ${s.fail} fail, ${s.unsupported} unsupported, ${s.error} error; seed ${params.seed})`);
  console.log(`report: ${relative(process.cwd(), join(dir, 'report.json')) || 'report.json'}, ${relative(process.cwd(), join(dir, 'junit.xml'))}`);
  if (s.fail) return EXIT.failure;
  if (s.error || !report.run.complete) return EXIT.target;
  return EXIT.ok;
}
