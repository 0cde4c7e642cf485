// A consumer reading a golden blob, through the target interface: nested state is restored on a
// fresh vCPU (SET) and read back (GET); a vmcs12 page goes through the target's revision reader with
// the producer's layout as a known revision; an eVMCS page is decoded with the target's layout.
// The observation is then judged against the manifest's expected result.
import { codecFor, decode, encode, type FieldDiff } from '../model/codec.js';
import { toDescriptor, type Layout } from '../model/layout.js';
import { translate } from '../model/revisions.js';
import { DEFAULT_VCPU } from '../model/nested/vcpu.js';
import type { Errno } from '../model/nested/constants.js';
import { targetLayout } from '../harness/common.js';
import { must } from '../harness/property.js';
import { afterRestore, getFull, withoutTimerValueAtGet } from '../harness/nested-common.js';
import type { Target } from '../targets/target.js';
import { linkPageSeed } from '../model/nested/guest-memory.js';
import { decodeContent, diffFlat, flatten, type Flat } from './content.js';
import type { ExpectedResult, GoldenEntry } from './manifest.js';

/** The rule a page answer names when the consumer's revision reader refuses the page. */
export const UNKNOWN_REVISION = 'unknown-revision';

export type Observed =
  | { readonly result: 'valid'; readonly want: Flat; readonly got: Flat }
  /** `check`: at V14, the VM-entry check that failed, where the target names it */
  | { readonly result: 'invalid'; readonly errno: Errno | null; readonly ret: number; readonly rule: string; readonly check?: string };

function flatOf(e: Pick<GoldenEntry, 'kind'>, layout: Layout, bytes: Uint8Array): Flat {
  const c = decodeContent(e.kind, layout, bytes);
  return c.ok ? flatten(e.kind, c.content) : { decode: c.reason };
}

const fieldsOnly = (f: Flat): Flat => Object.fromEntries(Object.entries(f).filter(([k]) => !k.startsWith('byte@')));

/** The shadow vmcs12's header at its link pointer, as migrated guest memory has it (model/nested/guest-memory.ts). */
async function seedLinkPage(target: Target, vcpu: string, bytes: Uint8Array, layout: Layout): Promise<void> {
  const seed = linkPageSeed(bytes, layout);
  if (seed) must(await target.guestOp(vcpu, seed));
}

/** What the target does with the blob. `layout` is the producer's: fields are compared by its names. */
export async function observe(target: Target, e: Pick<GoldenEntry, 'kind' | 'consumerVcpu'>, bytes: Uint8Array, layout: Layout): Promise<Observed> {
  if (e.kind === 'nested-state') {
    const vcpu = must(await target.createVcpu({ ...DEFAULT_VCPU, ...e.consumerVcpu }));
    try {
      await seedLinkPage(target, vcpu, bytes, layout);
      const s = must(await target.setNestedState(vcpu, bytes));
      if (s.ret !== 0) return { result: 'invalid', errno: s.errno, ret: s.ret, rule: s.rule, ...(s.vmentryCheck ? { check: s.vmentryCheck } : {}) };
      const got = await getFull({ target }, vcpu);
      // SET reads 998 bytes of each page and KVM's cache is zeroed: the rest comes back zero; a timer
      // value GET took from the clock is not compared (PREEMPTION_TIMER_VALUE_AT_GET)
      return { result: 'valid', want: flatOf(e, layout, withoutTimerValueAtGet(afterRestore(bytes))), got: flatOf(e, layout, withoutTimerValueAtGet(got)) };
    } finally {
      await target.destroyVcpu(vcpu);
    }
  }
  const current = await targetLayout(target, e.kind);
  const old = decode(codecFor(layout), bytes.subarray(0, layout.size));
  let page: Uint8Array;
  if (e.kind === 'vmcs12') {
    const r = must(await target.readRevisions({ current: toDescriptor(current), known: [toDescriptor(layout)] }, bytes.slice(0, layout.size)));
    if (!r.accepted) return { result: 'invalid', errno: null, ret: -1, rule: UNKNOWN_REVISION };
    page = r.page;
  } else page = bytes.slice(0, current.size);
  // the fields the producer knew, as the consumer's layout names them (bytes without a member are
  // the layout's business, not the reader's: a member that became dead space keeps its bytes)
  const want = encode(codecFor(current), translate(layout, current, old));
  return { result: 'valid', want: fieldsOnly(flatOf(e, current, want)), got: fieldsOnly(flatOf(e, current, page)) };
}

/** The manifest's form of an observation: a valid read records where GET-after-SET differs from the blob. */
export function toExpected(o: Observed): ExpectedResult {
  if (o.result === 'invalid') return { result: 'invalid', ...(o.errno ? { errno: o.errno } : { ret: o.ret }), rule: o.rule };
  const after = Object.fromEntries(diffFlat(o.want, o.got).map((d) => [d.field, d.actual]));
  return { result: 'valid', ...(Object.keys(after).length ? { after } : {}) };
}

export const describeResult = (r: ExpectedResult | Observed): string =>
  r.result === 'invalid' ? `invalid(${'errno' in r && r.errno ? r.errno : `ret ${r.ret}`}, ${r.rule})` : r.result;

export type Judgement = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly diff: readonly FieldDiff[] };

/** Does the observation match the expectation? A target that does not know rule ids ("") is judged on the errno alone. */
export function judge(expected: ExpectedResult, o: Observed): Judgement {
  if (expected.result === 'acceptable') return { ok: true };
  if (expected.result !== o.result) {
    const why = o.result === 'invalid' ? ` at rule ${o.rule}` : '';
    return { ok: false, reason: `expected ${describeResult(expected)}, got ${describeResult(o)}${why}`, diff: [{ field: 'result', offset: -1, expected: describeResult(expected), actual: describeResult(o) }] };
  }
  if (expected.result === 'invalid' && o.result === 'invalid') {
    const sameErrno = expected.errno !== undefined ? expected.errno === o.errno : expected.ret === o.ret;
    if (sameErrno && (o.rule === '' || o.rule === expected.rule)) return { ok: true };
    return { ok: false, reason: `expected ${describeResult(expected)}, got ${describeResult(o)}`, diff: [{ field: 'rule', offset: -1, expected: describeResult(expected), actual: describeResult(o) }] };
  }
  if (expected.result === 'valid' && o.result === 'valid') {
    const diff = diffFlat({ ...o.want, ...expected.after }, o.got);
    return diff.length ? { ok: false, reason: `valid, but ${diff.length} field(s) read back differently`, diff } : { ok: true };
  }
  return { ok: true };
}
