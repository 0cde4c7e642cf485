// The command table: every command, its arguments and options, what it does and its exit codes,
// declared once. Parsing (cli/options.ts), --help (cli/help.ts) and the README's CLI table
// (cli/cli-table.ts, `npm run docs`) are rendered from it. Light on purpose: main.ts reads it to
// answer --help and to find a command, and loads the command's module only to run it.
import { DEFAULT_PROFILE } from '../model/default-profile.js';
import { command, type Entry, type GroupSpec } from './spec-types.js';

const SEED_RANGE = [-(2 ** 31), 2 ** 31 - 1] as const;
const json = { type: 'boolean', default: false, help: 'JSON output' } as const;
const timeout = (help: string) => ({ type: 'string', arg: 'DURATION', help }) as const;

// ---- check, replay ----

const runOptions = {
  target: { type: 'string', default: 'reference', arg: 'T', help: 'reference (reference:<profile>: the model of that profile), exec:"<command line>" (nvmx-target/1 on stdin/stdout), linux:<kernel tree> or kvm:<kernel> (real KVM in Bochs)' },
  profile: { type: 'string', default: DEFAULT_PROFILE, arg: 'P', help: 'the kernel profile the properties compare against (a process target claims its own)' },
  'target-timeout': timeout('per request to a process target: seconds, or with ms/s (10, 2.5s, 500ms)'),
  'target-shell': { type: 'boolean', default: false, help: 'run an exec: command line through /bin/sh instead of splitting it into argv' },
  'target-package': { type: 'string', arg: 'TEXT', help: 'what the target was built from, recorded in the report' },
} as const;

export const checkSpec = command({
  name: 'check',
  summary: 'run every property against a target; writes DIR/report.json, report.md, report.html and junit.xml',
  details:
    'prints a line per finished property (and a progress line on a terminal); the report files are written as one set, moved in together at the end; a directory another run is writing into is refused (one line, exit 2)',
  options: {
    ...runOptions,
    runs: { type: 'string', arg: 'N', int: [1, 10_000_000], help: "cases per property (default: each property's own; at most 100 for the properties a kvm: target runs)" },
    seed: { type: 'string', arg: 'S', int: SEED_RANGE, help: 'fast-check seed' },
    report: { type: 'string', default: 'reports/latest', arg: 'DIR', help: 'where the report files go' },
    only: {
      type: 'string',
      multiple: true,
      arg: 'ID',
      help: "run only the properties whose id matches (`*` matches any run of characters, e.g. `--only 'nested.*'`); an id that matches nothing is a usage error; the golden section is left out unless a golden property (`golden.*`) is selected",
      row: { exit: 'as `check`' },
    },
    shard: { type: 'string', arg: 'i/N', help: "run the i-th of N slices of the suites (vitest's `shard`; one file per suite)", row: { exit: 'as `check`' } },
    'time-budget': {
      type: 'string',
      arg: 'SECONDS',
      int: [1, 7 * 24 * 3600],
      help: 'end the run cleanly when the budget is spent (the suites or the golden section): report marked incomplete, verdict `unknown`, exit 3 (SIGINT/SIGTERM do the same; a second signal exits at once, leaving the previous report set)',
      row: { exit: '3 (130 on a signal)' },
    },
    waivers: { type: 'string', arg: 'FILE', help: 'known failures (`nvmx-waivers/1`) become `waived`; an entry that matches nothing is a warning, an expired one an error', row: { exit: 'as `check`; 2 expired or bad file' } },
    'layout-diff': { type: 'string', multiple: true, arg: 'OLD', help: "add `layout diff OLD <profile>` to the report's `layoutDiffs` section; a silent break is a failure", row: { exit: 'as `check`' } },
  },
  exit: '0 pass, 1 unwaived failure, 2 usage, 3 target error or incomplete run, 130 interrupted',
});

export const replaySpec = command({
  name: 'replay',
  args: '<property-id>',
  positionals: 1,
  summary: 're-run one failure exactly, from the seed and path (and replay path) a failure printed',
  details:
    'a model-based property (`nested.evmcs-flag-when-active`) also needs the `--replay-path` its failure printed, and says so in one line without it; prints the counterexample again; the report never goes over `reports/latest`',
  options: {
    seed: { type: 'string', arg: 'S', int: SEED_RANGE, required: 'from the failure report', help: 'the seed the failure printed' },
    path: { type: 'string', arg: 'P', required: 'from the failure report', help: "fast-check's path, e.g. 0:1:3" },
    'replay-path': { type: 'string', arg: 'R', help: "fc.commands' replay path: model-based properties print it with the failure, and need it" },
    ...runOptions,
    report: { type: 'string', default: 'reports/replay', arg: 'DIR', help: 'where the replay report goes' },
  },
  exit: '1 while it still fails, 0 once fixed, 2 usage',
});

// ---- report ----

export const reportRenderSpec = command({
  name: 'report render',
  args: 'DIR',
  positionals: 1,
  summary: 're-render DIR/report.md and DIR/report.html from DIR/report.json (validated on read)',
  options: {},
  exit: '0, 2',
});

export const reportMergeSpec = command({
  name: 'report merge',
  args: 'DIR...',
  positionals: Number.MAX_SAFE_INTEGER,
  summary: 'merge shard reports (and their junit.xml) into one; a property that ran twice is refused, a missing one makes the verdict unknown',
  details: 'shards of a `check --only` run owe only what it selected (`run.only` in report.json), and shards of different `--only` are refused',
  options: { out: { type: 'string', default: 'reports/merged', arg: 'DIR', help: 'where the merged report goes' } },
  exit: 'as `check`; 2 bad input',
});

const reportGroup: GroupSpec = { name: 'report', summary: 'reports after the run: render again, merge shards', commands: [reportRenderSpec, reportMergeSpec] };

// ---- layout ----

const structure = { type: 'string', default: 'vmcs12', arg: 'vmcs12|evmcs', help: 'which structure' } as const;

export const layoutShowSpec = command({
  name: 'layout show',
  args: '<profile|file.json|linux:TREE>',
  positionals: 1,
  summary: 'a vmcs12 (or eVMCS) layout as a table, or as an nvmx-layout/1 descriptor',
  options: {
    json: { type: 'boolean', default: false, help: 'the nvmx-layout/1 descriptor' },
    structure: { ...structure, help: 'which structure: `evmcs` shows the eVMCS layout, each field with its `cleanGroup`', row: { exit: '0, 2' } },
  },
  exit: '0, 2',
});

export const layoutDiffSpec = command({
  name: 'layout diff',
  args: '<OLD> <NEW>',
  positionals: 2,
  summary: 'classify every member and judge both directions; OLD and NEW are profiles, nvmx-layout/1 files or linux:<tree>',
  options: { json: { type: 'boolean', default: false, help: 'the diff as JSON (reports/schema/layout-diff.schema.json)' }, all: { type: 'boolean', default: false, help: 'list unchanged members too' }, structure },
  exit: '0 compatible, 1 incompatible, 2 bad input',
});

const layoutGroup: GroupSpec = { name: 'layout', summary: 'vmcs12 and eVMCS layouts: show and diff', commands: [layoutShowSpec, layoutDiffSpec] };

// ---- filter ----

const ebx = { type: 'string', arg: 'N', int: [0, 0xffffffff], help: 'Hyper-V CPUID 0x4000000A.EBX (bit 0: direct virtual flush)' } as const;

export const filterShowSpec = command({
  name: 'filter show',
  summary: 'the VMX MSRs a guest RDMSR sees with eVMCS enabled, and the bits hidden, by name (linux-6.1, linux-6.12)',
  options: {
    profile: { type: 'string', arg: 'P', required: true, help: 'a profile with an eVMCS filter' },
    msrs: { type: 'string', arg: 'FILE', required: 'the unfiltered VMX MSRs, as KVM_GET_MSRS returns them', help: 'the unfiltered VMX MSRs as KVM_GET_MSRS returns them (reports/schema/msrs.schema.json)' },
    'hv-nested-ebx': ebx,
    json,
  },
  exit: '0, 2',
});

export const filterDiffSpec = command({
  name: 'filter diff',
  summary: "controls an L1 can use under one profile's eVMCS filter but not the other's, per MSR with bit names",
  options: {
    from: { type: 'string', arg: 'P', required: true, help: 'the profile before' },
    to: { type: 'string', arg: 'P', required: true, help: 'the profile after' },
    msrs: { type: 'string', arg: 'FILE', help: 'the host VMX MSRs (default: a host offering every control, said so in the output)' },
    'hv-nested-ebx': ebx,
    json,
  },
  exit: '0, 2',
});

const filterGroup: GroupSpec = { name: 'filter', summary: 'the eVMCS filter of the VMX capability MSRs, per profile', commands: [filterShowSpec, filterDiffSpec] };

// ---- nested ----

const profile = { type: 'string', arg: 'P', help: `the kernel profile (default ${DEFAULT_PROFILE})` } as const;
const vcpuHelp = 'the vCPU configuration (reports/schema/vcpu.schema.json; default: nested VMX on, nothing else)';
const out = { type: 'string', arg: 'BLOB', help: 'the file to write (default: stdout, never a terminal)' } as const;

export const nestedDecodeSpec = command({
  name: 'nested decode',
  args: 'BLOB',
  positionals: 1,
  summary: 'a KVM_GET/SET_NESTED_STATE blob: header and vmcs12 fields by name, and what does not add up (size lying, unknown flags, truncation); --json re-encodes',
  options: { json: { type: 'boolean', default: false, help: 'the blob as a SPEC (reports/schema/nested-spec.schema.json) that `nested encode` takes back' }, profile },
  exit: '0, 2',
});

export const nestedEncodeSpec = command({
  name: 'nested encode',
  args: 'SPEC.json',
  positionals: 1,
  summary: 'a blob from its JSON description (reports/schema/nested-spec.schema.json)',
  options: { out, profile },
  exit: '0, 2',
});

export const nestedRestoreSpec = command({
  name: 'nested restore',
  summary: 'what KVM_SET_NESTED_STATE answers on a vCPU so configured, and the rule that decides it (an errno is an answer: exit 0)',
  details:
    '`ok` and the state, or the errno and the rule (e.g. `"rule": "V12"`), plus the quirks it went through. Guest memory is restored first, as a VMM does: the shadow vmcs12\'s header at its link pointer, from the blob (as `golden verify` seeds it, so a golden blob answers what its manifest says), then `--memory FILE`; each write is printed (`memory` in JSON)',
  options: {
    blob: { type: 'string', multiple: true, arg: 'BLOB', required: true, help: 'the blob (several, or @null for a NULL pointer, only with --target)' },
    profile,
    vcpu: { type: 'string', multiple: true, arg: 'VCPU.json', help: `${vcpuHelp}; with --target, one for all blobs or one per blob` },
    memory: {
      type: 'string',
      arg: 'FILE',
      help: 'guest memory as the VMM restores it before the nested state: a guest-ops file of `write-memory`, `init-vmcs`, `init-evmcs` and `set-vp-assist` (eVMCS page, VP-assist page, link page)',
      row: { exit: '0, 2' },
    },
    json,
    target: {
      type: 'string',
      arg: 'T',
      help: "answer each blob on a fresh vCPU of a target (e.g. kvm:debian-6.1; guest memory seeded the same way, on the target and the model), beside the model's answer for the profile the target claims (`agrees`)",
      row: { exit: '0, 2, 3 the target failed' },
    },
    'target-timeout': timeout('per request to the target (10, 2.5s, 500ms)'),
  },
  exit: '0 (an errno is an answer), 2 usage, 3 the target failed',
});

export const nestedSaveSpec = command({
  name: 'nested save',
  summary: 'run guest operations (reports/schema/guest-ops.schema.json), then KVM_GET_NESTED_STATE',
  options: {
    ops: { type: 'string', arg: 'OPS.json', required: 'a list of guest operations', help: 'the guest operations' },
    profile,
    vcpu: { type: 'string', arg: 'VCPU.json', help: vcpuHelp },
    json: { type: 'boolean', default: false, help: "each operation's result and the blob as a SPEC" },
    out,
  },
  exit: '0, 2',
});

const nestedGroup: GroupSpec = {
  name: 'nested',
  summary: 'KVM_GET/SET_NESTED_STATE blobs: decode, encode, restore on the model or a target, save from guest operations',
  commands: [nestedDecodeSpec, nestedEncodeSpec, nestedRestoreSpec, nestedSaveSpec],
};

// ---- matrix, serve ----

export const matrixSpec = command({
  name: 'matrix',
  summary:
    "the migration compatibility matrix: one table per scenario, source host x destination host, each cell a hop composed through the hosts' targets (GET with E2BIG on the source, the VMM's save and load, guest memory, SET, GET and KVM_RUN on the destination) beside the static check's prediction; writes DIR/matrix.json (schema'd) and DIR/matrix.md",
  options: {
    hosts: { type: 'string', arg: 'A,B,…', help: 'the hosts, as targets: reference:<profile or library host> (e.g. reference:linux-5.8, reference:linux-6.12-nonested), kvm:<kernel>, exec:<command> (a host\'s profile is the one its target claims)' },
    profiles: { type: 'string', arg: 'A,B,…', help: 'library hosts played by the model of their profile (default: all; not with --hosts)' },
    scenarios: { type: 'string', arg: 'X,Y,…', help: 'scenarios to include (default: all)' },
    'qemu-drops-vmx-flags': { type: 'boolean', default: false, help: 'model a QEMU that drops hdr.vmx.flags' },
    paths: { type: 'string', arg: 'N', int: [0, 10_000], help: 'generated variants per cell, checked against the static prediction (default 5)' },
    seed: { type: 'string', arg: 'S', int: SEED_RANGE, help: 'seed of the generated variants (default 1)' },
    report: { type: 'string', default: 'reports/latest', arg: 'DIR', help: 'where matrix.json and matrix.md go' },
  },
  exit: '0, 1 if a hop or a generated variant disagreed with the static check, 2 usage, 3 a host failed',
});

export const serveSpec = command({
  name: 'serve',
  summary: 'the reference model as an nvmx-target/1 process on stdin/stdout (targets/PROTOCOL.md)',
  options: {
    profile: { type: 'string', default: DEFAULT_PROFILE, arg: 'P', help: 'the profile the model answers as' },
    vmm: {
      type: 'string',
      default: 'qemu',
      arg: 'VMM',
      help: 'the reference VMM behind the `vmm` group: `qemu` (stream version 2, which carries hdr.vmx.flags; writes version 1 too) or `qemu-drops-vmx-flags` (version 1 only, declares the known bug drops-vmx-flags)',
    },
  },
  exit: '0, 2',
});

// ---- golden ----

const goldenDir = { type: 'string', arg: 'DIR', help: 'the corpus (default: the golden/ shipped with this tool)' } as const;
const update = { type: 'boolean', default: false, help: 'replace an existing id (refused without it)' } as const;
const idRule = 'lower case letters, digits, dots and dashes';
const idHelp = `the blob id: ${idRule}`;

export const goldenVerifySpec = command({
  name: 'golden verify',
  summary: "every golden blob: sha256, expected content, each consumer profile's result, its recipe",
  details: 'each failure prints `FAIL  <id> [on <profile>]: <reason>` (the rule, for a restore) and a field diff',
  options: { golden: goldenDir, json },
  exit: '0, 1 any failure, 2 usage',
});

export const goldenRecordSpec = command({
  name: 'golden record',
  summary:
    "add the blob a recipe produces (reports/schema/golden-recipe.schema.json), or record existing entries again on a real kernel (--from … --target), with the expected content and every consumer's result",
  details: 'prints what changed; an existing id (or file) is refused without `--update`',
  options: {
    recipe: { type: 'string', arg: 'FILE', help: 'the recipe (required, unless --from)' },
    id: { type: 'string', arg: 'ID', help: `${idHelp} (required with --recipe)` },
    from: {
      type: 'string',
      multiple: true,
      arg: 'ID',
      help: "record an existing entry's recipe again with --target T as the producer, re-profiled to the profile T claims, as `<ID without .linux-x.y>.<T>`; one target start for all",
      row: { exit: '0, 2, 3' },
    },
    target: { type: 'string', arg: 'T', help: 'with --from: the producer (a real kernel: kvm:debian-6.12)' },
    'target-timeout': timeout("with --target: per request (default: the target's own)"),
    update,
    golden: goldenDir,
  },
  exit: '0, 2, 3 (--from: the target failed)',
});

export const goldenAddSpec = command({
  name: 'golden add',
  summary: "import a captured blob: decoded with --profile's layout, expected content and consumer results filled in from the model, for review before commit; warns when it does not decode plausibly",
  details:
    "the warnings (one line each): a page's size or revision id against the profile's layout, a nested-state blob's header (size field, unknown flags, format) and its vmcs12 pages' revision ids and shadow bit",
  options: {
    file: { type: 'string', arg: 'BLOB', required: true, help: 'the captured blob' },
    kind: { type: 'string', arg: 'nested-state|vmcs12|evmcs', required: true, help: 'what it is' },
    id: { type: 'string', arg: 'ID', required: idRule, help: idHelp },
    producer: { type: 'string', arg: 'TEXT', required: 'where the blob comes from', help: 'where it comes from, e.g. "captured from host-a (linux 5.8, QEMU 5.0)"' },
    profile: { type: 'string', default: DEFAULT_PROFILE, arg: 'P', help: "the producer's profile" },
    vcpu: { type: 'string', arg: 'VCPU.json', help: 'the consumer vCPU for a nested-state blob' },
    scenario: { type: 'string', arg: 'TEXT', help: 'what state it holds' },
    comment: { type: 'string', arg: 'TEXT', help: 'a note for the manifest' },
    update,
    golden: goldenDir,
  },
  exit: '0, 2',
});

const goldenGroup: GroupSpec = { name: 'golden', summary: 'the golden corpus of vmcs12 pages, eVMCS pages and nested-state blobs', commands: [goldenVerifySpec, goldenRecordSpec, goldenAddSpec] };

export { filterGroup, goldenGroup, layoutGroup, nestedGroup, reportGroup };

/** Every top-level command and command family, in the order --help and the README list them. */
export const CLI: readonly Entry[] = [checkSpec, replaySpec, reportGroup, layoutGroup, filterGroup, nestedGroup, matrixSpec, serveSpec, goldenGroup];
