// A migration path, hop by hop: the guest starts on one host, does things, moves, does more, moves on.
import { Vcpu, type GuestOp, type VcpuConfig } from '../nested/vcpu.js';
import { findProfile } from '../profiles.js';
import { findHost } from './hosts.js';
import { restoreFromStream } from './step.js';
import { saveToStream } from './stream.js';
import type { Outcome } from './outcome.js';
import { MODEL_OPS, type VcpuOps } from './vcpu-ops.js';

/** A migration path as a VMM fleet runs it: where the guest starts, what it does, where it moves. */
export interface MigrationPath {
  /** host names from the library (model/migration/hosts.ts) */
  readonly start: { readonly host: string; readonly vm: VcpuConfig; readonly ops: readonly GuestOp[] };
  /** `sameHost` labels a deliberate move between two hosts of the same kind (within a pool) */
  readonly hops: readonly { readonly host: string; readonly opsAfter: readonly GuestOp[]; readonly sameHost?: true }[];
  readonly qemuDropsVmxFlags: boolean;
}

export interface MigrationHop {
  readonly from: string;
  readonly to: string;
  readonly outcome: Outcome;
  /** what the source's GET returned, and what the destination's GET returned right after SET */
  readonly sourceBlob: Uint8Array;
  readonly carried: Uint8Array | null;
  readonly restored: Uint8Array | null;
}

export function runPath(path: MigrationPath, ops: VcpuOps = MODEL_OPS): MigrationHop[] {
  let host = findHost(path.start.host);
  const p = host && findProfile(host.profile);
  if (!host || !p?.nested) throw new RangeError(`no nested-state host ${path.start.host}`);
  let v = new Vcpu({ ...p, nested: p.nested }, { ...path.start.vm, nested: host.nested }, ops.hooks);
  for (const o of path.start.ops) ops.applyOp(v, o);
  const hops: MigrationHop[] = [];
  for (const hop of path.hops) {
    const dst = findHost(hop.host);
    if (!dst) throw new RangeError(`no host ${hop.host}`);
    const stream = saveToStream(v, host, { qemuDropsVmxFlags: path.qemuDropsVmxFlags }, ops);
    const r = restoreFromStream(stream, v.profile, dst, ops);
    hops.push({ from: host.name, to: dst.name, outcome: r.outcome, sourceBlob: stream.sourceBlob, carried: stream.nestedState, restored: r.restoredBlob });
    if (!r.destination || r.outcome.kind === 'refused' || r.outcome.kind === 'failed') break;
    v = r.destination;
    host = dst;
    for (const o of hop.opsAfter) ops.applyOp(v, o);
  }
  return hops;
}
