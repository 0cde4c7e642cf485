// `matrix`: the migration compatibility matrix across hosts, one table per scenario, written as
// matrix.json (schema'd) and matrix.md. Each cell is a hop composed through the hosts' targets
// (harness/hop.ts), with generated variants per cell, each checked against the static prediction.
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { findHost, HOSTS } from '../model/migration/hosts.js';
import { cellLabel, type MatrixTable } from '../model/migration/matrix.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { DEFAULT_PROFILE } from '../model/profiles.js';
import { guestOpsFor } from '../generators/nested.js';
import { referenceTarget } from '../targets/reference.js';
import type { Target } from '../targets/target.js';
import { fleetLimits, fleetOf, hostOfSpec, type FleetHost } from '../harness/fleet.js';
import { measureMatrix, mispredicted } from '../harness/matrix.js';
import { TargetStop, Violation } from '../harness/property.js';
import { writeJsonAtomically } from '../reports/report.js';
import { EXIT, TargetError, UsageError } from '../base/errors.js';
import { ensureDir, writeOutFile } from './fs-out.js';
import { openCommandTarget } from './open-target.js';
import { intValue, parse } from './options.js';
import { matrixSpec } from './spec.js';

const list = (v: string | undefined) => (v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

/**
 * The fleet's hosts: `--hosts` are target specs, each named by its spec; `--profiles` (and the
 * default, every library host) are library hosts played by the model of their profile, named as the
 * library names them.
 */
async function openHosts(hosts: string[] | undefined, profiles: string[] | undefined): Promise<FleetHost[]> {
  if (hosts && profiles) throw new UsageError('give --hosts or --profiles, not both');
  if (!hosts) {
    const names = profiles ?? HOSTS.map((h) => h.name);
    for (const h of names) if (!findHost(h)) throw new UsageError(`unknown profile or host "${h}" (known: ${HOSTS.map((x) => x.name).join(', ')})`);
    return names.map((name) => ({ name, host: findHost(name)!, target: referenceTarget({ profile: findHost(name)!.profile }) }));
  }
  if (new Set(hosts).size !== hosts.length) throw new UsageError(`--hosts names a host twice: ${hosts.join(',')}`);
  // opened together: machines (kvm:) boot side by side
  const settled = await Promise.allSettled(hosts.map((spec) => openCommandTarget({ target: spec, profile: DEFAULT_PROFILE })));
  const targets: Target[] = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  try {
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return hosts.map((name, i) => ({ name, target: targets[i]!, host: hostOrUsage(name, targets[i]!) }));
  } catch (e) {
    await Promise.all(targets.map((t) => t.close()));
    throw e;
  }
}

function hostOrUsage(spec: string, target: Target) {
  try {
    return hostOfSpec(spec, target);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const closeHosts = (hosts: readonly FleetHost[]) => Promise.all(hosts.map((h) => h.target.close()));

export async function matrixCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, matrixSpec);
  const scenarioNames = list(values.scenarios) ?? SCENARIOS.map((s) => s.name);
  const scenarios = scenarioNames.map((n) => SCENARIOS.find((s) => s.name === n) ?? usage(`unknown scenario "${n}" (known: ${SCENARIOS.map((s) => s.name).join(', ')})`));
  const paths = intValue(matrixSpec, 'paths', values.paths) ?? 5;
  const seed = intValue(matrixSpec, 'seed', values.seed) ?? 1;
  const drops = values['qemu-drops-vmx-flags'];
  const dir = ensureDir(values.report, 'report directory');
  const hosts = await openHosts(list(values.hosts), list(values.profiles));
  let tables: MatrixTable[];
  try {
    // generated variants: the scenario plus extra guest activity that every host offers, measured and predicted
    const variants = paths ? fc.sample(guestOpsFor(fleetLimits(hosts), 2), { seed, numRuns: paths }) : [];
    tables = await measureMatrix(fleetOf(hosts), { hosts, scenarios, qemuDropsVmxFlags: drops, variants });
  } catch (e) {
    // a host that broke (or answered what no kernel would): the matrix cannot be trusted
    if (e instanceof TargetStop || e instanceof Violation) throw new TargetError(`a host failed: ${e.message}`);
    throw e;
  } finally {
    await closeHosts(hosts);
  }
  const json = { format: 'nvmx-matrix/2', generatedAt: new Date().toISOString(), qemuDropsVmxFlags: drops, pathsPerCell: paths, seed, tables };
  writeJsonAtomically(join(dir, 'matrix.json'), 'matrix', JSON.parse(JSON.stringify(json)));
  const md = renderMarkdown(tables, drops, paths);
  writeOutFile(join(dir, 'matrix.md'), md);
  console.log(md);
  console.log(`matrix: ${relative(process.cwd(), join(dir, 'matrix.json')) || 'matrix.json'}, ${relative(process.cwd(), join(dir, 'matrix.md'))}`);
  const disagreements = tables.flatMap((t) => t.cells).filter(mispredicted).length;
  if (disagreements) console.error(`nvmx-conformance: ${disagreements} cells where the static check disagreed with the hop or a generated variant`);
  return disagreements ? EXIT.failure : EXIT.ok;
}

function usage(msg: string): never {
  throw new UsageError(msg);
}

export function renderMarkdown(tables: readonly MatrixTable[], drops: boolean, paths: number): string {
  const out: string[] = [`# Nested-state migration matrix${drops ? ' (QEMU drops hdr.vmx.flags)' : ''}`, ''];
  out.push('Rows: source host. Columns: destination host. `unknown` means the model lacks the facts; it never reads as ok.');
  out.push(`A cell marked † came to another kind of outcome than the static check predicted${paths ? `, or one of its ${paths} generated variants of the scenario did` : ''}.`);
  out.push('`not measured` means the hosts could not make the hop (an operation a host does not offer, or a real L2 that left the state the scenario names): no evidence either way.');
  for (const t of tables) {
    out.push('', `## ${t.scenario}: ${t.description}`, '');
    out.push(`| source \\ destination | ${t.destinations.join(' | ')} |`, `|---|${t.destinations.map(() => '---').join('|')}|`);
    const notes: string[] = [];
    for (const s of t.sources) {
      const row = t.destinations.map((d) => {
        const c = t.cells.find((x) => x.source === s && x.destination === d)!;
        let label = c.notMeasured !== undefined ? 'not measured' : cellLabel(c);
        if (c.outcome.kind !== 'ok') {
          if (!notes.includes(c.summary)) notes.push(c.summary);
          label += ` [${notes.indexOf(c.summary) + 1}]`;
        }
        return mispredicted(c) ? `${label} †` : label;
      });
      out.push(`| ${s} | ${row.join(' | ')} |`);
    }
    if (notes.length) out.push('', ...notes.map((n, i) => `${i + 1}. ${n}`));
    const unmeasured = t.cells.reduce((n, c) => n + c.unmeasured, 0);
    if (unmeasured) out.push('', `Generated variants the hosts could not make (not measured): ${unmeasured} of ${unmeasured + t.cells.reduce((n, c) => n + c.paths, 0)}.`);
    if (t.notApplicable.length) out.push('', `Not applicable: ${t.notApplicable.join('; ')}.`);
  }
  return out.join('\n') + '\n';
}
