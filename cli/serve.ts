// `serve`: the reference model over nvmx-target/1 on stdin/stdout, so `check --target exec:…` can
// be checked against `--target reference` and other tools can drive the model.
import { findProfile, profileNames } from '../model/profiles.js';
import { referenceTarget } from '../targets/reference.js';
import { REFERENCE_VMM_NAMES, type ReferenceVmmName } from '../model/vmm/reference.js';
import { serveTarget } from '../targets/protocol/serve.js';
import { EXIT, UsageError } from '../base/errors.js';
import { parse } from './options.js';
import { serveSpec } from './spec.js';

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveSpec);
  if (!findProfile(values.profile)) throw new UsageError(`unknown profile "${values.profile}" (known: ${profileNames().join(', ')})`);
  const vmm = values.vmm as ReferenceVmmName;
  if (!REFERENCE_VMM_NAMES.includes(vmm)) throw new UsageError(`unknown --vmm "${values.vmm}" (known: ${REFERENCE_VMM_NAMES.join(', ')})`);
  await serveTarget(referenceTarget({ profile: values.profile, vmm }), process.stdin, process.stdout, (l) => console.error(`nvmx-conformance serve: ${l}`));
  return EXIT.ok;
}
