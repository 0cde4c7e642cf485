// `npm run docs`: rewrites the README's generated sections (bench/readme.ts) from the code.
import { readFileSync, writeFileSync } from 'node:fs';
import { README_SECTIONS, regenerateReadme } from './readme.js';

const path = new URL('../../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = regenerateReadme(before);
if (after !== before) writeFileSync(path, after);
console.log(`README.md: ${after === before ? 'up to date' : 'rewritten'} (${Object.keys(README_SECTIONS).join(', ')})`);
