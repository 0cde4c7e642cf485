// Commands and their options, declared once: parsing (node's parseArgs), `--help` for every command
// and the top-level usage are all generated from these declarations, so each fact (a default, a
// range, what an option means) lives in one place.
import { parseArgs } from 'node:util';
import { UsageError } from '../base/errors.js';

export interface Opt {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  readonly multiple?: boolean;
  /** the value's placeholder in help text (N, FILE, DIR) */
  readonly arg?: string;
  /** integer options: the accepted range, checked by intValue and shown in help */
  readonly int?: readonly [number, number];
  readonly help: string;
}

export type Opts = Readonly<Record<string, Opt>>;

export interface CommandSpec<O extends Opts = Opts> {
  /** as typed: 'check', 'nested restore' */
  readonly name: string;
  /** positional arguments in help text: '<property-id>', 'DIR...' */
  readonly args?: string;
  /** how many positionals it takes (default 0; Infinity for a list) */
  readonly positionals?: number;
  /** one line */
  readonly summary: string;
  readonly options: O;
  /** further lines of help: exit codes, examples */
  readonly notes?: readonly string[];
}

/** A family of subcommands (`nested decode|encode|…`). */
export interface GroupSpec {
  readonly name: string;
  readonly summary: string;
  readonly commands: readonly CommandSpec[];
}

export const command = <O extends Opts>(spec: CommandSpec<O>): CommandSpec<O> => spec;

/** `--help` was asked for: main prints the text on stdout and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super('help');
  }
}

type Values<O extends Opts> = {
  -readonly [K in keyof O]: O[K]['type'] extends 'boolean'
    ? O[K]['multiple'] extends true
      ? boolean[]
      : O[K]['default'] extends boolean
        ? boolean
        : boolean | undefined
    : O[K]['multiple'] extends true
      ? string[] | undefined
      : O[K]['default'] extends string
        ? string
        : string | undefined;
};

const wantsHelp = (argv: readonly string[]): boolean => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

/**
 * A string option's value that starts with a dash and is a number (`--seed -5`, `--runs -1`) is
 * taken as the value, not as an option: parseArgs alone calls it "ambiguous".
 */
function joinNegativeValues(argv: readonly string[], options: Opts): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
    if (a === '--') {
      out.push(...argv.slice(i + 1));
      break;
    }
  }
  return out;
}

export function parse<O extends Opts>(argv: string[], spec: CommandSpec<O>): { values: Values<O>; positionals: string[] } {
  if (wantsHelp(argv)) throw new HelpRequested(commandHelp(spec));
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.default !== undefined ? { default: o.default } : {}) }]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv, spec.options), options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${spec.name}: ${(e as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '')} (try ${spec.name} --help)`);
  }
  const max = spec.positionals ?? 0;
  if (parsed.positionals.length > max) throw new UsageError(`${spec.name}: unexpected argument "${parsed.positionals[max]}" (try ${spec.name} --help)`);
  return { values: parsed.values as Values<O>, positionals: parsed.positionals };
}

export function intOption(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?(0x[0-9a-f]+|\d+)$/i.test(v)) throw new UsageError(`--${name} must be an integer, got "${v}"`);
  const n = v.startsWith('-') ? -Number(v.slice(1)) : Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${v}`);
  return n;
}

/** An integer option in the range its declaration gives. */
export function intValue<O extends Opts>(spec: CommandSpec<O>, name: keyof O & string, v: string | undefined): number | undefined {
  const range = spec.options[name]?.int;
  if (!range) throw new Error(`option --${name} of ${spec.name} declares no integer range`);
  return intOption(name, v, range[0], range[1]);
}

// ---- help text ----

const placeholder = (name: string, o: Opt) => (o.type === 'boolean' ? '' : ` ${o.arg ?? name.toUpperCase()}`);

/** The options in one usage line: `[--runs N] [--only ID]...`. */
export function usageLine(spec: CommandSpec): string {
  const opts = Object.entries(spec.options).map(([k, o]) => `[--${k}${placeholder(k, o)}]${o.multiple ? '...' : ''}`);
  return [`nvmx-conformance ${spec.name}`, spec.args, ...opts].filter(Boolean).join(' ');
}

const range = (o: Opt) => (o.int ? ` (${o.int[0]} to ${o.int[1]})` : '');
const dflt = (o: Opt) => (typeof o.default === 'string' ? ` (default ${o.default})` : '');

export function commandHelp(spec: CommandSpec): string {
  const rows: [string, string][] = Object.entries(spec.options).map(([k, o]) => [`--${k}${placeholder(k, o)}${o.multiple ? ' (repeatable)' : ''}`, `${o.help}${range(o)}${dflt(o)}`]);
  rows.push(['-h, --help', 'this help']);
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = [`usage: ${wrap(usageLine(spec), 100, '         ').join('\n')}`, '', spec.summary];
  lines.push('', 'options:');
  for (const [l, r] of rows) {
    const text = wrap(r, 100 - width - 2, ' '.repeat(width + 2));
    lines.push(l.length + 2 > width ? `  ${l}\n${' '.repeat(width + 2)}${text.join('\n')}` : `  ${l.padEnd(width)}${text.join('\n')}`);
  }
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return lines.join('\n');
}

export function groupHelp(g: GroupSpec): string {
  const width = Math.max(...g.commands.map((c) => c.name.length)) + 2;
  return [`usage: nvmx-conformance ${g.name} <${g.commands.map((c) => c.name.split(' ').pop()).join('|')}> [options]`, '', g.summary, '', 'commands:', ...g.commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`), '', `nvmx-conformance ${g.name} <command> --help shows a command's options`].join('\n');
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

/** Runs a group's subcommand; `GROUP --help` (or nothing) lists the subcommands. */
export function dispatch(g: GroupSpec, argv: string[], handlers: Record<string, (a: string[]) => number | Promise<number>>): number | Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') throw new HelpRequested(groupHelp(g));
  const run = sub ? handlers[sub] : undefined;
  const names = g.commands.map((c) => c.name.split(' ').pop()!);
  const list = `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  if (!run) throw new UsageError(sub ? `unknown ${g.name} command "${sub}" (expected ${list}; try ${g.name} --help)` : `${g.name} needs ${list} (try ${g.name} --help)`);
  return run(rest);
}
