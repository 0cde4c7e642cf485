// Producing a golden blob from its recipe. Nested state goes through the target interface (guest
// operations, GET, optionally SET on a fresh vCPU and GET again), so a real target can be asked to
// regenerate it too; pages are encoded from a layout, a seed and field values. Deterministic: the
// page fill uses its own xorshift32, not fast-check's generator, so a library upgrade cannot move it.
import { codecFor, emptyRecord, encode, normalise, setSlot } from '../model/codec.js';
import { compileLayout, type Layout, type LayoutDescriptor } from '../model/layout.js';
import { readHeader, writeHeader } from '../model/nested/blob.js';
import { opsFromJson } from '../model/nested/ops-json.js';
import { headerFromSpec, type NestedSpec } from '../model/nested/spec.js';
import { DEFAULT_VCPU, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { validate } from '../base/schemas.js';
import { must, TargetStop } from '../harness/property.js';
import { departedAtSave, getFull, reach } from '../harness/nested-common.js';
import type { Target } from '../targets/target.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GoldenKind, Recipe } from './manifest.js';

/** A recipe that cannot be carried out as written: one line, naming what is wrong. */
export class RecipeError extends Error {}

export interface Produced {
  readonly bytes: Uint8Array;
  /** nested state: the vCPU a VMM restores on at the destination (capability and SMM as the guest left them) */
  readonly destination?: VcpuConfig;
  /** guest operations KVM refused, in words (a recipe may mean them: VMRESUME before VMLAUNCH) */
  readonly refused: readonly string[];
}

/** The layout a blob of this kind was written with: the producer profile's, or a descriptor under golden/. */
export function producerLayout(dir: string, kind: GoldenKind, profileName: string, layoutFile?: string): Layout {
  const profile = findProfile(profileName);
  if (!profile) throw new RecipeError(`unknown profile "${profileName}"`);
  if (layoutFile !== undefined) {
    if (kind !== 'vmcs12') throw new RecipeError('only vmcs12 pages take a layout file');
    const path = join(dir, layoutFile);
    if (!existsSync(path)) throw new RecipeError(`layout ${layoutFile}: no such file under ${dir}`);
    const json = JSON.parse(readFileSync(path, 'utf8')) as LayoutDescriptor;
    const problems = validate('layout', json);
    if (problems.length) throw new RecipeError(`layout ${layoutFile}: ${problems[0]}`);
    const c = compileLayout(json);
    if (!c.ok) throw new RecipeError(`layout ${layoutFile}: ${c.problems[0]!.path}: ${c.problems[0]!.message}`);
    return c.value;
  }
  if (kind === 'evmcs') {
    if (!profile.evmcs) throw new RecipeError(`profile ${profileName} has no eVMCS model`);
    return profile.evmcs.layout;
  }
  return profile.vmcs12;
}

/** xorshift32: the page fill of a seeded recipe (stable across library versions). */
function* xorshift32(seed: number): Generator<number> {
  let x = seed >>> 0 || 1;
  for (;;) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    yield x;
  }
}

function producePage(layout: Layout, r: Recipe): Uint8Array {
  const codec = codecFor(layout);
  const rec = emptyRecord(codec);
  if (r.seed !== undefined) {
    const rnd = xorshift32(r.seed);
    codec.slots.forEach((_, i) => setSlot(rec, i, (BigInt(rnd.next().value!) << 32n) | BigInt(rnd.next().value!)));
  }
  // the revision id in the first u32, unless the recipe writes that member itself
  const head = codec.slots.findIndex((s) => s.offset === 0 && s.bytes === 4);
  if (head >= 0 && layout.revision !== null) setSlot(rec, head, BigInt(layout.revision));
  for (const [name, v] of Object.entries(r.fields ?? {})) {
    const i = codec.slotIndex.get(name);
    if (i === undefined) throw new RecipeError(`${layout.structure} layout ${layout.name} has no member ${name}`);
    setSlot(rec, i, BigInt(v));
  }
  return encode(codec, normalise(codec, rec));
}

/** QEMU carriers, invalid blobs: header fields rewritten, bytes patched, the buffer cut. */
export function mutateBlob(blob: Uint8Array, m: NonNullable<Recipe['mutate']>): Uint8Array {
  let out = blob.slice();
  if (m.header) writeHeader(out, { ...readHeader(out), ...headerFromSpec(m.header as NestedSpec['header']) });
  for (const p of m.patch ?? []) {
    const bytes = Buffer.from(p.hex, 'hex');
    if (p.offset + bytes.length > out.length) throw new RecipeError(`patch at ${p.offset} runs past the ${out.length}-byte blob`);
    out.set(bytes, p.offset);
  }
  if (m.truncate !== undefined) out = out.slice(0, m.truncate);
  return out;
}

/** Runs a recipe. Nested state needs a target whose profile is the recipe's. */
export async function produce(dir: string, r: Recipe, target?: Target): Promise<Produced> {
  if (r.kind !== 'nested-state') {
    return { bytes: producePage(producerLayout(dir, r.kind, r.profile ?? 'linux-6.12', r.layout), r), refused: [] };
  }
  if (!target) throw new RecipeError('a nested-state recipe needs a target');
  if (target.identity.profile !== r.profile) throw new RecipeError(`recipe for ${r.profile} run on a ${target.identity.profile} target`);
  const ctx = { target };
  const config: VcpuConfig = { ...DEFAULT_VCPU, ...r.vcpu };
  const ops = opsFromJson(r.ops ?? []);
  const src = await reach(ctx, config, ops);
  // a real L2 runs its code: the state is then not the recipe's (README K19), nothing to record or compare
  const left = departedAtSave(src);
  const why = left ? `${left.field} (${left.name})` : src.l2RanCode ? "L2 ran its code: its execution state is the target's own (L2_RUNS_ITS_CODE)" : null;
  if (why) {
    await target.destroyVcpu(src.vcpu);
    throw new TargetStop({ status: 'unsupported', reason: `the target's guest left the recipe's state: ${why}` });
  }
  const refused = src.results.flatMap((x, i) => (x.result === 'ok' ? [] : [`${ops[i]!.op}: ${x.result} (${x.reason})`]));
  let bytes = await getFull(ctx, src.vcpu);
  await target.destroyVcpu(src.vcpu);
  if (r.migrate) {
    // the destination before its first KVM_RUN: what a second migration would carry
    const dst = must(await target.createVcpu(src.destination));
    const s = must(await target.setNestedState(dst, bytes));
    if (s.ret !== 0) throw new RecipeError(`migrate: SET of the source blob answered ${s.ret} at rule ${s.rule}`);
    bytes = await getFull(ctx, dst);
    await target.destroyVcpu(dst);
  }
  if (r.mutate) bytes = mutateBlob(bytes, r.mutate);
  return { bytes, destination: src.destination, refused };
}
