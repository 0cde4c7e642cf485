// Report building, verdict rules, waivers, merge and the renderers, in-process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { bytesOfDiff, hexdumpLines } from '../reports/hexdump.js';
import { renderJunit } from '../reports/junit.js';
import { mergeReports } from '../reports/merge.js';
import { renderHtml } from '../reports/render-html.js';
import { renderMarkdown } from '../reports/render-md.js';
import { buildReport, readReport, type Report } from '../reports/report.js';
import { validate } from '../base/schemas.js';
import { exitCodeFor } from '../reports/verdict.js';
import { loadWaivers, unmatchedWaiverWarnings } from '../reports/waivers.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { sampleRecords, sampleReport, sampleSections } from './fixtures/sample-report.js';
import { junitCounts, junitTestcases, wellFormed } from './junit-helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'nvmx-reports-'));
const RUN = { target: 'reference', profile: 'linux-6.12', seed: 5, runs: 50 };
const ids = ALL_PROPERTIES.map((p) => p.id);
const passRecords = () => sampleRecords().map((r, i) => (i < 5 ? { id: r.id, invariant: r.invariant, groups: r.groups, verdict: 'pass' as const, cases: 50, seed: 5 } : r));
const build = (over: Partial<Parameters<typeof buildReport>[0]> = {}) =>
  buildReport({ run: RUN, records: passRecords(), expected: ids, startedAt: new Date(0), finishedAt: new Date(1000), ...over });

describe('verdict', () => {
  test('all pass with full evidence is compatible and exits 0', () => {
    const r = build();
    expect(validate('report', r)).toEqual([]);
    expect(r.verdict).toBe('compatible');
    expect(exitCodeFor(r)).toBe(0);
  });

  test('a missing property makes the run incomplete and the verdict unknown (exit 3)', () => {
    const r = build({ records: passRecords().slice(1) });
    expect(r.run).toMatchObject({ complete: false, missing: [ids[0]] });
    expect(r.verdict).toBe('unknown');
    expect(r.verdictReason).toContain('1 property did not run');
    expect(exitCodeFor(r)).toBe(3);
  });

  test('a stopped run is unknown even when everything it ran passed', () => {
    const r = build({ stopped: 'time-budget' });
    expect(r.run.complete).toBe(false);
    expect(r.verdict).toBe('unknown');
  });

  test('unsupported and errors are unknown, failures incompatible', () => {
    const records = sampleRecords();
    const noFail = records.map((r) => (r.verdict === 'fail' ? { ...passRecords()[0]!, id: r.id } : r));
    expect(build({ records: noFail }).verdict).toBe('unknown');
    const r = build({ records });
    expect(r.verdict).toBe('incompatible');
    expect(r.summary).toEqual({ pass: ALL_PROPERTIES.length - 5, 'expected-fail': 1, fail: 2, unsupported: 1, error: 1, waived: 0 });
    expect(exitCodeFor(r)).toBe(1);
  });

  test('a silent-break layout diff is a failing finding', () => {
    const s = sampleSections();
    const r = build({ sections: { layoutDiffs: s.layoutDiffs! } });
    expect(r.verdict).toBe('compatible');
    const broken = { ...s.layoutDiffs![0]!, verdict: 'fail' as const };
    expect(build({ sections: { layoutDiffs: [broken] } }).verdict).toBe('incompatible');
  });
});

describe('waivers', () => {
  test('a waived failure is waived, never pass; the verdict stays incompatible; the exit code is 0', () => {
    const records = passRecords();
    records[0] = sampleRecords()[0]!;
    const r = build({ records, waivers: [{ id: ids[0]!, reason: 'known, issue 42' }] });
    expect(validate('report', r)).toEqual([]);
    expect(r.properties[0]).toMatchObject({ verdict: 'waived', waiver: { id: ids[0], reason: 'known, issue 42' } });
    expect(r.summary).toMatchObject({ fail: 0, waived: 1, pass: records.length - 1 });
    expect(r.verdict).toBe('incompatible');
    expect(r.verdictReason).toContain('waivers change the exit code, not the verdict');
    expect(exitCodeFor(r)).toBe(0);
  });

  test('each entry lists what it matched; one that matched nothing is a warning', () => {
    const r = sampleReport();
    expect(validate('report', r)).toEqual([]);
    expect(r.waivers!.map((w) => [w.id, w.matched])).toEqual([
      [ids[1], [ids[1]]],
      ['golden-blob.l2-run-pending.linux-6.1', ['golden-blob.l2-run-pending.linux-6.1']],
      ['no.such.thing', []],
    ]);
    expect(r.sections!.golden!.blobs.map((b) => [b.id, b.verdict])).toEqual([
      ['golden-blob.vmxon.linux-4.19', 'pass'],
      ['golden-blob.shadow-l2.linux-4.19', 'fail'],
      ['golden-blob.l2-run-pending.linux-6.1', 'waived'],
    ]);
    expect(unmatchedWaiverWarnings(r.waivers)).toEqual(['waiver "no.such.thing" matched no failure in this run (reason: stale entry)']);
  });

  test('an unsupported or error property cannot be waived', () => {
    const records = sampleRecords();
    const r = build({ records, waivers: [{ id: records[2]!.id, reason: 'x' }, { id: records[3]!.id, reason: 'y' }] });
    expect(r.properties[2]!.verdict).toBe('unsupported');
    expect(r.properties[3]!.verdict).toBe('error');
    expect(r.waivers!.every((w) => w.matched.length === 0)).toBe(true);
  });

  const file = (data: unknown) => {
    const f = join(tmp(), 'waivers.json');
    writeFileSync(f, typeof data === 'string' ? data : JSON.stringify(data));
    return f;
  };
  test.each([
    ['{"format": ', 'is not JSON'],
    [{ format: 'nvmx-waivers/1', waivers: [{ id: 'a.b' }] }, 'must have required property \'reason\''],
    [{ format: 'nvmx-waivers/1', waivers: [{ id: 'a.b', reason: 'r', until: '2030-01-01' }] }, 'unknown key "until"'],
    [{ format: 'nvmx-waivers/1', waivers: [{ id: 'a.b', reason: 'r' }, { id: 'a.b', reason: 's' }] }, '"a.b" is waived twice'],
    [{ format: 'nvmx-waivers/1', waivers: [{ id: 'a.b', reason: 'r', expires: '2026-02-30' }] }, 'which is not a date'],
    [{ format: 'nvmx-waivers/1', waivers: [{ id: 'a.b', reason: 'old', expires: '2020-01-01' }] }, 'waiver "a.b" expired on 2020-01-01 (reason: old)'],
  ])('bad waiver file %j', (data, message) => {
    const r = loadWaivers(file(data), '2026-06-01');
    expect('problem' in r && r.problem).toContain(message);
  });

  test('a waiver that expires today still holds', () => {
    const r = loadWaivers(file({ format: 'nvmx-waivers/1', waivers: [{ id: 'a.b', reason: 'r', expires: '2026-06-01' }] }), '2026-06-01');
    expect(r).toEqual({ waivers: [{ id: 'a.b', reason: 'r', expires: '2026-06-01' }] });
  });
});

test('failure diffs carry the bytes in memory order, and hex dump lines show them at their offset', () => {
  expect(bytesOfDiff({ field: 'guest_rip', offset: 544, expected: '0x0000000100000000', actual: '0x0000000000000000' })).toEqual({
    expected: '00 00 00 00 01 00 00 00',
    actual: '00 00 00 00 00 00 00 00',
  });
  expect(bytesOfDiff({ field: 'unknown bytes', offset: 16, expected: 'a1b2c3', actual: 'a1b200' })).toEqual({ expected: 'a1 b2 c3', actual: 'a1 b2 00' });
  expect(bytesOfDiff({ field: 'x: y', offset: -1, expected: 'reported corrupted', actual: 'not reported' })).toBeNull();
  expect(hexdumpLines(0x220, '00 00 00 00 01 00 00 00')).toEqual(['0x0220: 00 00 00 00 01 00 00 00']);
  expect(hexdumpLines(0, Array(20).fill('ff').join(' '))).toHaveLength(2);
  const rec = sampleRecords()[0]!;
  expect((rec.counterexample as { diff: { bytes?: unknown }[] }).diff[0]!.bytes).toEqual({ expected: '00 00 00 00 01 00 00 00', actual: '00 00 00 00 00 00 00 00' });
});

test('report.md is short and names failures, waivers, gaps and warnings', () => {
  const md = renderMarkdown(sampleReport());
  expect(md.split('\n').length).toBeLessThan(62);
  expect(md).toContain('## nvmx-conformance: ❌ incompatible');
  expect(md).toContain(`**\`${ids[0]}\`** — decode(encode(r)) differs from r`);
  expect(md).toContain('  expected 0x0220: 00 00 00 00 01 00 00 00');
  expect(md).toContain(`replay: \`nvmx-conformance replay ${ids[0]} --seed 5 --path 0:1:0 --profile linux-6.12\``);
  // every verdict is a column, expected-fail included; the replay command comes before the diff
  expect(md).toContain('| pass | expected-fail | fail | waived | unsupported | error |');
  expect(md.indexOf('replay: `nvmx-conformance replay')).toBeLessThan(md.indexOf('guest_rip: 0x0000000100000000 -> 0x0000000000000000'));
  // the input as fields and hex, not fast-check's literal
  expect(md).toContain('  guest_rip = 0x0000000100000000');
  expect(md).toContain('  0x0010: a1 b2 c3 00');
  expect(md).not.toContain('Uint32Array.from');
  expect(md).toContain(`- \`${ids[1]}\`: known bug, see issue 42 (until 2999-01-01)`);
  // the golden section: a count line, its failing blob with the fields, its waived blob
  expect(md).toContain('Golden corpus: 4 blobs on linux-6.12: 1 pass, 1 fail, 1 waived, 1 not applicable.');
  expect(md).toContain('- `golden-blob.shadow-l2.linux-4.19`: valid, but 3 field(s) read back differently: shadow.guest_rip');
  expect(md).toContain('- `golden-blob.l2-run-pending.linux-6.1`: the L2 uses controls this host lacks');
  expect(md).toContain(`- \`${ids[2]}\`: unsupported — unsupported by target x: needs layout`);
  expect(md).toContain('waiver "no.such.thing" matched no failure');
});

describe('merge', () => {
  const shard = (index: number, count: number, records = passRecords(), over: Partial<Parameters<typeof buildReport>[0]> = {}): Report =>
    build({ records, expected: records.map((r) => r.id), shard: { index, count }, ...over });
  const halves = () => [passRecords().slice(0, 3), passRecords().slice(3)];

  test('two shards merge into one complete report in registry order', () => {
    const [a, b] = halves();
    const r = mergeReports([{ source: 's2', report: shard(2, 2, b) }, { source: 's1', report: shard(1, 2, a) }], ids);
    expect('report' in r).toBe(true);
    if (!('report' in r)) return;
    expect(validate('report', r.report)).toEqual([]);
    expect(r.report.properties.map((p) => p.id)).toEqual(ids);
    expect(r.report.run).toMatchObject({ complete: true, mergedShards: [{ index: 1, count: 2 }, { index: 2, count: 2 }] });
    expect(r.report.verdict).toBe('compatible');
  });

  test('a missing shard leaves the merged verdict unknown', () => {
    const [a] = halves();
    const r = mergeReports([{ source: 's1', report: shard(1, 2, a) }], ids);
    if (!('report' in r)) throw new Error(r.problem);
    expect(r.report.verdict).toBe('unknown');
    expect(r.report.run.missing).toEqual(ids.slice(3));
  });

  test('the golden section comes from the one shard that ran the golden suite; two copies are refused', () => {
    const [a, b] = halves();
    const golden = sampleSections().golden!;
    const r = mergeReports([{ source: 's1', report: shard(1, 2, a) }, { source: 's2', report: shard(2, 2, b, { sections: { golden } }) }], ids);
    if (!('report' in r)) throw new Error(r.problem);
    expect(validate('report', r.report)).toEqual([]);
    expect(r.report.sections!.golden).toEqual(golden);
    expect(r.report.summary.fail).toBe(2); // the two failing blobs
    const twice = mergeReports([{ source: 's1', report: shard(1, 2, a, { sections: { golden } }) }, { source: 's2', report: shard(2, 2, b, { sections: { golden } }) }], ids);
    expect('problem' in twice && twice.problem).toBe('"golden-blob.vmxon.linux-4.19" ran more than once: in s1 and in s2');
  });

  test.each([
    ['the same shard twice', () => [shard(1, 2, halves()[0]), shard(1, 2, halves()[0])], 'shard 1/2 appears twice: a and b'],
    ['a property in two shards', () => [shard(1, 2, halves()[0]), shard(2, 2, passRecords())], 'ran more than once: in a and in b'],
    ['different shard counts', () => [shard(1, 2, halves()[0]), shard(2, 3, halves()[1])], 'is shard 2/3, but others are of 2'],
    ['different targets', () => [shard(1, 2, halves()[0]), shard(2, 2, halves()[1], { run: { ...RUN, profile: 'linux-6.1' } })], 'profile differs (linux-6.12 vs linux-6.1)'],
    ['different --only', () => [shard(1, 2, halves()[0], { run: { ...RUN, only: ['vmcs12.*'] } }), shard(2, 2, halves()[1])], '--only differs (vmcs12.* vs )'],
    ['a report that is not a shard', () => [build(), shard(2, 2, halves()[1])], 'a is not a shard report'],
  ])('refuses %s', (_what, reports, message) => {
    const r = mergeReports(reports().map((report, i) => ({ source: 'ab'[i]!, report })), ids);
    expect('problem' in r && r.problem).toContain(message);
  });
});

test("a pass's documented differences are schema'd in report.json and said in report.html", () => {
  const r = sampleReport();
  const p = r.properties.find((x) => x.documented)!;
  expect(p).toMatchObject({ verdict: 'pass', documented: [{ name: 'VMCS12_CACHE_TAIL', cases: 3 }] });
  expect(validate('report', r)).toEqual([]);
  expect(validate('report', { ...r, properties: [{ ...p, documented: [{ name: 'X', cases: 0 }] }] })).not.toEqual([]);
  expect(renderHtml(r)).toContain('documented differences from the model: VMCS12_CACHE_TAIL in 3 cases');
});

test('readReport validates what it reads', () => {
  const dir = tmp();
  const f = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
  expect(readReport(join(dir, 'none.json'))).toEqual({ problem: `cannot read ${join(dir, 'none.json')}: no such file` });
  expect((readReport(f('bad.json', '{')) as { problem: string }).problem).toContain('is not JSON');
  expect((readReport(f('wrong.json', JSON.stringify({ ...build(), verdict: 'fine' }))) as { problem: string }).problem).toContain('/verdict: must be one of');
  expect(readReport(f('good.json', JSON.stringify(sampleReport())))).toEqual({ report: JSON.parse(JSON.stringify(sampleReport())) });
  // a report of the previous format (its golden results outside the verdict) is named as such
  const old = f('old.json', JSON.stringify({ ...build(), format: 'nvmx-report/1', golden: { profile: 'linux-6.12', summary: {}, blobs: [] } }));
  expect(readReport(old)).toEqual({ problem: `${old} is an nvmx-report/1 report; this version reads nvmx-report/2 (run check again, or use the tool version that wrote it)` });
});

describe('junit.xml, written from the report', () => {
  const suiteOf = (id: string) => id.split('.')[0];

  test('has one testcase per finding, counts that match the summary, and well-formed XML', () => {
    const report = sampleReport();
    const xml = renderJunit(report, suiteOf);
    expect(wellFormed(xml)).toEqual([]);
    const cases = junitTestcases(xml);
    const findings = report.properties.length + 2 + 3; // properties, layout diffs, golden blobs
    expect(cases).toHaveLength(findings);
    const s = report.summary;
    expect(junitCounts(xml)).toEqual({ tests: findings, failures: s.fail, errors: s.error, skipped: s.unsupported + s.waived });
    expect(s.fail * s.error * s.waived * s.unsupported).toBeGreaterThan(0); // the sample has one of each
    const byId = new Map(cases.map((c) => [c.name, c]));
    for (const p of report.properties) expect(byId.get(p.id)?.outcome, p.id).toBe({ fail: 'failure', error: 'error', unsupported: 'skipped', waived: 'skipped' }[p.verdict as string] ?? 'pass');
    const failed = report.properties.find((p) => p.verdict === 'fail')!;
    expect(xml).toContain(`replay: ${failed.replay as string}`);
    expect(xml).toContain('<property name="seed" value="5"/>');
  });

  test('an incomplete run: properties that did not run are absent, interrupted ones are errors, and the run says so', () => {
    const records = sampleRecords().slice(4, 9);
    records[0] = { ...records[0]!, verdict: 'error', reason: 'interrupted after 3 of 100 cases: the run was cancelled' };
    const report = buildReport({ run: RUN, records, expected: ALL_PROPERTIES.map((p) => p.id), startedAt: new Date(), finishedAt: new Date(), stopped: 'interrupted' });
    const xml = renderJunit(report, suiteOf);
    expect(junitTestcases(xml).map((c) => c.name)).toEqual(records.map((r) => r.id));
    expect(junitCounts(xml)).toEqual({ tests: 5, failures: 0, errors: 1, skipped: 0 });
    expect(xml).toContain('<property name="complete" value="false"/><property name="stopped" value="interrupted"/>');
    expect(junitTestcases(xml)[0]!.outcome).toBe('error');
  });

  test('target output that is not XML text is escaped or replaced', () => {
    const records = sampleRecords().slice(4, 5).map((r) => ({ ...r, verdict: 'error' as const, reason: 'bad <answer> & "quotes"', stderr: ['\u0000\u001b[31mred\u0007 ]]> \ud800'] }));
    const report = buildReport({ run: RUN, records, expected: records.map((r) => r.id), startedAt: new Date(), finishedAt: new Date() });
    const xml = renderJunit(report, suiteOf);
    expect(wellFormed(xml)).toEqual([]);
    expect(xml).toContain('message="bad &lt;answer&gt; &amp; &quot;quotes&quot;"');
    expect(xml).toContain('stderr: \ufffd\ufffd[31mred\ufffd ]]&gt; \ufffd');
  });
});
