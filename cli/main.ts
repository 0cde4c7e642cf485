// nvmx-conformance command line. Every failure is one line on stderr and a documented exit code:
// 0 ok, 1 property failure or incompatible layout, 2 usage or input error, 3 target error,
// 4 internal error (a bug in this tool; NVMX_DEBUG=1 shows the stack).
import { checkCommand, checkSpec, replayCommand, replaySpec } from './check.js';
import { EXIT, TargetError, UsageError } from './errors.js';
import { filterCommand, filterGroup } from './filter.js';
import { fsProblem } from './fs-out.js';
import { goldenCommand, goldenGroup } from './golden.js';
import { layoutCommand, layoutGroup } from './layout.js';
import { nestedCommand, nestedGroup } from './nested.js';
import { matrixCommand, matrixSpec } from './matrix.js';
import { HelpRequested, type CommandSpec, type GroupSpec } from './options.js';
import { reportCommand, reportGroup } from './report.js';
import { serveCommand, serveSpec } from './serve.js';
import { TOOL_VERSION } from '../targets/reference.js';

type Entry = { run: (argv: string[]) => Promise<number> | number; spec: CommandSpec | GroupSpec };

const COMMANDS: Record<string, Entry> = {
  check: { run: checkCommand, spec: checkSpec },
  replay: { run: replayCommand, spec: replaySpec },
  report: { run: reportCommand, spec: reportGroup },
  layout: { run: layoutCommand, spec: layoutGroup },
  filter: { run: filterCommand, spec: filterGroup },
  nested: { run: nestedCommand, spec: nestedGroup },
  matrix: { run: matrixCommand, spec: matrixSpec },
  serve: { run: serveCommand, spec: serveSpec },
  golden: { run: goldenCommand, spec: goldenGroup },
};

/** The top-level usage, from the command declarations: one line per command, its own --help for the rest. */
export function usage(): string {
  const specs = Object.values(COMMANDS).flatMap(({ spec }) => ('commands' in spec ? spec.commands : [spec]));
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

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? EXIT.ok : EXIT.usage;
  }
  if (cmd === '--version' || cmd === '-V') {
    console.log(`nvmx-conformance ${TOOL_VERSION}`);
    return EXIT.ok;
  }
  const entry = COMMANDS[cmd];
  try {
    if (!entry) throw new UsageError(`unknown command "${cmd}" (try --help)`);
    return await entry.run(rest);
  } catch (e) {
    if (e instanceof HelpRequested) {
      console.log(e.text);
      return EXIT.ok;
    }
    if (e instanceof UsageError) {
      console.error(`nvmx-conformance: ${e.message}`);
      return EXIT.usage;
    }
    // the file system said no (a directory where a file goes, no permission, a full disk): bad input
    const fs = fsProblem(e);
    if (fs) {
      console.error(`nvmx-conformance: ${fs}`);
      return EXIT.usage;
    }
    if (e instanceof TargetError) {
      console.error(`nvmx-conformance: ${e.message}`);
      return EXIT.target;
    }
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`nvmx-conformance: internal error: ${msg.split('\n')[0]}${process.env.NVMX_DEBUG ? '' : ' (set NVMX_DEBUG=1 for the stack)'}`);
    if (process.env.NVMX_DEBUG && e instanceof Error) console.error(e.stack);
    return EXIT.internal;
  }
}
