// The README's generated sections (the CLI table, the property table, the VM-entry rule table) are
// what the code renders now: a stale one fails here, and `npm run docs` rewrites it.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { README_SECTIONS, readmeSection, regenerateReadme } from '../bench/readme.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test.each(Object.keys(README_SECTIONS))('the README section "%s" is the one the code renders', (name) => {
  expect(readmeSection(readme, name), `README.md's generated "${name}" section is stale: run \`npm run docs\``).toBe(README_SECTIONS[name]!());
});

test('npm run docs would change nothing, not even around the markers', () => {
  expect(regenerateReadme(readme) === readme, 'README.md is stale: run `npm run docs`').toBe(true);
});

test('a planted edit inside a section is caught, and regenerating puts the section back', () => {
  const planted = readme.replace('| `vmcs12.codec.round-trip` |', '| `vmcs12.codec.round-trip-x` |');
  expect(planted).not.toBe(readme);
  expect(readmeSection(planted, 'properties')).not.toBe(README_SECTIONS.properties!());
  expect(regenerateReadme(planted)).toBe(readme);
});

test('a README without a section\'s markers is an error naming them', () => {
  expect(() => regenerateReadme(readme.replace('<!-- /generated:cli -->', ''))).toThrow('README.md has no <!-- generated:cli --> … <!-- /generated:cli --> section');
});
