// The model functions the tool itself trusts when it judges a target (codec, layout diff, the
// migration prediction, the reference VMM its migrations go through). Suites take them from here so
// that mutant tests can show each property catching a broken one.
import { decode, encode } from '../model/codec.js';
import { diffLayouts } from '../model/layout-diff.js';
import { predict } from '../model/migration/predict.js';
import { vmmLoad, vmmSave } from '../model/vmm/reference.js';

export interface ModelDeps {
  readonly encode: typeof encode;
  readonly decode: typeof decode;
  readonly diffLayouts: typeof diffLayouts;
  /** the static migration compatibility check */
  readonly predict: typeof predict;
  /** the VMM step between a migration's hosts (harness/fleet.ts) */
  readonly vmmSave: typeof vmmSave;
  readonly vmmLoad: typeof vmmLoad;
}

export const MODEL_DEPS: ModelDeps = { encode, decode, diffLayouts, predict, vmmSave, vmmLoad };
