// The model functions the tool itself trusts when it judges a target (codec, layout diff).
// Suites take them from here so that mutant tests can show each property catching a broken one.
import { decode, encode } from '../model/codec.js';
import { diffLayouts } from '../model/layout-diff.js';
import { predict } from '../model/migration/predict.js';

export interface ModelDeps {
  readonly encode: typeof encode;
  readonly decode: typeof decode;
  readonly diffLayouts: typeof diffLayouts;
  /** the static migration compatibility check */
  readonly predict: typeof predict;
}

export const MODEL_DEPS: ModelDeps = { encode, decode, diffLayouts, predict };
