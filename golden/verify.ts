// `golden verify`: every check a golden entry must pass, as findings naming the blob (and the
// consumer profile, with a field diff and the rule, where one is involved). Checks: the manifest's
// schema, the file and its sha256 and size, the decoded content against the expected content, every
// listed consumer's answer (and that every nested profile newer than the producer is listed), the
// recipe regenerating the same bytes, and no blob file without an entry.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FieldDiff } from '../model/codec.js';
import { referenceTarget } from '../targets/reference.js';
import type { Target } from '../targets/target.js';
import { diffBlobs } from '../harness/nested-common.js';
import { decodeContent, diffFlat, expectedContent, flatten } from './content.js';
import { judge, observe } from './consume.js';
import { blobPath, consumerProfiles, loadManifest, profileRank, sha256, type GoldenEntry, type Recipe } from './manifest.js';
import { produce, producerLayout, RecipeError, type Produced } from './recipe.js';

export interface Finding {
  readonly id: string;
  readonly profile?: string;
  readonly reason: string;
  readonly diff: readonly FieldDiff[];
}

export interface EntryVerdict {
  readonly id: string;
  readonly kind: string;
  readonly producer: string;
  /** consumer profile -> pass | fail */
  readonly consumers: Record<string, 'pass' | 'fail'>;
  readonly findings: Finding[];
}

/** One reference target per profile, reused across entries. */
export function referencePool(): (profile: string) => Target {
  const pool = new Map<string, Target>();
  return (profile) => {
    let t = pool.get(profile);
    if (!t) pool.set(profile, (t = referenceTarget({ profile })));
    return t;
  };
}

export function readBlob(dir: string, e: GoldenEntry): Uint8Array | string {
  const path = blobPath(dir, e);
  if (!existsSync(path)) return `blob file ${e.file} is missing`;
  return new Uint8Array(readFileSync(path));
}

/** Integrity: the bytes are the ones the manifest names. */
export function integrity(e: GoldenEntry, bytes: Uint8Array): string | null {
  const h = sha256(bytes);
  if (h !== e.sha256) return `sha256 of ${e.file} is ${h.slice(0, 16)}…, the manifest says ${e.sha256.slice(0, 16)}…`;
  if (bytes.length !== e.size) return `${e.file} is ${bytes.length} bytes, the manifest says ${e.size}`;
  return null;
}

/** A recipe run: what it produced, or why it could not run as written (a RecipeError's message). */
export async function rerun(dir: string, r: Recipe, target?: Target): Promise<Produced | string> {
  try {
    return await produce(dir, r, target);
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    return err.message;
  }
}

/**
 * A run against what it should give: the committed bytes (or, on a target of other capabilities,
 * what the model predicts there: bytes or a reason it cannot run); null when it gives that, else a
 * finding with a diff explaining how they differ.
 */
export function compareRun(dir: string, e: GoldenEntry, want: Uint8Array | string, got: Produced | string): Finding | null {
  if (typeof want === 'string') {
    if (got === want) return null;
    const actual = typeof got === 'string' ? got : 'it runs';
    return { id: e.id, reason: `the recipe should stop (${want}), but: ${actual}`, diff: [{ field: 'recipe', offset: -1, expected: want, actual }] };
  }
  if (typeof got === 'string') return { id: e.id, reason: `recipe cannot run: ${got}`, diff: [] };
  if (sha256(got.bytes) === sha256(want)) return null;
  const diff = e.kind === 'nested-state' ? diffBlobs(want, got.bytes) : pageDiff(dir, e, want, got.bytes);
  return { id: e.id, reason: `the recipe now produces different bytes (${diff.length} difference(s))`, diff };
}

/** The recipe regenerates byte-identical bytes, or a diff explaining how they differ. */
export async function regenerate(dir: string, e: GoldenEntry, bytes: Uint8Array, target?: Target): Promise<Finding | null> {
  return e.recipe ? compareRun(dir, e, bytes, await rerun(dir, e.recipe, target)) : null;
}

/** Two pages of the entry's kind, compared field by field under the producer's layout. */
function pageDiff(dir: string, e: GoldenEntry, before: Uint8Array, after: Uint8Array): FieldDiff[] {
  const layout = producerLayout(dir, e.kind, e.producer.profile, e.producer.layout);
  const a = decodeContent(e.kind, layout, before);
  const b = decodeContent(e.kind, layout, after);
  return a.ok && b.ok ? diffFlat(flatten(e.kind, a.content), flatten(e.kind, b.content)) : [{ field: 'length', offset: -1, expected: String(before.length), actual: String(after.length) }];
}

async function verifyEntry(dir: string, e: GoldenEntry, targets: (p: string) => Target, out: EntryVerdict): Promise<void> {
  const find = (reason: string, diff: readonly FieldDiff[] = [], profile?: string) => out.findings.push({ id: e.id, reason, diff, ...(profile ? { profile } : {}) });
  // one file per id, named after it: two entries can never share (or swap) bytes unnoticed
  if (e.file !== `blobs/${e.id}.bin`) find(`file ${e.file} is not blobs/${e.id}.bin`);
  const bytes = readBlob(dir, e);
  if (typeof bytes === 'string') return void find(bytes);
  const bad = integrity(e, bytes);
  if (bad) return void find(bad);
  if (e.recipe && e.recipe.profile !== undefined && e.recipe.profile !== e.producer.profile) find(`producer profile ${e.producer.profile} is not the recipe's ${e.recipe.profile}`);
  if (e.recipe && e.recipe.kind !== e.kind) find(`kind ${e.kind} is not the recipe's ${e.recipe.kind}`);
  let layout;
  try {
    layout = producerLayout(dir, e.kind, e.producer.profile, e.producer.layout);
  } catch (err) {
    if (err instanceof RecipeError) return void find(err.message);
    throw err;
  }
  const want = expectedContent(dir, e);
  const got = decodeContent(e.kind, layout, bytes);
  if (!want.ok) find(want.reason);
  else if (!got.ok) find(`does not decode: ${got.reason}`);
  else {
    const diff = diffFlat(flatten(e.kind, want.content), flatten(e.kind, got.content));
    if (diff.length) find(`decodes differently from the expected content (${diff.length} field(s))`, diff);
  }
  const rank = profileRank(e.producer.profile);
  const possible = consumerProfiles(e.kind);
  for (const p of possible) if (profileRank(p.name) >= rank && !e.consumers[p.name]) find(`no expected result for consumer ${p.name}, newer than the producer`, [], p.name);
  for (const [profile, expected] of Object.entries(e.consumers)) {
    if (!possible.some((p) => p.name === profile)) {
      find(`consumer ${profile} cannot read a ${e.kind} blob`, [], profile);
      continue;
    }
    const j = judge(expected, await observe(targets(profile), e, bytes, layout));
    out.consumers[profile] = j.ok ? 'pass' : 'fail';
    if (!j.ok) find(j.reason, j.diff, profile);
  }
  const r = await regenerate(dir, e, bytes, e.kind === 'nested-state' && e.recipe?.profile ? targets(e.recipe.profile) : undefined);
  if (r) out.findings.push(r);
}

export async function verifyGolden(dir: string, targets: (p: string) => Target = referencePool()): Promise<EntryVerdict[]> {
  const { manifest, problems } = loadManifest(dir);
  const verdicts: EntryVerdict[] = [];
  const seen = new Set<string>();
  for (const [i, e] of manifest.entries.entries()) {
    const id = typeof e?.id === 'string' ? e.id : `entry #${i}`;
    const v: EntryVerdict = { id, kind: String(e?.kind), producer: String(e?.producer?.profile), consumers: {}, findings: [] };
    verdicts.push(v);
    const schema = problems.filter((p) => p.id === id);
    if (seen.has(id)) v.findings.push({ id, reason: 'the id is used twice', diff: [] });
    seen.add(id);
    // a malformed entry cannot be checked further: its schema problems are the findings
    if (schema.length) v.findings.push(...schema.map((p) => ({ id, reason: p.reason, diff: [] })));
    else await verifyEntry(dir, e, targets, v);
  }
  for (const p of problems.filter((x) => !manifest.entries.some((e) => e?.id === x.id) && !x.id.startsWith('entry #')))
    verdicts.push({ id: p.id, kind: '?', producer: '?', consumers: {}, findings: [{ id: p.id, reason: p.reason, diff: [] }] });
  const listed = new Set(manifest.entries.map((e) => e?.file));
  const blobs = join(dir, 'blobs');
  for (const f of existsSync(blobs) ? readdirSync(blobs) : [])
    if (!listed.has(`blobs/${f}`)) verdicts.push({ id: f, kind: '?', producer: '?', consumers: {}, findings: [{ id: f, reason: `blobs/${f} has no manifest entry`, diff: [] }] });
  return verdicts;
}
