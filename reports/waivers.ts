// --waivers FILE (nvmx-waivers/1): known failures, each with a reason and an optional expiry. A
// waiver turns a matching `fail` into `waived` (never `pass`) and records what it matched; an
// entry that matches nothing is a warning, an expired one refuses the run. Only failures can be
// waived: unsupported and error are missing evidence, which no reason can supply.
import { readFileSync } from 'node:fs';
import type { Finding, ReportBody, Sections, WaiverRef, WaiverResult } from './report-types.js';
import { validate } from '../base/schemas.js';

export type WaiverEntry = WaiverRef;

/** Today as YYYY-MM-DD in UTC: expiry dates are compared as strings in that form. */
export const utcToday = (now = new Date()): string => now.toISOString().slice(0, 10);

export function loadWaivers(path: string, today = utcToday()): { waivers: WaiverEntry[] } | { problem: string } {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { problem: err.code === 'ENOENT' ? `waiver file ${path}: no such file` : `waiver file ${path} is not JSON: ${err.message.split('\n')[0]}` };
  }
  const problems = validate('waivers', data);
  if (problems.length) return { problem: `waiver file ${path}: ${problems[0]}` };
  const waivers = (data as { waivers: WaiverEntry[] }).waivers;
  const seen = new Set<string>();
  for (const w of waivers) {
    if (seen.has(w.id)) return { problem: `waiver file ${path}: "${w.id}" is waived twice` };
    seen.add(w.id);
    if (w.expires && !isRealDate(w.expires)) return { problem: `waiver file ${path}: "${w.id}" expires on "${w.expires}", which is not a date` };
    if (w.expires && w.expires < today) return { problem: `waiver "${w.id}" expired on ${w.expires} (reason: ${w.reason}); renew or remove it` };
  }
  return { waivers };
}

function isRealDate(s: string): boolean {
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** The same report with every failure a waiver names marked `waived`, and what each entry matched. */
export function applyWaivers(body: ReportBody, waivers: readonly WaiverEntry[]): ReportBody {
  const byId = new Map(waivers.map((w) => [w.id, w]));
  const matched = new Map<string, string[]>(waivers.map((w) => [w.id, []]));
  const waive = <F extends Finding>(f: F): F => {
    const w = byId.get(f.id);
    if (!w || f.verdict !== 'fail') return f;
    matched.get(w.id)!.push(f.id);
    return { ...f, verdict: 'waived', waiver: { ...w } };
  };
  const s = body.sections;
  const sections: Sections | undefined = s && {
    ...(s.layoutDiffs ? { layoutDiffs: s.layoutDiffs.map(waive) } : {}),
    ...(s.golden ? { golden: { ...s.golden, blobs: s.golden.blobs.map(waive) } } : {}),
  };
  const properties = body.properties.map(waive);
  const results: WaiverResult[] = waivers.map((w) => ({ ...w, matched: matched.get(w.id)! }));
  return { ...body, properties, ...(sections ? { sections } : {}), waivers: results };
}

export function unmatchedWaiverWarnings(results: readonly WaiverResult[] | undefined): string[] {
  return (results ?? []).filter((w) => !w.matched.length).map((w) => `waiver "${w.id}" matched no failure in this run (reason: ${w.reason})`);
}
