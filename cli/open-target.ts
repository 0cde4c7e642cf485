// Opening a target for a single command (nested restore, golden record): a bad spec or a missing
// kvm: package is a usage error (exit 2), a target that does not start is a target error (exit 3).
import { KvmSetupError } from '../targets/kvm/image.js';
import { openTarget, targetSpecProblem, type TargetSpec } from '../targets/resolve.js';
import type { Target } from '../targets/target.js';
import { TargetError, UsageError } from '../base/errors.js';

export async function openCommandTarget(spec: TargetSpec): Promise<Target> {
  const problem = targetSpecProblem(spec);
  if (problem) throw new UsageError(problem);
  try {
    return await openTarget(spec);
  } catch (e) {
    if (e instanceof KvmSetupError) throw new UsageError(e.message);
    throw new TargetError(`${spec.target}: ${(e as Error).message}`);
  }
}
