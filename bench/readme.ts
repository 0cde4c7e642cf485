// The README's generated sections, each between `<!-- generated:NAME -->` and
// `<!-- /generated:NAME -->`: rendered from the code that holds the facts, written by `npm run docs`
// (bench/docs.ts) and compared by tests/readme.test.ts, which fails while the README is stale.
import { CLI } from '../cli/spec.js';
import { cliTableMarkdown } from '../cli/cli-table.js';
import { findProfile } from '../model/profiles.js';
import { ruleTableMarkdown } from '../model/vmentry/rule-table.js';
import { vmentryRules } from '../model/vmentry/rules.js';
import { propertyTableMarkdown } from '../suites/property-table.js';
import { ALL_PROPERTIES } from '../suites/registry.js';

export const README_SECTIONS: Readonly<Record<string, () => string>> = {
  /** the command table (cli/spec.ts) */
  cli: () => cliTableMarkdown(CLI),
  /** the property definitions (suites/registry.ts) */
  properties: () => propertyTableMarkdown(ALL_PROPERTIES),
  /** the VM-entry rule tables of 6.1 and 6.12 (model/vmentry/rules.ts) */
  'vmentry-rules': () => ruleTableMarkdown(vmentryRules(findProfile('linux-6.1')!), vmentryRules(findProfile('linux-6.12')!)),
};

const markers = (name: string) => [`<!-- generated:${name} -->`, `<!-- /generated:${name} -->`] as const;

/** Where a section's text lies: between the end of its opening marker and its closing marker. */
function span(readme: string, name: string): { from: number; to: number } | undefined {
  const [open, close] = markers(name);
  const start = readme.indexOf(open);
  const end = start < 0 ? -1 : readme.indexOf(close, start);
  return end < 0 ? undefined : { from: start + open.length, to: end };
}

/** The text between a section's markers, or undefined when the README lacks them. */
export function readmeSection(readme: string, name: string): string | undefined {
  const s = span(readme, name);
  return s && readme.slice(s.from, s.to).trim();
}

/** The README with every generated section rendered again; a section without its markers is an error. */
export function regenerateReadme(readme: string): string {
  let out = readme;
  for (const [name, render] of Object.entries(README_SECTIONS)) {
    const s = span(out, name);
    if (!s) throw new Error(`README.md has no ${markers(name).join(' … ')} section`);
    out = `${out.slice(0, s.from)}\n\n${render()}\n\n${out.slice(s.to)}`;
  }
  return out;
}
