// Rewrite golden recipes whose guests VMLAUNCH a vmcs12 to launch a valid guest from the current
// generator (buildValidGuest, raw guest of seed 7, active), then re-record each with `golden record
// --update`, keeping its scenario and comment. Used when the VM-entry checks gained rules a recipe's
// guest broke: the checks themselves (issue 8), the guest segment checks and the MSR-load list (F1, F2).
// Run after `npx tsc -p .`: node golden/tools/rerecord-with-valid-guests.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const { buildValidGuest, rawGuest } = await import(`${root}/dist/generators/valid-guest.js`);
const { writeGuestOps, writeEvmcsOps } = await import(`${root}/dist/generators/nested.js`);
const { nestedCaps } = await import(`${root}/dist/model/vmentry/caps.js`);
const { CHECK_LINUX_6_1, CHECK_LINUX_6_12 } = await import(`${root}/dist/model/catalog/vmx-controls.js`);
const { opsToJson } = await import(`${root}/dist/model/nested/ops-json.js`);
const manifest = JSON.parse(readFileSync(`${root}/golden/manifest.json`, 'utf8'));
const raw = { ...fc.sample(rawGuest, { seed: 7, numRuns: 1 })[0], activity: 0n };
const evmcsCheck = [...CHECK_LINUX_6_1, ...CHECK_LINUX_6_12];
let changed = 0;
for (const e of manifest.entries) {
  const r = e.recipe;
  if (!r || r.kind !== 'nested-state' || !r.ops) continue;
  const ops = r.ops;
  const iLaunch = ops.findIndex((o) => o.op === 'vmlaunch' || (o.op === 'evmcs-entry' && o.launch));
  if (iLaunch < 0) continue;
  const plan = { on: {} };
  if (/preemption|deadline/.test(e.id)) plan.on.pin = 0x40;
  if (/mtf/.test(e.id)) plan.on.proc = 0x0800_0000;
  if (/shadow/.test(e.id)) { plan.on.proc = (plan.on.proc ?? 0) | 0x8000_0000; plan.on.proc2 = 0x4000; }
  const draft = buildValidGuest(nestedCaps(undefined), raw, { evmcsCheck, plan });
  let next;
  if (ops[iLaunch].op === 'evmcs-entry') {
    // the old eVMCS contents (and the guest memory written before them) go: writeEvmcsOps writes them anew
    const iInit = ops.findIndex((o) => o.op === 'init-evmcs');
    const old = (o) => o.op === 'write-memory';
    let from = iInit;
    while (from > 0 && old(ops[from - 1])) from--;
    let to = iInit + 1;
    while (to < ops.length && old(ops[to])) to++;
    next = [...ops.slice(0, from), ...opsToJson(writeEvmcsOps(draft, 0x4000n)), ...ops.slice(to)];
  } else {
    let j = iLaunch - 1;
    while (j >= 0 && ops[j].op !== 'vmptrld') j--;
    const between = ops.slice(j + 1, iLaunch).filter((o) => o.op !== 'vmwrite');
    const timer = plan.on.pin ? [{ op: 'vmwrite', field: '0x482e', value: '0x100' }] : [];
    next = [...ops.slice(0, j + 1), ...between, ...opsToJson(writeGuestOps(draft)), ...timer, ...ops.slice(iLaunch)];
  }
  const recipe = { ...r, ops: next, ...(e.scenario && e.scenario !== '(no scenario given)' ? { scenario: e.scenario } : {}), ...(e.comment ? { comment: e.comment } : {}) };
  const file = `/tmp/recipe-${e.id}.json`;
  writeFileSync(file, JSON.stringify(recipe, null, 2));
  const out = spawnSync(process.execPath, [`${root}/bin/nvmx-conformance.js`, 'golden', 'record', '--recipe', file, '--id', e.id, '--update'], { cwd: root, encoding: 'utf8' });
  changed++;
  if (out.status !== 0) console.log('FAIL', e.id, out.status, out.stderr.trim().split('\n')[0]);
}
console.log('re-recorded', changed);
