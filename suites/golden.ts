// Golden blobs against the target: old-revision readability (every blob a producer no newer than
// the target's profile wrote gets the manifest's result, and reads back every field the producer
// knew) and recipe stability (each recipe regenerates byte-identical bytes, or the diff says how
// they differ). One case holds the whole corpus; a failure shrinks to the blob id. On a target that
// reports its VMX MSRs, a blob or recipe those capabilities change is judged against the model's
// answer given them, and counted apart as untestable there (golden/capabilities.ts, README K6).
import fc from 'fast-check';
import { judgeOnTarget, rerunOnTarget, type BlobVerdict } from '../golden/capabilities.js';
import { defaultGoldenDir, loadManifest, profileRank, type GoldenEntry } from '../golden/manifest.js';
import { producerLayout } from '../golden/recipe.js';
import { integrity, readBlob } from '../golden/verify.js';
import { blobSet } from '../generators/blob-set.js';
import { profileOf } from '../harness/common.js';
import { TargetStop, Violation, type PropertyContext, type PropertyDef } from '../harness/property.js';

interface Corpus {
  readonly dir: string;
  readonly entries: ReadonlyMap<string, GoldenEntry>;
}

/** The committed corpus; a manifest that fails its schema is a broken corpus, not an empty one. */
export function loadCorpus(): Corpus {
  const dir = defaultGoldenDir();
  const { manifest, problems } = loadManifest(dir);
  if (problems.length) throw new Error(`golden manifest: ${problems[0]!.id}: ${problems[0]!.reason}`);
  return { dir, entries: new Map(manifest.entries.map((e) => [e.id, e])) };
}

/** The blob's bytes, after the integrity check: a tampered blob is a violation naming it. */
export function bytesOf(c: Corpus, e: GoldenEntry): Uint8Array {
  const b = readBlob(c.dir, e);
  const bad = typeof b === 'string' ? b : integrity(e, b);
  if (bad) throw new Violation(`golden blob ${e.id}: ${bad}`);
  return b as Uint8Array;
}

/**
 * Each chosen blob judged: a failure is the case's violation. A blob the target's capabilities leave
 * untestable (golden/capabilities.ts), though it answered as they predict, is a skipped part of the
 * case, counted in the outcome; a corpus of nothing else leaves the property unsupported.
 */
export async function judgeEach(ctx: PropertyContext, all: readonly string[], chosen: readonly string[], one: (id: string) => Promise<{ label: string; verdict: BlobVerdict }>): Promise<void> {
  let skipped = 0;
  let first = '';
  for (const id of chosen) {
    const { label, verdict: v } = await one(id);
    if (v.verdict === 'fail') throw new Violation(`${label}: ${v.reason}`, v.diff);
    if (v.verdict === 'unsupported') {
      ctx.skipPart?.(id, (first ||= `${label}: ${v.reason}`));
      skipped++;
    }
  }
  if (all.length && skipped === all.length) throw new TargetStop({ status: 'unsupported', reason: `every golden blob is one the target's capabilities leave untestable; the first: ${first}` });
}

function readable(kinds: readonly GoldenEntry['kind'][]) {
  return async (ctx: PropertyContext) => {
    const c = loadCorpus();
    const profile = profileOf(ctx.target).name;
    const ids = [...c.entries.values()].filter((e) => kinds.includes(e.kind) && profileRank(e.producer.profile) <= profileRank(profile) && e.consumers[profile]).map((e) => e.id);
    return fc.asyncProperty(blobSet(ids), async (chosen) =>
      judgeEach(ctx, ids, chosen, async (id) => {
        const e = c.entries.get(id)!;
        const layout = producerLayout(c.dir, e.kind, e.producer.profile, e.producer.layout);
        const { verdict } = await judgeOnTarget(ctx.target, e, bytesOf(c, e), layout, e.consumers[profile]!);
        return { label: `golden blob ${id} (${e.producer.profile}) on ${profile}`, verdict };
      }),
    );
  };
}

export const goldenNestedReadable: PropertyDef = {
  id: 'golden.nested-state.old-readable',
  description: 'Restores every golden nested-state blob from a profile no newer than the target on a vCPU configured as its manifest entry says, and compares the answer and the GET after it with the manifest.',
  invariant:
    "every golden nested-state blob written by a profile no newer than the target gets its manifest result from SET, and GET after SET gives back every field the producer wrote (or the recorded difference); on a target reporting VMX MSRs that change a blob's result, it gets the model's result given them (counted as skipped)",
  groups: ['nested-state'],
  runs: 1,
  build: readable(['nested-state']),
};

export const goldenPagesReadable: PropertyDef = {
  id: 'golden.pages.old-readable',
  description: "Reads every golden vmcs12 and eVMCS page through the target's layout and revision reader and compares every field the producer knew with the manifest's expected content.",
  invariant: 'every golden vmcs12 / eVMCS page written by a profile (or known revision) no newer than the target reads, through the target\'s layout and revision reader, with every field the producer knew intact',
  groups: ['layout', 'layout-revisions'],
  runs: 1,
  build: readable(['vmcs12', 'evmcs']),
};

export const goldenRecipesStable: PropertyDef = {
  id: 'golden.recipes.stable',
  description: "Regenerates every golden blob of the target's profile from its recorded recipe (profile, vCPU, guest operations) and compares the bytes.",
  invariant:
    "every golden recipe of the target's profile (and every page recipe) regenerates byte-identical bytes; on a target reporting VMX MSRs that change a recipe's bytes, the model's bytes given them (counted as skipped)",
  groups: ['nested-state'],
  runs: 1,
  async build(ctx) {
    const c = loadCorpus();
    const profile = profileOf(ctx.target).name;
    const ids = [...c.entries.values()].filter((e) => e.recipe && (e.kind !== 'nested-state' || e.recipe.profile === profile)).map((e) => e.id);
    return fc.asyncProperty(blobSet(ids), async (chosen) =>
      judgeEach(ctx, ids, chosen, async (id) => {
        const e = c.entries.get(id)!;
        return { label: `golden blob ${id}`, verdict: await rerunOnTarget(c.dir, e, bytesOf(c, e), ctx.target) };
      }),
    );
  },
};

export const goldenSuite: readonly PropertyDef[] = [goldenNestedReadable, goldenPagesReadable, goldenRecipesStable];
