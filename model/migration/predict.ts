// The static compatibility check: what moving a guest will come to, known before moving it. It is
// the model's own migration step (step.ts: the VMM's refusals, KVM_SET_NESTED_STATE, GET, the first
// KVM_RUN) run on a scratch vCPU of the destination's profile from the stream the source would send,
// so SET's and KVM_RUN's rules are stated once (model/nested/set.ts, vcpu.ts). It is the model's
// answer: migration.prediction-honest judges a target's migrations against it.
import { findProfile } from '../profiles.js';
import type { Host } from './hosts.js';
import type { Outcome } from './outcome.js';
import { restoreFromStream } from './step.js';
import type { Stream } from './stream.js';

export function predict(srcHost: Host, dst: Host, stream: Stream): Outcome {
  const src = findProfile(srcHost.profile);
  if (!src) return { kind: 'unknown', reason: `no profile ${srcHost.profile}` };
  return restoreFromStream(stream, src, dst).outcome;
}
