// The layering rule (README "Layers"): dependency-cruiser's rules (.dependency-cruiser.cjs) pass on
// the sources, and each of them fails on a tree planted with the arrow it forbids.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const CONFIG = join(root, '.dependency-cruiser.cjs');
const BIN = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const { LAYERS } = createRequire(import.meta.url)(CONFIG) as { LAYERS: Record<string, string[]> };

interface Violation {
  rule: string;
  from: string;
  to: string;
}

const depcruise = (cwd: string, ...args: string[]) => spawnSync(process.execPath, [BIN, '--config', CONFIG, ...args, '.'], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });

function cruise(cwd: string): Violation[] {
  const r = depcruise(cwd, '--output-type', 'json');
  if (!r.stdout) throw new Error(`depcruise gave no report (exit ${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { summary: { violations: { rule: { name: string }; from: string; to: string }[] } };
  return out.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

const show = (vs: readonly Violation[]) => vs.map((v) => `${v.rule}: ${v.from} -> ${v.to}`).join('\n');

test('the sources keep the layering: no upward or sideways import, no circle, model/ imports only model/', () => {
  expect(show(cruise(root))).toBe('');
});

test('each rule fails on a planted tree: upward, sideways, impure model, circle; allowed arrows pass', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-layering-'));
  const files: Record<string, string> = {
    'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
    // model/ reaching up to the harness, and model/ doing I/O
    'model/up.ts': "import { h } from '../harness/h.js';\nexport const m = h;\n",
    'model/io.ts': "import { readFileSync } from 'node:fs';\nexport const io = readFileSync;\n",
    'model/base.ts': "import { b } from '../base/b.js';\nexport const mb = b;\n",
    'harness/h.ts': "import { t } from '../targets/t.js';\nimport { g } from '../generators/g.js';\nexport const h = t + g;\n",
    // a generator using a target (peers), a target using the harness (upward)
    'generators/g.ts': "import type { T } from '../targets/t.js';\nexport const g = 1 as T;\n",
    'targets/t.ts': "import { b } from '../base/b.js';\nexport type T = number;\nexport const t = b;\n",
    'targets/up.ts': "import { h } from '../harness/h.js';\nexport const tu = h;\n",
    'base/b.ts': 'export const b = 1;\n',
    // golden under suites and reports; suites and reports are peers
    'golden/up.ts': "import { s } from '../suites/s.js';\nexport const gu = s;\n",
    'suites/s.ts': "import { h } from '../harness/h.js';\nimport { r } from '../reports/a.js';\nexport const s = h + r;\n",
    // a type-only circle
    'reports/a.ts': "import type { B } from './b.js';\nexport type A = B | 1;\nexport const r = 1;\n",
    'reports/b.ts': "import type { A } from './a.js';\nexport type B = A | 2;\n",
    'cli/c.ts': "import { s } from '../suites/s.js';\nimport { r } from '../reports/a.js';\nexport const c = s + r;\n",
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const found = show(cruise(dir)).split('\n').sort();
  expect(found).toEqual(
    [
      'layer-model: model/up.ts -> harness/h.ts',
      'layer-model: model/io.ts -> fs',
      'layer-model: model/base.ts -> base/b.ts',
      'layer-generators: generators/g.ts -> targets/t.ts',
      'layer-targets: targets/up.ts -> harness/h.ts',
      'layer-golden: golden/up.ts -> suites/s.ts',
      'layer-suites: suites/s.ts -> reports/a.ts',
      // a circle is reported once, at the edge where the cruise closes it
      'no-circular: reports/a.ts -> reports/b.ts',
    ].sort(),
  );
  // as `npm run lint:deps` runs it: a failing exit and every violation printed
  const plain = depcruise(dir);
  expect(plain.status).not.toBe(0);
  expect(plain.stdout).toContain(`${found.length} dependency violations`);
});

test('the README names every layer of the rule', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Layers\n'), readme.indexOf('\n## ', readme.indexOf('\n## Layers\n') + 1));
  for (const folder of Object.keys(LAYERS)) expect(section).toContain(`${folder}/`);
});
