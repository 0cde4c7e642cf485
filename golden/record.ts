// Adding a golden entry: from a recipe (`golden record`) or from a captured blob (`golden add`).
// The expected content and every consumer's expected result are filled in from the model, for a
// reviewer to read before committing. An existing id is never overwritten without `update`.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EVMCS, hdrRevision, VMCS12, type ByName } from '../model/catalog/by-name.js';
import { readHeader } from '../model/nested/blob.js';
import { FLAGS, SMM_FLAGS, VMX_HDR_FLAGS } from '../model/nested/constants.js';
import type { VcpuConfig } from '../model/nested/vcpu.js';
import { hex } from '../model/encoding.js';
import { TOOL_VERSION } from '../targets/reference.js';
import type { Target } from '../targets/target.js';
import { UsageError } from '../base/errors.js';
import { decodeContent, diffFlat, flatten } from './content.js';
import { describeResult, observe, toExpected } from './consume.js';
import { compactJson, consumerProfiles, loadManifest, saveManifest, sha256, type ExpectedResult, type GoldenEntry, type GoldenKind, type Recipe } from './manifest.js';
import { produce, producerLayout, RecipeError } from './recipe.js';
import { readBlob } from './verify.js';

/** The capability keys a consumer's answer depends on, read from the blob and the producer's vCPU. */
function capabilities(kind: GoldenKind, bytes: Uint8Array, vcpu?: Partial<VcpuConfig>): Record<string, unknown> {
  // the low 31 bits (bit 31 of a vmcs12's is the shadow indicator), 0 for a page too short to have them
  const revision = (s: ByName, id: string) => (s.fits(bytes, id) ? hdrRevision(s.read(bytes, id)) : 0);
  if (kind === 'vmcs12') return { layoutRevision: hex(revision(VMCS12, 'hdr'), 8) };
  if (kind === 'evmcs') return { evmcsRevision: hex(revision(EVMCS, 'revision_id'), 8), kvmCaps: ['KVM_CAP_HYPERV_ENLIGHTENED_VMCS'] };
  const h = readHeader(bytes);
  const names = [
    ...Object.entries(FLAGS).filter(([, v]) => h.flags & v).map(([k]) => k),
    ...Object.entries(SMM_FLAGS).filter(([, v]) => h.smmFlags & v).map(([k]) => `SMM_${k}`),
    ...Object.entries(VMX_HDR_FLAGS).filter(([, v]) => h.vmxFlags & v).map(([k]) => k),
  ];
  // the oldest uapi that has every bit the blob uses (history.md)
  const uapiRevision = h.vmxFlags || h.preemptionTimerDeadline || h.flags & FLAGS.GIF_SET ? 'linux-5.8' : h.flags & FLAGS.MTF_PENDING ? 'linux-5.6' : h.flags & FLAGS.EVMCS ? 'linux-4.20' : 'linux-4.19';
  const evmcs = vcpu?.evmcsEnabled || h.flags & FLAGS.EVMCS;
  return {
    uapiRevision,
    headerFlags: names,
    hypervCpuid: vcpu?.hypervCpuid ?? false,
    kvmCaps: ['KVM_CAP_NESTED_STATE', ...(evmcs ? ['KVM_CAP_HYPERV_ENLIGHTENED_VMCS' as const] : [])],
  };
}

export interface Draft {
  readonly id: string;
  readonly kind: GoldenKind;
  readonly bytes: Uint8Array;
  readonly producer: GoldenEntry['producer'];
  readonly scenario: string;
  readonly comment?: string;
  readonly recipe?: Recipe;
  readonly producerVcpu?: Partial<VcpuConfig>;
  readonly consumerVcpu?: Partial<VcpuConfig>;
  readonly acceptable?: Recipe['acceptable'];
}

/** Fills in content, capabilities and every consumer's expected result. */
export async function buildEntry(dir: string, d: Draft, targets: (p: string) => Target): Promise<{ entry: GoldenEntry; content: object }> {
  const layout = producerLayout(dir, d.kind, d.producer.profile, d.producer.layout);
  const c = decodeContent(d.kind, layout, d.bytes);
  if (!c.ok) throw new RecipeError(`the blob does not decode: ${c.reason}`);
  const consumers: Record<string, ExpectedResult> = {};
  const probe = { kind: d.kind, ...(d.consumerVcpu ? { consumerVcpu: d.consumerVcpu } : {}) };
  for (const p of consumerProfiles(d.kind)) {
    const observed = toExpected(await observe(targets(p.name), probe, d.bytes, layout));
    consumers[p.name] = d.acceptable?.profiles.includes(p.name) ? { result: 'acceptable', reason: `${d.acceptable.reason} (the model answers ${describeResult(observed)})` } : observed;
  }
  const entry: GoldenEntry = {
    id: d.id,
    kind: d.kind,
    file: `blobs/${d.id}.bin`,
    sha256: sha256(d.bytes),
    size: d.bytes.length,
    producer: d.producer,
    scenario: d.scenario,
    capabilities: capabilities(d.kind, d.bytes, d.producerVcpu),
    ...(d.recipe ? { recipe: d.recipe } : {}),
    expected: { content: `expected/${d.id}.json` },
    ...(d.consumerVcpu ? { consumerVcpu: d.consumerVcpu } : {}),
    consumers,
    ...(d.comment ? { comment: d.comment } : {}),
  };
  return { entry, content: c.content };
}

/** A recipe's draft: runs it on a target of its profile. */
/** `by`: who produced the bytes, when not the model (a real kernel, through its target) */
export async function draftFromRecipe(dir: string, id: string, r: Recipe, targets: (p: string) => Target, by?: string): Promise<Draft> {
  const profile = r.profile ?? 'linux-6.12';
  const produced = await produce(dir, { ...r, profile }, r.kind === 'nested-state' ? targets(profile) : undefined);
  const { scenario, comment, ...recipe } = r; // the rest is stored: enough to record the entry again
  return {
    id,
    kind: r.kind,
    bytes: produced.bytes,
    producer: { profile, by: by ?? `model nvmx-conformance ${TOOL_VERSION}`, ...(r.layout ? { layout: r.layout } : {}) },
    scenario: scenario ?? '(no scenario given)',
    ...(comment ? { comment } : {}),
    recipe: { ...recipe, profile },
    ...(r.vcpu ? { producerVcpu: r.vcpu } : {}),
    ...(r.kind === 'nested-state' ? { consumerVcpu: r.consumerVcpu ?? produced.destination! } : {}),
    ...(r.acceptable ? { acceptable: r.acceptable } : {}),
  };
}

/** Writes blob, expected content and manifest entry; returns what changed, in words. */
export function commitEntry(dir: string, entry: GoldenEntry, content: object, bytes: Uint8Array, update: boolean): string[] {
  const { manifest, problems } = loadManifest(dir);
  if (problems.length) throw new UsageError(`${join(dir, 'manifest.json')}: ${problems[0]!.id}: ${problems[0]!.reason} (fix it before recording)`);
  const i = manifest.entries.findIndex((e) => e.id === entry.id);
  const old = i >= 0 ? manifest.entries[i]! : undefined;
  if (old && !update) throw new UsageError(`golden entry "${entry.id}" exists; pass --update to replace it`);
  if (!old && !update && existsSync(join(dir, entry.file))) throw new UsageError(`${entry.file} exists without a manifest entry; pass --update to replace it`);
  const changes = old ? changesOf(dir, old, entry, bytes) : [`added ${entry.id}: ${entry.kind}, ${entry.size} bytes, sha256 ${entry.sha256.slice(0, 16)}…`, ...Object.entries(entry.consumers).map(([p, r]) => `  ${p}: ${describeResult(r)}`)];
  for (const [rel, data] of [[entry.file, bytes], [entry.expected.content as string, compactJson(content) + '\n']] as const) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), data);
  }
  if (old) manifest.entries[i] = entry;
  else manifest.entries.push(entry);
  saveManifest(dir, manifest);
  return changes;
}

function changesOf(dir: string, old: GoldenEntry, entry: GoldenEntry, bytes: Uint8Array): string[] {
  const out: string[] = [];
  if (old.sha256 !== entry.sha256) {
    out.push(`${entry.id}: bytes changed (sha256 ${old.sha256.slice(0, 16)}… -> ${entry.sha256.slice(0, 16)}…)`);
    const before = readBlob(dir, old);
    if (typeof before !== 'string') {
      const a = decodeContent(old.kind, producerLayout(dir, old.kind, old.producer.profile, old.producer.layout), before);
      const b = decodeContent(entry.kind, producerLayout(dir, entry.kind, entry.producer.profile, entry.producer.layout), bytes);
      if (a.ok && b.ok) for (const d of diffFlat(flatten(old.kind, a.content), flatten(entry.kind, b.content))) out.push(`  ${d.field}: ${d.expected} -> ${d.actual}`);
    }
  }
  for (const p of new Set([...Object.keys(old.consumers), ...Object.keys(entry.consumers)])) {
    const a = old.consumers[p];
    const b = entry.consumers[p];
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${entry.id} on ${p}: ${a ? describeResult(a) : '(none)'} -> ${b ? describeResult(b) : '(none)'}`);
  }
  for (const k of ['recipe', 'scenario', 'comment', 'consumerVcpu', 'producer'] as const)
    if (JSON.stringify(old[k]) !== JSON.stringify(entry[k])) out.push(`${entry.id}: ${k} changed`);
  return out.length ? out : [`${entry.id}: unchanged`];
}
