// nvmx-conformance command line. Every failure is one line on stderr and a documented exit code:
// 0 ok, 1 property failure or incompatible layout, 2 usage or input error, 3 target error,
// 4 internal error (a bug in this tool; NVMX_DEBUG=1 shows the stack).
import { EXIT, TargetError, UsageError } from '../base/errors.js';
import { fsProblem } from './fs-out.js';
import { HelpRequested, type CommandSpec, type GroupSpec } from './options.js';
import { TOOL_VERSION } from '../targets/reference.js';

type Entry = { run: (argv: string[]) => Promise<number> | number; spec: CommandSpec | GroupSpec };

// each command's module loads when that command runs: loading all of them (the runner, the golden
// corpus, ajv) took most of a short command's start-up, and the tests start the CLI hundreds of times
const COMMANDS: Record<string, () => Promise<Entry>> = {
  check: async () => ({ run: (await import('./check.js')).checkCommand, spec: (await import('./check-spec.js')).checkSpec }),
  replay: async () => ({ run: (await import('./check.js')).replayCommand, spec: (await import('./check-spec.js')).replaySpec }),
  report: async () => { const m = await import('./report.js'); return { run: m.reportCommand, spec: m.reportGroup }; },
  layout: async () => { const m = await import('./layout.js'); return { run: m.layoutCommand, spec: m.layoutGroup }; },
  filter: async () => { const m = await import('./filter.js'); return { run: m.filterCommand, spec: m.filterGroup }; },
  nested: async () => { const m = await import('./nested.js'); return { run: m.nestedCommand, spec: m.nestedGroup }; },
  matrix: async () => { const m = await import('./matrix.js'); return { run: m.matrixCommand, spec: m.matrixSpec }; },
  serve: async () => { const m = await import('./serve.js'); return { run: m.serveCommand, spec: m.serveSpec }; },
  golden: async () => { const m = await import('./golden.js'); return { run: m.goldenCommand, spec: m.goldenGroup }; },
};

/** The top-level usage, from the command declarations: one line per command, its own --help for the rest. */
export async function usage(): Promise<string> {
  const entries = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  const specs = entries.flatMap(({ spec }) => ('commands' in spec ? spec.commands : [spec]));
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
    console.log(await usage());
    return cmd ? EXIT.ok : EXIT.usage;
  }
  if (cmd === '--version' || cmd === '-V') {
    console.log(`nvmx-conformance ${TOOL_VERSION}`);
    return EXIT.ok;
  }
  const load = COMMANDS[cmd];
  try {
    if (!load) throw new UsageError(`unknown command "${cmd}" (try --help)`);
    return await (await load()).run(rest);
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
