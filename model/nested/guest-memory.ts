// Guest memory travels with nested state: the L1's shadow VMCS region at the link pointer keeps its
// header, which KVM re-reads on restore (LINK_PAGE_REREAD_ON_RESTORE). A consumer given only the blob
// (golden verify, `nested restore`) puts the shadow vmcs12's header there, as the migrated guest
// memory would have it. Other guest memory a restore reads (the eVMCS page, the VP-assist page) is
// restored by the VMM with the memory operations below.
import { VMCS12 } from '../catalog/by-name.js';
import type { Layout } from '../layout.js';
import { memberReader } from '../vmentry/input.js';
import { readHeader } from './blob.js';
import { FLAGS, INVALID_GPA, OFFSET, SIZE_WITH_SHADOW } from './constants.js';
import type { GuestOp } from './vcpu.js';

/** Operations that only restore guest memory (or the VP-assist page's contents), not VMX state. */
export const MEMORY_OPS = ['write-memory', 'init-vmcs', 'init-evmcs', 'set-vp-assist'] as const;

export const isMemoryOp = (o: GuestOp): boolean => (MEMORY_OPS as readonly string[]).includes(o.op);

/** The write that puts a guest-mode blob's shadow vmcs12 header at its link pointer, or null when there is none. */
export function linkPageSeed(blob: Uint8Array, layout: Layout): Extract<GuestOp, { op: 'write-memory' }> | null {
  if (blob.length < SIZE_WITH_SHADOW) return null;
  const h = readHeader(blob);
  if (!(h.flags & FLAGS.GUEST_MODE) || h.size < SIZE_WITH_SHADOW) return null;
  const link = memberReader(layout, blob.subarray(OFFSET.vmcs12, OFFSET.shadowVmcs12))('vmcs_link_pointer');
  if (link === INVALID_GPA || link & 0xfffn) return null;
  // the 8-byte store of the region's start: its header and abort indicator
  const shadow = blob.subarray(OFFSET.shadowVmcs12);
  const value = VMCS12.read(shadow, 'hdr') | (VMCS12.read(shadow, 'abort') << 32n);
  return { op: 'write-memory', pa: link, value };
}

/**
 * The guest-physical memory a real vCPU has: `bytes` from address 0, less the `reserved` [from, to)
 * ranges its VMM's own code uses. The model's memory has no end; a target's does (Target.guestMemory).
 */
export interface GuestMemory {
  readonly bytes: bigint;
  readonly reserved: readonly (readonly [bigint, bigint])[];
}

/** The usable page frames at or above `from` and below `top`, as [first, end) page ranges. */
export function usablePages(m: GuestMemory, from: bigint, top: bigint): [bigint, bigint][] {
  const end = (top < m.bytes ? top : m.bytes) >> 12n;
  const cuts = [...m.reserved].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const out: [bigint, bigint][] = [];
  let at = from >> 12n;
  for (const [a, b] of cuts) {
    const lo = a >> 12n, hi = (b + 0xfffn) >> 12n;
    if (lo > at) out.push([at, lo < end ? lo : end]);
    if (hi > at) at = hi;
  }
  if (end > at) out.push([at, end]);
  return out.filter(([a, b]) => b > a);
}
