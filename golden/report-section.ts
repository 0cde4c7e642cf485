// The golden section of report.json (`sections.golden`): each golden blob's result on the run's
// target (its profile as the consumer), next to what the manifest expects. Every blob the manifest
// gives a result for on that profile is a finding, `golden-blob.<blob id>`, so it counts in the
// verdict and a waiver can name it; blobs with no recorded result on the profile are listed apart,
// because there is nothing to judge them against.
import type { Target } from '../targets/target.js';
import { targetErrorOf } from '../harness/property.js';
import { judgeOnTarget } from './capabilities.js';
import { describeResult } from './consume.js';
import { defaultGoldenDir, loadManifest, type GoldenEntry } from './manifest.js';
import { producerLayout } from './recipe.js';
import { integrity, readBlob } from './verify.js';

// a type, not an interface: reports/ adds it to its Finding, whose index signature an interface would not satisfy
export type GoldenBlobResult = {
  /** the finding id waivers name */
  id: string;
  blob: string;
  kind: GoldenEntry['kind'];
  producer: string;
  /**
   * `unsupported`: the target lacks the operations the blob needs, or the VMX capabilities its L2
   * needs (it answered as the model given its MSRs does; `detail` names the missing bits);
   * `error`: it broke (crashed, hung, lied)
   */
  verdict: 'pass' | 'fail' | 'unsupported' | 'error';
  expected?: string;
  observed?: string;
  detail?: string;
};

export interface GoldenSection {
  profile: string;
  blobs: GoldenBlobResult[];
  /** blob ids the manifest records no result for on `profile` */
  notApplicable: string[];
}

/** Finding ids of blobs live beside property ids (one namespace for waivers); `golden.*` is the properties'. */
export const goldenFindingId = (blob: string): string => `golden-blob.${blob}`;

/** How many field names of a diff the one-line detail names before "…". */
const DETAIL_FIELDS = 4;

/** `signal` stops the section between blobs (a stop signal): the caller then has no section, so it gets undefined. */
export async function goldenSection(target: Target, dir = defaultGoldenDir(), signal?: AbortSignal): Promise<GoldenSection | undefined> {
  const profile = target.identity.profile ?? '';
  const { manifest, problems } = loadManifest(dir);
  const blobs: GoldenBlobResult[] = [];
  const notApplicable: string[] = [];
  for (const e of manifest.entries) {
    if (signal?.aborted) return undefined;
    const base = { id: goldenFindingId(e.id), blob: e.id, kind: e.kind, producer: e.producer.profile };
    const schema = problems.find((p) => p.id === e.id);
    const expected = e.consumers?.[profile];
    const needs = e.kind === 'nested-state' ? 'nested-state' : 'layout-revisions';
    if (schema) {
      blobs.push({ ...base, verdict: 'fail', detail: schema.reason });
      continue;
    }
    if (!expected) {
      notApplicable.push(e.id);
      continue;
    }
    if (!target.groups.has(needs)) {
      blobs.push({ ...base, verdict: 'unsupported', expected: describeResult(expected), detail: `target lacks ${needs}` });
      continue;
    }
    const bytes = readBlob(dir, e);
    const bad = typeof bytes === 'string' ? bytes : integrity(e, bytes);
    if (bad || typeof bytes === 'string') {
      blobs.push({ ...base, verdict: 'fail', expected: describeResult(expected), detail: bad ?? '' });
      continue;
    }
    try {
      const { observed, verdict: v } = await judgeOnTarget(target, e, bytes, producerLayout(dir, e.kind, e.producer.profile, e.producer.layout), expected);
      // the fields that read back wrong, by name (a wrong result or rule is in the reason already)
      const fields = v.verdict === 'fail' ? v.diff.map((d) => d.field).filter((f) => f !== 'result' && f !== 'rule') : [];
      const named = fields.length ? `: ${fields.slice(0, DETAIL_FIELDS).join(', ')}${fields.length > DETAIL_FIELDS ? ', …' : ''}` : '';
      blobs.push({ ...base, verdict: v.verdict, expected: describeResult(expected), observed: describeResult(observed), ...(v.verdict === 'pass' ? {} : { detail: v.reason + named }) });
    } catch (err) {
      // a target that broke gave no answer: an error, not a failure of the blob; a bad layout file is a failure
      const broke = targetErrorOf(err);
      blobs.push({ ...base, verdict: broke ? 'error' : 'fail', expected: describeResult(expected), detail: `error: ${(err as Error).message}` });
    }
  }
  if (signal?.aborted) return undefined;
  return { profile, blobs, notApplicable };
}
