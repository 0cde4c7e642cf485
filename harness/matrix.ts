// The migration matrix, measured: per scenario, one hop from every source host to every host of a
// fleet, composed through the hosts' targets (hop.ts), beside the static check's prediction of it
// (model/migration/matrix.ts); then generated variants of the cell (the scenario plus more guest
// activity), each measured and predicted. On reference hosts this is the model twice over, by two
// roads (the targets and the VMM step, the model's dry run); on real kernels it is what they do.
import { describeOutcome, type Outcome } from '../model/migration/outcome.js';
import { notApplicableWhy, predictCell, scenarioApplies, type MatrixCell, type MatrixTable } from '../model/migration/matrix.js';
import type { Scenario } from '../model/migration/scenarios.js';
import { findProfile } from '../model/profiles.js';
import type { GuestOp } from '../model/nested/vcpu.js';
import type { Fleet, FleetHost } from './fleet.js';
import { migratePath } from './hop.js';
import { TargetStop } from './property.js';

export interface MatrixRun {
  /** the hosts, in the order of the table's rows and columns */
  readonly hosts: readonly FleetHost[];
  readonly scenarios: readonly Scenario[];
  readonly qemuDropsVmxFlags: boolean;
  /** the guest activity each generated variant adds */
  readonly variants: readonly (readonly GuestOp[])[];
}

/** A host a scenario can start on: a kernel with nested state, nested=1, a target that runs vCPUs. */
const canStart = (h: FleetHost): boolean => !!findProfile(h.host.profile)?.nested && h.host.nested && h.target.groups.has('nested-state');

/**
 * One hop of the scenario (and `extra` activity) from `source` to `destination`, through the fleet:
 * its outcome, or why the hosts could not make it.
 */
async function measure(fleet: Fleet, scenario: Scenario, source: string, destination: string, drops: boolean, extra: readonly GuestOp[]): Promise<{ outcome: Outcome } | { notMeasured: string }> {
  try {
    const { hops: [hop], departed } = await migratePath(fleet, { start: { host: source, vm: scenario.vm, ops: [...scenario.ops, ...extra] }, hops: [{ host: destination, opsAfter: [] }], qemuDropsVmxFlags: drops });
    // a source whose guest left the model's state did not make the scenario's (a real L2 runs its code)
    if (!hop) return { notMeasured: `the source cannot make the scenario's state: ${departed!.field} (${departed!.name})` };
    return { outcome: hop.outcome };
  } catch (e) {
    // a host that does not offer what the cell needs: the matrix cannot say (an error stops it)
    if (e instanceof TargetStop && e.result.status === 'unsupported') return { notMeasured: `a host cannot run the hop: ${e.result.reason}` };
    throw e;
  }
}

export async function measureMatrix(fleet: Fleet, run: MatrixRun): Promise<MatrixTable[]> {
  const tables: MatrixTable[] = [];
  const destinations = run.hosts.map((h) => h.name);
  for (const scenario of run.scenarios) {
    const starts = run.hosts.filter(canStart);
    const sources = starts.filter((h) => scenarioApplies(scenario, h.host));
    const cells: MatrixCell[] = [];
    for (const s of sources)
      for (const d of run.hosts) {
        const m = await measure(fleet, scenario, s.name, d.name, run.qemuDropsVmxFlags, []);
        const outcome: Outcome = 'outcome' in m ? m.outcome : { kind: 'unknown', reason: m.notMeasured };
        const predicted = predictCell(scenario, s.host, d.host, run.qemuDropsVmxFlags).kind;
        const cell: MatrixCell = { source: s.name, destination: d.name, outcome, summary: describeOutcome(outcome), predicted, paths: 0, agreed: 0, unmeasured: 0, ...('notMeasured' in m ? { notMeasured: m.notMeasured } : {}) };
        for (const extra of run.variants) {
          const got = await measure(fleet, scenario, s.name, d.name, run.qemuDropsVmxFlags, extra);
          if (!('outcome' in got)) {
            cell.unmeasured++;
            continue;
          }
          cell.paths++;
          if (got.outcome.kind === predictCell(scenario, s.host, d.host, run.qemuDropsVmxFlags, extra).kind) cell.agreed++;
        }
        cells.push(cell);
      }
    const notApplicable = starts.filter((h) => !scenarioApplies(scenario, h.host)).map((h) => notApplicableWhy(h.host));
    tables.push({ scenario: scenario.name, description: scenario.description, notApplicable, sources: sources.map((h) => h.name), destinations, cells });
  }
  return tables;
}

/** Cells whose measured hop, or a measured variant of it, came to another kind of outcome than the static check predicted. */
export const mispredicted = (c: MatrixCell): boolean => (c.notMeasured === undefined && c.outcome.kind !== c.predicted) || c.agreed !== c.paths;
