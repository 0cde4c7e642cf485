// The seed sweep: every property on the reference target over many seeds, in one process (no
// vitest), so that a property that fails for some seeds is found before a user's first run finds
// it. `npm run sweep -- [--from S] [--count N] [--runs R] [--profile P]`; prints each failure with
// its replay command and a summary line; exits 1 if anything but pass or expected-fail came back.
import { parseArgs } from 'node:util';
import { runProperty } from '../harness/runner.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { referenceTarget } from '../targets/reference.js';
import { DEFAULT_PROFILE } from '../model/profiles.js';

const { values } = parseArgs({ options: { from: { type: 'string', default: '1' }, count: { type: 'string', default: '1000' }, runs: { type: 'string' }, profile: { type: 'string', default: DEFAULT_PROFILE } } });
const from = Number(values.from);
const count = Number(values.count);
const runs = values.runs !== undefined ? Number(values.runs) : undefined;
const target = referenceTarget({ profile: values.profile });
const bad: string[] = [];
const t0 = performance.now();
for (let seed = from; seed < from + count; seed++) {
  for (const def of ALL_PROPERTIES) {
    const o = await runProperty(def, target, { seed, ...(runs !== undefined ? { runs } : {}) });
    if (o.verdict === 'pass' || o.verdict === 'expected-fail') continue;
    const where = 'path' in o ? ` --path ${o.path}` : '';
    const replayPath = 'counterexample' in o && o.counterexample.replayPath ? ` --replay-path '${o.counterexample.replayPath}'` : '';
    bad.push(`${o.verdict.toUpperCase()} ${def.id} seed ${seed}: nvmx-conformance replay ${def.id} --seed ${seed}${where}${replayPath} --profile ${values.profile}`);
    console.log(bad.at(-1));
  }
  if ((seed - from + 1) % 25 === 0) console.error(`sweep: ${seed - from + 1} of ${count} seeds, ${bad.length} failure(s), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
console.log(`sweep: ${count} seeds (${from}..${from + count - 1}) x ${ALL_PROPERTIES.length} properties at ${runs ?? 'default'} runs on ${values.profile}: ${bad.length} failure(s) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
process.exitCode = bad.length ? 1 : 0;
