// The vitest entry files are written by hand (one per suite: `check` includes
// suites/vitest/<name>.suite.ts and vitest shards by file): each suite of the registry has one, and
// each registers the suite it is named after.
import { readdirSync, readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { SUITES } from '../suites/registry.js';

const dir = new URL('../suites/vitest/', import.meta.url);

test('one entry file per registered suite, each registering its own suite', () => {
  const entries = readdirSync(dir).filter((f) => f.endsWith('.suite.ts'));
  expect(entries.map((f) => f.replace(/\.suite\.ts$/, '')).sort()).toEqual(SUITES.map((s) => s.name).sort());
  for (const f of entries) expect(readFileSync(new URL(f, dir), 'utf8'), f).toContain(`SUITES.find((s) => s.name === '${f.replace(/\.suite\.ts$/, '')}')`);
});
