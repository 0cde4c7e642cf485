// nvmx-conformance command line. Every failure is one line on stderr and a documented exit code:
// 0 ok, 1 property failure or incompatible layout, 2 usage or input error, 3 target error,
// 4 internal error (a bug in this tool; NVMX_DEBUG=1 shows the stack).
import { EXIT, TargetError, UsageError } from '../base/errors.js';
import { fsProblem } from './fs-out.js';
import { helpFor, topUsage } from './help.js';
import { CLI } from './spec.js';

type Run = (argv: string[]) => Promise<number> | number;

// each command's module loads when that command runs: loading all of them (the runner, the golden
// corpus, ajv) took most of a short command's start-up, and the tests start the CLI hundreds of times.
// Help comes from the command table (cli/spec.ts) and loads none of them.
export const COMMAND_MODULES: Record<string, () => Promise<Run>> = {
  check: async () => (await import('./check.js')).checkCommand,
  replay: async () => (await import('./check.js')).replayCommand,
  report: async () => (await import('./report.js')).reportCommand,
  layout: async () => (await import('./layout.js')).layoutCommand,
  filter: async () => (await import('./filter.js')).filterCommand,
  nested: async () => (await import('./nested.js')).nestedCommand,
  matrix: async () => (await import('./matrix.js')).matrixCommand,
  serve: async () => (await import('./serve.js')).serveCommand,
  golden: async () => (await import('./golden.js')).goldenCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(topUsage(CLI));
    return cmd ? EXIT.ok : EXIT.usage;
  }
  if (cmd === '--version' || cmd === '-V') {
    console.log(`nvmx-conformance ${(await import('../targets/reference.js')).TOOL_VERSION}`);
    return EXIT.ok;
  }
  const entry = CLI.find((e) => e.name === cmd);
  const help = entry && helpFor(entry, rest);
  if (help !== undefined) {
    console.log(help);
    return EXIT.ok;
  }
  const load = COMMAND_MODULES[cmd];
  try {
    if (!entry || !load) throw new UsageError(`unknown command "${cmd}" (try --help)`);
    return await (await load())(rest);
  } catch (e) {
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
