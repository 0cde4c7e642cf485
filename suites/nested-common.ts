// Shared steps of the nested-state suites: reach a state through guest operations, and the
// normalisations a GET after a SET is allowed (documented in kernel-facts §8-9).
import { readHeader } from '../model/nested/blob.js';
import { HEADER_SIZE, OFFSET, SIZE_WITH_SHADOW, VMCS12_BLOB_SIZE, VMCS12_STRUCT_SIZE } from '../model/nested/constants.js';
import type { GuestOp, OpResult, VcpuConfig } from '../model/nested/vcpu.js';
import { bytesHex, type FieldDiff } from '../model/codec.js';
import { HEADER_FIELDS } from '../model/nested/blob.js';
import { must, type PropertyContext } from './harness.js';

export interface Reached {
  readonly vcpu: string;
  readonly results: readonly OpResult[];
  /** what the VMM knows and restores on a destination before SET: the cap it enabled, SMM from vcpu events */
  readonly destination: VcpuConfig;
}

export async function reach(ctx: Pick<PropertyContext, 'target'>, config: VcpuConfig, ops: readonly GuestOp[]): Promise<Reached> {
  const vcpu = must(await ctx.target.createVcpu(config));
  const results: OpResult[] = [];
  let evmcsEnabled = config.evmcsEnabled;
  let inSmm = config.inSmm;
  for (const o of ops) {
    const r = must(await ctx.target.guestOp(vcpu, o));
    results.push(r);
    if (r.result !== 'ok') continue;
    if (o.op === 'enable-evmcs') evmcsEnabled = true;
    if (o.op === 'smm-entry') inSmm = true;
    if (o.op === 'rsm') inSmm = false;
  }
  return { vcpu, results, destination: { ...config, evmcsEnabled, inSmm } };
}

/** GET with a buffer large enough for anything (KVM_CAP_NESTED_STATE's 8320). */
export async function getFull(ctx: Pick<PropertyContext, 'target'>, vcpu: string): Promise<Uint8Array> {
  const g = must(await ctx.target.getNestedState(vcpu, SIZE_WITH_SHADOW));
  if (g.errno) throw new Error(`GET with an 8320-byte buffer answered ${g.errno}`);
  return g.buffer.subarray(0, g.size);
}

/**
 * The blob a GET after SET(b) returns, by the documented rules: SET reads only the first 998 bytes
 * of each vmcs12 page and KVM's cache is zeroed, so bytes 998..4095 of each page come back zero.
 */
export function afterRestore(b: Uint8Array): Uint8Array {
  const out = b.slice();
  const zero = (page: number) => out.fill(0, Math.min(out.length, page + VMCS12_STRUCT_SIZE), Math.min(out.length, page + VMCS12_BLOB_SIZE));
  zero(OFFSET.vmcs12);
  zero(OFFSET.shadowVmcs12);
  return out;
}

/** A blob diff: header fields by name, then byte runs of the pages. */
export function diffBlobs(want: Uint8Array, got: Uint8Array): FieldDiff[] {
  const out: FieldDiff[] = [];
  if (want.length >= HEADER_SIZE && got.length >= HEADER_SIZE) {
    const a = readHeader(want);
    const b = readHeader(got);
    for (const f of HEADER_FIELDS)
      if (a[f.name] !== b[f.name]) out.push({ field: `header.${f.name}`, offset: f.offset, expected: `0x${a[f.name].toString(16)}`, actual: `0x${b[f.name].toString(16)}` });
  }
  if (want.length !== got.length) out.push({ field: 'blob length', offset: -1, expected: String(want.length), actual: String(got.length) });
  const n = Math.min(want.length, got.length);
  for (let i = HEADER_SIZE; i < n; i++) {
    if (want[i] === got[i]) continue;
    let j = i;
    while (j < n && want[j] !== got[j] && j - i < 16) j++;
    const where = i >= OFFSET.shadowVmcs12 ? `shadow vmcs12 +${i - OFFSET.shadowVmcs12}` : `vmcs12 +${i - OFFSET.vmcs12}`;
    out.push({ field: where, offset: i, expected: bytesHex(want.subarray(i, j)), actual: bytesHex(got.subarray(i, j)) });
    i = j - 1;
    if (out.length > 24) break;
  }
  return out;
}
