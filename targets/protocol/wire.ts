// nvmx-target/1 on the wire: one protocol operation per Target method, with the JSON shape of its
// arguments and of its `ok` value in both directions. Bytes travel as lowercase hex, 64-bit values
// as "0x…" strings (JSON numbers lose bits above 2^53). The runner (exec.ts) and `serve` share
// this table, so a new operation is one new entry here and one $defs pair in the schema.
import type { LayoutDescriptor } from '../../model/layout.js';
import type { AccessOutcome } from '../../model/vmcs12-access.js';
import type { ControlCheck, RevisionRead, RevisionSetDescriptor, Target, TargetResult, Vmcs12AccessResult, Vmcs12Op, VmmInfo, VmmLoaded, VmmSaved, VmxMsrValue } from '../target.js';
import type { MsrSet } from '../../model/vmx-msrs.js';
import type { GuestOp, OpResult, VcpuConfig } from '../../model/nested/vcpu.js';
import { packOps, PackedError, packResults, unpackOps, unpackResults } from './packed.js';

export const PROTOCOL = 'nvmx-target/1';

export const bytesToHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Shorter zero runs stay plain hex: `~10.` saves 27 characters, and a decoder makes a chunk per run. */
const MIN_ZERO_RUN = 16;
const MAX_ZERO_RUN = 0xfffff;
const ZERO_RUN = Buffer.alloc(MIN_ZERO_RUN);

/**
 * Hex with every run of at least MIN_ZERO_RUN zero bytes written `~<count in hex>.` (schema
 * $defs/bytes): how `serve` writes bytes, and the runner to a target that lists `zero-runs`. A
 * write-read case's page is zero past byte 1004 of 4096, so its 8 KB of hex become 2 KB.
 */
export function bytesToZeroRunHex(b: Uint8Array): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  let out = '';
  let plain = 0; // where the bytes not yet written start
  for (let at = buf.indexOf(ZERO_RUN); at >= 0; at = buf.indexOf(ZERO_RUN, plain)) {
    let end = at + MIN_ZERO_RUN;
    while (end < buf.length && buf[end] === 0 && end - at < MAX_ZERO_RUN) end++;
    out += buf.toString('hex', plain, at) + '~' + (end - at).toString(16) + '.';
    plain = end;
  }
  return out + buf.toString('hex', plain);
}
/** The most bytes one field may decode to: a target that claims more is lying, not answering. */
const MAX_DECODED = 64 << 20;

/** Hex, where a target may write a run of zero bytes as `~<count in hex>.` (schema $defs/bytes). */
export function hexToBytes(s: string): Uint8Array {
  if (!s.includes('~')) return new Uint8Array(Buffer.from(s, 'hex'));
  const parts = s.split('~');
  const chunks: Uint8Array[] = [Buffer.from(parts[0]!, 'hex')];
  let total = chunks[0]!.length;
  for (const p of parts.slice(1)) {
    const dot = p.indexOf('.');
    const zeros = parseInt(p.slice(0, dot), 16);
    const rest = Buffer.from(p.slice(dot + 1), 'hex');
    total += zeros + rest.length;
    if (dot < 1 || !(zeros >= 0) || total > MAX_DECODED) throw new RangeError(`bytes that decode to more than ${MAX_DECODED} bytes, or a malformed zero run`);
    chunks.push(new Uint8Array(zeros), rest);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
export const hex64 = (v: bigint): string => '0x' + v.toString(16);

type BytesToHex = (b: Uint8Array) => string;
/** Bytes in `ok` values: every runner reads zero runs from a target (PROTOCOL.md, "Conventions"). */
const valueHex: BytesToHex = bytesToZeroRunHex;

/** The Target methods that are protocol operations (everything but identity, groups, close). */
export type OpMethod =
  | 'layout'
  | 'vmcs12Access'
  | 'readRevisions'
  | 'evmcsToVmcs12'
  | 'vmcs12ToEvmcs'
  | 'filterVmxMsrs'
  | 'evmcsCheckControls'
  | 'createVcpu'
  | 'guestOp'
  | 'getNestedState'
  | 'setNestedState'
  | 'destroyVcpu'
  | 'vmmSave'
  | 'vmmLoad';
type Args<M extends OpMethod> = Parameters<Target[M]>;
type Value<M extends OpMethod> = Awaited<ReturnType<Target[M]>> extends TargetResult<infer T> ? T : never;
type Json = any; // already checked against the protocol schema by the receiver

export interface OpCodec<M extends OpMethod> {
  /** the op name on the wire; the schema has $defs args-<op> and value-<op> */
  readonly op: string;
  encodeArgs(...a: Args<M>): Record<string, unknown>;
  decodeArgs(w: Json): Args<M>;
  encodeValue(v: Value<M>): unknown;
  decodeValue(w: Json): Value<M>;
}

const encodeOutcome = (o: AccessOutcome) => (o.ok ? { ok: true, value: hex64(o.value) } : o);
const decodeOutcome = (w: Json): AccessOutcome => (w.ok ? { ok: true, value: BigInt(w.value) } : w);
const encodeOp = (o: Vmcs12Op) => (o.op === 'read' ? { op: 'read', encoding: hex64(o.encoding) } : { op: 'write', encoding: hex64(o.encoding), value: hex64(o.value) });
const decodeOp = (w: Json): Vmcs12Op => (w.op === 'read' ? { op: 'read', encoding: BigInt(w.encoding) } : { op: 'write', encoding: BigInt(w.encoding), value: BigInt(w.value) });

const bytesOp = <M extends 'evmcsToVmcs12' | 'vmcs12ToEvmcs'>(op: string, encodeArgs: OpCodec<M>['encodeArgs'], decodeArgs: OpCodec<M>['decodeArgs']): OpCodec<M> => ({
  op,
  encodeArgs,
  decodeArgs,
  encodeValue: (v) => valueHex(v as Uint8Array),
  decodeValue: (w) => hexToBytes(w) as Value<M>,
});

/** Guest operations carry 64-bit operands: hex strings on the wire. */
/** MSR sets travel as in an MSR file: {"0x481": "0x…"} */
const encodeMsrs = (m: MsrSet): Record<string, string> => Object.fromEntries([...m].map(([i, v]) => [hex64(BigInt(i)), hex64(v)]));
const decodeMsrs = (w: Record<string, string>): Map<number, bigint> => new Map(Object.entries(w).map(([i, v]) => [Number(i), BigInt(v)]));
/** vCPU configurations travel as in a vcpu file: vmxMsrs as {"0x481": "0x…"} */
const encodeConfig = (c: VcpuConfig): Record<string, unknown> => {
  const { vmxMsrs, ...rest } = c;
  return vmxMsrs ? { ...rest, vmxMsrs: encodeMsrs(vmxMsrs) } : rest;
};
const decodeConfig = (w: Json): VcpuConfig => {
  const { vmxMsrs, ...rest } = w as Json;
  return (vmxMsrs ? { ...rest, vmxMsrs: decodeMsrs(vmxMsrs) } : rest) as VcpuConfig;
};
const BIG_KEYS = new Set(['pa', 'field', 'value', 'reason', 'currentNestedVmcs']);
const encodeGuestOp = (o: GuestOp): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? hex64(v) : v]));
const decodeGuestOp = (w: Json): GuestOp => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, BIG_KEYS.has(k) ? BigInt(v as string) : v])) as unknown as GuestOp;
const optBytes = (hex: BytesToHex, b: Uint8Array | null) => (b ? hex(b) : null);
const optHex = (w: Json): Uint8Array | null => (w === null ? null : hexToBytes(w));
const withVersion = (v: string | undefined) => (v !== undefined ? { version: v } : {});
const encodeSaved = (v: VmmSaved) => ('refused' in v ? v : { stream: valueHex(v.stream), gets: v.gets });
const decodeSaved = (w: Json): VmmSaved => ('refused' in w ? w : { stream: hexToBytes(w.stream), gets: w.gets });
const encodeLoaded = (v: VmmLoaded) => ('refused' in v ? v : { set: optBytes(valueHex, v.set), vmxMsrs: encodeMsrs(v.vmxMsrs), config: encodeConfig(v.config) });
const decodeLoaded = (w: Json): VmmLoaded => ('refused' in w ? w : { set: optHex(w.set), vmxMsrs: decodeMsrs(w.vmxMsrs), config: decodeConfig(w.config) });
/** Every op's codec; `hex` writes the bytes in request args (zero runs only to a target that lists `zero-runs`). */
const opCodecs = (hex: BytesToHex): { readonly [M in OpMethod]: OpCodec<M> } => ({
  layout: {
    op: 'layout',
    encodeArgs: (structure) => ({ structure }),
    decodeArgs: (w) => [w.structure],
    encodeValue: (v) => v,
    decodeValue: (w) => w as LayoutDescriptor,
  },
  vmcs12Access: {
    op: 'vmcs12-access',
    encodeArgs: (page, ops) => ({ page: hex(page), ops: ops.map(encodeOp) }),
    decodeArgs: (w) => [hexToBytes(w.page), (w.ops as Json[]).map(decodeOp)],
    encodeValue: (v: Vmcs12AccessResult) => ({ page: valueHex(v.page), results: v.results.map(encodeOutcome) }),
    decodeValue: (w) => ({ page: hexToBytes(w.page), results: (w.results as Json[]).map(decodeOutcome) }),
  },
  readRevisions: {
    op: 'read-revisions',
    encodeArgs: (set, page) => ({ set, page: hex(page) }),
    decodeArgs: (w) => [w.set as RevisionSetDescriptor, hexToBytes(w.page)],
    encodeValue: (v: RevisionRead) => (v.accepted ? { ...v, page: valueHex(v.page) } : v),
    decodeValue: (w) => (w.accepted ? { accepted: true, translatedFrom: w.translatedFrom, page: hexToBytes(w.page) } : w),
  },
  evmcsToVmcs12: bytesOp<'evmcsToVmcs12'>(
    'evmcs-to-vmcs12',
    (evmcs, vmcs12, cleanFields) => ({ evmcs: hex(evmcs), vmcs12: hex(vmcs12), cleanFields }),
    (w) => [hexToBytes(w.evmcs), hexToBytes(w.vmcs12), w.cleanFields],
  ),
  vmcs12ToEvmcs: bytesOp<'vmcs12ToEvmcs'>(
    'vmcs12-to-evmcs',
    (vmcs12, evmcs) => ({ vmcs12: hex(vmcs12), evmcs: hex(evmcs) }),
    (w) => [hexToBytes(w.vmcs12), hexToBytes(w.evmcs)],
  ),
  filterVmxMsrs: {
    op: 'filter-vmx-msrs',
    encodeArgs: (msrs, hvNestedEbx) => ({ msrs: msrs.map((m) => ({ index: m.index, value: hex64(m.value) })), hvNestedEbx }),
    decodeArgs: (w) => [(w.msrs as Json[]).map((m): VmxMsrValue => ({ index: m.index, value: BigInt(m.value) })), w.hvNestedEbx],
    encodeValue: (v) => v.map(hex64),
    decodeValue: (w) => (w as string[]).map((x) => BigInt(x)),
  },
  evmcsCheckControls: {
    op: 'evmcs-check-controls',
    encodeArgs: (vmcs12) => ({ vmcs12: hex(vmcs12) }),
    decodeArgs: (w) => [hexToBytes(w.vmcs12)],
    encodeValue: (v) => v,
    decodeValue: (w) => w as ControlCheck,
  },
  createVcpu: {
    op: 'create-vcpu',
    encodeArgs: (config) => ({ config: encodeConfig(config) }),
    decodeArgs: (w) => [decodeConfig(w.config)],
    encodeValue: (v) => v,
    decodeValue: (w) => w as string,
  },
  guestOp: {
    op: 'guest-op',
    encodeArgs: (vcpu, o) => ({ vcpu, op: encodeGuestOp(o) }),
    decodeArgs: (w) => [w.vcpu, decodeGuestOp(w.op)],
    encodeValue: (v) => (v.result === 'ok' && v.value !== undefined ? { ...v, value: hex64(v.value) } : v),
    decodeValue: (w) => (w.result === 'ok' && w.value !== undefined ? { ...w, value: BigInt(w.value) } : (w as OpResult)),
  },
  getNestedState: {
    op: 'get-nested-state',
    encodeArgs: (vcpu, userSize) => ({ vcpu, userSize }),
    decodeArgs: (w) => [w.vcpu, w.userSize],
    encodeValue: (v) => ({ errno: v.errno, size: v.size, buffer: valueHex(v.buffer), written: v.written }),
    decodeValue: (w) => ({ errno: w.errno, size: w.size, buffer: hexToBytes(w.buffer), written: w.written }),
  },
  setNestedState: {
    op: 'set-nested-state',
    encodeArgs: (vcpu, blob) => ({ vcpu, blob: optBytes(hex, blob) }),
    decodeArgs: (w) => [w.vcpu, optHex(w.blob)],
    encodeValue: (v) => v,
    decodeValue: (w) => w,
  },
  destroyVcpu: {
    op: 'destroy-vcpu',
    encodeArgs: (vcpu) => ({ vcpu }),
    decodeArgs: (w) => [w.vcpu],
    encodeValue: () => null,
    decodeValue: () => null,
  },
  vmmSave: {
    op: 'vmm-save',
    encodeArgs: (i) => ({
      kernel: { nestedStateCap: i.kernel.nestedStateCap, state: hex(i.kernel.state) },
      vmxMsrs: encodeMsrs(i.vmxMsrs),
      config: encodeConfig(i.config),
      ...withVersion(i.version),
    }),
    decodeArgs: (w) => [{ kernel: { nestedStateCap: w.kernel.nestedStateCap, state: hexToBytes(w.kernel.state) }, vmxMsrs: decodeMsrs(w.vmxMsrs), config: decodeConfig(w.config), ...withVersion(w.version) }],
    encodeValue: encodeSaved,
    decodeValue: decodeSaved,
  },
  vmmLoad: {
    op: 'vmm-load',
    encodeArgs: (i) => ({ stream: hex(i.stream), kernel: { nestedStateCap: i.kernel.nestedStateCap }, ...withVersion(i.version) }),
    decodeArgs: (w) => [{ stream: hexToBytes(w.stream), kernel: { nestedStateCap: w.kernel.nestedStateCap }, ...withVersion(w.version) }],
    encodeValue: encodeLoaded,
    decodeValue: decodeLoaded,
  },
});

/** The codecs with plain hex in request args, as every target reads them. */
export const OPS = opCodecs(bytesToHex);
/** The codecs for a target that lists `zero-runs`. */
const ZERO_RUN_OPS = opCodecs(bytesToZeroRunHex);

export const OP_METHODS = Object.keys(OPS) as OpMethod[];

/** Optional framing a target announces in its hello (PROTOCOL.md, "Features"). */
export const FEATURES = ['deflate', 'packed-access', 'zero-runs'] as const;
export type Feature = (typeof FEATURES)[number];

type PackedCodec<M extends OpMethod> = OpCodec<M> & { readonly isPacked: (args: Json) => boolean };

/**
 * Ops with a packed form (the `packed-access` feature): the same op name, other argument and value
 * keys. A packed request gets a packed answer, so the target needs no state to choose.
 */
const packedCodecs = (hex: BytesToHex): { readonly [M in OpMethod]?: PackedCodec<M> } => ({
  vmcs12Access: {
    op: 'vmcs12-access',
    isPacked: (w) => 'packedOps' in w,
    encodeArgs: (page, ops) => ({ page: hex(page), packedOps: packOps(ops) }),
    decodeArgs: (w) => [hexToBytes(w.page), unpackOps(w.packedOps)],
    encodeValue: (v) => ({ page: valueHex(v.page), ...packResults(v.results) }),
    decodeValue: (w) => {
      if (!('packedResults' in w)) throw new PackedError('a packed request was answered with a results list, not packedResults');
      return { page: hexToBytes(w.page), results: unpackResults(w.packedResults, w.reasons) };
    },
  },
});
const PACKED = packedCodecs(bytesToHex);
const ZERO_RUN_PACKED = packedCodecs(bytesToZeroRunHex);

/** The codec the runner uses for method m with a target that announced these features. */
export function runnerCodec<M extends OpMethod>(m: M, features: readonly string[]): OpCodec<M> {
  const zeroRuns = features.includes('zero-runs');
  const packed = (zeroRuns ? ZERO_RUN_PACKED : PACKED)[m] as PackedCodec<M> | undefined;
  return packed && features.includes('packed-access') ? packed : (zeroRuns ? ZERO_RUN_OPS : OPS)[m];
}

/** The codec that reads these request args: packed args are read (and answered) packed. */
export function serverCodec<M extends OpMethod>(m: M, args: Json): OpCodec<M> {
  const packed = PACKED[m] as PackedCodec<M> | undefined;
  return packed?.isPacked(args) ? packed : OPS[m];
}

/** Wire op name -> Target method. */
export const METHOD_OF_OP: ReadonlyMap<string, OpMethod> = new Map(OP_METHODS.map((m) => [OPS[m].op, m]));

export interface HelloMessage {
  type: 'hello';
  protocol: typeof PROTOCOL;
  name: string;
  version: string;
  profile?: string;
  groups: string[];
  unsupported?: Record<string, string>;
  /** optional framing the target understands (`deflate`: compressed request lines, and answers to them; `packed-access`: vmcs12-access as records; `zero-runs`: zero runs in request bytes) */
  features?: Feature[];
  /** guest operations the target does not carry out, with why */
  unsupportedGuestOps?: Record<string, string>;
  /** how vmcs12-access is carried out (Target.vmcs12AccessPath) */
  vmcs12Access?: 'table' | 'instruction';
  /** the VMX MSRs a fresh vCPU reports, "0x480": "0x…" (Target.vmxMsrs) */
  vmxMsrs?: Record<string, string>;
  /** the guest memory of a vCPU (Target.guestMemory): bytes, and [from, to) ranges the target reserves */
  guestMemory?: { bytes: string; reserved: [string, string][] };
  /** group `vmm`: the stream versions the VMM writes, oldest first, and the known bugs it declares (Target.vmm; the schema keeps the bugs to the known names) */
  vmm?: VmmInfo;
}

export interface WireRequest {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

export type WireResponse = { id: number; status: 'ok'; value: unknown } | { id: number; status: 'unsupported' | 'error'; reason: string };
