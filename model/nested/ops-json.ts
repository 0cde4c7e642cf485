// Guest operations as JSON (reports/schema/guest-ops.schema.json): bigints as hex strings. What
// `nested save --ops` reads and golden recipes record. And a VMWRITE written by member name, so
// recipes in code never spell an encoding.
import { encodingOf } from '../catalog/by-name.js';
import type { GuestOp } from './vcpu.js';

/** VMWRITE of a vmcs12 member, by its catalog encoding. */
export const vmwriteOp = (member: string, value: bigint): GuestOp => ({ op: 'vmwrite', field: encodingOf(member), value });

const BIG_KEYS = new Set(['pa', 'field', 'value', 'reason', 'currentNestedVmcs']);

/** From schema-valid JSON: the 64-bit operands become bigints. */
export function opsFromJson(raw: readonly Record<string, unknown>[]): GuestOp[] {
  return raw.map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, BIG_KEYS.has(k) ? BigInt(v as string | number) : v])) as unknown as GuestOp);
}

/** The JSON form of an op list (bigints as hex strings), as `nested save --ops` reads it. */
export function opsToJson(ops: readonly GuestOp[]): Record<string, unknown>[] {
  return ops.map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? `0x${v.toString(16)}` : v])));
}
