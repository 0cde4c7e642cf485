// The declarations of `check` and `replay` (options, defaults, ranges, help) and the option
// parsing they share with other commands: light, so the CLI's usage and the commands that only
// need --target-timeout do not load the runner.
import { DEFAULT_PROFILE } from '../model/profiles.js';
import { UsageError } from '../base/errors.js';
import { command } from './options.js';

const SEED_RANGE = [-(2 ** 31), 2 ** 31 - 1] as const;

const common = {
  target: { type: 'string', default: 'reference', arg: 'T', help: 'reference, exec:"<command line>" (nvmx-target/1 on stdin/stdout), linux:<kernel tree> or kvm:<kernel> (real KVM in Bochs)' },
  profile: { type: 'string', default: DEFAULT_PROFILE, arg: 'P', help: 'the kernel profile the properties compare against (a process target claims its own)' },
  seed: { type: 'string', arg: 'S', int: SEED_RANGE, help: 'fast-check seed' },
  'target-timeout': { type: 'string', arg: 'DURATION', help: 'per request to a process target: seconds, or with ms/s (10, 2.5s, 500ms)' },
  'target-shell': { type: 'boolean', default: false, help: 'run an exec: command line through /bin/sh instead of splitting it into argv' },
  'target-package': { type: 'string', arg: 'TEXT', help: 'what the target was built from, recorded in the report' },
} as const;

export const checkSpec = command({
  name: 'check',
  summary: 'run every property against a target; writes DIR/report.json, report.md, report.html and junit.xml',
  options: {
    ...common,
    runs: { type: 'string', arg: 'N', int: [1, 10_000_000], help: 'cases per property (default: each property\'s own)' },
    report: { type: 'string', default: 'reports/latest', arg: 'DIR', help: 'where the report files go' },
    only: { type: 'string', multiple: true, arg: 'ID', help: "only the properties whose id matches (* matches any run of characters, e.g. 'nested.*'); the golden section only when a golden property matches" },
    shard: { type: 'string', arg: 'i/N', help: 'run the i-th of N slices of the suites' },
    'time-budget': { type: 'string', arg: 'SECONDS', int: [1, 7 * 24 * 3600], help: 'end the run cleanly when spent: report marked incomplete, exit 3' },
    waivers: { type: 'string', arg: 'FILE', help: 'known failures (nvmx-waivers/1) become waived' },
    'layout-diff': { type: 'string', multiple: true, arg: 'OLD', help: 'add `layout diff OLD <profile>` to the report' },
  },
  notes: ['exit: 0 pass, 1 unwaived failure, 2 usage, 3 target error or incomplete run, 130 interrupted'],
});

export const replaySpec = command({
  name: 'replay',
  args: '<property-id>',
  positionals: 1,
  summary: 're-run one failure exactly, from the seed and path (and replay path) a failure printed',
  options: {
    ...common,
    path: { type: 'string', arg: 'P', help: "fast-check's path, e.g. 0:1:3 (required)" },
    'replay-path': { type: 'string', arg: 'R', help: "fc.commands' replay path: model-based properties print it with the failure, and need it" },
    report: { type: 'string', default: 'reports/replay', arg: 'DIR', help: 'where the replay report goes' },
  },
  notes: ['exit: 1 while it still fails, 0 once fixed, 2 usage'],
});

export type CommonValues = { 'target-timeout'?: string | undefined; 'target-shell'?: boolean | undefined; 'target-package'?: string | undefined };

/** --target-timeout: seconds by default, or with an ms/s suffix (10, 2.5s, 500ms). */
export function durationMs(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v);
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms >= 1 && ms <= 3_600_000)) throw new UsageError(`--target-timeout must be a duration between 1ms and 3600s (e.g. 10, 2.5s, 500ms), got "${v}"`);
  return Math.round(ms);
}

