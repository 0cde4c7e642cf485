// The migration compatibility matrix: for each scenario, every source profile against every
// destination host, the simulated outcome of the scenario's recipe and what the static check says.
import { applyOp, Vcpu } from '../nested/vcpu.js';
import { findProfile } from '../profiles.js';
import { findHost, type Host } from './hosts.js';
import { describeOutcome, type Outcome } from './outcome.js';
import { predict } from './predict.js';
import { restoreFromStream } from './step.js';
import { saveToStream } from './stream.js';
import type { Scenario } from './scenarios.js';
import type { GuestOp } from '../nested/vcpu.js';

export interface MatrixCell {
  readonly source: string;
  readonly destination: string;
  readonly outcome: Outcome;
  readonly summary: string;
  readonly predicted: Outcome['kind'];
  /** generated variants of the scenario (extra guest activity) run on this cell, and how many the static check predicted */
  paths: number;
  agreed: number;
}

export interface MatrixTable {
  readonly scenario: string;
  readonly description: string;
  /** sources where the scenario cannot happen (e.g. eVMCS before 4.20), with why */
  readonly notApplicable: readonly string[];
  readonly sources: readonly string[];
  readonly destinations: readonly string[];
  readonly cells: MatrixCell[];
}

/** One hop of `scenario` (plus `extra` guest activity) from `source` to `destination`: simulated and predicted. */
export function simulateCell(scenario: Scenario, source: Host, destination: Host, qemuDropsVmxFlags: boolean, extra: readonly GuestOp[] = []) {
  const p = findProfile(source.profile)!;
  const v = new Vcpu({ ...p, nested: p.nested! }, { ...scenario.vm, nested: source.nested });
  for (const o of [...scenario.ops, ...extra]) applyOp(v, o);
  const stream = saveToStream(v, source, { qemuDropsVmxFlags });
  const predicted = predict(source, destination, stream);
  const outcome = restoreFromStream(stream, v.profile, destination).outcome;
  return { outcome, predicted };
}

export function buildMatrix(opts: { sources: readonly string[]; destinations: readonly string[]; scenarios: readonly Scenario[]; qemuDropsVmxFlags: boolean }): MatrixTable[] {
  return opts.scenarios.map((scenario) => {
    const cells: MatrixCell[] = [];
    const applies = (s: string) => scenario.needs !== 'evmcs' || findHost(s)!.evmcsCap;
    const sources = opts.sources.filter(applies);
    const notApplicable = opts.sources.filter((s) => !applies(s)).map((s) => `${s}: no eVMCS (KVM_CAP_HYPERV_ENLIGHTENED_VMCS came in 4.20)`);
    for (const s of sources)
      for (const d of opts.destinations) {
        const { outcome, predicted } = simulateCell(scenario, findHost(s)!, findHost(d)!, opts.qemuDropsVmxFlags);
        cells.push({ source: s, destination: d, outcome, summary: describeOutcome(outcome), predicted: predicted.kind, paths: 0, agreed: 0 });
      }
    return { scenario: scenario.name, description: scenario.description, notApplicable, sources, destinations: opts.destinations, cells };
  });
}

/** A short cell label for tables: the kind, and the rule or the first loss. */
export function cellLabel(c: MatrixCell): string {
  const o = c.outcome;
  switch (o.kind) {
    case 'ok':
      return 'ok';
    case 'failed':
      return `failed ${o.rule}`;
    case 'refused':
      return 'refused';
    case 'degraded':
      return `degraded (${o.lost.length})`;
    case 'unknown':
      return 'unknown';
  }
}
