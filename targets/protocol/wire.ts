// nvmx-target/1 on the wire: one protocol operation per Target method, with the JSON shape of its
// arguments and of its `ok` value in both directions. Bytes travel as lowercase hex, 64-bit values
// as "0x…" strings (JSON numbers lose bits above 2^53). The runner (exec.ts) and `serve` share
// this table, so a new operation is one new entry here and one $defs pair in the schema.
import type { LayoutDescriptor } from '../../model/layout.js';
import type { AccessOutcome } from '../../model/vmcs12-access.js';
import type { ControlCheck, RevisionRead, RevisionSetDescriptor, Target, TargetResult, Vmcs12AccessResult, Vmcs12Op, VmxMsrValue } from '../target.js';

export const PROTOCOL = 'nvmx-target/1';

export const bytesToHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const hexToBytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const hex64 = (v: bigint): string => '0x' + v.toString(16);

/** The Target methods that are protocol operations (everything but identity, groups, close). */
export type OpMethod = 'layout' | 'vmcs12Access' | 'readRevisions' | 'evmcsToVmcs12' | 'vmcs12ToEvmcs' | 'filterVmxMsrs' | 'evmcsCheckControls';
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
  encodeValue: (v) => bytesToHex(v as Uint8Array),
  decodeValue: (w) => hexToBytes(w) as Value<M>,
});

export const OPS: { readonly [M in OpMethod]: OpCodec<M> } = {
  layout: {
    op: 'layout',
    encodeArgs: (structure) => ({ structure }),
    decodeArgs: (w) => [w.structure],
    encodeValue: (v) => v,
    decodeValue: (w) => w as LayoutDescriptor,
  },
  vmcs12Access: {
    op: 'vmcs12-access',
    encodeArgs: (page, ops) => ({ page: bytesToHex(page), ops: ops.map(encodeOp) }),
    decodeArgs: (w) => [hexToBytes(w.page), (w.ops as Json[]).map(decodeOp)],
    encodeValue: (v: Vmcs12AccessResult) => ({ page: bytesToHex(v.page), results: v.results.map(encodeOutcome) }),
    decodeValue: (w) => ({ page: hexToBytes(w.page), results: (w.results as Json[]).map(decodeOutcome) }),
  },
  readRevisions: {
    op: 'read-revisions',
    encodeArgs: (set, page) => ({ set, page: bytesToHex(page) }),
    decodeArgs: (w) => [w.set as RevisionSetDescriptor, hexToBytes(w.page)],
    encodeValue: (v: RevisionRead) => (v.accepted ? { ...v, page: bytesToHex(v.page) } : v),
    decodeValue: (w) => (w.accepted ? { accepted: true, translatedFrom: w.translatedFrom, page: hexToBytes(w.page) } : w),
  },
  evmcsToVmcs12: bytesOp<'evmcsToVmcs12'>(
    'evmcs-to-vmcs12',
    (evmcs, vmcs12, cleanFields) => ({ evmcs: bytesToHex(evmcs), vmcs12: bytesToHex(vmcs12), cleanFields }),
    (w) => [hexToBytes(w.evmcs), hexToBytes(w.vmcs12), w.cleanFields],
  ),
  vmcs12ToEvmcs: bytesOp<'vmcs12ToEvmcs'>(
    'vmcs12-to-evmcs',
    (vmcs12, evmcs) => ({ vmcs12: bytesToHex(vmcs12), evmcs: bytesToHex(evmcs) }),
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
    encodeArgs: (vmcs12) => ({ vmcs12: bytesToHex(vmcs12) }),
    decodeArgs: (w) => [hexToBytes(w.vmcs12)],
    encodeValue: (v) => v,
    decodeValue: (w) => w as ControlCheck,
  },
};

export const OP_METHODS = Object.keys(OPS) as OpMethod[];

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
}

export interface WireRequest {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

export type WireResponse = { id: number; status: 'ok'; value: unknown } | { id: number; status: 'unsupported' | 'error'; reason: string };
