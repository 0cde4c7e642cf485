// Record golden entries again from their own recipes (the model's answer changed, the recipe did
// not), keeping scenario and comment: node golden/tools/rerecord.mjs ID... (after `npx tsc -p .`).
// Never for blobs recorded by real KVM (*.kvm-*): they are the ground truth the model must reproduce.
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const manifest = JSON.parse(readFileSync(`${root}/golden/manifest.json`, 'utf8'));
for (const id of process.argv.slice(2)) {
  const e = manifest.entries.find((x) => x.id === id);
  if (!e?.recipe) throw new Error(`${id}: no such entry with a recipe`);
  if (/\.kvm-/.test(id)) throw new Error(`${id} was recorded by real KVM: record it again on its target (golden record --from)`);
  const recipe = { ...e.recipe, ...(e.scenario !== '(no scenario given)' ? { scenario: e.scenario } : {}), ...(e.comment ? { comment: e.comment } : {}) };
  const file = `/tmp/recipe-${id}.json`;
  writeFileSync(file, JSON.stringify(recipe, null, 2));
  const out = spawnSync(process.execPath, [`${root}/bin/nvmx-conformance.js`, 'golden', 'record', '--recipe', file, '--id', id, '--update'], { cwd: root, encoding: 'utf8' });
  console.log(out.status === 0 ? `${id}: ${out.stdout.split('\n').filter((l) => /changed/.test(l)).join('; ')}` : `FAIL ${id}: ${out.stderr.trim().split('\n')[0]}`);
}
