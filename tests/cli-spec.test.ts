// The command table (cli/spec.ts) drives the CLI: every command in it has a module to run it, and
// parsing takes its unknown-option and missing-option errors from it. In process, without spawning.
import { describe, expect, test } from 'vitest';
import { UsageError } from '../base/errors.js';
import { helpFor } from '../cli/help.js';
import { COMMAND_MODULES } from '../cli/main.js';
import { parse } from '../cli/options.js';
import { CLI } from '../cli/spec.js';
import { allCommands, type CommandSpec } from '../cli/spec-types.js';

const COMMANDS = allCommands(CLI);
const usageError = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error('no usage error');
};

test('every command family in the table has a module to run it, and nothing else does', () => {
  expect(Object.keys(COMMAND_MODULES).sort()).toEqual(CLI.map((e) => e.name).sort());
});

describe.each(COMMANDS.map((c) => [c.name, c] as const))('%s', (name, spec: CommandSpec) => {
  const required = Object.entries(spec.options).filter(([, o]) => o.required);
  // a value for every required option, so that each test below meets only the error it plants
  const given = required.flatMap(([k]) => [`--${k}`, 'x']);

  test('an undeclared option is refused in one line that names it', () => {
    expect(usageError(() => parse([...given, '--no-such-option'], spec))).toBe(`${name}: Unknown option '--no-such-option' (try ${name} --help)`);
  });

  test('each required option, left out, is refused by name; with all of them it parses', () => {
    for (const [k] of required) {
      const without = given.filter((_, i, a) => a[i] !== `--${k}` && a[i - 1] !== `--${k}`);
      expect(usageError(() => parse(without, spec))).toMatch(new RegExp(`^${name} needs --${k}\\b`));
    }
    expect(parse(given, spec).positionals).toEqual([]);
  });

  test('--help is answered from the table', () => {
    const argv = [...name.split(' ').slice(1), '--help'];
    expect(helpFor(CLI.find((e) => e.name === name.split(' ')[0])!, argv)).toMatch(new RegExp(`^usage: nvmx-conformance ${name}\\b`));
  });
});
