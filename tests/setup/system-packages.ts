// What `npm test` needs from the system besides node_modules: Debian's chromium for the report.html
// tests and gcc (with libc and zlib headers) for the kvm agent's compile test. vitest runs this once
// before any test file (globalSetup): what is missing is installed with apt-get when apt-get is
// there and we may use it (root, or sudo); otherwise it says in one line what to install, and the
// tests that need it fail (never skip) with the same line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface SystemNeed {
  /** the Debian package */
  readonly pkg: string;
  /** which tests need it */
  readonly for: string;
  readonly present: () => boolean;
}

const onPath = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

export const CHROMIUM = '/usr/bin/chromium';

export const SYSTEM_NEEDS: readonly SystemNeed[] = [
  { pkg: 'chromium', for: 'tests/report-html.test.ts', present: () => existsSync(CHROMIUM) },
  { pkg: 'gcc', for: 'tests/kvm-target.test.ts', present: () => onPath('gcc') },
  { pkg: 'libc6-dev', for: 'tests/kvm-target.test.ts', present: () => existsSync('/usr/include/stdio.h') },
  { pkg: 'zlib1g-dev', for: 'tests/kvm-target.test.ts', present: () => existsSync('/usr/include/zlib.h') },
];

export const installCommand = (pkgs: readonly string[]): string => `apt-get install -y ${pkgs.join(' ')}`;

/** The one line a test that needs a missing package fails with. */
export function missingLine(pkgs: readonly string[]): string {
  return `missing system package(s) ${pkgs.join(', ')}: install with \`${installCommand(pkgs)}\` (npm test does it itself where apt-get works as root or through sudo)`;
}

export type InstallPlan = { readonly kind: 'nothing' } | { readonly kind: 'install'; readonly argv: readonly string[][] } | { readonly kind: 'cannot'; readonly line: string };

/** What to do about the missing packages on this machine. Pure, so the choice itself is tested. */
export function installPlan(missing: readonly string[], host: { aptGet: boolean; root: boolean; sudo: boolean }): InstallPlan {
  if (!missing.length) return { kind: 'nothing' };
  if (!host.aptGet) return { kind: 'cannot', line: `${missingLine(missing)}; apt-get is not available here` };
  if (!host.root && !host.sudo) return { kind: 'cannot', line: `${missingLine(missing)}; not root and no sudo` };
  const pre = host.root ? [] : ['sudo', '-n'];
  return {
    kind: 'install',
    argv: [
      [...pre, 'apt-get', 'update', '-qq'],
      [...pre, 'apt-get', 'install', '-y', '-qq', ...missing],
    ],
  };
}

export const missingPackages = (): string[] => SYSTEM_NEEDS.filter((n) => !n.present()).map((n) => n.pkg);

export default function setup(): void {
  const missing = missingPackages();
  const plan = installPlan(missing, { aptGet: onPath('apt-get'), root: process.getuid?.() === 0, sudo: onPath('sudo') });
  if (plan.kind === 'nothing') return;
  if (plan.kind === 'cannot') {
    console.error(`nvmx-conformance tests: ${plan.line}`);
    return;
  }
  console.error(`nvmx-conformance tests: installing ${missing.join(', ')} (${[...new Set(missing.map((m) => SYSTEM_NEEDS.find((n) => n.pkg === m)!.for))].join(', ')} need them)`);
  for (const argv of plan.argv) {
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) {
      console.error(`nvmx-conformance tests: \`${argv.join(' ')}\` failed (exit ${r.status ?? r.signal}); ${missingLine(missingPackages())}`);
      return;
    }
  }
  const still = missingPackages();
  if (still.length) console.error(`nvmx-conformance tests: ${missingLine(still)}`);
}
