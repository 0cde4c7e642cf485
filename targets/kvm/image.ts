// The boot image of the kvm: machine, from Debian packages only and without root: the kernel
// package is fetched with `apt-get download` and unpacked with `dpkg-deb -x` (never installed); an
// initramfs (written here, cpio newc + gzip) holds busybox-static, the kvm modules and our agent;
// a FAT16 "superfloppy" made bootable by syslinux through mtools holds the kernel and initramfs.
// Everything is cached outside the checkout, keyed by a hash of its inputs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { VMCS12_REVISION } from '../../model/catalog/vmcs12.js';
import { profileForKernel } from '../../model/profiles.js';
import { packageRoot } from '../../base/schemas.js';
import { lz4Kernel } from './fastboot.js';
import { bzImageRelease, releaseVersion, type KvmSpec } from './spec.js';

/** Set-up trouble a user can fix (a missing package, a bad path): one line, exit 2. */
export class KvmSetupError extends Error {}

/** Every Debian package the machine needs, with the file that shows it is there. */
const HOST_TOOLS: readonly { file: string; pkg: string }[] = [
  { file: '/usr/bin/bochs', pkg: 'bochs' },
  { file: '/usr/share/bochs/BIOS-bochs-latest', pkg: 'bochsbios' },
  { file: '/usr/share/vgabios/vgabios.bin', pkg: 'vgabios' },
  { file: '/bin/busybox', pkg: 'busybox-static' },
  { file: '/usr/bin/syslinux', pkg: 'syslinux' },
  { file: '/usr/lib/syslinux/modules/bios/ldlinux.c32', pkg: 'syslinux-common' },
  { file: '/usr/bin/mcopy', pkg: 'mtools' },
  { file: '/usr/sbin/mkfs.vfat', pkg: 'dosfstools' },
  { file: '/usr/bin/xz', pkg: 'xz-utils' },
  { file: '/usr/bin/dpkg-deb', pkg: 'dpkg' },
  { file: '/usr/bin/gcc', pkg: 'gcc' },
  { file: '/usr/lib/x86_64-linux-gnu/libc.a', pkg: 'libc6-dev' },
  { file: '/usr/lib/x86_64-linux-gnu/libz.a', pkg: 'zlib1g-dev' },
];

export const KVM_APT_PACKAGES = [...new Set(HOST_TOOLS.map((t) => t.pkg))];

export function checkHostTools(): void {
  const missing = HOST_TOOLS.filter((t) => !existsSync(t.file));
  if (missing.length)
    throw new KvmSetupError(`kvm: needs Debian packages that are missing (${missing.map((t) => t.file).join(', ')}): apt-get install -y ${[...new Set(missing.map((t) => t.pkg))].join(' ')}`);
  if (!isStaticElf(readFileSync('/bin/busybox'))) throw new KvmSetupError('kvm: /bin/busybox is not static: apt-get install -y busybox-static');
}

/** A 64-bit ELF executable without a PT_INTERP program header runs without a dynamic loader. */
function isStaticElf(b: Buffer): boolean {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const size = b.readUInt16LE(0x36);
  const count = b.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (phoff + i * size + 4 <= b.length && b.readUInt32LE(phoff + i * size) === 3) return false;
  return true;
}

export function cacheRoot(): string {
  return process.env.NVMX_KVM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nvmx-conformance', 'kvm');
}

const sha = (...parts: (string | Uint8Array)[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
};

function run(cmd: string, args: readonly string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const last = (err.stderr ?? '').trim().split('\n').pop() || err.message;
    throw new KvmSetupError(`kvm: ${cmd} ${args.join(' ')} failed: ${last}`);
  }
}

/** Builds in a fresh directory and renames it into place, so a cache entry is whole or absent. */
function cached(dir: string, build: (tmp: string) => void): string {
  if (existsSync(join(dir, '.done'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
    writeFileSync(join(tmp, '.done'), '');
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/** The unpacked package: apt-get download (unless the .deb is already cached), then dpkg-deb -x. */
export function unpackPackage(pkg: string, log: (l: string) => void): string {
  const debs = join(cacheRoot(), 'debs');
  mkdirSync(debs, { recursive: true });
  const find = () => readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!find()) {
    if (!existsSync('/usr/bin/apt-get')) throw new KvmSetupError(`kvm: ${pkg} is not cached in ${debs} and apt-get is not available to download it`);
    log(`kvm: downloading ${pkg} (apt-get download)`);
    run('apt-get', ['download', pkg], debs);
  }
  const deb = find();
  if (!deb) throw new KvmSetupError(`kvm: apt-get download ${pkg} left no .deb in ${debs}`);
  return cached(join(cacheRoot(), 'packages', deb.replace(/\.deb$/, '')), (tmp) => {
    log(`kvm: unpacking ${deb}`);
    run('dpkg-deb', ['-x', join(debs, deb), tmp]);
  });
}

const MODULES = ['irqbypass', 'kvm', 'kvm-intel'] as const;

/** Finds name.ko or name.ko.xz under dir; returns the module's bytes, decompressed. */
function findModule(dir: string, name: string): Uint8Array | null {
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.name === `${name}.ko`) return readFileSync(p);
      else if (e.name === `${name}.ko.xz`) return execFileSync('xz', ['-dc', p], { maxBuffer: 256 << 20 });
    }
  }
  return null;
}

/** The agent, compiled static from our C sources (cached by their hash). */
function agentBinary(log: (l: string) => void): Uint8Array {
  const src = join(packageRoot(), 'targets', 'kvm', 'agent');
  const files = ['agent.c', 'json.c', 'json.h', 'l1.S', 'l1.h'];
  if (!files.every((f) => existsSync(join(src, f)))) throw new KvmSetupError(`kvm: the agent's sources are missing from ${src}`);
  const key = sha(...files.map((f) => readFileSync(join(src, f))));
  const dir = cached(join(cacheRoot(), 'agent', key.slice(0, 16)), (tmp) => {
    log('kvm: compiling the agent (gcc -static)');
    run('gcc', ['-static', '-pthread', '-O2', '-Wall', '-o', join(tmp, 'nvmx-agent'), ...['agent.c', 'json.c', 'l1.S'].map((f) => join(src, f)), '-lz']);
  });
  return readFileSync(join(dir, 'nvmx-agent'));
}

/**
 * The preload library that turns Nagle's algorithm off on Bochs's serial socket
 * (`host/nodelay.c`, compiled once, cached by its hash). Null, with one line saying why, when it
 * cannot be built: Bochs then runs without it, each answer about 40 ms slower.
 */
function bochsPreload(log: (l: string) => void): string | null {
  const src = join(packageRoot(), 'targets', 'kvm', 'host', 'nodelay.c');
  try {
    const dir = cached(join(cacheRoot(), 'host', sha(readFileSync(src)).slice(0, 16)), (tmp) => {
      run('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', join(tmp, 'nodelay.so'), src, '-ldl']);
    });
    return join(dir, 'nodelay.so');
  } catch (e) {
    log(`kvm: Bochs's serial socket keeps Nagle's algorithm, every answer about 40 ms slower (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

/** A cpio "newc" archive, as the kernel unpacks an initramfs. */
function cpioNewc(entries: readonly { name: string; mode: number; data?: Uint8Array; rdev?: [number, number] }[]): Uint8Array {
  const chunks: Buffer[] = [];
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let ino = 1;
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }] as { name: string; mode: number; data?: Uint8Array; rdev?: [number, number] }[]) {
    const data = e.data ?? new Uint8Array();
    const name = Buffer.from(e.name + '\0');
    const fields = [ino++, e.mode, 0, 0, 1, 0, data.length, 0, 0, e.rdev?.[0] ?? 0, e.rdev?.[1] ?? 0, name.length, 0];
    const head = Buffer.from('070701' + fields.map(hex).join(''));
    chunks.push(head, name, pad(head.length + name.length), Buffer.from(data), pad(data.length));
  }
  return Buffer.concat(chunks);
}

const INIT = (modules: readonly string[]) => `#!/bin/busybox sh
# nvmx-conformance kvm: machine. The agent answers nvmx-target/1 on ttyS1; ttyS0 is the console log.
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
${modules.filter((m) => m !== 'kvm-intel').map((m) => `$B insmod /lib/modules/${m}.ko || echo "nvmx: insmod ${m} failed"`).join('\n')}
# kvm-intel is loaded by the agent, with the parameters of nvmx.kvm_intel= (it reloads it to change them)
echo "nvmx: agent starting at $($B cut -d' ' -f1 /proc/uptime) s"
/nvmx-agent /dev/ttyS1
echo "nvmx: agent exited with $?"
$B poweroff -f
`;

export interface KvmImage {
  readonly disk: string;
  readonly release: string;
  readonly profile: string;
  /** the Debian package the kernel came from, or the user's bzImage path */
  readonly kernelSource: string;
  readonly modulesSource: string;
  /** a library Bochs runs with (LD_PRELOAD): TCP_NODELAY on the serial socket; null if it could not be built */
  readonly bochsPreload: string | null;
}

/**
 * The package's kernel with only its setup and decompressor rebuilt for an LZ4 payload
 * (fastboot.ts; needs the matching linux-source package). Null, with one line saying why, when it
 * cannot be built: the stock kernel boots too, only slower.
 */
async function fastKernel(boot: string, vmlinuz: string, log: (l: string) => void): Promise<Uint8Array | null> {
  if (process.env.NVMX_KVM_STOCK_KERNEL) return null;
  const release = vmlinuz.replace(/^vmlinuz-/, '');
  try {
    const path = await lz4Kernel({
      vmlinuz: join(boot, vmlinuz),
      config: join(boot, `config-${release}`),
      systemMap: join(boot, `System.map-${release}`),
      kernelRelease: release,
      cacheDir: join(cacheRoot(), 'lz4'),
      log,
    });
    return readFileSync(path);
  } catch (e) {
    log(`kvm: booting the stock kernel, which decompresses slowly in Bochs (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

/** 64 MiB in the geometry Bochs detects for a flat disk without a partition table. */
export const DISK_GEOMETRY = { cylinders: 130, heads: 16, spt: 63 } as const;

export async function buildImage(spec: KvmSpec, log: (l: string) => void = () => {}): Promise<KvmImage> {
  checkHostTools();
  let kernel: Uint8Array;
  let packageModules: string | null = null;
  let kernelSource: string;
  let fast: Uint8Array | null = null;
  if (spec.kernel.kind === 'package') {
    const root = unpackPackage(spec.kernel.package, log);
    const vmlinuz = readdirSync(join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new KvmSetupError(`kvm: ${spec.kernel.package} has no boot/vmlinuz-*`);
    kernel = readFileSync(join(root, 'boot', vmlinuz));
    packageModules = join(root, 'lib', 'modules');
    kernelSource = spec.kernel.package;
    fast = await fastKernel(join(root, 'boot'), vmlinuz, log);
  } else {
    if (!existsSync(spec.kernel.path) || !statSync(spec.kernel.path).isFile()) throw new KvmSetupError(`kvm: no such kernel image: ${spec.kernel.path}`);
    kernel = readFileSync(spec.kernel.path);
    kernelSource = spec.kernel.path;
  }
  const release = bzImageRelease(kernel);
  const version = release ? releaseVersion(release) : null;
  if (!release || !version) throw new KvmSetupError(`kvm: ${kernelSource} is not a bzImage (no kernel version in its setup header)`);
  if (spec.modules && !existsSync(spec.modules)) throw new KvmSetupError(`kvm: no such modules directory: ${spec.modules}`);
  const modules = MODULES.map((m) => {
    const bytes = (spec.modules ? findModule(spec.modules, m) : null) ?? (packageModules ? findModule(packageModules, m) : null);
    if (!bytes) throw new KvmSetupError(`kvm: ${m}.ko not found in ${spec.modules ?? packageModules}`);
    return { name: m, bytes };
  });
  const profile = profileForKernel(version[0], version[1]).name;
  const agent = agentBinary(log);
  const busybox = readFileSync('/bin/busybox');
  const kvmIntel = `enable_shadow_vmcs=${spec.shadowVmcs ? 1 : 0}`;
  const cmdline = `console=ttyS0,115200 quiet loglevel=4 nokaslr mitigations=off tsc=reliable no_timer_check clocksource=tsc panic=-1 rdinit=/init nvmx.profile=${profile} nvmx.vmcs12_revision=0x${VMCS12_REVISION.toString(16)} nvmx.kvm_intel=${kvmIntel}${spec.entries ? ' nvmx.entries=1' : ''}`;
  const init = INIT(MODULES);
  // the same kernel proper: an LZ4 payload instead of the package's xz/zstd (the decompressor is
  // what Bochs spends its first minute on); the stock image when that cannot be built here
  if (fast) kernel = fast;
  const key = sha('image/1', kernel, ...modules.map((m) => m.bytes), agent, busybox, cmdline, init);
  const dir = cached(join(cacheRoot(), 'images', key.slice(0, 20)), (tmp) => {
    log(`kvm: building the boot image for ${release}`);
    const dirs = ['bin', 'dev', 'proc', 'sys', 'lib', 'lib/modules'].map((name) => ({ name, mode: 0o40755 }));
    const initrd = gzipSync(
      cpioNewc([
        ...dirs,
        { name: 'dev/console', mode: 0o20600, rdev: [5, 1] },
        { name: 'bin/busybox', mode: 0o100755, data: busybox },
        { name: 'init', mode: 0o100755, data: Buffer.from(init) },
        { name: 'nvmx-agent', mode: 0o100755, data: agent },
        ...modules.map((m) => ({ name: `lib/modules/${m.name}.ko`, mode: 0o100644, data: m.bytes })),
      ]),
      { level: 1 },
    );
    writeFileSync(join(tmp, 'vmlinuz'), kernel);
    writeFileSync(join(tmp, 'initrd.gz'), initrd);
    writeFileSync(join(tmp, 'syslinux.cfg'), `DEFAULT nvmx\nPROMPT 0\nTIMEOUT 0\nLABEL nvmx\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND ${cmdline}\n`);
    const disk = join(tmp, 'disk.img');
    writeFileSync(disk, '');
    execFileSync('truncate', ['-s', String(DISK_GEOMETRY.cylinders * DISK_GEOMETRY.heads * DISK_GEOMETRY.spt * 512), disk]);
    run('mkfs.vfat', ['-F', '16', '-n', 'NVMX', disk]);
    for (const f of ['vmlinuz', 'initrd.gz', 'syslinux.cfg']) run('mcopy', ['-i', disk, join(tmp, f), `::${f}`]);
    run('syslinux', ['--install', disk]);
    for (const f of ['vmlinuz', 'initrd.gz']) rmSync(join(tmp, f));
  });
  return { disk: join(dir, 'disk.img'), release, profile, kernelSource, modulesSource: `${spec.modules ?? `${kernelSource} (its own)`}, kvm_intel ${kvmIntel}`, bochsPreload: bochsPreload(log) };
}
