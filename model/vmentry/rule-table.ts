// The README's VM-entry rule table, rendered from the rule tables of 6.1 and 6.12 (numbered in
// 6.12's order) so that it cannot drift from them: `npm run docs` writes it into README.md
// (bench/readme.ts), and tests/readme.test.ts fails while the README's copy is stale.
import type { VmentryRule } from './rules.js';

const outcome = (r: VmentryRule): string => {
  const restore = r.vmentryOnly ? '—' : r.stage === 'prepare' ? 'S8 (2)' : 'V14';
  if (r.stage === 'controls') return `VMfail 7 / ${restore}`;
  if (r.stage === 'host') return `VMfail 8 / ${restore}`;
  if (r.stage === 'msr-load') return `exit 0x80000022 q entry + 1 / ${restore}`;
  return `exit 0x80000021 q${r.qualification ?? 0} / ${restore}`;
};

function notes(r: VmentryRule, old: VmentryRule | undefined): string {
  const n: string[] = [];
  if (!old) n.push('6.12 only');
  if (r.id.startsWith('evmcs.')) n.push('only where guest_cpuid_has_evmcs; 6.1: deny-list steps, 6.12: allow-list');
  if (r.unreachable) n.push(`unreachable: ${r.unreachable}`);
  if (old?.unreachable && !r.unreachable) n.push(`6.1 unreachable: ${old.unreachable}`);
  if (r.vmentryOnly) n.push('VMLAUNCH/VMRESUME only');
  if (r.desc.includes('(run pending only)')) n.push('only with nested_run_pending');
  return n.join('; ');
}

/** One row per rule of `newer` (6.12), with the notes that say where `older` (6.1) differs. */
export function ruleTableMarkdown(older: readonly VmentryRule[], newer: readonly VmentryRule[]): string {
  const rows = newer.map((r, i) => {
    const old = older.find((x) => x.id === r.id);
    return `| ${i + 1} | \`${r.id}\` | \`${r.fn}\` | ${r.desc} | ${outcome(r)} | ${notes(r, old)} |`;
  });
  return ['| # | rule | KVM function | fails when | VMLAUNCH / restore | notes |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
