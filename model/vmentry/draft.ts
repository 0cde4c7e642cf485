// A vmcs12 as the VM-entry checks see it, before it is a page: member values by name, and the
// header of the page the VMCS link pointer names (the only guest memory the checks read besides
// the PDPTEs, which read as zeros unless written). Generators build these; checks and guest
// operations take them.
import { makeHdr, VMCS12 } from '../catalog/by-name.js';
import type { CheckRule } from '../catalog/vmx-controls.js';
import type { Layout } from '../layout.js';
import { writeBytes } from '../vmcs12-access.js';
import type { NestedCaps } from './caps.js';
import type { CheckInput } from './input.js';
import type { MsrEntry } from './msr-load.js';
import { GUEST_CPU } from './guest-cpu.js';

export const INVALID_LINK = (1n << 64n) - 1n;
/** where a draft's linked (shadow) VMCS lives in guest memory */
export const LINK_PAGE = 0x5000n;

export interface Vmcs12Draft {
  readonly fields: Map<string, bigint>;
  /** the first 4 bytes of the page at LINK_PAGE (revision and shadow bit) */
  linkHdr: bigint;
  /** PAE PDPTEs in guest memory at guest_cr3 (absent: that memory reads as zeros) */
  pdptes?: readonly bigint[];
  /** the VM-entry MSR-load list in guest memory at vm_entry_msr_load_addr (absent: zeros) */
  msrLoad?: readonly MsrEntry[];
}

export const linkHeader = (shadow: boolean): bigint => makeHdr(shadow);

const ZERO = new Uint8Array(4096);

/** A draft as the checks see it; `msrAddressBits` defaults to 48 (a host without 5-level paging, and the modelled L1: either kernel). */
export function draftInput(d: Vmcs12Draft, caps: NestedCaps, opts: { maxPhyAddr: number; runPending: boolean; evmcsCheck: readonly CheckRule[] | null; msrAddressBits?: number }): CheckInput {
  const pages = draftMemory(d);
  return { f: (m) => d.fields.get(m) ?? 0n, caps, msrAddressBits: GUEST_CPU.virtualAddressBits, ...opts, guestPage: (gpa) => pages.get(gpa) ?? ZERO };
}

/** The 8-byte stores that put a draft's guest memory in place: the linked VMCS's header, the PDPTEs, the MSR-load list. */
export function draftStores(d: Vmcs12Draft): { pa: bigint; value: bigint }[] {
  const stores: { pa: bigint; value: bigint }[] = [];
  const link = d.fields.get('vmcs_link_pointer') ?? INVALID_LINK;
  if (link !== INVALID_LINK) stores.push({ pa: link, value: d.linkHdr });
  const pdpt = (d.fields.get('guest_cr3') ?? 0n) & 0xffff_ffe0n;
  d.pdptes?.forEach((value, i) => stores.push({ pa: pdpt + BigInt(i * 8), value }));
  const msrs = d.fields.get('vm_entry_msr_load_addr') ?? 0n;
  d.msrLoad?.forEach((e, i) => {
    const at = msrs + BigInt(i) * 16n;
    stores.push({ pa: at, value: BigInt(e.index >>> 0) | (BigInt((e.reserved ?? 0) >>> 0) << 32n) }, { pa: at + 8n, value: e.value });
  });
  return stores;
}

/** The guest memory a draft relies on (draftStores), by page; the link page always holds the draft's header. */
export function draftMemory(d: Vmcs12Draft): Map<bigint, Uint8Array> {
  const link = new Uint8Array(4096);
  VMCS12.write(link, 'hdr', d.linkHdr);
  const pages = new Map([[LINK_PAGE, link]]);
  for (const s of draftStores(d)) {
    const pa = s.pa & ~0xfffn;
    let p = pages.get(pa);
    if (!p) pages.set(pa, (p = new Uint8Array(4096)));
    writeBytes(p, Number(s.pa & 0xff8n), 8, s.value);
  }
  return pages;
}

/** The draft as a vmcs12 page of `layout` (revision id set, launch state clear). */
export function draftPage(d: Vmcs12Draft, layout: Layout): Uint8Array {
  const page = new Uint8Array(4096);
  VMCS12.write(page, 'hdr', makeHdr(false));
  for (const m of layout.members) {
    const v = d.fields.get(m.name);
    if (v !== undefined) writeBytes(page, m.offset, m.size, v);
  }
  return page;
}
