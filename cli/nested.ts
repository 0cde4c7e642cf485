// `nested decode | encode | restore | save`: blobs as JSON and back, and the model's KVM answering
// a restore (with the rule that decided it) or producing a blob from guest operations.
import { decodeBlob } from '../model/nested/blob.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { blobToSpec, specToBlob, type NestedSpec } from '../model/nested/spec.js';
import { msrSetFromJson } from './filter.js';
import { applyOp, DEFAULT_VCPU, Vcpu, type GuestOp, type VcpuConfig } from '../model/nested/vcpu.js';
import { SIZE_WITH_SHADOW } from '../model/nested/constants.js';
import { isMemoryOp, linkPageSeed, MEMORY_OPS } from '../model/nested/guest-memory.js';
import { opsFromJson, opsToJson } from '../model/nested/ops-json.js';
import { DEFAULT_PROFILE, findProfile, profileNames, type Profile } from '../model/profiles.js';
import type { NestedBehaviour } from '../model/nested/behaviour.js';
import { EXIT, TargetError, UsageError } from '../base/errors.js';
import { openCommandTarget } from './open-target.js';
import type { TargetResult } from '../targets/target.js';
import { writeOutFile } from './fs-out.js';
import { readInputFile, readJsonFile } from './json-input.js';
import { dispatch, durationMs, parse } from './options.js';
import { nestedDecodeSpec as decodeSpec, nestedEncodeSpec as encodeSpec, nestedGroup, nestedRestoreSpec as restoreSpec, nestedSaveSpec as saveSpec } from './spec.js';

export async function nestedCommand(argv: string[]): Promise<number> {
  return dispatch(nestedGroup, argv, { decode, encode, restore, save });
}

function nestedProfile(name: string | undefined): Profile & { nested: NestedBehaviour } {
  const p = findProfile(name ?? DEFAULT_PROFILE);
  if (!p) throw new UsageError(`unknown profile "${name}" (known: ${profileNames().join(', ')})`);
  if (!p.nested) throw new UsageError(`profile ${p.name} has no KVM_GET/SET_NESTED_STATE (it came in 4.19)`);
  return p as Profile & { nested: NestedBehaviour };
}

const jsonOut = (x: unknown) => console.log(JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2));

function decode(argv: string[]): number {
  const { values, positionals } = parse(argv, decodeSpec);
  if (!positionals[0]) throw new UsageError('nested decode needs a blob file');
  const p = nestedProfile(values.profile);
  const d = decodeBlob(new Uint8Array(readInputFile(positionals[0])));
  if (!d.ok) throw new UsageError(`${positionals[0]}: ${d.error}`);
  const spec = blobToSpec(p.vmcs12, d.blob);
  if (values.json) {
    jsonOut(spec);
    return EXIT.ok;
  }
  const h = spec.header;
  console.log(`${positionals[0]}: ${d.blob.length} bytes`);
  console.log(`  flags ${Array.isArray(h.flags) ? h.flags.join('|') || '0' : h.flags}, format ${h.format}, size ${h.size}`);
  console.log(`  vmxon_pa ${h.vmxonPa}, vmcs12_pa ${h.vmcs12Pa}, smm.flags ${h.smmFlags}, hdr.vmx.flags ${h.vmxFlags}, deadline ${h.preemptionTimerDeadline}`);
  for (const [name, page] of [['vmcs12', spec.vmcs12], ['shadow vmcs12', spec.shadowVmcs12]] as const) {
    if (!page) continue;
    const f = page.fields ?? {};
    console.log(`  ${name}: ${Object.keys(f).length} non-zero fields${page.unknownBytes?.length ? `, ${page.unknownBytes.length} runs of non-zero unknown bytes` : ''}`);
    for (const [k, v] of Object.entries(f).slice(0, 12)) console.log(`    ${k.padEnd(32)} ${v}`);
    if (Object.keys(f).length > 12) console.log(`    … (--json for all)`);
  }
  for (const n of spec.notes ?? []) console.log(`  note: ${n}`);
  return EXIT.ok;
}

function encode(argv: string[]): number {
  const { values, positionals } = parse(argv, encodeSpec);
  if (!positionals[0]) throw new UsageError('nested encode needs a SPEC.json (as `nested decode --json` prints)');
  const p = nestedProfile(values.profile);
  const spec = readJsonFile(positionals[0], 'nested-spec') as NestedSpec;
  let blob: Uint8Array;
  try {
    blob = specToBlob(p.vmcs12, spec);
  } catch (e) {
    throw new UsageError(`${positionals[0]}: ${(e as Error).message}`);
  }
  return writeBlob(blob, values.out);
}

function writeBlob(blob: Uint8Array, out: string | undefined): number {
  if (out) writeOutFile(out, blob);
  else if (process.stdout.isTTY) throw new UsageError('refusing to write a binary blob to a terminal: use --out FILE or redirect');
  else process.stdout.write(blob);
  return EXIT.ok;
}

function configFrom(path: string | undefined): VcpuConfig {
  if (!path) return DEFAULT_VCPU;
  const { vmxMsrs, ...rest } = readJsonFile(path, 'vcpu') as Partial<VcpuConfig> & { vmxMsrs?: Record<string, string> };
  return { ...DEFAULT_VCPU, ...rest, ...(vmxMsrs ? { vmxMsrs: msrSetFromJson(vmxMsrs, `${path}: vmxMsrs`) } : {}) };
}

function vcpuFor(p: Profile & { nested: NestedBehaviour }, path: string | undefined): Vcpu {
  return new Vcpu(p, configFrom(path));
}

async function restore(argv: string[]): Promise<number> {
  const { values } = parse(argv, restoreSpec);
  const blobs = values.blob;
  const vcpus = values.vcpu ?? [];
  if (vcpus.length > 1 && vcpus.length !== blobs.length) throw new UsageError(`nested restore: give one --vcpu for all blobs, or one per --blob (${blobs.length}), not ${vcpus.length}`);
  if (values.target !== undefined && values.target !== 'reference') return restoreOnTarget(values.target, blobs, vcpus, values);
  if (blobs.length > 1) throw new UsageError('nested restore answers several --blob only on a --target (the model answers one at a time, with its state)');
  const p = nestedProfile(values.profile);
  const v = vcpuFor(p, vcpus[0]);
  const bytes = new Uint8Array(readInputFile(blobs[0]!));
  const memory = memoryFor(bytes, p, memoryFile(values.memory));
  for (const m of memory) {
    const done = applyOp(v, m.op);
    if (done.result !== 'ok') throw new UsageError(`${m.from}: ${m.op.op} at 0x${('pa' in m.op ? m.op.pa : 0n).toString(16)} failed: ${done.result}${'reason' in done ? ` (${done.reason})` : ''}`);
  }
  const r = setNestedState(v, bytes);
  const state = {
    vmxon: v.vmxon,
    vmxonPtr: v.vmxonPtr,
    currentVmptr: v.currentVmptr,
    evmcs: typeof v.evmptr === 'bigint' ? `0x${v.evmptr.toString(16)}` : v.evmptr,
    guestMode: v.guestMode,
    nestedRunPending: v.nestedRunPending,
    mtfPending: v.mtfPending,
    smm: v.smm,
    preemptionTimerDeadline: v.hasPreemptionTimerDeadline ? v.preemptionTimerDeadline : null,
  };
  const check = r.vmentryCheck !== undefined ? { vmentryCheck: r.vmentryCheck } : {};
  const seeded = memory.length ? { memory: memory.map((m) => ({ ...opsToJson([m.op])[0], from: m.from })) } : {};
  const out = r.errno === null ? { ok: r.ret === 0, ret: r.ret, rule: r.rule, why: r.why, quirks: r.quirks, notModelled: r.notModelled, ...seeded, state } : { ok: false, ret: r.ret, errno: r.errno, rule: r.rule, ...check, why: r.why, quirks: r.quirks, ...seeded, state };
  if (values.json) jsonOut(out);
  else {
    for (const m of memory) console.log(`memory: ${describeMemoryOp(m.op)} (${m.from})`);
    console.log(`${p.name}: KVM_SET_NESTED_STATE returns ${r.ret}${r.errno ? ` (-${r.errno})` : ''} at rule ${r.rule}: ${r.why}`);
    if (r.quirks.length) console.log(`  quirks: ${r.quirks.join(', ')}`);
    for (const n of r.notModelled) console.log(`  note: ${n}`);
  }
  return EXIT.ok;
}

interface MemorySeed {
  readonly op: GuestOp;
  /** where it comes from: the blob (its link page), or the --memory file */
  readonly from: string;
}

/**
 * Guest memory before SET, as the VMM restores it with the nested state: the shadow vmcs12's header
 * at the link pointer, from the blob (as golden verify seeds it), then the --memory file's writes
 * (the eVMCS page, the VP-assist page, anything else a restore reads).
 */
function memoryFor(blob: Uint8Array | null, p: Profile, fromFile: readonly MemorySeed[]): MemorySeed[] {
  const link = blob ? linkPageSeed(blob, p.vmcs12) : null;
  return [...(link ? [{ op: link, from: "the blob's shadow vmcs12 at its link pointer" }] : []), ...fromFile];
}

/** The --memory file: guest-ops JSON holding only operations that restore memory. */
function memoryFile(file: string | undefined): MemorySeed[] {
  if (file === undefined) return [];
  const ops = opsFromJson(readJsonFile(file, 'guest-ops') as Record<string, unknown>[]);
  return ops.map((o, i) => {
    if (!isMemoryOp(o)) throw new UsageError(`${file}: /${i}/op: --memory takes only ${MEMORY_OPS.join(', ')} (guest memory a restore reads), got "${o.op}"; guest operations go to \`nested save --ops\``);
    return { op: o, from: `${file}#${i}` };
  });
}

function describeMemoryOp(o: GuestOp): string {
  const hex = (n: bigint) => `0x${n.toString(16)}`;
  switch (o.op) {
    case 'write-memory':
      return `8 bytes ${hex(o.value)} at ${hex(o.pa)}`;
    case 'init-vmcs':
      return `a ${o.shadow ? 'shadow ' : ''}VMCS region at ${hex(o.pa)}`;
    case 'init-evmcs':
      return `an eVMCS page (revision ${o.revision ?? 1}) at ${hex(o.pa)}`;
    case 'set-vp-assist':
      return `VP-assist page: current nested VMCS ${hex(o.currentNestedVmcs)}, enlightened VM-entry ${o.enlightenVmentry ? 'on' : 'off'}`;
    default:
      return o.op;
  }
}

/**
 * Each blob on a fresh vCPU of the target, beside the model's answer for the profile the target
 * claims: a real kernel does not know rule names, the model says which rule its answer comes from.
 */
const NULL_BLOB = '@null';

async function restoreOnTarget(spec: string, blobs: string[], vcpus: string[], values: { json?: boolean; profile?: string | undefined; memory?: string | undefined; 'target-timeout'?: string | undefined }): Promise<number> {
  // `@null`: KVM_SET_NESTED_STATE with a NULL pointer (the selftest's first case)
  const cases = blobs.map((b, i) => ({ blob: b === NULL_BLOB ? null : new Uint8Array(readInputFile(b)), name: b, config: configFrom(vcpus[vcpus.length > 1 ? i : 0]) }));
  const fromFile = memoryFile(values.memory);
  const timeout = durationMs(values['target-timeout']);
  const params = { target: spec, profile: values.profile ?? DEFAULT_PROFILE, ...(timeout !== undefined ? { targetTimeoutMs: timeout } : {}) };
  const target = await openCommandTarget(params);
  try {
    const p = nestedProfile(target.identity.profile ?? params.profile);
    const out = [];
    for (const c of cases) {
      const memory = memoryFor(c.blob, p, fromFile);
      const v = must(await target.createVcpu(c.config), 'create-vcpu');
      for (const s of memory) must(await target.guestOp(v, s.op), `${s.op.op} (${s.from})`);
      const r = must(await target.setNestedState(v, c.blob), 'set-nested-state');
      await target.destroyVcpu(v);
      const mv = new Vcpu(p, c.config);
      for (const s of memory) applyOp(mv, s.op);
      const m = setNestedState(mv, c.blob);
      const agrees = m.ret === r.ret && m.errno === r.errno;
      out.push({ blob: c.name, ok: r.errno === null && r.ret === 0, ret: r.ret, errno: r.errno, ...(r.rule ? { rule: r.rule } : {}), model: { profile: p.name, ret: m.ret, errno: m.errno, rule: m.rule }, agrees });
      if (!values.json)
        console.log(`${c.name}: ${target.identity.name} ${target.identity.version}: KVM_SET_NESTED_STATE returns ${r.ret}${r.errno ? ` (-${r.errno})` : ''}; ${p.name} model: ${m.ret}${m.errno ? ` (-${m.errno})` : ''} at rule ${m.rule}${agrees ? '' : '  DIFFERS'}`);
    }
    if (values.json) jsonOut(blobs.length === 1 ? out[0] : out);
    return EXIT.ok;
  } finally {
    await target.close();
  }

  function must<T>(r: TargetResult<T>, what: string): T {
    if (r.status === 'ok') return r.value;
    throw new TargetError(`${spec}: ${what} ${r.status === 'unsupported' ? 'is unsupported' : 'failed'}: ${r.reason}`);
  }
}

function parseOps(path: string): GuestOp[] {
  return opsFromJson(readJsonFile(path, 'guest-ops') as Record<string, unknown>[]);
}

function save(argv: string[]): number {
  const { values } = parse(argv, saveSpec);
  const p = nestedProfile(values.profile);
  const v = vcpuFor(p, values.vcpu);
  const ops = parseOps(values.ops);
  const results = ops.map((o) => ({ op: o.op, ...applyOp(v, o) }));
  const g = getNestedState(v, SIZE_WITH_SHADOW);
  const blob = g.buffer.subarray(0, g.size);
  if (values.json) {
    const d = decodeBlob(blob);
    jsonOut({ results, blob: d.ok ? blobToSpec(p.vmcs12, d.blob) : null });
    return EXIT.ok;
  }
  for (const r of results) if (r.result !== 'ok') console.error(`nvmx-conformance: note: ${r.op}: ${r.result}${'reason' in r ? ` (${r.reason})` : ''}`);
  return writeBlob(blob, values.out);
}
