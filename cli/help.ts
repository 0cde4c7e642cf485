// Help text, rendered from the command table (cli/spec.ts): the top-level usage, a group's command
// list and a command's options, so that help and parsing read the same declarations.
import { allCommands, isGroup, type CommandSpec, type Entry, type GroupSpec, type Opt } from './spec-types.js';

const placeholder = (name: string, o: Opt) => (o.type === 'boolean' ? '' : ` ${o.arg ?? name.toUpperCase()}`);

/** `--runs N` */
export const flag = (name: string, o: Opt) => `--${name}${placeholder(name, o)}`;

/** One option in a usage line: `[--runs N]`, `--path P` when required, `...` when repeatable. */
const usageOf = (name: string, o: Opt) => `${o.required ? flag(name, o) : `[${flag(name, o)}]`}${o.multiple ? '...' : ''}`;

/** The command and its options as typed: `check [--runs N] [--only ID]...`; `omitRows` leaves out options with a README row of their own. */
export function usageLine(spec: CommandSpec, omitRows = false): string {
  const opts = Object.entries(spec.options).filter(([, o]) => !(omitRows && o.row));
  return [spec.name, spec.args, ...opts.map(([k, o]) => usageOf(k, o))].filter(Boolean).join(' ');
}

/** What an option means, with what the declaration adds: range, default, required, repeatable. */
export function optionText(o: Opt): string {
  const range = o.int ? ` (${o.int[0]} to ${o.int[1]})` : '';
  const dflt = typeof o.default === 'string' ? ` (default ${o.default})` : '';
  return `${o.help}${range}${dflt}${o.required ? ' (required)' : ''}${o.multiple ? ' (repeatable)' : ''}`;
}

/** The summary and the details as one text. */
export const does = (spec: CommandSpec) => (spec.details ? `${spec.summary}; ${spec.details}` : spec.summary);

export function commandHelp(spec: CommandSpec): string {
  const rows: [string, string][] = Object.entries(spec.options).map(([k, o]) => [flag(k, o), optionText(o)]);
  rows.push(['-h, --help', 'this help']);
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = [`usage: ${wrap(`nvmx-conformance ${usageLine(spec)}`, 100, '         ').join('\n')}`, '', ...wrap(does(spec), 100, ''), '', 'options:'];
  for (const [l, r] of rows) {
    const text = wrap(r, 100 - width - 2, ' '.repeat(width + 2));
    lines.push(l.length + 2 > width ? `  ${l}\n${' '.repeat(width + 2)}${text.join('\n')}` : `  ${l.padEnd(width)}${text.join('\n')}`);
  }
  lines.push('', ...wrap(`exit: ${spec.exit}`, 100, '      '));
  return lines.join('\n');
}

const subName = (c: CommandSpec) => c.name.split(' ').pop()!;

export function groupHelp(g: GroupSpec): string {
  const width = Math.max(...g.commands.map((c) => c.name.length)) + 2;
  return [`usage: nvmx-conformance ${g.name} <${g.commands.map(subName).join('|')}> [options]`, '', g.summary, '', 'commands:', ...g.commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`), '', `nvmx-conformance ${g.name} <command> --help shows a command's options`].join('\n');
}

/** The top-level usage: one line per command, its own --help for the rest. */
export function topUsage(entries: readonly Entry[]): string {
  const specs = allCommands(entries);
  const heads = specs.map((c) => [c.name, c.args].filter(Boolean).join(' '));
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  return [
    'usage: nvmx-conformance <command> [options]',
    '       nvmx-conformance <command> --help     (the options of one command)',
    '       nvmx-conformance --version',
    '',
    'commands:',
    ...specs.map((c, i) => `  ${heads[i]!.padEnd(width)}${c.summary}`),
    '',
    'exit codes: 0 ok, 1 failure, 2 usage or input error, 3 target error or incomplete run,',
    '            4 internal error (a bug in this tool; NVMX_DEBUG=1 shows the stack), 130 interrupted',
  ].join('\n');
}

/** -h or --help anywhere before `--`. */
const wantsHelp = (argv: readonly string[]): boolean => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

/** The help `argv` (after the top-level command) asks for, if it asks: answered without loading the command. */
export function helpFor(entry: Entry, argv: readonly string[]): string | undefined {
  if (!isGroup(entry)) return wantsHelp(argv) ? commandHelp(entry) : undefined;
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') return groupHelp(entry);
  const c = entry.commands.find((x) => subName(x) === sub);
  return c && wantsHelp(rest) ? commandHelp(c) : undefined;
}

/** Splits text at spaces into lines of at most `width` characters, continuation lines indented. */
function wrap(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  out.push(line);
  return out.map((l, i) => (i ? indent + l : l));
}
