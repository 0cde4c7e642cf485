// A "planted bug" KVM for tests on the kvm: target, built the way a KVM developer iterates: Debian's
// own kvm sources (linux-source-6.12), one deliberate edit, compiled OUT OF TREE against Debian's
// headers for the kernel the target boots, so that kvm:debian-6.12,modules=DIR loads them in place
// of the package's kvm.ko and kvm-intel.ko (irqbypass.ko stays the package's own).
//
// The bug: vmx_set_nested_state (arch/x86/kvm/vmx/nested.c) no longer rejects a vmcs12 whose
// hdr.revision_id is not VMCS12_REVISION. Stock KVM answers KVM_SET_NESTED_STATE with such a vmcs12
// -EINVAL; the planted build answers 0. kvm-intel.ko also carries `nvmx_planted=...` in .modinfo.
//
// Nothing of the kernel is kept in this project: arch/x86/kvm and virt/kvm are extracted from the
// tarball into a temporary directory, edited there, built with the headers package's Kbuild
// (make -C /usr/src/linux-headers-<release> M=<tmp>/arch/x86/kvm modules) and only the two
// modules (debug info stripped, as Debian's are) are kept, in
//   ${NVMX_KVM_CACHE ?? ~/.cache/nvmx-conformance/kvm}/planted/<sha256 of recipe, tarball, headers>/
// The directory is renamed into place whole, so a failed build leaves nothing behind and a later
// call finds either the finished modules or nothing.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot, KvmSetupError } from '../../targets/kvm/image.js';

const RELEASE = '6.12.117+deb12-amd64';
const DEBIAN_VERSION = '6.12.117-1~deb12u1';
const SOURCE_PACKAGE = 'linux-source-6.12';
const TARBALL = `/usr/src/${SOURCE_PACKAGE}.tar.xz`;
const TARBALL_TOP = SOURCE_PACKAGE;
const HEADERS_PACKAGE = `linux-headers-${RELEASE}`;
const HEADERS = `/usr/src/${HEADERS_PACKAGE}`;
/** What the Debian kernel's own modules carry (modinfo prints it with a trailing space). */
const VERMAGIC = `${RELEASE} SMP preempt mod_unload modversions`;
const STOCK_KVM = `/lib/modules/${RELEASE}/kernel/arch/x86/kvm/kvm.ko.xz`;

/** Bump when anything below changes how the modules are built. */
const RECIPE = 'nvmx-planted-kvm/1';

/**
 * arch/x86/kvm/Makefile of 6.12.117-1~deb12u1 (sha256 below), for an external-module build with
 * M=<tmp>/arch/x86/kvm: $(srctree) (the headers package, which has no kvm sources) becomes $(src);
 * kvm-amd is left out. `-I $(src)/../../../virt/kvm` is there for trace.h: it sets
 * TRACE_INCLUDE_PATH to ../../arch/x86/kvm, which in tree resolves next to include/trace/ and here
 * resolves from <tmp>/virt/kvm. virt/kvm/Makefile.kvm is used as is (its KVM ?= ../../../virt/kvm
 * is relative to this directory).
 */
const KBUILD = `# nvmx-conformance planted-kvm: arch/x86/kvm/Makefile (6.12) for M=<this directory>
ccflags-y += -I $(src) -I $(src)/../../../virt/kvm
ccflags-$(CONFIG_KVM_WERROR) += -Werror

KVM := ../../../virt/kvm
include $(src)/../../../virt/kvm/Makefile.kvm

kvm-y			+= x86.o emulate.o i8259.o irq.o lapic.o \\
			   i8254.o ioapic.o irq_comm.o cpuid.o pmu.o regs.o mtrr.o \\
			   debugfs.o mmu/mmu.o mmu/page_track.o \\
			   mmu/spte.o

kvm-$(CONFIG_X86_64) += mmu/tdp_iter.o mmu/tdp_mmu.o
kvm-$(CONFIG_KVM_HYPERV) += hyperv.o
kvm-$(CONFIG_KVM_XEN)	+= xen.o
kvm-$(CONFIG_KVM_SMM)	+= smm.o

kvm-intel-y		+= vmx/vmx.o vmx/vmenter.o vmx/pmu_intel.o vmx/vmcs12.o \\
			   vmx/nested.o vmx/posted_intr.o vmx/main.o

kvm-intel-$(CONFIG_X86_SGX_KVM)	+= vmx/sgx.o
kvm-intel-$(CONFIG_KVM_HYPERV)	+= vmx/hyperv.o vmx/hyperv_evmcs.o

ifdef CONFIG_HYPERV
kvm-y			+= kvm_onhyperv.o
kvm-intel-y		+= vmx/vmx_onhyperv.o vmx/hyperv_evmcs.o
endif

obj-$(CONFIG_KVM_X86)	+= kvm.o
obj-$(CONFIG_KVM_INTEL)	+= kvm-intel.o

AFLAGS_vmx/vmenter.o    := -iquote $(obj)
$(obj)/vmx/vmenter.o: $(obj)/kvm-asm-offsets.h

$(obj)/kvm-asm-offsets.h: $(obj)/kvm-asm-offsets.s FORCE
	$(call filechk,offsets,__KVM_ASM_OFFSETS_H__)

targets += kvm-asm-offsets.s
clean-files += kvm-asm-offsets.h
`;

/** The makefiles KBUILD mirrors; another version must be read again before KBUILD is trusted with it. */
const MIRRORED: Readonly<Record<string, string>> = {
  'arch/x86/kvm/Makefile': '2fd53d6b70de66713776737fa81a6c8430afa2a56a4de60411928fd1e061a7c4',
  'virt/kvm/Makefile.kvm': 'c18cc7437ae12913511b3259101c1e19789207f05255976fd66de1b0bf0e6e51',
};

const NESTED_C = 'arch/x86/kvm/vmx/nested.c';
const FUNCTION = 'static int vmx_set_nested_state(struct kvm_vcpu *vcpu,';
const CHECK = `	vmcs12 = get_vmcs12(vcpu);
	if (copy_from_user(vmcs12, user_vmx_nested_state->vmcs12, sizeof(*vmcs12)))
		return -EFAULT;

	if (vmcs12->hdr.revision_id != VMCS12_REVISION)
		return -EINVAL;
`;
const PLANTED = `	vmcs12 = get_vmcs12(vcpu);
	if (copy_from_user(vmcs12, user_vmx_nested_state->vmcs12, sizeof(*vmcs12)))
		return -EFAULT;

	/* nvmx-conformance planted bug: the vmcs12 revision_id check is gone */
`;
const PLANTED_TAG = 'vmx_set_nested_state accepts any vmcs12 revision_id';
const MODINFO = `
#include <linux/module.h>
MODULE_INFO(nvmx_planted, "${PLANTED_TAG}");
`;

export interface PlantedKvmOptions {
  log?: (l: string) => void;
}

/** The directory holding kvm.ko and kvm-intel.ko with the planted bug (built once, then cached). */
export async function buildPlantedKvm(o: PlantedKvmOptions = {}): Promise<string> {
  const log = o.log ?? (() => {});
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE, KBUILD, MIRRORED, CHECK, PLANTED, MODINFO, tarball: `${SOURCE_PACKAGE}.tar.xz=${DEBIAN_VERSION}`, headers: `${HEADERS_PACKAGE}=${DEBIAN_VERSION}` }))
    .digest('hex');
  const out = join(cacheRoot(), 'planted', key);
  if (isComplete(out)) {
    log(`planted-kvm: cached ${out}`);
    return out;
  }

  const cc = await checkHost(log);
  const started = Date.now();
  const work = await fs.mkdtemp(join(tmpdir(), 'nvmx-planted-kvm-'));
  const staging = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    log(`planted-kvm: extracting arch/x86/kvm and virt/kvm from ${TARBALL}`);
    await run('tar', ['-xJf', TARBALL, '-C', work, '--strip-components=1', `${TARBALL_TOP}/arch/x86/kvm`, `${TARBALL_TOP}/virt/kvm`]);
    for (const [file, want] of Object.entries(MIRRORED)) {
      const got = sha256(await fs.readFile(join(work, file)));
      if (got !== want) throw new Error(`planted-kvm: ${file} in ${TARBALL} is not the one the Kbuild in tests/kvm/planted-kvm.ts mirrors (sha256 ${got}, expected ${want}): compare the two and update KBUILD`);
    }

    log(`planted-kvm: planting the bug in ${NESTED_C} (vmx_set_nested_state: no vmcs12 revision_id check)`);
    const nestedPath = join(work, NESTED_C);
    await fs.writeFile(nestedPath, plant(await fs.readFile(nestedPath, 'utf8')));

    const kvmDir = join(work, 'arch', 'x86', 'kvm');
    await fs.writeFile(join(kvmDir, 'Kbuild'), KBUILD);
    const jobs = Math.max(1, availableParallelism());
    log(`planted-kvm: make -C ${HEADERS} M=${kvmDir} CC=${cc} -j${jobs} modules`);
    await run('make', ['-C', HEADERS, `M=${kvmDir}`, `CC=${cc}`, `-j${jobs}`, 'modules'], { echo: (l) => /warning:|error:/i.test(l) && log(`planted-kvm: ${l}`) });

    await fs.mkdir(staging, { recursive: true });
    const stockVermagic = existsSync(STOCK_KVM) ? modinfo(await run('xz', ['-dc', STOCK_KVM], { binary: true }), 'vermagic') : null;
    for (const m of ['kvm', 'kvm-intel']) {
      const dest = join(staging, `${m}.ko`);
      await fs.copyFile(join(kvmDir, `${m}.ko`), dest);
      // as Debian installs its modules (INSTALL_MOD_STRIP=1): without DWARF, which would make them
      // ten times larger (the initramfs, unpacked inside Bochs, grows with them); .BTF stays
      await run('strip', ['--strip-debug', dest]);
      const bytes = await fs.readFile(dest);
      const vermagic = modinfo(bytes, 'vermagic');
      if (vermagic?.trim() !== VERMAGIC || (stockVermagic !== null && vermagic !== stockVermagic))
        throw new Error(`planted-kvm: ${m}.ko has vermagic "${vermagic}", not the Debian kernel's "${stockVermagic ?? VERMAGIC}"`);
      if (m === 'kvm-intel' && modinfo(bytes, 'nvmx_planted') !== PLANTED_TAG) throw new Error('planted-kvm: kvm-intel.ko was not built from the edited nested.c (no nvmx_planted in its .modinfo)');
    }
    log(`planted-kvm: vermagic of kvm.ko and kvm-intel.ko is "${VERMAGIC}"${stockVermagic !== null ? `, as ${STOCK_KVM}` : ''}`);
    await fs.writeFile(
      join(staging, 'planted.json'),
      JSON.stringify({ recipe: RECIPE, bug: PLANTED_TAG, source: `${SOURCE_PACKAGE}=${DEBIAN_VERSION}`, headers: `${HEADERS_PACKAGE}=${DEBIAN_VERSION}`, compiler: cc, vermagic: VERMAGIC }, null, 2) + '\n',
    );
    try {
      await fs.rename(staging, out);
    } catch (e) {
      // another process finished the same build first: theirs is as good as ours
      if (!isComplete(out)) throw e;
      await fs.rm(staging, { recursive: true, force: true });
    }
    log(`planted-kvm: built in ${Math.round((Date.now() - started) / 1000)} s: ${out}`);
    return out;
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

function isComplete(dir: string): boolean {
  return existsSync(join(dir, 'kvm.ko')) && existsSync(join(dir, 'kvm-intel.ko'));
}

/** The text edit, which must find the revision check exactly once, inside vmx_set_nested_state. */
export function plant(source: string): string {
  const where = (text: string) => {
    const at: number[] = [];
    for (let i = source.indexOf(text); i >= 0; i = source.indexOf(text, i + 1)) at.push(i);
    return at;
  };
  const fn = where(FUNCTION);
  const check = where(CHECK);
  if (fn.length !== 1 || check.length !== 1)
    throw new Error(
      `planted-kvm: cannot plant the bug: ${NESTED_C} has ${fn.length} "${FUNCTION}" and ${check.length} copies of the vmcs12 revision_id check after copy_from_user (expected exactly 1 of each): the source is not the one this edit was written for`,
    );
  const fnEnd = source.indexOf('\n}\n', fn[0]!);
  if (!(check[0]! > fn[0]! && check[0]! < fnEnd)) throw new Error(`planted-kvm: cannot plant the bug: the vmcs12 revision_id check in ${NESTED_C} is not inside vmx_set_nested_state`);
  return source.slice(0, check[0]!) + PLANTED + source.slice(check[0]! + CHECK.length) + MODINFO;
}

/** Debian packages the build needs; one line naming the apt-get command when any is missing. Returns the compiler. */
async function checkHost(log: (l: string) => void): Promise<string> {
  const missing: string[] = [];
  const problems: string[] = [];
  for (const pkg of [SOURCE_PACKAGE, HEADERS_PACKAGE]) {
    const version = await installedVersion(pkg);
    if (version !== DEBIAN_VERSION) {
      missing.push(`${pkg}=${DEBIAN_VERSION}`);
      problems.push(version ? `${pkg} is ${version}` : `${pkg} is not installed`);
    }
  }
  if (!missing.length && !existsSync(TARBALL)) {
    missing.push(`${SOURCE_PACKAGE}=${DEBIAN_VERSION}`);
    problems.push(`${TARBALL} is missing`);
  }
  let cc = `x86_64-linux-gnu-gcc-12`;
  let ccText: string | null = null;
  if (existsSync(join(HEADERS, '.config'))) {
    ccText = /^CONFIG_CC_VERSION_TEXT="(.*)"$/m.exec(await fs.readFile(join(HEADERS, '.config'), 'utf8'))?.[1] ?? null;
    cc = ccText?.split(' ')[0] ?? cc;
  }
  const gccPackage = /gcc-\d+$/.exec(cc)?.[0] ?? 'gcc';
  const tools: [string, string][] = [
    [`/usr/bin/${cc}`, gccPackage],
    ['/usr/bin/make', 'make'],
    ['/usr/bin/xz', 'xz-utils'],
    ['/usr/bin/tar', 'tar'],
    ['/usr/bin/strip', 'binutils'],
    ['/usr/bin/pahole', 'pahole'],
  ];
  for (const [file, pkg] of tools)
    if (!existsSync(file) && !existsSync(file.replace('/usr/bin/', '/bin/'))) {
      missing.push(pkg);
      problems.push(`${file} is missing`);
    }
  if (missing.length) throw new KvmSetupError(`planted-kvm: ${problems.join(', ')}: apt-get install -y ${[...new Set(missing)].join(' ')}`);
  if (ccText) {
    const version = (await run(cc, ['--version'])).split('\n')[0];
    // Debian's own kernel Makefile skips this check (DEBIAN_KERNEL_NO_CC_VERSION_CHECK); a point release of the same gcc builds loadable modules
    if (version !== ccText) log(`planted-kvm: warning: ${HEADERS} was built with "${ccText}" but ${cc} is "${version}"`);
  }
  return cc;
}

async function installedVersion(pkg: string): Promise<string | null> {
  try {
    const out = await run('dpkg-query', ['-W', '-f=${Status}\t${Version}', pkg]);
    const [status = '', version = ''] = out.split('\t');
    return status.endsWith(' installed') ? version : null;
  } catch {
    return null;
  }
}

/** The value of key=... in an ELF module's .modinfo section (NUL-separated key=value strings). */
export function modinfo(ko: Uint8Array, key: string): string | null {
  const b = Buffer.from(ko.buffer, ko.byteOffset, ko.byteLength);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error('planted-kvm: not a little-endian ELF64 module');
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const section = (i: number) => ({ name: b.readUInt32LE(shoff + i * shentsize), offset: Number(b.readBigUInt64LE(shoff + i * shentsize + 0x18)), size: Number(b.readBigUInt64LE(shoff + i * shentsize + 0x20)) });
  const names = section(b.readUInt16LE(0x3e));
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameAt = names.offset + s.name;
    if (b.toString('latin1', nameAt, b.indexOf(0, nameAt)) !== '.modinfo') continue;
    for (const entry of b.toString('latin1', s.offset, s.offset + s.size).split('\0')) if (entry.startsWith(`${key}=`)) return entry.slice(key.length + 1);
    return null;
  }
  return null;
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

interface RunOptions {
  /** called with every line of output (stdout and stderr) */
  echo?: (line: string) => void;
  binary?: boolean;
}

function run(cmd: string, args: readonly string[], opts: RunOptions & { binary: true }): Promise<Buffer>;
function run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<string>;
/** Runs cmd with an argument array; on failure the error names the command and ends with its last lines of output. */
function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string | Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const tail: string[] = [];
    let partial = '';
    const lines = (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const all = text.split('\n');
      partial = all.pop() ?? '';
      for (const l of all) {
        opts.echo?.(l);
        tail.push(l);
        if (tail.length > 40) tail.shift();
      }
    };
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      if (!opts.binary) lines(c);
    });
    child.stderr.on('data', lines);
    child.on('error', (e) => reject(new Error(`planted-kvm: cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (partial) tail.push(partial);
      if (code === 0) resolve(opts.binary ? Buffer.concat(out) : Buffer.concat(out).toString('utf8'));
      else reject(new Error(`planted-kvm: ${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`));
    });
  });
}
