// The golden corpus as CI and users meet it: `golden verify` passes on the committed corpus and fails,
// naming the blob, on a flipped byte or an edited manifest field; `golden record` never replaces an
// existing id without --update; `golden add` imports a captured blob for review; bad input is one line.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { defaultGoldenDir, sha256, type GoldenEntry, type Manifest } from '../golden/manifest.js';
import { verifyGolden } from '../golden/verify.js';
import { validate } from '../base/schemas.js';
import { PROFILES } from '../model/profiles.js';
import { runProperty } from '../harness/runner.js';
import { goldenSuite } from '../suites/golden.js';
import { goldenSection, type GoldenSection } from '../golden/report-section.js';
import { buildReport, type Report } from '../reports/report.js';
import { exitCodeFor } from '../reports/verdict.js';
import type { WaiverEntry } from '../reports/waivers.js';
import { renderMarkdown } from '../reports/render-md.js';
import { renderHtml } from '../reports/render-html.js';
import { referenceTarget } from '../targets/reference.js';
import { writeL2 } from '../model/migration/l2-guest.js';
import { opsToJson } from '../model/nested/ops-json.js';
import { BIN, cliHere } from './cli-helpers.js';

/** the command line in a process, as CI runs it */
const inAProcess = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
/** the golden commands' main() in this process (tests/cli-helpers.ts): a node start-up cost more than most of them */
const cli = (...args: string[]) => cliHere(args);
const GOLDEN = defaultGoldenDir();
const manifest = (): Manifest => JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8'));

/** A scratch copy of the committed corpus. */
function copy(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'nvmx-golden-')), 'golden');
  cpSync(GOLDEN, dir, { recursive: true });
  return dir;
}

/** Every file under a golden directory with its hash: "nothing changed" is this map being equal. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, f.name);
      if (f.isDirectory()) walk(p);
      else out[p.slice(dir.length)] = sha256(readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function editManifest(dir: string, id: string, edit: (e: GoldenEntry) => void): void {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  edit(m.entries.find((e) => e.id === id)!);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}

describe('the committed corpus', () => {
  test('golden verify passes: every hash, decoded content, consumer result and recipe', () => {
    const r = inAProcess('golden', 'verify');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^golden: \d+ blobs, \d+ consumer results checked, 0 failure\(s\)$/m);
  });

  test('the corpus covers every nested profile and the interesting states, within 8320 bytes a blob', () => {
    const m = manifest();
    expect(validate('golden-manifest', m)).toEqual([]);
    const nested = m.entries.filter((e) => e.kind === 'nested-state');
    for (const p of ['linux-4.19', 'linux-4.20', 'linux-5.2', 'linux-5.6', 'linux-5.7', 'linux-5.8', 'linux-6.1', 'linux-6.12'])
      expect(nested.filter((e) => e.producer.profile === p).length, p).toBeGreaterThanOrEqual(2);
    const flags = (e: GoldenEntry) => (e.capabilities.headerFlags as string[]).join('|');
    expect(nested.some((e) => e.size === 8320)).toBe(true); // shadow VMCS in guest mode
    expect(nested.some((e) => e.size === 128 && flags(e) === '')).toBe(true); // VMX off / VMXON only
    for (const f of ['RUN_PENDING', 'EVMCS', 'SMM_VMXON', 'SMM_GUEST_MODE', 'MTF_PENDING', 'PREEMPTION_TIMER_DEADLINE']) expect(nested.some((e) => flags(e).includes(f)), f).toBe(true);
    expect(nested.some((e) => e.recipe?.migrate)).toBe(true); // eVMCS map-pending
    expect(nested.some((e) => e.recipe?.mutate?.header?.vmxFlags === 0)).toBe(true); // QEMU-carried
    const rules = new Set(nested.flatMap((e) => Object.values(e.consumers).flatMap((r) => (r.result === 'invalid' ? [r.rule.replace(/[a-c]$/, '')] : []))));
    for (const r of ['W2', 'W3', 'W4', 'V1', 'V2', 'V4', 'V5', 'V6', 'V8', 'V9', 'V10', 'V11', 'V12', 'V13']) expect(rules.has(r), r).toBe(true);
    expect(m.entries.every((e) => e.size <= 8320)).toBe(true);
    expect(m.entries.some((e) => Object.values(e.consumers).some((r) => r.result === 'acceptable'))).toBe(true);
  });
});

test.each(PROFILES.map((p) => p.name))('the golden properties hold on the %s reference target (nested state only from 4.19)', async (profile) => {
  for (const def of goldenSuite) {
    const o = await runProperty(def, referenceTarget({ profile }), { seed: 1 });
    expect(o.verdict, def.id).toBe(profile === 'linux-4.18' && def.groups.includes('nested-state') ? 'unsupported' : 'pass');
    if (o.verdict === 'pass') expect(o.cases).toBe(1);
  }
});

describe('tampering is caught, naming the blob', () => {
  test('one flipped byte in every blob: each blob fails verify with its own sha256 finding', async () => {
    const dir = copy();
    const m = manifest();
    m.entries.forEach((e, i) => {
      const p = join(dir, e.file);
      const b = readFileSync(p);
      b[(i * 37) % b.length]! ^= 0x01;
      writeFileSync(p, b);
    });
    const verdicts = await verifyGolden(dir);
    for (const e of m.entries) {
      const v = verdicts.find((x) => x.id === e.id)!;
      expect(v.findings.map((f) => f.reason).join('; '), e.id).toMatch(/^sha256 of blobs\/.* is [0-9a-f]{16}…, the manifest says/);
    }
  });

  test('through the CLI: exit 1 and one FAIL line naming the blob', async () => {
    const dir = copy();
    const p = join(dir, 'blobs', 'shadow-l2.linux-6.12.bin');
    const b = readFileSync(p);
    b[8000]! ^= 0x80;
    writeFileSync(p, b);
    const r = await cli('golden', 'verify', '--golden', dir);
    expect(r.code).toBe(1);
    expect(r.out.split('\n').filter((l) => l.startsWith('FAIL'))).toEqual([expect.stringMatching(/^FAIL {2}shadow-l2\.linux-6\.12: sha256 of blobs\/shadow-l2\.linux-6\.12\.bin is /)]);
  });

  const edits: [string, string, (e: GoldenEntry) => void, RegExp][] = [
    ['sha256', 'vmxon.linux-5.8', (e) => (e.sha256 = '0'.repeat(64)), /^FAIL {2}vmxon\.linux-5\.8: sha256 of/m],
    ['size', 'vmxon.linux-5.8', (e) => (e.size = 4224), /^FAIL {2}vmxon\.linux-5\.8: blobs\/vmxon\.linux-5\.8\.bin is 128 bytes, the manifest says 4224/m],
    ['kind', 'vmcs12.linux-6.12', (e) => (e.kind = 'evmcs'), /^FAIL {2}vmcs12\.linux-6\.12: kind evmcs is not the recipe's vmcs12/m],
    ['producer profile', 'l2-run-pending.linux-5.8', (e) => (e.producer.profile = 'linux-5.7'), /^FAIL {2}l2-run-pending\.linux-5\.8: producer profile linux-5\.7 is not the recipe's linux-5\.8/m],
    ['a consumer result', 'mtf-pending.linux-5.6', (e) => (e.consumers['linux-5.6'] = { result: 'valid' }), /^FAIL {2}mtf-pending\.linux-5\.6 on linux-5\.6: expected valid, got invalid\(EINVAL, W3\) at rule W3/m],
    ['a consumer rule', 'invalid-v12-revision.linux-6.12', (e) => (e.consumers['linux-6.12'] = { result: 'invalid', errno: 'EINVAL', rule: 'V11' }), /^FAIL {2}invalid-v12-revision\.linux-6\.12 on linux-6\.12: expected invalid\(EINVAL, V11\), got invalid\(EINVAL, V12\)/m],
    ['a recorded difference', 'smm-vmxon-no-vmcs.linux-6.12', (e) => (e.consumers['linux-6.12'] = { result: 'valid' }), /^FAIL {2}smm-vmxon-no-vmcs\.linux-6\.12 on linux-6\.12: valid, but 1 field\(s\) read back differently/m],
    ['a missing consumer', 'vmxon.linux-6.1', (e) => delete e.consumers['linux-6.12'], /^FAIL {2}vmxon\.linux-6\.1 on linux-6\.12: no expected result for consumer linux-6\.12/m],
    ['the consumer vCPU', 'smm-guest-mode.linux-6.12', (e) => (e.consumerVcpu = { ...e.consumerVcpu, inSmm: false }), /^FAIL {2}smm-guest-mode\.linux-6\.12 on linux-4\.19: expected valid, got invalid\(EINVAL, V6\)/m],
    ['a recipe operand', 'l2-running.linux-6.12', (e) => (e.recipe!.ops![4]!.value = '0x401001'), /^FAIL {2}l2-running\.linux-6\.12: the recipe now produces different bytes/m],
    // vmxon.linux-4.20 holds the same 128 bytes as 4.19's: the hash alone would not notice
    ['the file', 'vmxon.linux-4.19', (e) => (e.file = 'blobs/vmxon.linux-4.20.bin'), /^FAIL {2}vmxon\.linux-4\.19: file blobs\/vmxon\.linux-4\.20\.bin is not blobs\/vmxon\.linux-4\.19\.bin/m],
    ['a schema violation', 'vmxon.linux-5.2', (e) => ((e.consumers['linux-6.12'] as { result: string }).result = 'vaild'), /^FAIL {2}vmxon\.linux-5\.2: manifest: \/consumers\/linux-6\.12/m],
  ];
  // the edits touch different blobs, so one corpus copy takes them all and one verify names each
  // (an id edited twice goes to a second copy): two runs of golden verify instead of twelve
  const rounds: (typeof edits)[] = [];
  for (const e of edits) (rounds.find((r) => !r.some((x) => x[1] === e[1])) ?? (rounds[rounds.length] = [])).push(e);
  const verified = new Map<number, ReturnType<typeof cli>>();
  const verifyRound = (n: number) => {
    if (!verified.has(n)) {
      const dir = copy();
      for (const [, id, edit] of rounds[n]!) editManifest(dir, id, edit);
      verified.set(n, cli('golden', 'verify', '--golden', dir));
    }
    return verified.get(n)!;
  };
  test.each(edits)('manifest field: %s', async (what, _id, _edit, line) => {
    const r = await verifyRound(rounds.findIndex((round) => round.some((x) => x[0] === what)));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(line);
    expect(r.err).toBe('');
  });

  test('expected content: an edited field is a field diff naming the blob', async () => {
    const dir = copy();
    const p = join(dir, 'expected', 'l2-run-pending.linux-4.19.json');
    const text = readFileSync(p, 'utf8');
    const rip = /"guest_rip": "(0x[0-9a-f]+)"/.exec(text)![1]!;
    writeFileSync(p, text.replace(`"guest_rip": "${rip}"`, '"guest_rip": "0x401002"'));
    const r = await cli('golden', 'verify', '--golden', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^FAIL {2}l2-run-pending\\.linux-4\\.19: decodes differently from the expected content \\(1 field\\(s\\)\\)\\n.*\\n\\s+vmcs12\\.guest_rip\\s+0x401002 {2}-> {2}${rip}$`, 'm'));
  });

  test('a blob file without a manifest entry is a finding', async () => {
    const dir = copy();
    writeFileSync(join(dir, 'blobs', 'stray.bin'), new Uint8Array(128));
    const r = await cli('golden', 'verify', '--golden', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL {2}stray\.bin: blobs\/stray\.bin has no manifest entry$/m);
  });
});

describe('golden record', () => {
  const recipe = join(GOLDEN, 'recipes', 'example-shadow-l2.json');

  test('an existing id is refused without --update, and nothing under golden/ changes', async () => {
    const dir = copy();
    const before = snapshot(dir);
    const other = join(dir, '..', 'other.json');
    writeFileSync(other, JSON.stringify({ kind: 'nested-state', profile: 'linux-6.12', ops: [{ op: 'init-vmcs', pa: '0x3000' }, { op: 'vmxon', pa: '0x3000' }] }));
    for (const [file, id] of [[recipe, 'shadow-l2.linux-6.12'], [other, 'shadow-l2.linux-6.12'], [other, 'vmxon.linux-6.12']] as const) {
      const r = await cli('golden', 'record', '--recipe', file, '--id', id, '--golden', dir);
      expect(r.code).toBe(2);
      expect(r.err.trim()).toBe(`nvmx-conformance: golden entry "${id}" exists; pass --update to replace it`);
    }
    writeFileSync(join(dir, 'blobs', 'orphan.bin'), 'x');
    const orphan = await cli('golden', 'record', '--recipe', other, '--id', 'orphan', '--golden', dir);
    expect(orphan.code).toBe(2);
    expect(orphan.err).toContain('blobs/orphan.bin exists without a manifest entry');
    expect(snapshot(dir)).toEqual({ ...before, '/blobs/orphan.bin': sha256(Buffer.from('x')) });
  });

  test('a new id is added and verifies; --update replaces it and says what changed', async () => {
    const dir = copy();
    const r = await cli('golden', 'record', '--recipe', recipe, '--id', 'shadow-l2.copy', '--golden', dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^added shadow-l2\.copy: nested-state, 8320 bytes, sha256 [0-9a-f]{16}…$/m);
    expect(r.out).toContain('  linux-6.12: valid');
    expect((await cli('golden', 'verify', '--golden', dir)).code).toBe(0);
    const changed = join(dir, '..', 'changed.json');
    const json = JSON.parse(readFileSync(recipe, 'utf8'));
    json.ops.find((o: { field?: string }) => o.field === '0x681e').value = '0x5252';
    writeFileSync(changed, JSON.stringify(json));
    const u = await cli('golden', 'record', '--recipe', changed, '--id', 'shadow-l2.copy', '--golden', dir, '--update');
    expect(u.code).toBe(0);
    expect(u.out).toMatch(/^shadow-l2\.copy: bytes changed \(sha256 /m);
    expect(u.out).toContain('  shadowVmcs12.guest_rip: 0x5151 -> 0x5252');
    expect(u.out).toContain('shadow-l2.copy: recipe changed');
    expect((await cli('golden', 'verify', '--golden', dir)).code).toBe(0);
  });

  test('--from ID --target T records existing entries again on another producer, re-profiled to what it claims', async () => {
    const dir = copy();
    const r = await cli('golden', 'record', '--from', 'vmxon.linux-6.1', '--from', 'vmcs12-loaded.linux-6.12', '--target', 'exec:node bin/nvmx-conformance.js serve --profile linux-6.1', '--golden', dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^added vmxon\.exec-node-bin-nvmx-conformance\.js-serve-profile-linux-6\.1: nested-state, 128 bytes/m);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const e = m.entries.find((x: { id: string }) => x.id === 'vmcs12-loaded.exec-node-bin-nvmx-conformance.js-serve-profile-linux-6.1');
    expect(e.producer).toMatchObject({ profile: 'linux-6.1', by: expect.stringMatching(/^exec:node bin\/nvmx-conformance\.js serve --profile linux-6\.1: /) });
    expect(e.recipe.profile).toBe('linux-6.1');
    expect((await cli('golden', 'verify', '--golden', dir)).code).toBe(0);
    const bad = await cli('golden', 'record', '--from', 'no-such-entry', '--target', 'reference', '--golden', dir);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toBe('nvmx-conformance: --from no-such-entry: no such golden entry');
  });
});

describe('golden add', () => {
  test('a captured blob gets its decoded content and every consumer result filled in, and verifies', async () => {
    const dir = copy();
    const ops = join(dir, '..', 'ops.json');
    // a valid L2 (the minimal guest the migration scenarios launch), so VMLAUNCH and the restore checks pass
    const l2 = opsToJson(writeL2());
    writeFileSync(ops, JSON.stringify([{ op: 'init-vmcs', pa: '0x1000' }, { op: 'vmxon', pa: '0x1000' }, { op: 'init-vmcs', pa: '0x2000' }, { op: 'vmptrld', pa: '0x2000' }, ...l2, { op: 'vmwrite', field: '0x681e', value: '0xabc' }, { op: 'vmlaunch' }]));
    const blob = join(dir, '..', 'dump.bin');
    expect((await cli('nested', 'save', '--profile', 'linux-5.8', '--ops', ops, '--out', blob)).code).toBe(0);
    const r = await cli('golden', 'add', '--file', blob, '--kind', 'nested-state', '--id', 'captured.host-a', '--producer', 'captured from host-a (linux 5.8, QEMU 5.0)', '--profile', 'linux-5.8', '--golden', dir);
    expect(r.code).toBe(0);
    expect(r.out).toContain('review before committing');
    const e = (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest).entries.find((x) => x.id === 'captured.host-a')!;
    expect(e.producer).toEqual({ profile: 'linux-5.8', by: 'captured from host-a (linux 5.8, QEMU 5.0)' });
    expect(e.recipe).toBeUndefined();
    expect(Object.keys(e.consumers)).toHaveLength(8);
    const content = JSON.parse(readFileSync(join(dir, e.expected.content as string), 'utf8'));
    expect(content.vmcs12.fields.guest_rip).toBe('0xabc');
    expect(content.header.flags).toEqual(['GUEST_MODE', 'RUN_PENDING']);
    expect((await cli('golden', 'verify', '--golden', dir)).code).toBe(0);
    expect((await cli('golden', 'add', '--file', blob, '--kind', 'nested-state', '--id', 'captured.host-a', '--producer', 'x', '--golden', dir)).code).toBe(2);
  });
});

describe('bad input: one line, exit 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-golden-bad-'));
  const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
  test.each([
    [['golden'], 'golden needs verify, record or add'],
    [['golden', 'frob'], 'unknown golden command "frob"'],
    [['golden', 'verify', '--golden', join(dir, 'nowhere')], 'manifest.json: no such file'],
    [['golden', 'verify', '--golden', (file('manifest.json', '{"entries": ['), dir)], 'not JSON'],
    [['golden', 'record', '--id', 'x1'], 'golden record needs --recipe FILE'],
    [['golden', 'record', '--recipe', file('r.json', '{"kind": "nested-state"}'), '--id', 'x1'], "must have required property 'profile'"],
    [['golden', 'record', '--recipe', file('r2.json', '{"kind": "nested-state", "profile": "linux-6.12", "ops": []}'), '--id', 'Bad Id'], '--id "Bad Id"'],
    [['golden', 'record', '--recipe', file('r3.json', '{"kind": "vmcs12", "profile": "linux-6.12", "fields": {"no_such": 1}}'), '--id', 'x1', '--golden', join(dir, 'g')], 'has no member no_such'],
    [['golden', 'record', '--recipe', file('r4.json', '{"kind": "nested-state", "profile": "linux-9.1", "ops": []}'), '--id', 'x1'], 'unknown profile "linux-9.1"'],
    [['golden', 'add', '--file', 'missing.bin', '--kind', 'nested-state', '--id', 'x1', '--producer', 'p'], 'missing.bin: no such file'],
    [['golden', 'add', '--file', file('b.bin', 'x'), '--kind', 'vmcs13', '--id', 'x1', '--producer', 'p'], '--kind must be one of'],
    [['golden', 'add', '--file', file('b2.bin', 'x'), '--kind', 'nested-state', '--id', 'x1'], 'needs --producer'],
    [['golden', 'add', '--file', file('big.bin', 'x'.repeat(9000)), '--kind', 'nested-state', '--id', 'x1', '--producer', 'p'], 'at most 8320 bytes'],
  ])('%j', async (args, message) => {
    if (message === 'has no member no_such') cpSync(GOLDEN, join(dir, 'g'), { recursive: true });
    const r = await cli(...args);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(message);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

test('check reports every golden blob by id as a finding, in a schema-valid report.json, report.md and report.html', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-golden-check-'));
  // the golden properties, and with them the golden section
  const r = inAProcess('check', '--runs', '5', '--seed', '3', '--report', dir, '--profile', 'linux-5.8', '--only', 'golden.*');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^golden: \d+ blobs on linux-5\.8: \d+ pass, 0 fail, \d+ not applicable$/m);
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
  expect(validate('report', report)).toEqual([]);
  const g = report.sections!.golden!;
  expect([...g.blobs.map((b) => b.blob), ...g.notApplicable].sort()).toEqual(manifest().entries.map((e) => e.id).sort());
  expect(g.blobs.find((b) => b.blob === 'mtf-pending.linux-5.6')).toMatchObject({ id: 'golden-blob.mtf-pending.linux-5.6', verdict: 'pass', expected: 'valid', observed: 'valid' });
  expect(g.notApplicable).toContain('evmcs.linux-6.12');
  // each judged blob is a finding: in the summary and in junit.xml
  expect(report.summary.pass).toBe(report.properties.length + g.blobs.length);
  expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<testcase classname="sections.golden" name="golden-blob.mtf-pending.linux-5.6"');
  for (const id of ['golden.nested-state.old-readable', 'golden.pages.old-readable', 'golden.recipes.stable'])
    expect(report.properties.find((p: { id: string }) => p.id === id)).toMatchObject({ verdict: 'pass', cases: 1 });
  expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain(`Golden corpus: ${g.blobs.length + g.notApplicable.length} blobs on linux-5.8: ${g.blobs.length} pass, 0 fail, ${g.notApplicable.length} not applicable.`);
  expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<tr id="golden-blob.mtf-pending.linux-5.6" class="golden g-pass">');
});

describe('golden blobs count in the verdict, and a waiver can name one', () => {
  const RUN = { target: 'reference', profile: 'linux-6.12', seed: 1 };
  const passing = () => goldenSuite.map((d) => ({ id: d.id, invariant: d.invariant, groups: [...d.groups], verdict: 'pass' as const, cases: 1, seed: 1 }));
  const report = (golden: GoldenSection, waivers?: WaiverEntry[]) =>
    buildReport({ run: RUN, records: passing(), expected: goldenSuite.map((d) => d.id), startedAt: new Date(0), finishedAt: new Date(1), sections: { golden }, ...(waivers ? { waivers } : {}) });

  test('a tampered blob fails its finding, the verdict and the exit code; waived, the run exits 0 and stays incompatible', async () => {
    const dir = copy();
    const e = manifest().entries.find((x) => x.id === 'vmxon.linux-6.12')!;
    const p = join(dir, e.file);
    const b = readFileSync(p);
    b[0]! ^= 1;
    writeFileSync(p, b);
    const g = (await goldenSection(referenceTarget(), dir))!;
    expect(g.blobs.filter((x) => x.verdict !== 'pass')).toEqual([expect.objectContaining({ id: 'golden-blob.vmxon.linux-6.12', verdict: 'fail', detail: expect.stringContaining('sha256 of blobs/vmxon.linux-6.12.bin') })]);
    const failed = report(g);
    expect(validate('report', failed)).toEqual([]);
    expect(failed).toMatchObject({ verdict: 'incompatible', summary: { fail: 1 } });
    expect(exitCodeFor(failed)).toBe(1);
    expect(renderMarkdown(failed)).toContain('- `golden-blob.vmxon.linux-6.12`: sha256 of blobs/vmxon.linux-6.12.bin');
    expect(renderHtml(failed)).toContain('<a href="#golden-blob.vmxon.linux-6.12">golden-blob.vmxon.linux-6.12</a>');
    const waived = report(g, [{ id: 'golden-blob.vmxon.linux-6.12', reason: 'a known bad copy' }]);
    expect(validate('report', waived)).toEqual([]);
    expect(waived.sections!.golden!.blobs.find((x) => x.blob === 'vmxon.linux-6.12')).toMatchObject({ verdict: 'waived', waiver: { reason: 'a known bad copy' } });
    expect(waived).toMatchObject({ verdict: 'incompatible', summary: { fail: 0, waived: 1 }, waivers: [{ matched: ['golden-blob.vmxon.linux-6.12'] }] });
    expect(exitCodeFor(waived)).toBe(0);
  });

  test('blobs a target cannot read are unsupported: missing evidence, so the verdict is unknown', async () => {
    const layoutOnly = { ...referenceTarget(), groups: new Set(['layout'] as const) };
    const g = (await goldenSection(layoutOnly))!;
    expect(new Set(g.blobs.map((x) => x.verdict))).toEqual(new Set(['unsupported']));
    expect(g.blobs.find((x) => x.kind === 'nested-state')!.detail).toBe('target lacks nested-state');
    const r = report(g);
    expect(r.verdict).toBe('unknown');
    expect(renderMarkdown(r)).toMatch(/^- \d+ findings \(`golden-blob\.[^`]+`, …\): unsupported — target lacks nested-state$/m);
  });
});
