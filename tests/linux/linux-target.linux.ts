// The linux: target on real Debian trees (NVMX_LINUX_TREES): both pass, their layouts diff as
// compatible, the tree is never written to, the kernel's own filter agrees with the recorded masks,
// and deliberately broken copies are caught with a clear report.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ALL_PROPERTIES } from '../../suites/registry.js';
import { validate } from '../../base/schemas.js';
import { openLinuxTarget } from '../../targets/linux/target.js';
import { brokenCopy, linuxTrees, treeOf } from './trees.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/nvmx-conformance.js');
const TABLES = process.env.NVMX_KERNEL_TABLES ?? '/work/shared/spec/kernel-tables';

interface Property {
  id: string;
  verdict: string;
  reason?: string;
  counterexample?: { summary: string; diff: { field: string; expected: string; actual: string }[] };
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function check(tree: string) {
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-linux-'));
  const r = cli('check', '--target', `linux:${tree}`, '--seed', '9', '--runs', '50', '--report', dir);
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  expect(validate('report', report)).toEqual([]);
  const byId = new Map<string, Property>(report.properties.map((p: Property) => [p.id, p]));
  return { ...r, report, prop: (id: string) => byId.get(id)! };
}

/** Every file under a directory with its size and mtime: what "the tree was not written to" means. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`${p} ${statSync(p).size} ${statSync(p).mtimeMs}`);
    }
  };
  walk(dir);
  return out.sort();
}

test('NVMX_LINUX_TREES names the 6.1 and 6.12 trees', () => {
  expect(linuxTrees().map((t) => t.series).sort()).toEqual(['6.1', '6.12']);
});

describe.each(['6.1', '6.12'])('linux-source-%s', (series) => {
  test('check passes: layout, vmcs12 access and the eVMCS filter agree with the profile', () => {
    const tree = treeOf(series);
    const before = snapshot(join(tree.root, 'arch/x86/kvm/vmx'));
    const r = check(tree.root);
    expect(r.code, r.out + r.err).toBe(0);
    // every property whose groups the kernel's own code can answer runs; the rest are unsupported
    const offered = new Set(['layout', 'vmcs12-access', 'msr-filter']);
    // and the eVMCS descriptor: the harness extracts struct vmcs12 only
    // and every golden blob: each is a finding of its own, and reading one needs nested-state
    const blobs = r.report.sections?.golden?.blobs ?? [];
    expect(blobs.length).toBeGreaterThan(0);
    expect(blobs.filter((b: { verdict: string }) => b.verdict !== 'unsupported')).toEqual([]);
    const unsupported = ALL_PROPERTIES.filter((p) => p.groups.some((g) => !offered.has(g))).length + 1 + blobs.length;
    expect(r.report.summary).toMatchObject({ fail: 0, error: 0, unsupported });
    for (const id of ['layout.matches-profile', 'vmcs12.codec.round-trip', 'vmcs12.access.write-read', 'vmcs12.access.matches-profile', 'msr-filter.filter.matches-profile', 'msr-filter.check-controls.matches-profile'])
      expect(r.prop(id).verdict, id).toBe('pass');
    expect(r.prop('vmcs12.revisions.old-readable').reason).toContain('the kernel reads one vmcs12 revision only');
    expect(r.prop('layout.evmcs.matches-profile').reason).toContain('only the vmcs12 layout is extracted');
    expect(r.report.target).toMatchObject({ claimedProfile: `linux-${series}`, version: expect.stringMatching(new RegExp(`^${series.replace('.', '\\.')}\\.\\d+`)) });
    expect(snapshot(join(tree.root, 'arch/x86/kvm/vmx'))).toEqual(before);
  });

  test("the tree's own filter keeps exactly the masks recorded in kernel-tables", async () => {
    const facts = JSON.parse(readFileSync(join(TABLES, series, 'evmcs-filter.json'), 'utf8')) as { msrs: { msr: string; half: string; keepMaskWithPerfCpuid: string; keepMaskWithoutPerfCpuid: string }[] };
    const t = await openLinuxTarget(treeOf(series).root, { timeoutMs: 10_000 });
    try {
      const all = (1n << 64n) - 1n;
      const indexes = Array.from({ length: 0x13 }, (_, i) => 0x480 + i);
      for (const ebx of [0, 1]) {
        const r = await t.filterVmxMsrs(indexes.map((index) => ({ index, value: all })), ebx);
        if (r.status !== 'ok') throw new Error(r.reason);
        const want = indexes.map((i) => {
          const m = facts.msrs.find((x) => Number(x.msr) === i);
          if (!m) return all;
          const keep = BigInt(ebx ? m.keepMaskWithPerfCpuid : m.keepMaskWithoutPerfCpuid);
          return m.half === 'high' ? (keep << 32n) | 0xffffffffn : (0xffffffffn << 32n) | keep;
        });
        expect(r.value.map((v) => v.toString(16))).toEqual(want.map((v) => v.toString(16)));
      }
    } finally {
      await t.close();
    }
  });
});

test('layout diff of the 6.1 and 6.12 trees: compatible', () => {
  const r = cli('layout', 'diff', `linux:${treeOf('6.1').root}`, `linux:${treeOf('6.12').root}`);
  expect(r.code, r.err).toBe(0);
  expect(r.out).toContain('(149 members unchanged)');
  expect(r.out).toContain('finding: compatible');
});

describe('broken copies of the 6.12 tree are caught', () => {
  const swapRipRsp = (t: string) => t.replace(/(\tnatural_width guest_rsp;\n)(\tnatural_width guest_rip;\n)/, '$2$1');

  test('a member moved in vmcs12.h: its own CHECK_OFFSET fails, every target property errors with it', () => {
    const tree = brokenCopy(treeOf('6.12'), 'arch/x86/kvm/vmx/vmcs12.h', swapRipRsp);
    const r = check(tree);
    expect(r.code).toBe(3);
    const reason = r.prop('vmcs12.access.write-read').reason!;
    expect(reason).toContain('the tree fails its own offset checks');
    expect(reason).toContain('CHECK_OFFSET(guest_rsp, 536) in arch/x86/kvm/vmx/vmcs12.h: struct vmcs12 puts guest_rsp elsewhere');
    expect(r.report.run.complete).toBe(true);
    const show = cli('layout', 'show', `linux:${tree}`);
    expect(show.code).toBe(2);
    expect(show.err.trim().split('\n')).toHaveLength(1);
    expect(show.err).toContain('CHECK_OFFSET(guest_rip, 544)');
  });

  test('a member moved with its CHECK_OFFSET: the properties fail and layout diff calls it a silent break', () => {
    const tree = brokenCopy(treeOf('6.12'), 'arch/x86/kvm/vmx/vmcs12.h', (t) => swapRipRsp(t).replace('CHECK_OFFSET(guest_rsp, 536)', 'CHECK_OFFSET(guest_rsp, 544)').replace('CHECK_OFFSET(guest_rip, 544)', 'CHECK_OFFSET(guest_rip, 536)'));
    const r = check(tree);
    expect(r.code).toBe(1);
    expect(r.report.verdict).toBe('incompatible');
    const layout = r.prop('layout.matches-profile');
    expect(layout.verdict).toBe('fail');
    expect(layout.counterexample!.summary).toContain('silent-break');
    // shrunk to the first item that differs, in the profile's member order
    expect(layout.counterexample!.summary).toContain('(member guest_rsp)');
    expect(layout.counterexample!.diff).toEqual([{ field: 'guest_rsp: offset', offset: 536, expected: '536', actual: '544' }]);
    expect(r.prop('vmcs12.access.write-read').verdict).toBe('fail');
    expect(r.prop('vmcs12.access.matches-profile').verdict).toBe('fail');
    const diff = cli('layout', 'diff', `linux:${treeOf('6.12').root}`, `linux:${tree}`);
    expect(diff.code).toBe(1);
    expect(diff.out).toContain('SILENT BREAK');
  });

  test('a mask narrowed in hyperv_evmcs.h: the filter and the control check fail against the profile', () => {
    const tree = brokenCopy(treeOf('6.12'), 'arch/x86/kvm/vmx/hyperv_evmcs.h', (t) => t.replace(/PIN_BASED_NMI_EXITING \|[\s\\]*PIN_BASED_VIRTUAL_NMIS\)/, 'PIN_BASED_NMI_EXITING)'));
    const r = check(tree);
    expect(r.code).toBe(1);
    const filter = r.prop('msr-filter.filter.matches-profile');
    expect(filter.verdict).toBe('fail');
    expect(filter.counterexample!.diff[0]!.field).toMatch(/PINBASED_CTLS/);
    expect(filter.counterexample!.diff[0]!.expected.slice(0, 10)).toBe('0x0000003f');
    expect(filter.counterexample!.diff[0]!.actual.slice(0, 10)).toBe('0x0000001f');
    expect(r.prop('msr-filter.check-controls.matches-profile').verdict).toBe('fail');
    expect(r.prop('layout.matches-profile').verdict).toBe('pass');
  });

  test('filter code gcc cannot compile: the rest still builds, msr-filter is unsupported with gcc\'s error', () => {
    const tree = brokenCopy(treeOf('6.12'), 'arch/x86/kvm/vmx/hyperv.c', (t) => t.replace('ctl_high &= evmcs_get_supported_ctls(EVMCS_PINCTRL);', 'ctl_high &= evmcs_pin_mask_v2;'));
    const r = check(tree);
    expect(r.code).toBe(0);
    const reason = r.prop('msr-filter.filter.matches-profile').reason!;
    expect(r.prop('msr-filter.filter.matches-profile').verdict).toBe('unsupported');
    expect(reason).toContain('gcc could not compile the extracted filter code');
    expect(reason).toContain('evmcs_pin_mask_v2');
    expect(r.prop('vmcs12.access.write-read').verdict).toBe('pass');
  });

  test('a helper missing from vmcs12.h: vmcs12-access is unsupported and says which file lacks what', () => {
    const tree = brokenCopy(treeOf('6.12'), 'arch/x86/kvm/vmx/vmcs12.h', (t) => t.replace(/static inline void vmcs12_write_any\(/, 'static inline void vmcs12_store_any('));
    const r = check(tree);
    expect(r.code).toBe(0);
    expect(r.prop('vmcs12.access.write-read').verdict).toBe('unsupported');
    expect(r.prop('vmcs12.access.write-read').reason).toContain('arch/x86/kvm/vmx/vmcs12.h has no function vmcs12_write_any()');
    expect(r.prop('layout.matches-profile').verdict).toBe('pass');
  });
});
