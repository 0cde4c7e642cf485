// Parsing a command's arguments against its declaration in the command table (cli/spec.ts): node's
// parseArgs with the declared options (an unknown option is a usage error), required options,
// integer ranges and durations. Help is answered before any of this (cli/help.ts, cli/main.ts).
import { parseArgs } from 'node:util';
import { UsageError } from '../base/errors.js';
import { flag } from './help.js';
import type { CommandSpec, GroupSpec, Opts } from './spec-types.js';

type Values<O extends Opts> = {
  -readonly [K in keyof O]: O[K]['type'] extends 'boolean'
    ? O[K]['multiple'] extends true
      ? boolean[]
      : O[K]['default'] extends boolean
        ? boolean
        : boolean | undefined
    : O[K]['multiple'] extends true
      ? O[K]['required'] extends true | string
        ? string[]
        : string[] | undefined
      : O[K]['default'] extends string
        ? string
        : O[K]['required'] extends true | string
          ? string
          : string | undefined;
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
  for (const [k, o] of Object.entries(spec.options))
    if (o.required && parsed.values[k] === undefined) throw new UsageError(`${spec.name} needs ${flag(k, o)}${typeof o.required === 'string' ? ` (${o.required})` : ''}`);
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

/** --target-timeout: seconds by default, or with an ms/s suffix (10, 2.5s, 500ms). */
export function durationMs(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v);
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms >= 1 && ms <= 3_600_000)) throw new UsageError(`--target-timeout must be a duration between 1ms and 3600s (e.g. 10, 2.5s, 500ms), got "${v}"`);
  return Math.round(ms);
}

export type CommonValues = { 'target-timeout'?: string | undefined; 'target-shell'?: boolean | undefined; 'target-package'?: string | undefined };

/** Runs a group's subcommand (its --help is answered before, cli/help.ts). */
export function dispatch(g: GroupSpec, argv: string[], handlers: Record<string, (a: string[]) => number | Promise<number>>): number | Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub ? handlers[sub] : undefined;
  const names = g.commands.map((c) => c.name.split(' ').pop()!);
  const list = `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  if (!run) throw new UsageError(sub ? `unknown ${g.name} command "${sub}" (expected ${list}; try ${g.name} --help)` : `${g.name} needs ${list} (try ${g.name} --help)`);
  return run(rest);
}
