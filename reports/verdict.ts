// The overall verdict and the exit code, from every finding a report holds (properties and the
// section entries). The rules, in order:
//   1. any failure, waived or not, makes the verdict `incompatible`: a waiver records that a
//      failure is accepted for now, it does not turn it into evidence of compatibility;
//   2. otherwise any unsupported property, any error, or an incomplete run makes it `unknown`;
//   3. otherwise `compatible`.
// Waivers act on the exit code only: a run whose only failures are waived exits 0.
import type { Finding, PropertyRecord, ReportBody, Sections, Summary } from './report-types.js';

export const EXIT_CODES = { ok: 0, failure: 1, noVerdict: 3 } as const;

/** Every finding of a report, properties first, then sections in schema order. */
export function allFindings(r: { properties: readonly PropertyRecord[]; sections?: Sections | undefined }): Finding[] {
  const s = r.sections ?? {};
  return [...r.properties, ...(s.layoutDiffs ?? []), ...(s.golden?.blobs ?? [])];
}

export function judge(body: ReportBody): { summary: Summary; verdict: 'compatible' | 'incompatible' | 'unknown'; reason: string } {
  const summary: Summary = { pass: 0, 'expected-fail': 0, fail: 0, unsupported: 0, error: 0, waived: 0 };
  for (const f of allFindings(body)) summary[f.verdict]++;
  const { fail, waived, unsupported, error } = summary;
  if (fail || waived) {
    const waivedNote = waived ? `${waived} waived failure(s) (waivers change the exit code, not the verdict)` : '';
    return { summary, verdict: 'incompatible', reason: [fail ? `${fail} failure(s)` : '', waivedNote].filter(Boolean).join(' and ') };
  }
  const gaps = [
    unsupported ? `${unsupported} unsupported` : '',
    error ? `${error} error(s)` : '',
    body.run.stopped ? `run stopped early (${body.run.stopped})` : '',
    body.run.missing?.length ? `${body.run.missing.length} propert${body.run.missing.length === 1 ? 'y' : 'ies'} did not run` : '',
  ].filter(Boolean);
  if (gaps.length || !body.run.complete) return { summary, verdict: 'unknown', reason: `missing evidence: ${gaps.join(', ') || 'incomplete run'}` };
  const xfail = summary['expected-fail'] ? `; ${summary['expected-fail']} known bug(s) of the profile shown as expected` : '';
  return { summary, verdict: 'compatible', reason: `all ${summary.pass} finding(s) pass with full evidence${xfail}` };
}

/** 1 for an unwaived failure; 3 when evidence is missing through errors or an incomplete run; else 0. */
export function exitCodeFor(r: { summary: Summary; run: { complete: boolean } }): number {
  if (r.summary.fail) return EXIT_CODES.failure;
  if (r.summary.error || !r.run.complete) return EXIT_CODES.noVerdict;
  return EXIT_CODES.ok;
}
