// The shape of the command table (cli/spec.ts): commands, their options and what the docs say of
// them. Types only, plus `command`, which keeps an option table's literal types for parse().

export interface Opt {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  readonly multiple?: boolean;
  /** the value's placeholder in help text (N, FILE, DIR) */
  readonly arg?: string;
  /** integer options: the accepted range, checked by intValue and shown in help */
  readonly int?: readonly [number, number];
  /** the command cannot run without it: parse() refuses, saying what it is (the string) */
  readonly required?: true | string;
  readonly help: string;
  /** the README's CLI table gives it a row of its own (`check … --only ID`), with this exit column */
  readonly row?: { readonly exit: string };
}

export type Opts = Readonly<Record<string, Opt>>;

export interface CommandSpec<O extends Opts = Opts> {
  /** as typed: 'check', 'nested restore' */
  readonly name: string;
  /** positional arguments in help text: '<property-id>', 'DIR...' */
  readonly args?: string;
  /** how many positionals it takes (default 0; Infinity for a list) */
  readonly positionals?: number;
  /** one line: the top-level usage and the group's help list it */
  readonly summary: string;
  /** what else to know, continuing the summary after "; ": the command's --help and the README */
  readonly details?: string;
  readonly options: O;
  /** its exit codes, in --help and the README */
  readonly exit: string;
}

/** A family of subcommands (`nested decode|encode|…`). */
export interface GroupSpec {
  readonly name: string;
  readonly summary: string;
  readonly commands: readonly CommandSpec[];
}

export type Entry = CommandSpec | GroupSpec;

export const command = <O extends Opts>(spec: CommandSpec<O>): CommandSpec<O> => spec;

export const isGroup = (e: Entry): e is GroupSpec => 'commands' in e;

/** Every command, group members included, in table order. */
export const allCommands = (entries: readonly Entry[]): CommandSpec[] => entries.flatMap((e) => (isGroup(e) ? e.commands : [e]));
