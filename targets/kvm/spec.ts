// What `kvm:<spec>` names: a Debian kernel package (or its short alias), or a kernel the user built,
// and optionally a directory of kvm modules to load instead of the package's own (a patched
// kvm.ko/kvm-intel.ko built out of tree against the package's headers).
//
//   kvm:debian-6.12                      kvm:linux-image-6.12.117+deb12-amd64
//   kvm:debian-6.12,modules=DIR          kvm:/path/bzImage,modules=/path/lib/modules/<release>
//   kvm:debian-6.1,shadow-vmcs=on        (kvm_intel's VMCS shadowing; off by default, see below)
//   kvm:debian-6.12,entries=off          (no VMLAUNCH/VMRESUME on generated guests; on by default, see below)

/** Short names for the Debian kernels the model's profiles were written from. */
export const KVM_ALIASES: Readonly<Record<string, string>> = {
  'debian-6.1': 'linux-image-6.1.0-57-amd64',
  'debian-6.12': 'linux-image-6.12.117+deb12-amd64',
};

export type KernelSource = { readonly kind: 'package'; readonly package: string } | { readonly kind: 'bzImage'; readonly path: string };

export interface KvmSpec {
  readonly text: string;
  readonly kernel: KernelSource;
  /** a directory searched for irqbypass.ko, kvm.ko and kvm-intel.ko (.ko or .ko.xz) */
  readonly modules?: string;
  /**
   * kvm_intel's enable_shadow_vmcs. Off by default: the model is KVM without VMCS shadowing (every
   * L1 VMREAD/VMWRITE exits to handle_vmread/handle_vmwrite; GET never copies from a hardware
   * shadow VMCS). On, real KVM shows what the model does not know (README, K5).
   */
  readonly shadowVmcs: boolean;
  /**
   * The agent runs VMLAUNCH, VMRESUME and enlightened entries on generated guests. On by default
   * since a whole run with them on passed on both kernels (README K12-K16); `entries=off` reports
   * the entry operations unsupported, naming the option (a quicker run, or a kernel whose nested
   * entries hang the emulated machine).
   */
  readonly entries: boolean;
}

const PACKAGE = /^linux-image-[0-9][A-Za-z0-9.+~-]*$/;

/** Parses the part after `kvm:`; a problem is one line naming what is wrong and what would be right. */
export function parseKvmSpec(text: string): KvmSpec | { problem: string } {
  const [kernel = '', ...opts] = text.split(',');
  let modules: string | undefined;
  let shadowVmcs = false;
  let entries = true;
  for (const o of opts) {
    const m = /^modules=(.+)$/.exec(o);
    const sh = /^shadow-vmcs=(on|off)$/.exec(o);
    const en = /^entries=(on|off)$/.exec(o);
    if (m) modules = m[1];
    else if (sh) shadowVmcs = sh[1] === 'on';
    else if (en) entries = en[1] === 'on';
    else return { problem: `kvm: unknown option "${o}" (expected modules=DIR, shadow-vmcs=on|off or entries=on|off)` };
  }
  const pkg = KVM_ALIASES[kernel] ?? kernel;
  let source: KernelSource;
  if (kernel.includes('/')) {
    if (!modules) return { problem: `kvm:${kernel}: a kernel image of your own needs its modules: kvm:${kernel},modules=/path/lib/modules/<release>` };
    source = { kind: 'bzImage', path: kernel };
  } else if (PACKAGE.test(pkg)) {
    source = { kind: 'package', package: pkg };
  } else {
    return { problem: `kvm: "${kernel}" is neither an alias (${Object.keys(KVM_ALIASES).join(', ')}), a Debian package linux-image-…, nor a path to a bzImage` };
  }
  return { text, kernel: source, shadowVmcs, entries, ...(modules ? { modules } : {}) };
}

/**
 * The kernel release a bzImage was built as, from its setup header (boot protocol 2.00+): the
 * 16-bit field at 0x20e points to a NUL-terminated version string at that offset + 0x200.
 */
export function bzImageRelease(image: Uint8Array): string | null {
  if (image.length < 0x210 || String.fromCharCode(...image.subarray(0x202, 0x206)) !== 'HdrS') return null;
  const at = (image[0x20e]! | (image[0x20f]! << 8)) + 0x200;
  const end = image.indexOf(0, at);
  if (at >= image.length || end < 0) return null;
  const text = new TextDecoder().decode(image.subarray(at, Math.min(end, at + 256)));
  return /^\S+/.exec(text)?.[0] ?? null;
}

/** major.minor of a release string such as 6.12.117+deb12-amd64 */
export function releaseVersion(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : null;
}
