// The `golden` section of report.json: each golden blob's result on the run's target (its profile
// as the consumer), next to what the manifest expects. The golden properties decide pass/fail of
// the run; this section says which blob did what.
import type { Target } from '../targets/target.js';
import { targetErrorOf } from '../harness/property.js';
import { describeResult, judge, observe } from './consume.js';
import { defaultGoldenDir, loadManifest } from './manifest.js';
import { producerLayout } from './recipe.js';
import { integrity, readBlob } from './verify.js';

export interface GoldenBlobRecord {
  id: string;
  kind: string;
  producer: string;
  /** `error`: the target broke (crashed, hung, lied) and gave no answer to judge */
  verdict: 'pass' | 'fail' | 'not-applicable' | 'error';
  expected?: string;
  observed?: string;
  reason?: string;
}

export interface GoldenSection {
  profile: string;
  summary: { pass: number; fail: number; 'not-applicable': number; error: number };
  blobs: GoldenBlobRecord[];
}

/** `signal` stops the section between blobs (a stop signal): the caller then has no section, so it gets undefined. */
export async function goldenSection(target: Target, dir = defaultGoldenDir(), signal?: AbortSignal): Promise<GoldenSection | undefined> {
  const profile = target.identity.profile ?? '';
  const { manifest, problems } = loadManifest(dir);
  const blobs: GoldenBlobRecord[] = [];
  for (const e of manifest.entries) {
    if (signal?.aborted) return undefined;
    const base = { id: e.id, kind: e.kind, producer: e.producer.profile };
    const schema = problems.find((p) => p.id === e.id);
    const expected = e.consumers?.[profile];
    const needs = e.kind === 'nested-state' ? 'nested-state' : 'layout-revisions';
    if (schema) {
      blobs.push({ ...base, verdict: 'fail', reason: schema.reason });
      continue;
    }
    if (!expected || !target.groups.has(needs)) {
      blobs.push({ ...base, verdict: 'not-applicable', reason: expected ? `target lacks ${needs}` : `no expected result for ${profile}` });
      continue;
    }
    const bytes = readBlob(dir, e);
    const bad = typeof bytes === 'string' ? bytes : integrity(e, bytes);
    if (bad || typeof bytes === 'string') {
      blobs.push({ ...base, verdict: 'fail', expected: describeResult(expected), reason: bad ?? '' });
      continue;
    }
    try {
      const o = await observe(target, e, bytes, producerLayout(dir, e.kind, e.producer.profile, e.producer.layout));
      const j = judge(expected, o);
      blobs.push({ ...base, verdict: j.ok ? 'pass' : 'fail', expected: describeResult(expected), observed: describeResult(o), ...(j.ok ? {} : { reason: j.reason }) });
    } catch (err) {
      // a target that broke gave no answer: an error, not a failure of the blob; a bad layout file is a failure
      const broke = targetErrorOf(err);
      blobs.push({ ...base, verdict: broke ? 'error' : 'fail', expected: describeResult(expected), reason: `error: ${(err as Error).message}` });
    }
  }
  if (signal?.aborted) return undefined;
  const summary = { pass: 0, fail: 0, 'not-applicable': 0, error: 0 };
  for (const b of blobs) summary[b.verdict]++;
  return { profile, summary, blobs };
}
