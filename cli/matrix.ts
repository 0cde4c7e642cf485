// `matrix`: the migration compatibility matrix across profiles, one table per scenario, written as
// matrix.json (schema'd) and matrix.md, with generated variants per cell checked against the
// static prediction.
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { HOSTS } from '../model/migration/hosts.js';
import { buildMatrix, cellLabel, simulateCell, type MatrixTable } from '../model/migration/matrix.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { findProfile } from '../model/profiles.js';
import { findHost } from '../model/migration/hosts.js';
import { step } from '../generators/nested.js';
import { writeJsonAtomically } from '../reports/report.js';
import { EXIT, UsageError } from '../base/errors.js';
import { ensureDir, writeOutFile } from './fs-out.js';
import { intValue, parse } from './options.js';
import { matrixSpec } from './spec.js';

const list = (v: string | undefined) => (v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

export async function matrixCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, matrixSpec);
  const hostNames = list(values.profiles) ?? HOSTS.map((h) => h.name);
  for (const h of hostNames) if (!findHost(h)) throw new UsageError(`unknown profile or host "${h}" (known: ${HOSTS.map((x) => x.name).join(', ')})`);
  const scenarioNames = list(values.scenarios) ?? SCENARIOS.map((s) => s.name);
  const scenarios = scenarioNames.map((n) => SCENARIOS.find((s) => s.name === n) ?? usage(`unknown scenario "${n}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`));
  const paths = intValue(matrixSpec, 'paths', values.paths) ?? 5;
  const seed = intValue(matrixSpec, 'seed', values.seed) ?? 1;
  // a source must be able to run a nested guest at all
  const sources = hostNames.filter((h) => findProfile(findHost(h)!.profile)?.nested && findHost(h)!.nested);
  const drops = values['qemu-drops-vmx-flags'];
  const tables = buildMatrix({ sources, destinations: hostNames, scenarios, qemuDropsVmxFlags: drops });
  // generated variants: the scenario plus extra guest activity, simulated and predicted
  const extras = fc.sample(fc.array(step, { maxLength: 2 }).map((s) => s.flat()), { seed, numRuns: Math.max(paths, 1) });
  for (const t of tables) {
    const sc = scenarios.find((s) => s.name === t.scenario)!;
    for (const c of t.cells)
      for (const extra of extras.slice(0, paths)) {
        const r = simulateCell(sc, findHost(c.source)!, findHost(c.destination)!, drops, extra);
        c.paths++;
        if (r.predicted.kind === r.outcome.kind) c.agreed++;
      }
  }
  const dir = ensureDir(values.report, 'report directory');
  const json = { format: 'nvmx-matrix/1', generatedAt: new Date().toISOString(), qemuDropsVmxFlags: drops, pathsPerCell: paths, seed, tables };
  writeJsonAtomically(join(dir, 'matrix.json'), 'matrix', JSON.parse(JSON.stringify(json)));
  const md = renderMarkdown(tables, drops, paths);
  writeOutFile(join(dir, 'matrix.md'), md);
  console.log(md);
  console.log(`matrix: ${relative(process.cwd(), join(dir, 'matrix.json')) || 'matrix.json'}, ${relative(process.cwd(), join(dir, 'matrix.md'))}`);
  const disagreements = tables.flatMap((t) => t.cells).filter((c) => c.agreed !== c.paths).length;
  if (disagreements) console.error(`nvmx-conformance: ${disagreements} cells where the static check disagreed with a generated path`);
  return disagreements ? EXIT.failure : EXIT.ok;
}

function usage(msg: string): never {
  throw new UsageError(msg);
}

export function renderMarkdown(tables: readonly MatrixTable[], drops: boolean, paths: number): string {
  const out: string[] = [`# Nested-state migration matrix${drops ? ' (QEMU drops hdr.vmx.flags)' : ''}`, ''];
  out.push('Rows: source profile. Columns: destination host. `unknown` means the model lacks the facts; it never reads as ok.');
  if (paths) out.push(`Each cell also ran ${paths} generated variants of the scenario; a cell marked † had a variant the static check mispredicted.`);
  for (const t of tables) {
    out.push('', `## ${t.scenario}: ${t.description}`, '');
    out.push(`| source \\ destination | ${t.destinations.join(' | ')} |`, `|---|${t.destinations.map(() => '---').join('|')}|`);
    const notes: string[] = [];
    for (const s of t.sources) {
      const row = t.destinations.map((d) => {
        const c = t.cells.find((x) => x.source === s && x.destination === d)!;
        let label = cellLabel(c);
        if (c.outcome.kind !== 'ok') {
          if (!notes.includes(c.summary)) notes.push(c.summary);
          label += ` [${notes.indexOf(c.summary) + 1}]`;
        }
        return c.agreed === c.paths ? label : `${label} †`;
      });
      out.push(`| ${s} | ${row.join(' | ')} |`);
    }
    if (notes.length) out.push('', ...notes.map((n, i) => `${i + 1}. ${n}`));
    if (t.notApplicable.length) out.push('', `Not applicable: ${t.notApplicable.join('; ')}.`);
  }
  return out.join('\n') + '\n';
}
