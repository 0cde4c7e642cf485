// The README's property table is written by hand: it must list every registered property, in
// registry (report) order, with the groups the property needs, and nothing else.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { ALL_PROPERTIES } from '../suites/registry.js';

test('the README property table lists every property with its groups, in report order', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Properties\n'));
  const table = section.slice(section.indexOf('| id | invariant | target groups |'));
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
  const listed = rows.map((r) => {
    const cells = r.split(' | ');
    return [/^\| `([^`]+)`$/.exec(cells[0]!)?.[1], cells.at(-1)!.replace(/ \|$/, '')];
  });
  expect(listed).toEqual(ALL_PROPERTIES.map((p) => [p.id, p.groups.join(', ') || '(tool)']));
});
