// Turns a Debian bzImage (xz or zstd payload) into one whose payload is LZ4, holding byte for byte
// the same kernel proper, so that an emulator as slow as Bochs (~100-150 M instructions/s) reaches
// the kernel proper in seconds instead of minutes (xz decompression alone is ~4.5 G instructions).
//
// Only the real-mode setup and the decompressor stub (arch/x86/boot) are rebuilt, with the distro's
// own Kbuild from the matching linux-source tarball, the distro config and CONFIG_KERNEL_LZ4=y. The
// kernel proper is never rebuilt: its decompressed payload (vmlinux.bin.all = stripped ELF + the
// relocation table the build appended) is fed to Kbuild in place of vmlinux.bin + vmlinux.relocs,
// and Kbuild then compresses it (`lz4 -l -9` + size), runs mkpiggy, links the stub, writes
// zoffset.h and lets header.S compute init_size exactly as a normal build would. The kernel tree is
// only used at run time, in a temporary directory; nothing of it is copied into this project.
//
// How Kbuild is kept from building vmlinux (the kernel proper) — in-tree build, so that top-level
// make does not re-invoke itself and `-o` stays in force:
//   make -o vmlinux  'vmlinux.bin.all-y=<payload>'  'cmd_voffset=sed -n $(sed-voffset) <map> > $@'  bzImage
// `-o vmlinux` marks the (empty placeholder) vmlinux as up to date in the top-level makefile; the two
// command-line variables override, in every sub-make, the payload the stub's compressed/Makefile
// compresses and the command that writes voffset.h. Debian ships a stub System.map, so the four
// symbols voffset.h needs (_text, __start_rodata, __bss_start, _end) are taken from the payload's
// ELF section headers (.text, .rodata, .bss starts; .brk end rounded to a page), checked against a
// real System.map when one is given, and written as an nm-style map for the kernel's own sed.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';

export interface Lz4KernelOptions {
  /** A bzImage (Debian's vmlinuz-*). */
  vmlinuz: string;
  /** The config it was built with (Debian's config-*). */
  config: string;
  /** Its System.map; Debian's is a one-line stub, then the symbols come from the payload's ELF headers. */
  systemMap: string;
  /** `uname -r` of that kernel, e.g. 6.1.0-57-amd64; must match the bzImage's version string. */
  kernelRelease: string;
  /** Where finished images are kept, keyed by a hash of the inputs. */
  cacheDir: string;
  log?: (line: string) => void;
  /** Default /usr/src/linux-source-<major.minor>.tar.xz (Debian package linux-source-<major.minor>). */
  sourceTarball?: string;
}

/** Bump when the recipe changes, so that cached images built by an older recipe are not reused. */
const RECIPE = 'nvmx-fastboot-lz4/1';

/** Options that shape the setup code or the decompressor; olddefconfig must leave them as the distro had them. */
const STUB_OPTIONS = [
  'CONFIG_X86_64', 'CONFIG_PHYSICAL_START', 'CONFIG_PHYSICAL_ALIGN', 'CONFIG_RELOCATABLE', 'CONFIG_RANDOMIZE_BASE', 'CONFIG_X86_NEED_RELOCS',
  'CONFIG_X86_5LEVEL', 'CONFIG_AMD_MEM_ENCRYPT', 'CONFIG_INTEL_TDX_GUEST', 'CONFIG_UNACCEPTED_MEMORY', 'CONFIG_ACPI', 'CONFIG_EARLY_PRINTK',
  'CONFIG_EFI', 'CONFIG_EFI_STUB', 'CONFIG_EFI_MIXED', 'CONFIG_EFI_HANDOVER_PROTOCOL', 'CONFIG_X86_APM_BOOT',
];

export async function lz4Kernel(opts: Lz4KernelOptions): Promise<string> {
  const log = opts.log ?? (() => {});
  const image = await fs.readFile(opts.vmlinuz);
  const configText = await fs.readFile(opts.config, 'utf8');
  const mapText = await fs.readFile(opts.systemMap, 'utf8');
  const hdr = parseSetupHeader(image);
  const banner = parseBanner(hdr.kernelVersion);
  if (banner.release !== opts.kernelRelease) {
    throw new Error(`lz4Kernel: ${opts.vmlinuz} is kernel ${banner.release || `"${hdr.kernelVersion}"`}, not ${opts.kernelRelease}`);
  }
  const mm = /^(\d+\.\d+)/.exec(opts.kernelRelease)?.[1];
  if (!mm) throw new Error(`lz4Kernel: cannot tell major.minor from kernel release ${opts.kernelRelease}`);
  const srcPkg = `linux-source-${mm}`;
  const tarball = opts.sourceTarball ?? `/usr/src/${srcPkg}.tar.xz`;
  const payloadFormat = detectFormat(hdr.payload);

  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE, release: opts.kernelRelease, tarball: basename(tarball), sourceVersion: banner.debianVersion ?? '' }))
    .update('\0').update(sha256(image))
    .update('\0').update(sha256(Buffer.from(configText)))
    .update('\0').update(sha256(Buffer.from(mapText)))
    .digest('hex');
  const out = join(opts.cacheDir, `vmlinuz-${opts.kernelRelease}-lz4-${key.slice(0, 16)}`);
  if (await exists(out)) {
    log(`fastboot: cached ${out}`);
    return out;
  }

  // Everything below runs only on a cache miss.
  const cfg = parseConfig(configText);
  const cc = ccFromConfig(cfg);
  await checkPackages({ tarball, srcPkg, wantVersion: banner.debianVersion, cc, payloadFormat, sourceTarballGiven: opts.sourceTarball !== undefined });

  const t0 = Date.now();
  const jobs = String(Math.max(1, availableParallelism()));
  if (/[\s:$#'"\\]/.test(tmpdir())) throw new Error(`lz4Kernel: Kbuild cannot work under ${tmpdir()} (spaces, colons or shell characters); set TMPDIR to a plain path`);
  const work = await fs.mkdtemp(join(tmpdir(), 'nvmx-fastboot-'));
  const buildLog = join(work, 'build.log');
  const logFd = await fs.open(buildLog, 'a');
  let ok = false;
  const step = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    log(`fastboot: ${what} ...`);
    const r = await f();
    log(`fastboot: ${what} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    return r;
  };
  try {
    log(`fastboot: building LZ4 image of ${opts.kernelRelease} from ${tarball} in ${work} (log ${buildLog})`);
    // 1. The kernel proper: the decompressed payload, exactly as the distro build produced it.
    const payloadAll = join(work, 'vmlinux.bin.all');
    await step(`decompress ${payloadFormat.name} payload`, () => decompressPayload(hdr, payloadFormat, work, payloadAll));
    const elf = await fs.readFile(payloadAll);
    const wantLen = hdr.payload.readUInt32LE(hdr.payload.length - 4);
    if (elf.length % 2 ** 32 !== wantLen) throw new Error(`lz4Kernel: payload decompressed to ${elf.length} bytes, the image says ${wantLen}`);
    const payloadSha = sha256(elf);

    // 2. voffset.h input: the four kernel-proper symbols, as an nm-style map.
    const vo = kernelProperSymbols(elf, mapText, log);
    const crossCheck = findLe64(image, vo._end - vo._text, hdr.payloadStart, hdr.payloadStart + hdr.payload.length);
    log(crossCheck >= 0
      ? `fastboot: _end - _text = 0x${(vo._end - vo._text).toString(16)} also found in the stock decompressor (kernel_total_size)`
      : `fastboot: _end - _text = 0x${(vo._end - vo._text).toString(16)} not found in the stock decompressor; could not cross-check`);
    const voMap = join(work, 'voffset.map');
    await fs.writeFile(voMap, formatNmMap(vo));

    // 3. The source tree, configured as the distro kernel but with an LZ4 payload.
    const srcParent = join(work, 'src');
    await fs.mkdir(srcParent);
    await step(`extract ${basename(tarball)}`, () => run('tar', ['-xf', tarball, '-C', srcParent], { cwd: work, logFd }));
    const dirs = await fs.readdir(srcParent);
    if (dirs.length !== 1 || !dirs[0]) throw new Error(`lz4Kernel: ${tarball} did not unpack to one directory (${dirs.join(', ')})`);
    const tree = join(srcParent, dirs[0]);
    await fs.writeFile(join(tree, '.config'), withLz4(configText));

    const env = buildEnv(banner);
    // In-tree build and --no-print-directory: the top-level Makefile then does not re-invoke itself
    // (6.12 recurses once just to add that flag), which would drop `-o vmlinux` below.
    // KERNELRELEASE names the tree in 6.3+, KERNELVERSION (+ an empty setlocalversion) in 6.1.
    // CC is the distro's compiler, so that olddefconfig keeps the compiler-dependent options.
    const mk = (args: string[], guard?: (line: string) => string | undefined) => run('make', ['--no-print-directory', `CC=${cc}`, `HOSTCC=${cc}`, 'ARCH=x86_64', `KERNELRELEASE=${opts.kernelRelease}`, `KERNELVERSION=${opts.kernelRelease}`, ...args], { cwd: tree, env, logFd, guard });
    await step('make olddefconfig', () => mk(['olddefconfig']));
    const newCfg = parseConfig(await fs.readFile(join(tree, '.config'), 'utf8'));
    if (newCfg.get('CONFIG_KERNEL_LZ4') !== 'y') throw new Error('lz4Kernel: CONFIG_KERNEL_LZ4=y did not survive olddefconfig');
    const changed = configDiff(cfg, newCfg).filter((n) => !/^CONFIG_KERNEL_(GZIP|BZIP2|LZMA|XZ|LZO|LZ4|ZSTD)$/.test(n));
    // With Debian's configs these are pahole/BTF, module signing and rustc options of the build
    // machine's toolchain; the options the stub is built from are checked one by one below.
    if (changed.length) log(`fastboot: olddefconfig changed ${changed.length} other option(s) here: ${changed.slice(0, 12).join(' ')}${changed.length > 12 ? ' ...' : ''}`);
    for (const n of STUB_OPTIONS) {
      if (cfg.get(n) !== newCfg.get(n)) throw new Error(`lz4Kernel: olddefconfig changed ${n} (${cfg.get(n)} -> ${newCfg.get(n)}), the stub would not match the kernel proper`);
    }

    await step('make prepare', () => mk([`-j${jobs}`, 'prepare']));
    const rel = (await fs.readFile(join(tree, 'include/config/kernel.release'), 'utf8')).trim();
    if (rel !== opts.kernelRelease) throw new Error(`lz4Kernel: the tree's kernel.release is ${rel}, not ${opts.kernelRelease}`);

    // 4. Files the stub build takes from elsewhere in the tree, normally made while building vmlinux.
    const extras: string[] = [];
    if (newCfg.get('CONFIG_EFI_STUB') === 'y') extras.push('drivers/firmware/efi/libstub/'); // lib.a, linked into the stub
    if (await exists(join(tree, 'arch/x86/kernel/cpu/mkcapflags.sh'))) extras.push('arch/x86/kernel/cpu/capflags.o'); // capflags.c for mkcpustr
    if (await exists(join(tree, 'init/version-timestamp.c'))) extras.push('init/version-timestamp.o'); // generated/utsversion.h for kaslr.c
    await step('make the stub\'s inputs from outside arch/x86/boot', async () => {
      if (extras.length) await mk([`-j${jobs}`, ...extras]);
      // inat-tables.c, included by the stub's sev.c: arch/x86/lib/Makefile's cmd_inat_tables, run
      // directly because a single-target `make arch/x86/lib/inat.o` descends through arch/x86 first,
      // where that rule is not visible.
      await run('awk', ['-f', 'arch/x86/tools/gen-insn-attr-x86.awk', 'arch/x86/lib/x86-opcode-map.txt'], { cwd: tree, env, logFd, stdoutFile: join(tree, 'arch/x86/lib/inat-tables.c') });
    });

    // 5. The stub and the image, around the distro's kernel proper.
    await fs.writeFile(join(tree, 'vmlinux'), '');
    // Only arch/x86/boot may be built here; anything else means `-o vmlinux` was lost (e.g. in a
    // recursive top-level make) and Kbuild set out to build the kernel proper: stop at once.
    const onlyBoot = (line: string) => {
      const m = /^\s+(?:CC|AS|LD|AR|HOSTCC|OBJCOPY|LDS|CPP)\s+(\S+)/.exec(line);
      return m && !m[1]!.startsWith('arch/x86/boot/') ? `Kbuild went on to build ${m[1]} (the kernel proper), so the -o vmlinux trick does not hold for this tree` : undefined;
    };
    await step('make bzImage (setup + decompressor only)', () => mk([
      `-j${jobs}`, '-o', 'vmlinux',
      `vmlinux.bin.all-y=${payloadAll}`,
      `cmd_voffset=sed -n $(sed-voffset) ${voMap} > $@`,
      'bzImage',
    ], onlyBoot));
    const built = join(tree, 'arch/x86/boot/bzImage');
    const voffsetH = await fs.readFile(join(tree, 'arch/x86/boot/voffset.h'), 'utf8');
    for (const s of ['_text', '__bss_start', '_end']) {
      if (!voffsetH.includes(`#define VO_${s} `)) throw new Error(`lz4Kernel: voffset.h lacks VO_${s}:\n${voffsetH}`);
    }

    // 6. Check the result before it goes into the cache.
    const newImage = await fs.readFile(built);
    const nh = parseSetupHeader(newImage);
    if (detectFormat(nh.payload).name !== 'lz4') throw new Error('lz4Kernel: the built image does not carry an LZ4 payload');
    const back = join(work, 'roundtrip.bin');
    await decompressPayload(nh, detectFormat(nh.payload), work, back);
    if (sha256(await fs.readFile(back)) !== payloadSha) throw new Error('lz4Kernel: the LZ4 payload does not decompress to the original kernel proper');
    if (nh.initSize < vo._end - vo._text) throw new Error(`lz4Kernel: init_size 0x${nh.initSize.toString(16)} is below the kernel proper's size`);
    if (nh.kernelVersion !== hdr.kernelVersion) log(`fastboot: version string differs: "${nh.kernelVersion}" (stock "${hdr.kernelVersion}")`);
    log(`fastboot: ${basename(opts.vmlinuz)} ${image.length} B (${payloadFormat.name}) -> ${newImage.length} B (lz4), init_size 0x${nh.initSize.toString(16)} (stock 0x${hdr.initSize.toString(16)})`);

    await fs.mkdir(opts.cacheDir, { recursive: true });
    const tmpOut = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await fs.copyFile(built, tmpOut);
    await fs.copyFile(buildLog, `${out}.build.log`).catch(() => {});
    await fs.rename(tmpOut, out);
    ok = true;
    log(`fastboot: ${out} ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return out;
  } finally {
    await logFd.close();
    if (ok || process.env.NVMX_FASTBOOT_KEEP !== '1') await fs.rm(work, { recursive: true, force: true });
    else log(`fastboot: build directory kept: ${work}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (exported for the tests).

export interface SetupHeader {
  setupSects: number;
  /** Offset in the file of the protected-mode code ((setup_sects + 1) * 512). */
  pmOffset: number;
  payloadStart: number;
  /** The compressed payload as stored, including the 4-byte uncompressed size appended by Kbuild. */
  payload: Buffer;
  initSize: number;
  kernelVersion: string;
}

/** Reads the x86 boot protocol header (Documentation/arch/x86/boot.rst) of a bzImage. */
export function parseSetupHeader(img: Buffer): SetupHeader {
  if (img.length < 0x270 || img.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new Error('lz4Kernel: not a bzImage (no HdrS boot header)');
  const version = img.readUInt16LE(0x206);
  if (version < 0x208) throw new Error(`lz4Kernel: boot protocol 0x${version.toString(16)} has no payload fields`);
  const setupSects = img[0x1f1] || 4;
  const pmOffset = (setupSects + 1) * 512;
  const payloadOffset = img.readUInt32LE(0x248);
  const payloadLength = img.readUInt32LE(0x24c);
  const payloadStart = pmOffset + payloadOffset;
  if (payloadLength < 8 || payloadStart + payloadLength > img.length) throw new Error('lz4Kernel: payload_offset/payload_length point outside the image');
  const kvPtr = img.readUInt16LE(0x20e);
  let kernelVersion = '';
  if (kvPtr) {
    const at = kvPtr + 0x200;
    const end = img.indexOf(0, at);
    kernelVersion = img.toString('latin1', at, end < 0 ? Math.min(img.length, at + 256) : end);
  }
  return { setupSects, pmOffset, payloadStart, payload: img.subarray(payloadStart, payloadStart + payloadLength), initSize: img.readUInt32LE(0x260), kernelVersion };
}

export interface Banner {
  release: string;
  user?: string;
  host?: string;
  buildVersion?: string;
  /** What follows the SMP/PREEMPT flags in UTS_VERSION (KBUILD_BUILD_TIMESTAMP). */
  timestamp?: string;
  /** The Debian package version named in the timestamp ("Debian 6.1.192-3 (date)"). */
  debianVersion?: string;
}

/** Splits `<release> (<user>@<host>) #<n> [SMP] [PREEMPT...] <timestamp>` (mkcompile_h's format). */
export function parseBanner(s: string): Banner {
  const m = /^(\S+) \(([^@\s()]+)@([^\s()]+)\) #(\S+) (.*)$/.exec(s);
  if (!m) return { release: s.split(' ')[0] ?? '' };
  const words = (m[5] ?? '').split(' ');
  while (words.length > 1 && /^(SMP|PREEMPT|PREEMPT_RT|PREEMPT_DYNAMIC)$/.test(words[0] ?? '')) words.shift();
  const timestamp = words.join(' ');
  return { release: m[1]!, user: m[2]!, host: m[3]!, buildVersion: m[4]!, timestamp, debianVersion: /\bDebian (\S+)/.exec(timestamp)?.[1] };
}

export interface PayloadFormat {
  name: 'xz' | 'zstd' | 'gzip' | 'lz4' | 'lzma' | 'bzip2';
  /** Command that writes the decompressed stream of its file argument to stdout. */
  cmd: [string, ...string[]];
  pkg: string;
  /** Whether Kbuild appended the 4-byte size (all but gzip, whose trailer already holds it). */
  sizeAppended: boolean;
}

export function detectFormat(p: Buffer): PayloadFormat {
  const at = (hex: string) => p.subarray(0, hex.length / 2).equals(Buffer.from(hex, 'hex'));
  if (at('fd377a585a00')) return { name: 'xz', cmd: ['xz', '-dc'], pkg: 'xz-utils', sizeAppended: true };
  if (at('28b52ffd')) return { name: 'zstd', cmd: ['zstd', '-dcq'], pkg: 'zstd', sizeAppended: true };
  if (at('1f8b')) return { name: 'gzip', cmd: ['gzip', '-dc'], pkg: 'gzip', sizeAppended: false };
  if (at('02214c18')) return { name: 'lz4', cmd: ['lz4', '-dc'], pkg: 'lz4', sizeAppended: true };
  if (at('5d0000')) return { name: 'lzma', cmd: ['xz', '--format=lzma', '-dc'], pkg: 'xz-utils', sizeAppended: true };
  if (at('425a68')) return { name: 'bzip2', cmd: ['bzip2', '-dc'], pkg: 'bzip2', sizeAppended: true };
  throw new Error(`lz4Kernel: unsupported payload compression (magic ${p.subarray(0, 6).toString('hex')})`);
}

export interface KernelProperSymbols {
  _text: bigint;
  __start_rodata: bigint;
  __bss_start: bigint;
  _end: bigint;
}

const PAGE = 4096n;

/**
 * The symbols voffset.h needs, from the ELF64 section headers of the decompressed payload:
 * x86's vmlinux.lds.S puts _text at the start of .text, __start_rodata at the start of .rodata,
 * __bss_start at the start of .bss, and _end at the page-aligned end of .brk.
 */
export function symbolsFromElf(elf: Buffer): KernelProperSymbols {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1 || elf.readUInt16LE(18) !== 0x3e) {
    throw new Error('lz4Kernel: the decompressed payload is not an x86-64 ELF64 image');
  }
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (!shoff || shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) throw new Error('lz4Kernel: the payload ELF has no usable section headers');
  const sh = (i: number) => {
    const o = shoff + i * shentsize;
    return { name: elf.readUInt32LE(o), addr: elf.readBigUInt64LE(o + 16), offset: Number(elf.readBigUInt64LE(o + 24)), size: elf.readBigUInt64LE(o + 32) };
  };
  const strtab = sh(shstrndx);
  const sections = new Map<string, { addr: bigint; size: bigint }>();
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    const at = strtab.offset + s.name;
    const end = elf.indexOf(0, at);
    sections.set(elf.toString('latin1', at, end < 0 ? at : end), { addr: s.addr, size: s.size });
  }
  const need = (n: string) => {
    const s = sections.get(n);
    if (!s) throw new Error(`lz4Kernel: the payload ELF has no ${n} section`);
    return s;
  };
  const brk = sections.get('.brk') ?? need('.bss');
  const endRaw = brk.addr + brk.size;
  return { _text: need('.text').addr, __start_rodata: need('.rodata').addr, __bss_start: need('.bss').addr, _end: (endRaw + PAGE - 1n) & ~(PAGE - 1n) };
}

/** The same symbols from a real System.map; undefined for Debian's one-line stub. */
export function symbolsFromSystemMap(text: string): Partial<KernelProperSymbols> | undefined {
  const found: Partial<KernelProperSymbols> = {};
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+) [ABCDGRSTVW] (_text|__start_rodata|__bss_start|_end)$/.exec(line.trim());
    if (m) found[m[2] as keyof KernelProperSymbols] = BigInt(`0x${m[1]}`);
  }
  return found._text !== undefined && found._end !== undefined && found.__bss_start !== undefined ? found : undefined;
}

function kernelProperSymbols(elf: Buffer, mapText: string, log: (l: string) => void): KernelProperSymbols {
  const fromElf = symbolsFromElf(elf);
  const fromMap = symbolsFromSystemMap(mapText);
  if (!fromMap) {
    log('fastboot: System.map is a stub; voffset symbols taken from the payload\'s ELF section headers');
    return fromElf;
  }
  for (const [k, v] of Object.entries(fromMap) as [keyof KernelProperSymbols, bigint][]) {
    if (v !== fromElf[k]) throw new Error(`lz4Kernel: System.map says ${k} = 0x${v.toString(16)}, the payload ELF says 0x${fromElf[k].toString(16)}: they are not the same kernel`);
  }
  log('fastboot: voffset symbols from System.map agree with the payload ELF');
  return { ...fromElf, ...fromMap };
}

export function formatNmMap(s: KernelProperSymbols): string {
  const line = (v: bigint, t: string, n: string) => `${v.toString(16).padStart(16, '0')} ${t} ${n}\n`;
  return line(s._text, 'T', '_text') + line(s.__start_rodata, 'D', '__start_rodata') + line(s.__bss_start, 'B', '__bss_start') + line(s._end, 'B', '_end');
}

/** The distro config with the payload compression switched to LZ4 (the rest left to olddefconfig). */
export function withLz4(config: string): string {
  const kept = config.split('\n').filter((l) => !/^(# )?CONFIG_KERNEL_(GZIP|BZIP2|LZMA|XZ|LZO|LZ4|ZSTD)[= ]/.test(l));
  while (kept.length && kept[kept.length - 1] === '') kept.pop();
  return `${kept.join('\n')}\nCONFIG_KERNEL_LZ4=y\n`;
}

export function parseConfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set) m.set(set[1]!, set[2]!);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) m.set(unset[1]!, 'n');
  }
  return m;
}

function configDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => (a.get(n) ?? 'n') !== (b.get(n) ?? 'n')).sort();
}

/** The compiler the distro used (first word of CONFIG_CC_VERSION_TEXT, e.g. gcc-12), so olddefconfig sees the same one. */
function ccFromConfig(cfg: Map<string, string>): string {
  const text = (cfg.get('CONFIG_CC_VERSION_TEXT') ?? '').replace(/^"|"$/g, '');
  const first = text.split(' ')[0] ?? '';
  return /^[\w.+-]*gcc(-\d+)?$/.test(first) ? first : 'gcc';
}

function findLe64(buf: Buffer, v: bigint, skipFrom: number, skipTo: number): number {
  const needle = Buffer.alloc(8);
  needle.writeBigUInt64LE(v);
  for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + 1)) {
    if (i < skipFrom || i >= skipTo) return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Environment and processes.

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p, fsConstants.F_OK).then(() => true, () => false);
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (dir && (await fs.access(join(dir, cmd), fsConstants.X_OK).then(() => true, () => false))) return true;
  }
  return false;
}

/** Checks every Debian package the build needs; throws one line naming the apt-get that fixes what is missing. */
async function checkPackages(p: { tarball: string; srcPkg: string; wantVersion: string | undefined; cc: string; payloadFormat: PayloadFormat; sourceTarballGiven: boolean }): Promise<void> {
  const missing: string[] = [];
  const notes: string[] = [];
  const cmds: [string, string][] = [
    ['make', 'make'], ['tar', 'tar'], ['xz', 'xz-utils'], ['awk', 'mawk'], ['flex', 'flex'], ['bison', 'bison'], ['bc', 'bc'], ['lz4', 'lz4'], ['perl', 'perl'],
    ['ld', 'binutils'], ['objcopy', 'binutils'], ['nm', 'binutils'], ['ar', 'binutils'], [p.payloadFormat.cmd[0], p.payloadFormat.pkg],
    [p.cc, /^(?:x86_64-linux-gnu-)?(gcc-\d+)$/.exec(p.cc)?.[1] ?? 'gcc'],
  ];
  for (const [cmd, pkg] of cmds) if (!(await onPath(cmd))) missing.push(pkg);
  if (!(await exists('/usr/include/gelf.h'))) missing.push('libelf-dev'); // objtool, resolve_btfids (make prepare)
  if (!(await exists('/usr/include/openssl/opensslv.h'))) missing.push('libssl-dev'); // sign-file, extract-cert (make prepare)
  const srcSpec = p.wantVersion ? `${p.srcPkg}=${p.wantVersion}` : p.srcPkg;
  if (!(await exists(p.tarball))) {
    if (p.sourceTarballGiven) throw new Error(`lz4Kernel: source tarball ${p.tarball} does not exist`);
    missing.push(srcSpec);
  } else if (!p.sourceTarballGiven && p.wantVersion) {
    const have = await dpkgVersion(p.srcPkg);
    if (have !== undefined && have !== p.wantVersion) {
      missing.push(srcSpec);
      notes.push(`${p.srcPkg} ${have} is installed, the kernel is ${p.wantVersion}`);
    }
  }
  if (missing.length) {
    const pkgs = [...new Set(missing)];
    throw new Error(`lz4Kernel: missing Debian packages${notes.length ? ` (${notes.join('; ')})` : ''}: apt-get install -y ${pkgs.join(' ')}`);
  }
}

async function dpkgVersion(pkg: string): Promise<string | undefined> {
  if (!(await onPath('dpkg-query'))) return undefined;
  return new Promise((resolve) => {
    const c = spawn('dpkg-query', ['-W', '-f', '${Version}', pkg], { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    c.stdout.on('data', (d: Buffer) => (s += d.toString()));
    c.on('error', () => resolve(undefined));
    c.on('close', (code) => resolve(code === 0 && s.trim() ? s.trim() : undefined));
  });
}

/** A clean environment for Kbuild, with the distro's build identity so the version string comes out the same. */
function buildEnv(b: Banner): NodeJS.ProcessEnv {
  const drop = /^(MAKE\w*|MFLAGS|GNUMAKEFLAGS|KBUILD_\w+|ARCH|SRCARCH|CROSS_COMPILE|LLVM\w*|KCFLAGS|KCPPFLAGS|KAFLAGS|KRUSTFLAGS|LOCALVERSION|O|V|W|C|M|CC|LD|HOSTCC|CFLAGS|CPPFLAGS|LDFLAGS|EXTRA_\w+|INSTALL_\w+)$/;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!drop.test(k)) env[k] = v;
  env.LC_ALL = 'C';
  if (b.user) env.KBUILD_BUILD_USER = b.user;
  if (b.host) env.KBUILD_BUILD_HOST = b.host;
  if (b.buildVersion) env.KBUILD_BUILD_VERSION = b.buildVersion;
  if (b.timestamp) env.KBUILD_BUILD_TIMESTAMP = b.timestamp;
  return env;
}

async function run(cmd: string, args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv; logFd: fs.FileHandle; stdoutFile?: string; guard?: (line: string) => string | undefined }): Promise<void> {
  await o.logFd.write(`\n$ ${[cmd, ...args].map((a) => (/^[\w./=+:,@-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}${o.stdoutFile ? ` > ${o.stdoutFile}` : ''}\n`);
  const tail: string[] = [];
  const outFd = o.stdoutFile ? await fs.open(o.stdoutFile, 'w') : undefined;
  await new Promise<void>((resolve, reject) => {
    // A guarded command gets its own process group, so that the guard can stop make with all its sub-makes.
    const c = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', outFd ? outFd.fd : 'pipe', 'pipe'], detached: o.guard !== undefined });
    let pending = Promise.resolve();
    let stopped: string | undefined;
    const take = (d: Buffer) => {
      pending = pending.then(() => o.logFd.write(d)).then(() => {});
      for (const l of d.toString().split('\n')) {
        if (!l) continue;
        tail.push(l);
        const why = stopped === undefined && o.guard ? o.guard(l) : undefined;
        if (why !== undefined && c.pid !== undefined) {
          stopped = why;
          try {
            process.kill(-c.pid, 'SIGTERM');
          } catch {
            c.kill('SIGTERM');
          }
        }
      }
      if (tail.length > 40) tail.splice(0, tail.length - 40);
    };
    c.stdout?.on('data', take);
    c.stderr?.on('data', take);
    c.on('error', reject);
    c.on('close', (code, sig) => {
      void pending.then(() => outFd?.close()).then(() => {
        if (stopped !== undefined) reject(new Error(`lz4Kernel: stopped ${cmd} ${args.slice(-1)[0] ?? ''}: ${stopped}`));
        else if (code === 0) resolve();
        else reject(new Error(`lz4Kernel: ${cmd} ${args.slice(-1)[0] ?? ''} failed (${sig ?? `exit ${code}`}); set NVMX_FASTBOOT_KEEP=1 to keep the tree. Last output:\n${tail.slice(-25).join('\n')}`));
      });
    });
  });
}

async function decompressPayload(h: SetupHeader, f: PayloadFormat, work: string, outFile: string): Promise<void> {
  const inFile = join(work, `payload.${f.name}`);
  await fs.writeFile(inFile, f.sizeAppended ? h.payload.subarray(0, h.payload.length - 4) : h.payload);
  const out = await fs.open(outFile, 'w');
  try {
    await new Promise<void>((resolve, reject) => {
      const [cmd, ...args] = f.cmd;
      const c = spawn(cmd, [...args, inFile], { stdio: ['ignore', out.fd, 'pipe'] });
      let err = '';
      c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      c.on('error', reject);
      c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`lz4Kernel: ${cmd} could not decompress the payload: ${err.trim().split('\n')[0] ?? `exit ${code}`}`))));
    });
  } finally {
    await out.close();
    await fs.rm(inFile, { force: true });
  }
}
