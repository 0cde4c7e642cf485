// Merges the junit.xml files of shard runs: every <testsuite> element, verbatim, under one
// <testsuites> root with summed counts. vitest's JUnit reporter writes each element on its own
// lines, which is all this relies on.
const SUITE = /^ *<testsuite\s[\s\S]*?^ *<\/testsuite>\s*$/gm;
const ROOT = /<testsuites\b([^>]*)>/;

const attr = (attrs: string, name: string): number => Number(new RegExp(`\\b${name}="([^"]*)"`).exec(attrs)?.[1] ?? 0);

export function mergeJunit(files: readonly { source: string; xml: string }[]): { xml: string } | { problem: string } {
  const totals = { tests: 0, failures: 0, errors: 0, time: 0 };
  const suites: string[] = [];
  for (const f of files) {
    const root = ROOT.exec(f.xml);
    if (!root) return { problem: `${f.source}: not a JUnit file (no <testsuites> element)` };
    totals.tests += attr(root[1]!, 'tests');
    totals.failures += attr(root[1]!, 'failures');
    totals.errors += attr(root[1]!, 'errors');
    totals.time += attr(root[1]!, 'time');
    suites.push(...(f.xml.match(SUITE) ?? []).map((s) => s.trimEnd()));
  }
  const head = `<testsuites name="nvmx-conformance" tests="${totals.tests}" failures="${totals.failures}" errors="${totals.errors}" time="${totals.time}">`;
  return { xml: `<?xml version="1.0" encoding="UTF-8" ?>\n${head}\n${suites.join('\n')}\n</testsuites>\n` };
}
