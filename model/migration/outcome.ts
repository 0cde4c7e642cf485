// What a migration step comes to, in the terms a fleet operator needs.
import type { Errno } from '../nested/constants.js';

export type Outcome =
  | { readonly kind: 'ok' }
  /** stopped before the guest was touched */
  | { readonly kind: 'refused'; readonly reason: string }
  /** KVM_SET_NESTED_STATE (or the first KVM_RUN) failed: the guest cannot continue here */
  | { readonly kind: 'failed'; readonly errno: Errno | 'internal-error' | 'ret-2'; readonly rule: string; readonly reason: string }
  /** the guest runs, but something it had is gone */
  | { readonly kind: 'degraded'; readonly lost: readonly string[] }
  /** the model lacks the facts to say */
  | { readonly kind: 'unknown'; readonly reason: string };

export const describeOutcome = (o: Outcome): string =>
  o.kind === 'ok'
    ? 'ok'
    : o.kind === 'refused' || o.kind === 'unknown'
      ? `${o.kind}: ${o.reason}`
      : o.kind === 'failed'
        ? `failed: ${o.errno} at ${o.rule} (${o.reason})`
        : `degraded: ${o.lost.join('; ')}`;
