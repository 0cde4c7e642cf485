// Terminal rendering of property outcomes: one line per property, and for a failure the seed, the
// path, the shrunk counterexample as a field diff and the command that replays it.
import type { PropertyOutcome } from './property.js';

export interface RunIdentity {
  target: string;
  profile: string;
}

export function replayCommand(o: { id: string; seed: number; path: string; counterexample?: { replayPath?: string } }, run: RunIdentity): string {
  const target = run.target === 'reference' ? '' : ` --target '${run.target}'`;
  const path = o.path ? ` --path ${o.path}` : '';
  const commands = o.counterexample?.replayPath !== undefined ? ` --replay-path '${o.counterexample.replayPath}'` : '';
  return `nvmx-conformance replay ${o.id} --seed ${o.seed}${path}${commands} --profile ${run.profile}${target}`;
}

/** Named quirks a passing property saw, as one clause: they are the profile's documented behaviour, not failures. */
export const documentedText = (d: readonly { name: string; cases: number }[]): string =>
  `documented differences from the model: ${d.map((x) => `${x.name} in ${x.cases} case${x.cases === 1 ? '' : 's'}`).join(', ')}`;

const MAX_DIFF_LINES = 24;
const MAX_INPUT_PARTS = 6;

export function formatOutcome(o: PropertyOutcome, run: RunIdentity): string[] {
  switch (o.verdict) {
    case 'pass':
      return [`PASS  ${o.id}  (${o.cases} cases, seed ${o.seed}${o.unsupportedCases ? `; ${o.unsupportedCases.count} more cases skipped: ${o.unsupportedCases.reason}` : ''}${o.documented ? `; ${documentedText(o.documented)}` : ''})`];
    case 'unsupported':
      return [`UNSUPPORTED  ${o.id}  (${o.reason})`];
    case 'error':
      return [`ERROR  ${o.id}  (${o.reason})`, ...(o.stderr ?? []).map((l) => `    stderr: ${l}`)];
    case 'fail':
    case 'expected-fail': {
      const head =
        o.verdict === 'fail'
          ? `FAIL  ${o.id}  (after ${o.cases} cases, seed ${o.seed}${o.path ? `, path ${o.path}, shrunk ${o.shrinks} times` : ''})`
          : `EXPECTED-FAIL  ${o.id}  (${o.reason}; shown after ${o.cases} cases, seed ${o.seed}, path ${o.path})`;
      const lines = [head, `    ${o.counterexample.summary}`];
      const width = Math.max(5, ...o.counterexample.diff.map((d) => d.field.length));
      if (o.counterexample.diff.length) lines.push(`    ${'field'.padEnd(width)}  expected  ->  actual`);
      for (const d of o.counterexample.diff.slice(0, MAX_DIFF_LINES))
        lines.push(`    ${d.field.padEnd(width)}  ${d.expected}  ->  ${d.actual}${d.offset >= 0 ? `   (offset ${d.offset})` : ''}`);
      if (o.counterexample.diff.length > MAX_DIFF_LINES) lines.push(`    … ${o.counterexample.diff.length - MAX_DIFF_LINES} more differences in report.json`);
      const view = o.counterexample.view ?? [];
      // the input as fields (one line per input part), fast-check's literal only when there is no view
      for (const part of view.slice(0, MAX_INPUT_PARTS)) {
        const text = [...(part.fields ?? []).map((f) => (f.field.startsWith('#') ? `${f.field} ${f.value}` : `${f.field}=${f.value}`)), ...(part.hex ?? []).map((h) => `@0x${h.offset.toString(16)}: ${h.bytes}`), ...(part.note ? [`(${part.note})`] : [])].join('; ');
        lines.push(`    ${part.label}: ${text.length > 200 ? `${text.slice(0, 200)} …` : text}`);
      }
      if (view.length > MAX_INPUT_PARTS) lines.push(`    … ${view.length - MAX_INPUT_PARTS} more input parts in report.html`);
      if (!view.length && o.counterexample.input) lines.push(`    input: ${o.counterexample.input.slice(0, 300)}${o.counterexample.input.length > 300 ? ' …' : ''}`);
      lines.push(`    replay: ${replayCommand(o, run)}`);
      return lines;
    }
  }
}
