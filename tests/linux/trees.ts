// The kernel trees the linux: tests run on: NVMX_LINUX_TREES, a colon-separated list of tree
// roots (.ci/run sets it). Without it these tests fail with the reason, never skip.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Tree {
  readonly root: string;
  /** "6.1", "6.12" */
  readonly series: string;
}

export function linuxTrees(): Tree[] {
  const env = process.env.NVMX_LINUX_TREES;
  if (!env) throw new Error('NVMX_LINUX_TREES is not set: give the extracted linux-source-6.1 and linux-source-6.12 trees, colon-separated (.ci/run does)');
  return env.split(':').map((root) => {
    const mk = existsSync(join(root, 'Makefile')) ? readFileSync(join(root, 'Makefile'), 'utf8') : '';
    const v = /^VERSION = (\d+)\nPATCHLEVEL = (\d+)/m.exec(mk);
    if (!v) throw new Error(`NVMX_LINUX_TREES: ${root} is not a kernel tree (no VERSION/PATCHLEVEL in its Makefile)`);
    return { root, series: `${v[1]}.${v[2]}` };
  });
}

export function treeOf(series: string): Tree {
  const t = linuxTrees().find((x) => x.series === series);
  if (!t) throw new Error(`NVMX_LINUX_TREES has no ${series} tree (have: ${linuxTrees().map((x) => x.series).join(', ')})`);
  return t;
}

/** Files the linux: target reads; a broken copy needs only these. */
const NEEDED = ['Makefile', 'arch/x86/kvm/vmx', 'arch/x86/include/asm/vmx.h', 'arch/x86/include/asm/vmxfeatures.h', 'arch/x86/include/asm/msr-index.h', 'arch/x86/include/asm/hyperv-tlfs.h', 'arch/x86/include/uapi/asm/kvm.h'];

/** A copy of the parts of a tree the target reads, in a temp dir, with `edit` applied to one file. */
export function brokenCopy(tree: Tree, file: string, edit: (text: string) => string): string {
  const root = join(mkdtempSync(join(tmpdir(), 'nvmx-broken-')), `linux-${tree.series}`);
  for (const p of NEEDED) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    cpSync(join(tree.root, p), join(root, p), { recursive: true });
  }
  const text = readFileSync(join(root, file), 'utf8');
  const edited = edit(text);
  if (edited === text) throw new Error(`brokenCopy: the edit changed nothing in ${file}`);
  writeFileSync(join(root, file), edited);
  return root;
}
