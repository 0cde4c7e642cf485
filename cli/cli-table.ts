// The README's CLI table, rendered from the command table (cli/spec.ts) by `npm run docs`: a row per
// command (its usage, what it does, its exit codes), and a row of its own for each option that
// declares one (`check … --only ID`).
import { markdownTable } from '../base/markdown.js';
import { does, flag, optionText, usageLine } from './help.js';
import { allCommands, type Entry } from './spec-types.js';

export function cliTableMarkdown(entries: readonly Entry[]): string {
  const rows = allCommands(entries).flatMap((c) => [
    [`\`${usageLine(c, true)}\``, does(c), c.exit],
    ...Object.entries(c.options).flatMap(([k, o]) => (o.row ? [[`\`${c.name} … ${flag(k, o)}\``, optionText(o), o.row.exit]] : [])),
  ]);
  return markdownTable(['command', 'does', 'exit'], rows);
}
