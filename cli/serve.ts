// `serve`: the reference model over nvmx-target/1 on stdin/stdout, so `check --target exec:…` can
// be checked against `--target reference` and other tools can drive the model.
import { findProfile, profileNames } from '../model/profiles.js';
import { referenceTarget } from '../targets/reference.js';
import { serveTarget } from '../targets/protocol/serve.js';
import { EXIT, UsageError } from '../base/errors.js';
import { parse } from './options.js';
import { serveSpec } from './spec.js';

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveSpec);
  if (!findProfile(values.profile)) throw new UsageError(`unknown profile "${values.profile}" (known: ${profileNames().join(', ')})`);
  await serveTarget(referenceTarget({ profile: values.profile }), process.stdin, process.stdout, (l) => console.error(`nvmx-conformance serve: ${l}`));
  return EXIT.ok;
}
