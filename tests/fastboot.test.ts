// kvm/fastboot: the parts of lz4Kernel that need no kernel material — the boot header, the version
// banner, payload formats, voffset symbols from ELF section headers (Debian ships a stub System.map),
// the LZ4 config edit — on synthetic images; and that a mismatched kernel release fails at once.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { detectFormat, formatNmMap, lz4Kernel, parseBanner, parseConfig, parseSetupHeader, symbolsFromElf, symbolsFromSystemMap, withLz4 } from '../targets/kvm/fastboot.js';

const BANNER = '6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)';

/** A bzImage-shaped buffer: 2 setup sectors + boot sector, a payload at payload_offset, a banner. */
function fakeBzImage(payload: Buffer, banner = BANNER): Buffer {
  const setupSects = 2;
  const pm = (setupSects + 1) * 512;
  const img = Buffer.alloc(pm + 64 + payload.length);
  img[0x1f1] = setupSects;
  img.write('HdrS', 0x202, 'latin1');
  img.writeUInt16LE(0x20f, 0x206);
  img.writeUInt16LE(0x300, 0x20e); // kernel_version at 0x300 + 0x200
  img.write(`${banner}\0`, 0x500, 'latin1');
  img.writeUInt32LE(64, 0x248);
  img.writeUInt32LE(payload.length, 0x24c);
  img.writeUInt32LE(0x3f98000, 0x260);
  payload.copy(img, pm + 64);
  return img;
}

/** An ELF64 x86-64 with only section headers: name -> [addr, size]. */
function fakeElf(sections: [string, bigint, bigint][]): Buffer {
  const names = ['', ...sections.map((s) => s[0]), '.shstrtab'];
  const strtab = Buffer.from(`${names.join('\0')}\0`, 'latin1');
  const strOff = 64;
  const shoff = 64 + Math.ceil(strtab.length / 8) * 8;
  const elf = Buffer.alloc(shoff + names.length * 64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf.writeUInt16LE(0x3e, 18);
  elf.writeBigUInt64LE(BigInt(shoff), 0x28);
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(names.length, 0x3c);
  elf.writeUInt16LE(names.length - 1, 0x3e);
  strtab.copy(elf, strOff);
  let nameAt = 1;
  names.slice(1).forEach((n, i) => {
    const o = shoff + (i + 1) * 64;
    elf.writeUInt32LE(nameAt, o);
    const s = sections[i];
    if (s) {
      elf.writeBigUInt64LE(s[1], o + 16);
      elf.writeBigUInt64LE(s[2], o + 32);
    } else {
      elf.writeBigUInt64LE(BigInt(strOff), o + 24);
      elf.writeBigUInt64LE(BigInt(strtab.length), o + 32);
    }
    nameAt += n.length + 1;
  });
  return elf;
}

describe('kvm/fastboot helpers', () => {
  test('setup header: payload, init_size and version string', () => {
    const payload = Buffer.concat([Buffer.from('fd377a585a000004', 'hex'), Buffer.alloc(20), Buffer.from([0xb4, 0xa7, 0xed, 0x03])]);
    const h = parseSetupHeader(fakeBzImage(payload));
    expect(h.pmOffset).toBe(3 * 512);
    expect(h.payload.equals(payload)).toBe(true);
    expect(h.initSize).toBe(0x3f98000);
    expect(h.kernelVersion).toBe(BANNER);
    expect(detectFormat(h.payload).name).toBe('xz');
    expect(() => parseSetupHeader(Buffer.alloc(4096))).toThrow(/not a bzImage/);
  });

  test('payload formats by magic', () => {
    expect(detectFormat(Buffer.from('28b52ffd0488', 'hex')).name).toBe('zstd');
    expect(detectFormat(Buffer.from('02214c180000', 'hex'))).toMatchObject({ name: 'lz4', sizeAppended: true });
    expect(detectFormat(Buffer.from('1f8b08000000', 'hex'))).toMatchObject({ name: 'gzip', sizeAppended: false });
    expect(() => detectFormat(Buffer.from('894c5a4f0000', 'hex'))).toThrow(/unsupported payload/);
  });

  test('banner: build identity and Debian version', () => {
    expect(parseBanner(BANNER)).toEqual({ release: '6.1.0-57-amd64', user: 'debian-kernel', host: 'lists.debian.org', buildVersion: '1', timestamp: 'Debian 6.1.192-3 (2026-11-26)', debianVersion: '6.1.192-3' });
    expect(parseBanner('6.12.117+deb12-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1~deb12u1 (2026-11-14)').debianVersion).toBe('6.12.117-1~deb12u1');
    expect(parseBanner('6.9.0 (me@box) #3 Tue Jan 1 00:00:00 UTC 2030')).toMatchObject({ release: '6.9.0', timestamp: 'Tue Jan 1 00:00:00 UTC 2030', debianVersion: undefined });
  });

  test('voffset symbols from section headers; _end is the page-aligned end of .brk', () => {
    const elf = fakeElf([
      ['.text', 0xffffffff81000000n, 0xe01d32n],
      ['.rodata', 0xffffffff82000000n, 0x45e616n],
      ['.bss', 0xffffffff83310000n, 0x10f0000n],
      ['.brk', 0xffffffff84400000n, 0x2f001n],
      ['.init.scratch', 0xffffffff84600000n, 0x400000n],
    ]);
    const s = symbolsFromElf(elf);
    expect(s).toEqual({ _text: 0xffffffff81000000n, __start_rodata: 0xffffffff82000000n, __bss_start: 0xffffffff83310000n, _end: 0xffffffff84430000n });
    expect(formatNmMap(s)).toBe('ffffffff81000000 T _text\nffffffff82000000 D __start_rodata\nffffffff83310000 B __bss_start\nffffffff84430000 B _end\n');
    expect(symbolsFromSystemMap(formatNmMap(s))).toEqual(s);
    expect(symbolsFromSystemMap('ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n')).toBeUndefined();
    expect(() => symbolsFromElf(Buffer.alloc(64))).toThrow(/not an x86-64 ELF64/);
  });

  test('config: payload compression switched to LZ4, nothing else touched', () => {
    const cfg = 'CONFIG_A=y\n# CONFIG_KERNEL_GZIP is not set\nCONFIG_KERNEL_XZ=y\n# CONFIG_KERNEL_LZ4 is not set\nCONFIG_B="x y"\n';
    const out = withLz4(cfg);
    expect(out).toBe('CONFIG_A=y\nCONFIG_B="x y"\nCONFIG_KERNEL_LZ4=y\n');
    const m = parseConfig(out);
    expect(m.get('CONFIG_KERNEL_LZ4')).toBe('y');
    expect(m.get('CONFIG_KERNEL_XZ')).toBeUndefined();
    expect(parseConfig(cfg).get('CONFIG_KERNEL_GZIP')).toBe('n');
  });

  test('lz4Kernel refuses an image of another kernel release before building anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvmx-fastboot-test-'));
    writeFileSync(join(dir, 'vmlinuz'), fakeBzImage(Buffer.concat([Buffer.from('fd377a585a00', 'hex'), Buffer.alloc(16)])));
    writeFileSync(join(dir, 'config'), 'CONFIG_KERNEL_XZ=y\n');
    writeFileSync(join(dir, 'System.map'), '');
    try {
      await expect(lz4Kernel({ vmlinuz: join(dir, 'vmlinuz'), config: join(dir, 'config'), systemMap: join(dir, 'System.map'), kernelRelease: '6.12.117+deb12-amd64', cacheDir: join(dir, 'cache') }))
        .rejects.toThrow(/is kernel 6\.1\.0-57-amd64, not 6\.12\.117\+deb12-amd64/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
