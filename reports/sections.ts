// Report sections beside the properties. Each entry is a finding with a stable id, so a waiver can
// name it: `check --layout-diff OLD` fills `layoutDiffs` (here); the golden corpus read through the
// target fills `golden` (golden/report-section.ts).
import type { LayoutDiff } from '../model/layout-diff.js';
import type { Finding } from './report.js';
import { validate } from '../base/schemas.js';

/** `layout diff --json` output: the nvmx-layout-diff/1 document, checked against its schema. */
export function layoutDiffDocument(d: LayoutDiff): { format: 'nvmx-layout-diff/1' } & LayoutDiff {
  const doc = { format: 'nvmx-layout-diff/1' as const, ...d };
  const problems = validate('layout-diff', doc);
  if (problems.length) throw new Error(`layout diff produced output that fails its schema: ${problems[0]}`);
  return doc;
}

export const FINDING_TEXT: Record<LayoutDiff['finding'], string> = {
  compatible: 'compatible',
  'silent-break': 'SILENT BREAK: incompatible layout change with an unchanged revision id',
  'needs-translation': 'incompatible, revision id changed: readers need a translation map',
};

const idPart = (name: string): string => name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[.-]+|[.-]+$/g, '') || 'unnamed';

/** A silent break (incompatible, revision unchanged) fails; a bumped revision is a documented translation. */
export function layoutDiffFinding(d: LayoutDiff): Finding & { diff: unknown } {
  return {
    id: `layout-diff.${idPart(d.old.name)}.to.${idPart(d.new.name)}`,
    verdict: d.finding === 'silent-break' ? 'fail' : 'pass',
    detail: FINDING_TEXT[d.finding],
    diff: layoutDiffDocument(d),
  };
}
