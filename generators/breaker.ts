// What a breaker is (generators/one-broken.ts) and the small draft edits breakers are made of.
import type { CheckRule } from '../model/catalog/vmx-controls.js';
import type { NestedCaps } from '../model/vmentry/caps.js';
import type { Vmcs12Draft } from '../model/vmentry/draft.js';
import type { ControlPlan } from './valid-guest.js';

export interface Ctx {
  readonly caps: NestedCaps;
  readonly maxPhyAddr: number;
  readonly evmcsCheck: readonly CheckRule[];
}

export interface Breaker {
  readonly plan?: ControlPlan;
  /** the eVMCS control check must be active (guest_cpuid_has_evmcs) */
  readonly evmcs?: boolean;
  /** changes the draft so that the rule fails; false when the capabilities make that impossible */
  readonly apply?: (d: Vmcs12Draft, c: Ctx) => boolean;
}

export const get = (d: Vmcs12Draft, m: string) => d.fields.get(m) ?? 0n;
export const put = (d: Vmcs12Draft, m: string, v: bigint) => (d.fields.set(m, v), true);
export const xor = (d: Vmcs12Draft, m: string, v: bigint) => put(d, m, get(d, m) ^ v);
export const or = (d: Vmcs12Draft, m: string, v: bigint) => put(d, m, get(d, m) | v);
export const andNot = (d: Vmcs12Draft, m: string, v: bigint) => put(d, m, get(d, m) & ~v);
/** one of n ways to break a rule, chosen by a random field no check reads (guest RSP) */
export const pick = (d: Vmcs12Draft, n: number) => Number(get(d, 'guest_rsp') % BigInt(n));
