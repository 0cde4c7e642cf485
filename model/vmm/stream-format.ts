// The reference VMM's stream bytes (targets/PROTOCOL.md, "The reference VMM's stream"): a magic, a
// version, then sections as QEMU's subsections are, each sent only when it is needed. Version 1 has
// no section for hdr.vmx.flags and the preemption-timer deadline (as QEMU versions without them);
// version 2 adds it. A reader reads every version up to its own and passes on the nested state the
// stream carries, as it carries it.
import { readHeader, writeHeader } from '../nested/blob.js';
import { HEADER_SIZE, INVALID_GPA, OFFSET, VMCS12_BLOB_SIZE } from '../nested/constants.js';
import type { VcpuConfig } from '../nested/vcpu.js';
import type { MsrSet } from '../vmx-msrs.js';

export const STREAM_MAGIC = 'NVMS';
/** the versions of the format, oldest first */
export const STREAM_VERSIONS = [1, 2] as const;
export type StreamVersion = (typeof STREAM_VERSIONS)[number];

/** Section tags, each with its payload size (null: any) and the first version that has it. */
export const SECTIONS = {
  /** the VM configuration as JSON (vcpu.schema.json) */
  config: { tag: 1, size: null, since: 1 },
  /** the VMX capability MSRs: (index u32, value u64) pairs */
  vmxMsrs: { tag: 2, size: null, since: 1 },
  /** flags u16, format u16, size u32: QEMU's cpu/kvm_nested_state */
  nestedState: { tag: 3, size: 8, since: 1 },
  /** vmxon_pa u64, vmcs12_pa u64, smm.flags u16: cpu/kvm_nested_state/vmx */
  vmx: { tag: 4, size: 18, since: 1 },
  /** the vmcs12 page, 4096 bytes: .../vmcs12, when `size` reaches past the header */
  vmcs12: { tag: 5, size: VMCS12_BLOB_SIZE, since: 1 },
  /** the shadow vmcs12 page: .../shadow_vmcs12, when `size` reaches past the first 4 KiB */
  shadowVmcs12: { tag: 6, size: VMCS12_BLOB_SIZE, since: 1 },
  /** hdr.vmx.flags u32, hdr.vmx.preemption_timer_deadline u64: when either is not zero */
  vmxHdrFlags: { tag: 7, size: 12, since: 2 },
} as const;
type SectionName = keyof typeof SECTIONS;
const BY_TAG = new Map(Object.entries(SECTIONS).map(([name, s]) => [s.tag as number, name as SectionName]));

export interface StreamContent {
  readonly version: StreamVersion;
  readonly config: VcpuConfig;
  readonly vmxMsrs: MsrSet;
  /** the nested state as the stream carries it (QEMU's rules decided what), or null */
  readonly nested: Uint8Array | null;
}

const le = (n: number, v: bigint): Uint8Array => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return b;
};
const readLe = (b: Uint8Array, off: number, n: number): bigint => {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i]!);
  return v;
};
const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
};

const configJson = (c: VcpuConfig): string =>
  JSON.stringify({ ...c, ...(c.vmxMsrs ? { vmxMsrs: Object.fromEntries([...c.vmxMsrs].map(([i, v]) => [`0x${i.toString(16)}`, `0x${v.toString(16)}`])) } : {}) });
function configFrom(text: string): VcpuConfig {
  const o = JSON.parse(text) as VcpuConfig & { vmxMsrs?: Record<string, string> };
  return o.vmxMsrs ? { ...o, vmxMsrs: new Map(Object.entries(o.vmxMsrs).map(([i, v]) => [Number(i), BigInt(v)])) } : (o as VcpuConfig);
}

export function writeStream(c: StreamContent): Uint8Array {
  const parts: Uint8Array[] = [new TextEncoder().encode(STREAM_MAGIC), le(2, BigInt(c.version)), le(2, 0n)];
  const section = (name: SectionName, ...payload: Uint8Array[]) => {
    const body = concat(payload);
    parts.push(le(1, BigInt(SECTIONS[name].tag)), le(4, BigInt(body.length)), body);
  };
  section('config', new TextEncoder().encode(configJson(c.config)));
  section('vmxMsrs', ...[...c.vmxMsrs].flatMap(([i, v]) => [le(4, BigInt(i)), le(8, v)]));
  const b = c.nested;
  if (b) {
    const h = readHeader(b);
    section('nestedState', le(2, BigInt(h.flags)), le(2, BigInt(h.format)), le(4, BigInt(h.size)));
    section('vmx', le(8, h.vmxonPa), le(8, h.vmcs12Pa), le(2, BigInt(h.smmFlags)));
    if (b.length > HEADER_SIZE) section('vmcs12', b.subarray(OFFSET.vmcs12, OFFSET.vmcs12 + VMCS12_BLOB_SIZE));
    if (b.length > OFFSET.shadowVmcs12) section('shadowVmcs12', b.subarray(OFFSET.shadowVmcs12, OFFSET.shadowVmcs12 + VMCS12_BLOB_SIZE));
    if (c.version >= SECTIONS.vmxHdrFlags.since && (h.vmxFlags || h.preemptionTimerDeadline)) section('vmxHdrFlags', le(4, BigInt(h.vmxFlags)), le(8, h.preemptionTimerDeadline));
  }
  return concat(parts);
}

export type ReadResult = { readonly ok: true; readonly content: StreamContent } | { readonly ok: false; readonly problem: string };

/** Reads a stream as a reader of version `reader` does: every version up to its own. */
export function readStream(bytes: Uint8Array, reader: StreamVersion): ReadResult {
  const bad = (problem: string): ReadResult => ({ ok: false, problem });
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== STREAM_MAGIC) return bad(`not a stream of this VMM (no ${STREAM_MAGIC} magic)`);
  const version = Number(readLe(bytes, 4, 2));
  if (version < 1 || version > reader) return bad(`stream version ${version}: this VMM (version ${reader}) reads versions 1 to ${reader}`);
  const found = new Map<SectionName, Uint8Array>();
  for (let at = 8; at < bytes.length; ) {
    if (at + 5 > bytes.length) return bad(`a section header at byte ${at} is cut off`);
    const tag = bytes[at]!;
    const len = Number(readLe(bytes, at + 1, 4));
    const name = BY_TAG.get(tag);
    if (!name || SECTIONS[name].since > version) return bad(`section tag ${tag} at byte ${at} is not part of stream version ${version}`);
    const want = SECTIONS[name].size;
    if (want !== null && len !== want) return bad(`section ${name} at byte ${at} is ${len} bytes, not ${want}`);
    if (at + 5 + len > bytes.length) return bad(`section ${name} at byte ${at} is ${len} bytes and runs past the end`);
    if (found.has(name)) return bad(`section ${name} twice`);
    found.set(name, bytes.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  const config = found.get('config');
  const msrs = found.get('vmxMsrs');
  if (!config || !msrs || msrs.length % 12) return bad('the stream lacks the config or the VMX MSRs section');
  let parsed: VcpuConfig;
  try {
    parsed = configFrom(new TextDecoder().decode(config));
  } catch (e) {
    return bad(`the config section is not JSON: ${(e as Error).message}`);
  }
  const vmxMsrs = new Map<number, bigint>();
  for (let i = 0; i < msrs.length; i += 12) vmxMsrs.set(Number(readLe(msrs, i, 4)), readLe(msrs, i + 4, 8));
  const content = (nested: Uint8Array | null): ReadResult => ({ ok: true, content: { version: version as StreamVersion, config: parsed, vmxMsrs, nested } });
  const ns = found.get('nestedState');
  if (!ns) return found.size > 2 ? bad('nested-state sections without the nestedState section') : content(null);
  const vmx = found.get('vmx');
  const pages = [found.get('vmcs12'), found.get('shadowVmcs12')];
  if (!pages[0] && pages[1]) return bad('a shadow vmcs12 without a vmcs12');
  const blob = new Uint8Array(HEADER_SIZE + pages.filter(Boolean).length * VMCS12_BLOB_SIZE);
  const hf = found.get('vmxHdrFlags');
  writeHeader(blob, {
    flags: Number(readLe(ns, 0, 2)),
    format: Number(readLe(ns, 2, 2)),
    size: Number(readLe(ns, 4, 4)),
    vmxonPa: vmx ? readLe(vmx, 0, 8) : INVALID_GPA,
    vmcs12Pa: vmx ? readLe(vmx, 8, 8) : INVALID_GPA,
    smmFlags: vmx ? Number(readLe(vmx, 16, 2)) : 0,
    pad: 0,
    vmxFlags: hf ? Number(readLe(hf, 0, 4)) : 0,
    preemptionTimerDeadline: hf ? readLe(hf, 4, 8) : 0n,
  });
  pages.forEach((p, i) => p && blob.set(p, HEADER_SIZE + i * VMCS12_BLOB_SIZE));
  // what the stream carries, its size field as written: whether that is all of the state is what
  // vmm.carries-whole-state judges (QEMU's post_load checks the size against the kernel only)
  return content(blob);
}
