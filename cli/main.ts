// nvmx-conformance command line. Every failure is one line on stderr and a documented exit code:
// 0 ok, 1 property failure or incompatible layout, 2 usage or input error, 3 target error,
// 4 internal error (a bug in this tool; NVMX_DEBUG=1 shows the stack).
import { checkCommand, replayCommand } from './check.js';
import { EXIT, TargetError, UsageError } from './errors.js';
import { filterCommand } from './filter.js';
import { goldenCommand } from './golden.js';
import { layoutCommand } from './layout.js';
import { nestedCommand } from './nested.js';
import { matrixCommand } from './matrix.js';
import { reportCommand } from './report.js';
import { serveCommand } from './serve.js';

const USAGE = `usage: nvmx-conformance <command> [options]

commands:
  check   [--target reference] [--profile P] [--runs N] [--seed S] [--report DIR]
          [--shard i/N] [--time-budget SECONDS] [--waivers FILE] [--layout-diff OLD]...
          run every property against a target; writes DIR/report.json, report.md, report.html
          and junit.xml (default DIR reports/latest)
  replay  <property-id> --seed S [--path P] [--replay-path R] [--profile P] [--target T] [--report DIR]
          re-run one failure exactly, from the seed and path a failure printed
  report render DIR
          re-render DIR/report.md and DIR/report.html from DIR/report.json (validated)
  report merge DIR... [--out DIR]
          merge shard reports into one (default --out reports/merged)
  layout show <profile|file.json> [--json] [--structure vmcs12|evmcs]
  layout diff <OLD> <NEW> [--json] [--all]
          OLD and NEW are profiles (linux-4.18 … linux-6.12) or
          nvmx-layout/1 files; exit 0 compatible, 1 incompatible
  filter show --profile P --msrs FILE [--hv-nested-ebx N] [--json]
          the VMX MSRs a guest RDMSR sees with eVMCS enabled (linux-6.1, linux-6.12)
  filter diff --from P --to P [--msrs FILE] [--hv-nested-ebx N] [--json]
          controls an L1 can use under one profile's eVMCS filter but not the other's
  nested decode BLOB [--json] [--profile P]
          a KVM_GET/SET_NESTED_STATE blob, header and vmcs12 fields by name (JSON re-encodes)
  nested encode SPEC.json [--out BLOB] [--profile P]
  nested restore --profile P [--vcpu VCPU.json] --blob BLOB [--json]
          what KVM_SET_NESTED_STATE answers, and the rule that decides it (an errno is an answer: exit 0)
  nested restore --target T [--vcpu VCPU.json]... --blob BLOB|@null... [--json]
          each blob on a fresh vCPU of a target (e.g. kvm:debian-6.1, real KVM in Bochs), beside
          the model's answer for the profile the target claims
  nested save --profile P [--vcpu VCPU.json] --ops OPS.json [--json] [--out BLOB]
          run guest operations, then KVM_GET_NESTED_STATE
  matrix [--profiles A,B,…] [--scenarios X,Y,…] [--qemu-drops-vmx-flags] [--paths N] [--seed S] [--report DIR]
          the migration compatibility matrix: DIR/matrix.json and DIR/matrix.md
  check   [--target T] [--profile P] [--runs N] [--seed S] [--report DIR]
          [--target-timeout 10s] [--target-shell] [--target-package TEXT]
          run every property against a target; writes DIR/report.json and DIR/junit.xml
          T: reference (default), exec:"<command line>" (nvmx-target/1 on stdin/stdout; split
          into argv without a shell unless --target-shell) or linux:<kernel source tree>
  replay  <property-id> --seed S --path P [--profile P] [--target T] [--report DIR]
          re-run one failure exactly, from the seed and path a failure printed
  layout show <profile|file.json|linux:TREE> [--json] [--structure vmcs12]
  layout diff <OLD> <NEW> [--json] [--all]
          OLD and NEW are profiles (linux-4.18, linux-4.19, linux-5.8, linux-6.1, linux-6.12),
          nvmx-layout/1 files or linux:<kernel tree>; exit 0 compatible, 1 incompatible
  serve   [--profile P]
          the reference model as an nvmx-target/1 process on stdin/stdout (targets/PROTOCOL.md)

  golden verify [--golden DIR] [--json]
          every golden blob: sha256, expected content, each consumer profile's result, its recipe
  golden record --recipe FILE --id ID [--update] [--golden DIR]
          add a blob produced by a recipe; an existing id needs --update
  golden add --file BLOB --kind nested-state|vmcs12|evmcs --id ID --producer "captured from …"
          [--profile P] [--vcpu VCPU.json] [--scenario TEXT] [--comment TEXT] [--update] [--golden DIR]
          import a captured blob; content and consumer results are filled in from the model for review
exit codes: 0 ok, 1 failure, 2 usage or input error, 3 target error or incomplete run,
            4 internal error, 130 interrupted`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number> | number> = {
  check: checkCommand,
  replay: replayCommand,
  layout: layoutCommand,
  filter: filterCommand,
  nested: nestedCommand,
  matrix: matrixCommand,
  report: reportCommand,
  serve: serveCommand,
  golden: goldenCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd ? EXIT.ok : EXIT.usage;
  }
  const run = COMMANDS[cmd];
  try {
    if (!run) throw new UsageError(`unknown command "${cmd}" (try --help)`);
    return await run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`nvmx-conformance: ${e.message}`);
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
