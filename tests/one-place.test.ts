// One place per fact (issue 15 item 6): the revision id, the vmcs12 offsets and encodings live in the
// catalog, and code elsewhere names members instead of spelling their numbers. These scans read the
// sources as text, so a new file or folder is covered without being listed here.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { VMCS12_FIELDS, VMCS12_MEMBERS } from '../model/catalog/vmcs12.js';

const ROOT = new URL('..', import.meta.url).pathname;
/** not code, or not ours: tests state facts on purpose, fixtures and golden data are data */
const SKIP = new Set(['node_modules', 'dist', 'tests', 'reports/latest', 'golden/expected', 'golden/blobs', 'layouts']);
const CODE = /\.(ts|mts|js|mjs|c|h|S)$/;

function sources(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    const rel = relative(ROOT, p);
    if (SKIP.has(rel) || e.name.startsWith('.')) return [];
    if (e.isDirectory()) return sources(p);
    return CODE.test(e.name) ? [rel] : [];
  });
}

const num = (lit: string): number => Number(lit.replace(/_/g, '').replace(/n$/, ''));
const MEMBER_OFFSETS = new Set(VMCS12_MEMBERS.map((m) => m.offset));
const ENCODINGS = new Set(VMCS12_FIELDS.flatMap((f) => (f.has64High ? [f.encoding, f.encoding | 1] : [f.encoding])));
const LIT = String.raw`(0x[0-9a-fA-F_]+|\d[\d_]*)n?`;

interface Scan {
  readonly re: RegExp;
  /** which matches count (the captured literal is a vmcs12 offset or encoding, say) */
  readonly keep?: (m: RegExpMatchArray) => boolean;
  /** a line the scan must find: the kind of line a kernel-patch-sized slip writes */
  readonly planted: string;
}

const SCANS: Record<string, Scan> = {
  // readBytes/writeBytes(page, 812, …), view.getUint32(128, …), page[OFFSET.shadowVmcs12 + 3]: a place spelled as a number
  'a byte access at a literal offset': {
    re: new RegExp(String.raw`(?:readBytes|writeBytes)\(\s*[^,()]+,\s*${LIT}\s*,|\.(?:get|set)(?:Big)?(?:Ui|I)nt(?:8|16|32|64)\(\s*${LIT}\s*[,)]|\[\s*OFFSET\.\w+\s*\+\s*\d+\s*\]`),
    planted: 'writeBytes(this.vmcs12, 812, 4, reason & 0xffff_ffffn); // vm_exit_reason',
  },
  // OFFSET.vmcs12 + 748, 128 + 812, HEADER_SIZE + 916: a member of the blob's vmcs12 by number
  "a vmcs12 member's offset added to a blob offset": {
    re: new RegExp(String.raw`(?:OFFSET\.(?:vmcs12|shadowVmcs12)|HEADER_SIZE|\b128|\b4224)\s*\+\s*${LIT}`),
    keep: (m) => MEMBER_OFFSETS.has(num(m[1]!)),
    planted: 'const proc = view.getUint32(OFFSET.vmcs12 + 748, true);',
  },
  // { op: 'vmwrite', field: 0x681en }, vmread(t, v, 0x4002n), w(0x2800, …): encodingOf(member) says which field
  'a VMREAD or VMWRITE of a literal vmcs12 encoding': {
    re: new RegExp(String.raw`(?:\bfield\s*:\s*(?:BigInt\()?|\bvmread\([^()]*,\s*|\bvmwrite\w*\([^()]*,\s*|\bw\(\s*)${LIT}`),
    keep: (m) => ENCODINGS.has(num(m[1]!)),
    planted: "ops.push({ op: 'vmwrite', field: 0x681en, value: rip });",
  },
};

const matches = (text: string, s: Scan) => [...text.matchAll(new RegExp(s.re.source, 'g'))].filter(s.keep ?? (() => true));

/** Every line of `files` a scan finds, as "file:line: text". */
const found = (files: readonly string[], s: Scan): string[] =>
  files.flatMap((f) =>
    readFileSync(join(ROOT, f), 'utf8')
      .split('\n')
      .flatMap((line, i) => matches(line, s).map(() => `${f}:${i + 1}: ${line.trim()}`)),
  );

/** TypeScript outside the catalog, the byte codec, and the table of old profiles' extra fields. */
const CHECKED = sources().filter((f) => f.endsWith('.ts') && !f.startsWith('model/catalog/') && f !== 'model/codec.ts' && f !== 'model/vmcs12-layouts.ts');

test('the vmcs12 revision id is written once, in the catalog', () => {
  const all = sources().flatMap((f) => found([f], { re: /0x11e5_?7ed0/i, planted: '' }));
  expect(all).toEqual([expect.stringMatching(/^model\/catalog\/vmcs12\.ts:\d+: export const VMCS12_REVISION = 0x11e57ed0;/)]);
});

describe.each(Object.entries(SCANS))('no %s outside the catalog and the codec', (_what, scan) => {
  test('none in the sources', () => {
    expect(found(CHECKED, scan)).toEqual([]);
  });

  test('the scan finds its planted line', () => {
    expect(matches(scan.planted, scan)).toHaveLength(1);
  });
});

test('the scans read every source folder and no test or dependency', () => {
  expect(sources()).toEqual(expect.arrayContaining(['model/nested/vcpu.ts', 'suites/registry.ts', 'generators/nested.ts', 'targets/linux/harness.c', 'golden/verify.ts', 'cli/main.ts']));
  expect(sources().filter((f) => /^(tests|node_modules|dist)\//.test(f))).toEqual([]);
});
