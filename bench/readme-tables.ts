// Writes the generated tables into README.md (the VM-entry rule table, from the 6.1 and 6.12 rule
// tables). Run after changing a rule: `npx tsc -p . && node dist/bench/readme-tables.js`.
// tests/vmentry.test.ts fails while the README is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { findProfile } from '../model/profiles.js';
import { ruleTableMarkdown } from '../model/vmentry/rule-table.js';
import { vmentryRules } from '../model/vmentry/rules.js';

const path = new URL('../../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const table = ruleTableMarkdown(vmentryRules(findProfile('linux-6.1')!), vmentryRules(findProfile('linux-6.12')!));
const start = readme.indexOf(table.split('\n')[0]!);
const end = readme.indexOf('\n\n', start);
if (start < 0 || end < 0) throw new Error('README.md has no VM-entry rule table to replace');
writeFileSync(path, readme.slice(0, start) + table + readme.slice(end));
console.log(`README.md: VM-entry rule table, ${table.split('\n').length - 2} rules`);
