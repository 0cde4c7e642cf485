// vmcs12 and eVMCS members by name. Code outside the catalog that reads, writes or VMWRITEs a field
// names it here instead of writing its offset or encoding, so the tables stay the one place those
// numbers live (tests/one-place.test.ts fails on a literal offset elsewhere). The vmcs12 offsets are
// the frozen layout's: every profile with nested state puts these members there.
import { EVMCS_MEMBERS } from './evmcs.js';
import type { MemberSpec } from './types.js';
import { TYPE_SIZE } from './types.js';
import { VMCS12_FIELDS, VMCS12_MEMBERS, VMCS12_REVISION } from './vmcs12.js';

export interface ByName {
  /** the member's byte offset (throws on a name the structure does not have) */
  offset(name: string): number;
  /** whether a buffer (a cut-off blob's page, say) holds the whole member */
  fits(buf: Uint8Array, name: string): boolean;
  /** the member zero-extended (a scalar member, or an array's first element) */
  read(page: Uint8Array, name: string): bigint;
  /** stores the member's low bytes of `value` */
  write(page: Uint8Array, name: string, value: bigint): void;
  /** the member holding the byte at `offset` (arrays and padding included), if any */
  at(offset: number): string | undefined;
}

function byName(structure: string, members: readonly MemberSpec[]): ByName {
  const slots = new Map(members.filter((m) => !m.padding).map((m) => [m.name, { offset: m.offset, bytes: TYPE_SIZE[m.type] }]));
  const slot = (name: string) => {
    const s = slots.get(name);
    if (!s) throw new RangeError(`${structure} has no member ${name}`);
    return s;
  };
  return {
    offset: (name) => slot(name).offset,
    fits: (buf, name) => slot(name).offset + slot(name).bytes <= buf.length,
    read(page, name) {
      const { offset, bytes } = slot(name);
      let v = 0n;
      for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(page[offset + i]!);
      return v;
    },
    write(page, name, value) {
      const { offset, bytes } = slot(name);
      for (let i = 0; i < bytes; i++) page[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
    },
    at: (offset) => members.find((m) => offset >= m.offset && offset < m.offset + TYPE_SIZE[m.type] * m.count)?.name,
  };
}

export const VMCS12 = byName('vmcs12', VMCS12_MEMBERS);
export const EVMCS = byName('the eVMCS', EVMCS_MEMBERS);

const ENCODINGS = new Map(VMCS12_FIELDS.map((f) => [f.member, BigInt(f.encoding)]));

/** The VMCS encoding VMREAD/VMWRITE use for a vmcs12 member. */
export function encodingOf(member: string): bigint {
  const e = ENCODINGS.get(member);
  if (e === undefined) throw new RangeError(`no VMCS encoding maps to vmcs12 member ${member}`);
  return e;
}

/** struct vmcs_hdr: revision_id in bits 30:0, shadow_vmcs in bit 31. */
export const SHADOW_VMCS_BIT = 0x8000_0000n;
const REVISION_MASK = SHADOW_VMCS_BIT - 1n;

export const hdrRevision = (hdr: bigint): number => Number(hdr & REVISION_MASK);
export const hdrShadow = (hdr: bigint): boolean => (hdr & SHADOW_VMCS_BIT) !== 0n;
/** The header a VMCS region starts with (VMCS12_REVISION unless told otherwise). */
export const makeHdr = (shadow: boolean, revision: number = VMCS12_REVISION): bigint => BigInt(revision) | (shadow ? SHADOW_VMCS_BIT : 0n);
