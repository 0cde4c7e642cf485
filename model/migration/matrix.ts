// The migration compatibility matrix: for each scenario, every source host against every
// destination host, the outcome of the scenario's hop (measured through the hosts' targets:
// harness/matrix.ts) and what the static check predicts for it (here).
import { applyOp, Vcpu } from '../nested/vcpu.js';
import { findProfile } from '../profiles.js';
import type { Host } from './hosts.js';
import type { Outcome } from './outcome.js';
import { predict } from './predict.js';
import { saveToStream } from './stream.js';
import type { Scenario } from './scenarios.js';
import type { GuestOp } from '../nested/vcpu.js';

export interface MatrixCell {
  readonly source: string;
  readonly destination: string;
  /** what the hop came to */
  readonly outcome: Outcome;
  readonly summary: string;
  /** what the static check predicted for it */
  readonly predicted: Outcome['kind'];
  /** generated variants of the scenario (extra guest activity) measured on this cell, and how many the static check predicted */
  paths: number;
  agreed: number;
  /** generated variants the hosts could not make (an operation a host does not offer, a real L2 that left the model's state) */
  unmeasured: number;
  /** why the hosts could not make the cell's own hop (its outcome is `unknown` with this reason; not compared with the prediction) */
  notMeasured?: string;
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

/** The static check's prediction of one hop of `scenario` (plus `extra` guest activity) from `source` to `destination`. */
export function predictCell(scenario: Scenario, source: Host, destination: Host, qemuDropsVmxFlags: boolean, extra: readonly GuestOp[] = []): Outcome {
  const p = findProfile(source.profile)!;
  const v = new Vcpu({ ...p, nested: p.nested! }, { ...scenario.vm, nested: source.nested });
  for (const o of [...scenario.ops, ...extra]) applyOp(v, o);
  return predict(source, destination, saveToStream(v, source, { qemuDropsVmxFlags }));
}

/** Where a scenario means something: a source that offers what it needs (eVMCS came in 4.20). */
export const scenarioApplies = (scenario: Scenario, source: Host): boolean => scenario.needs !== 'evmcs' || source.evmcsCap;
export const notApplicableWhy = (source: Host): string => `${source.name}: no eVMCS (KVM_CAP_HYPERV_ENLIGHTENED_VMCS came in 4.20)`;

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
