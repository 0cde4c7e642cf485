// A vmcs12 as the VM-entry checks see it, before it is a page: member values by name, and the
// header of the page the VMCS link pointer names (the only guest memory the checks read besides
// the PDPTEs, which read as zeros unless written). Generators build these; checks and guest
// operations take them.
import { VMCS12_REVISION } from '../catalog/vmcs12.js';
import type { CheckRule } from '../catalog/vmx-controls.js';
import type { Layout } from '../layout.js';
import { writeBytes } from '../vmcs12-access.js';
import type { NestedCaps } from './caps.js';
import type { CheckInput } from './input.js';

export const INVALID_LINK = (1n << 64n) - 1n;
/** where a draft's linked (shadow) VMCS lives in guest memory */
export const LINK_PAGE = 0x5000n;

export interface Vmcs12Draft {
  readonly fields: Map<string, bigint>;
  /** the first 4 bytes of the page at LINK_PAGE (revision and shadow bit) */
  linkHdr: bigint;
  /** PAE PDPTEs in guest memory at guest_cr3 (absent: that memory reads as zeros) */
  pdptes?: readonly bigint[];
}

export const linkHeader = (shadow: boolean): bigint => BigInt(VMCS12_REVISION) | (shadow ? 0x8000_0000n : 0n);

const ZERO = new Uint8Array(4096);

export function draftInput(d: Vmcs12Draft, caps: NestedCaps, opts: { maxPhyAddr: number; runPending: boolean; evmcsCheck: readonly CheckRule[] | null }): CheckInput {
  const pages = draftMemory(d);
  return { f: (m) => d.fields.get(m) ?? 0n, caps, ...opts, guestPage: (gpa) => pages.get(gpa) ?? ZERO };
}

/** The guest memory a draft relies on: the linked VMCS's header, and the PDPTEs if any. */
export function draftMemory(d: Vmcs12Draft): Map<bigint, Uint8Array> {
  const link = new Uint8Array(4096);
  writeBytes(link, 0, 4, d.linkHdr);
  const pages = new Map([[LINK_PAGE, link]]);
  if (d.pdptes) {
    const cr3 = d.fields.get('guest_cr3') ?? 0n;
    const p = new Uint8Array(4096);
    d.pdptes.forEach((e, i) => writeBytes(p, Number(cr3 & 0xfe0n) + i * 8, 8, e));
    pages.set(cr3 & ~0xfffn, p);
  }
  return pages;
}

/** The draft as a vmcs12 page of `layout` (revision id set, launch state clear). */
export function draftPage(d: Vmcs12Draft, layout: Layout): Uint8Array {
  const page = new Uint8Array(4096);
  writeBytes(page, 0, 4, BigInt(VMCS12_REVISION));
  for (const m of layout.members) {
    const v = d.fields.get(m.name);
    if (v !== undefined) writeBytes(page, m.offset, m.size, v);
  }
  return page;
}
