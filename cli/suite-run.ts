// Runs the suites through vitest's Node API: vitest's runner and its shard option (one entry file
// per suite, so a shard is a set of suites). A run can be cut short (the caller's RunStop: a
// signal or a time budget): vitest cancels it cleanly and the caller still gets every outcome
// recorded so far, with the reason it stopped. junit.xml is written by `check` from the report.
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { SUITES, selectedBy, type Suite } from '../suites/registry.js';
import type { RunParams } from '../suites/vitest/register.js';
import { OutcomeCollector, type CollectorEvents } from '../reports/collector.js';
import type { Shard, StopReason } from '../reports/report.js';
import { packageRoot } from '../base/schemas.js';
import { STOP_SIGNALS, type RunStop } from './stop.js';

export interface SuiteRun {
  collector: OutcomeCollector;
  /** suites vitest was to run (after sharding), in registry order */
  suites: readonly Suite[];
  stopped?: StopReason;
}

export async function runSuites(o: {
  params: RunParams;
  shard?: Shard | undefined;
  /** its signal cancels the run; the caller handles signals and the time budget */
  stop: RunStop;
  /** called once the suites to run are known, before any runs */
  onPlan?: (suites: readonly Suite[]) => void;
  events: CollectorEvents;
}): Promise<SuiteRun> {
  const root = packageRoot();
  const here = fileURLToPath(import.meta.url);
  const suitesDir = relative(root, join(dirname(here), '..', 'suites', 'vitest'));
  const compiledRoot = here.endsWith('.js') ? dirname(dirname(here)) : undefined;
  const wanted = selectedBy(o.params.only);
  const selected = SUITES.filter((s) => s.properties.some((p) => wanted(p.id)));
  const collector = new OutcomeCollector(o.events);
  // a test seam: this tool's own tests inject a broken model function into a real run through it
  const setupFiles = process.env.NVMX_VITEST_SETUP ? [process.env.NVMX_VITEST_SETUP] : [];
  const { createVitest, BaseSequencer } = await import('vitest/node');
  const before = new Map(STOP_SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const run: SuiteRun = { collector, suites: selected };
  // vitest forgets a cancel that comes before its run has begun (it resets the flag as the run
  // starts), so a stop is repeated when each test module starts
  const cancel = () => void vitest.cancelCurrentRun('keyboard-input');
  const stopped = () => o.stop.reason !== undefined;
  const vitest = await createVitest(
    'test',
    {
      root,
      config: false,
      watch: false,
      include: selected.map((s) => `${suitesDir}/${s.name}.suite.{js,ts}`),
      reporters: [collector, { onTestModuleStart: () => void (stopped() && cancel()) }],
      provide: { nvmxRun: o.params },
      testTimeout: 0,
      // one worker process runs suite after suite with the modules it already loaded: a fresh
      // process per suite file tripled the CPU time of a whole check. Suites keep no state between
      // files but the target, which each file opens and closes (suites/vitest/register.ts).
      isolate: false,
      // compiled modules load as Node loads them rather than through vite's transform: that halved
      // the CPU time of a one-property check (sources, as tests run them, still go through vite)
      ...(compiledRoot ? { server: { deps: { external: [new RegExp(`^${compiledRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`)] } } } : {}),
      setupFiles,
      ...(o.shard ? { shard: `${o.shard.index}/${o.shard.count}` } : {}),
    },
    { cacheDir: join(tmpdir(), 'nvmx-conformance-vite'), logLevel: 'silent' },
  );
  // vitest's logger exits the process on SIGINT/SIGTERM; the caller's RunStop cancels instead, so the report is written
  for (const s of STOP_SIGNALS) for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.off(s, l as () => void);
  o.stop.signal.addEventListener('abort', cancel);
  try {
    let specs = await vitest.globTestSpecifications();
    // the same sequencer vitest shards with, so the report knows which properties this shard owes
    if (o.shard) specs = await new BaseSequencer(vitest).shard(specs);
    const files = new Set(specs.map((s) => basename(s.moduleId)));
    run.suites = selected.filter((s) => [...files].some((f) => f.startsWith(`${s.name}.suite.`)));
    o.onPlan?.(run.suites);
    if (!stopped()) await vitest.start();
  } finally {
    o.stop.signal.removeEventListener('abort', cancel);
    await vitest.close();
  }
  // a stop that came after the last property finished stopped nothing here; the caller sees it in its RunStop
  if (o.stop.reason) run.stopped = o.stop.reason;
  return run;
}
