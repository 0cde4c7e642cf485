// A migration path, hop by hop: the guest starts on one host, does things, moves, does more, moves on.
// Paths are data: harness/hop.ts moves a guest along one through a fleet of hosts (targets), and the
// model's prediction of a hop is model/migration/predict.ts.
import type { GuestOp, VcpuConfig } from '../nested/vcpu.js';
import type { Outcome } from './outcome.js';

/** A migration path as a VMM fleet runs it: where the guest starts, what it does, where it moves. */
export interface MigrationPath {
  /** host names: the fleet's (a property's fleet names hosts as the library does, model/migration/hosts.ts) */
  readonly start: { readonly host: string; readonly vm: VcpuConfig; readonly ops: readonly GuestOp[] };
  /** `sameHost` labels a deliberate move between two hosts of the same kind (within a pool) */
  readonly hops: readonly { readonly host: string; readonly opsAfter: readonly GuestOp[]; readonly sameHost?: true }[];
  readonly qemuDropsVmxFlags: boolean;
}

export interface MigrationHop {
  readonly from: string;
  readonly to: string;
  readonly outcome: Outcome;
  /** what the source's GET returned, what the VMM passed to SET, and what the destination's GET returned right after SET */
  readonly sourceBlob: Uint8Array;
  readonly carried: Uint8Array | null;
  readonly restored: Uint8Array | null;
}
