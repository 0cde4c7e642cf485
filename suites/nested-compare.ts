// A target's nested-state answers against the model's, field by field, for the differential
// properties. The normalisation, in one place:
// - guest operations: the result kind, the error (VMfail number or exit reason) and the value are
//   compared; the failed VM-entry check and the exit qualification where the target names them (a
//   real kernel cannot name a check, as SET's rule below);
// - GET: errno, size and `written`, then the buffer by name: header fields, each flag bit, each
//   vmcs12 and shadow vmcs12 member, other bytes of the 998 as byte runs, and bytes 998..4095 of
//   each page as the page's "tail" (a documented difference: model/nested/documented.ts);
// - SET: the return value and errno; the rule and VM-entry check where the target names them.
import { codecFor, decode, diffBytes, slotValue, type FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import type { Layout } from '../model/layout.js';
import { readHeader } from '../model/nested/blob.js';
import { FLAGS, HEADER_SIZE, OFFSET, SMM_FLAGS, VMCS12_BLOB_SIZE, VMCS12_STRUCT_SIZE, VMX_HDR_FLAGS } from '../model/nested/constants.js';
import type { GuestOp, OpResult } from '../model/nested/vcpu.js';
import { DEADLINE_FROM_CLOCK, documentedDifference, L2_EXECUTION_FIELDS, TIMER_AT_GET } from '../model/nested/documented.js';
import { ruleAgrees, timerValueAtGet } from '../harness/nested-common.js';
import type { GetAnswer, SetAnswer } from '../targets/target.js';
import { Violation, type PropertyContext } from '../harness/property.js';
import { operands } from '../harness/input-view.js';

/** Byte runs that differ in [from, to), labelled from `base` on; at most 24 in a diff. */
const byteRuns = (want: Uint8Array, got: Uint8Array, from: number, to: number, label: string, base: number, out: FieldDiff[]): FieldDiff[] => {
  out.push(...diffBytes(want, got, label, { from, to: Math.min(to, want.length, got.length), base, max: Math.max(0, 24 - out.length) }));
  return out;
};

/** One bit field compared bit by bit, by the bits' names; bits without a name together. */
function diffBits(field: string, bits: Record<string, number>, want: number, got: number, out: FieldDiff[]): void {
  let named = 0;
  for (const [name, bit] of Object.entries(bits)) {
    named |= bit;
    if ((want & bit) !== (got & bit)) out.push({ field: `${field}.${name}`, offset: -1, expected: want & bit ? 'set' : 'clear', actual: got & bit ? 'set' : 'clear' });
  }
  if ((want & ~named) !== (got & ~named)) out.push({ field: `${field} (other bits)`, offset: -1, expected: hex(want & ~named), actual: hex(got & ~named) });
}

function diffHeader(want: Uint8Array, got: Uint8Array, out: FieldDiff[]): void {
  const a = readHeader(want);
  const b = readHeader(got);
  diffBits('flags', FLAGS, a.flags, b.flags, out);
  diffBits('smm.flags', SMM_FLAGS, a.smmFlags, b.smmFlags, out);
  diffBits('hdr.vmx.flags', VMX_HDR_FLAGS, a.vmxFlags, b.vmxFlags, out);
  // a deadline both carry was fixed from each one's clock (a documented difference, model/nested/documented.ts)
  const clocked = (k: string) => (k === 'preemptionTimerDeadline' && a.vmxFlags & b.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE ? ` ${DEADLINE_FROM_CLOCK}` : '');
  for (const k of ['format', 'size', 'vmxonPa', 'vmcs12Pa', 'pad', 'preemptionTimerDeadline'] as const)
    if (a[k] !== b[k]) out.push({ field: `header.${k}${clocked(k)}`, offset: OFFSET[k], expected: hex(a[k]), actual: hex(b[k]) });
  byteRuns(want, got, OFFSET.preemptionTimerDeadline + 8, HEADER_SIZE, 'header', 0, out);
}

/** The name a differing member goes by: the timer value GET wrote says so (a documented difference, model/nested/documented.ts). */
const memberLabel = (label: string, name: string, timed: boolean) => `${label}.${name}${timed && name === 'vmx_preemption_timer_value' ? ` ${TIMER_AT_GET}` : ''}`;

/** A vmcs12 page by member name; the bytes no member names, then the tail past the 998 KVM uses. */
function diffPage(layout: Layout, want: Uint8Array, got: Uint8Array, at: number, label: string, out: FieldDiff[], timed = false): void {
  const c = codecFor(layout);
  const page = (b: Uint8Array) => b.subarray(at, at + VMCS12_BLOB_SIZE);
  const w = decode(c, page(want));
  const g = decode(c, page(got));
  c.slots.forEach((s, i) => {
    if (slotValue(w, i) !== slotValue(g, i)) out.push({ field: memberLabel(label, s.name, timed), offset: at + s.offset, expected: hex(slotValue(w, i), s.bytes * 2), actual: hex(slotValue(g, i), s.bytes * 2) });
  });
  // the codec's `rest`: the page with every member zeroed, at the page's place in the buffer
  const [wr, gr] = [new Uint8Array(want.length), new Uint8Array(got.length)];
  wr.set(w.rest, at);
  gr.set(g.rest, at);
  byteRuns(wr, gr, at, at + VMCS12_STRUCT_SIZE, label, at, out);
  byteRuns(want, got, at + VMCS12_STRUCT_SIZE, at + VMCS12_BLOB_SIZE, `${label} tail`, at, out);
}

/** Two nested-state buffers, field by field (pages the buffers hold whole by name, the rest as byte runs). */
export function diffStateBytes(layout: Layout, want: Uint8Array, got: Uint8Array): FieldDiff[] {
  const out: FieldDiff[] = [];
  if (want.length !== got.length) out.push({ field: 'buffer length', offset: -1, expected: String(want.length), actual: String(got.length) });
  const n = Math.min(want.length, got.length);
  if (n < HEADER_SIZE) return byteRuns(want, got, 0, n, 'header', 0, out);
  diffHeader(want, got, out);
  for (const [at, label] of [[OFFSET.vmcs12, 'vmcs12'], [OFFSET.shadowVmcs12, 'shadow vmcs12']] as const) {
    // the model's GET says whether the timer value in it is the remaining time (PREEMPTION_TIMER_VALUE_AT_GET)
    if (n >= at + VMCS12_BLOB_SIZE && layout.size === VMCS12_BLOB_SIZE) diffPage(layout, want, got, at, label, out, at === OFFSET.vmcs12 && timerValueAtGet(want));
    else byteRuns(want, got, at, at + VMCS12_BLOB_SIZE, label, at, out);
  }
  return out;
}

/**
 * Where a target said its L2 ran code, differences in L2's execution state are named as that
 * (L2_RUNS_ITS_CODE, L2_EXECUTION_FIELDS); every other field is compared as before.
 */
export function asRunByL2(diff: readonly FieldDiff[], ran: boolean): FieldDiff[] {
  if (!ran) return [...diff];
  const fields = new Set(L2_EXECUTION_FIELDS.map((f) => `vmcs12.${f}`));
  return diff.map((d) => (fields.has(d.field) ? { ...d, field: `L2 ran its code: ${d.field}` } : d));
}

/** KVM_GET_NESTED_STATE answers: the ioctl's result, then the buffer by name. */
export function diffGet(layout: Layout, want: GetAnswer, got: GetAnswer): FieldDiff[] {
  const out: FieldDiff[] = [];
  if (want.errno !== got.errno) out.push({ field: 'GET errno', offset: -1, expected: want.errno ?? '0', actual: got.errno ?? '0' });
  if (want.size !== got.size) out.push({ field: 'GET size', offset: -1, expected: String(want.size), actual: String(got.size) });
  if (want.written !== got.written) out.push({ field: 'GET bytes written', offset: -1, expected: String(want.written), actual: String(got.written) });
  return [...out, ...diffStateBytes(layout, want.buffer, got.buffer)];
}

/** KVM_SET_NESTED_STATE answers: ret and errno always; rule and VM-entry check where the target names them. */
export function diffSet(want: SetAnswer, got: SetAnswer): FieldDiff[] {
  const out: FieldDiff[] = [];
  if (want.ret !== got.ret || want.errno !== got.errno) out.push({ field: 'SET', offset: -1, expected: `${want.ret} (${want.errno ?? 'ok'})`, actual: `${got.ret} (${got.errno ?? 'ok'})` });
  if (!ruleAgrees(got.rule, want.rule)) out.push({ field: 'SET rule', offset: -1, expected: want.rule, actual: got.rule });
  if (got.vmentryCheck !== undefined && got.vmentryCheck !== want.vmentryCheck) out.push({ field: 'SET VM-entry check', offset: -1, expected: want.vmentryCheck ?? '-', actual: got.vmentryCheck });
  return out;
}

/** A guest operation's answer as compared (see the normalisation above). */
function shown(r: OpResult, named: OpResult): string {
  const error = 'error' in r && r.error !== undefined ? ` ${r.result === 'vmexit' ? hex(r.error) : r.error}` : '';
  const value = r.result === 'ok' && r.value !== undefined ? ` ${hex(r.value)}` : '';
  const check = 'check' in named && named.check !== undefined && 'check' in r && r.check ? ` (${r.check})` : '';
  const qual = 'qualification' in named && named.qualification !== undefined && 'qualification' in r ? ` qualification ${r.qualification}` : '';
  return `${r.result}${error}${value}${check}${qual}`;
}

export const opLabel = (o: GuestOp): string => `${o.op}${Object.keys(o).length > 1 ? ` ${operands(o)}` : ''}`;

/** The first guest operation whose answer differs (the later ones follow from it), or []. */
export function diffOps(ops: readonly GuestOp[], want: readonly OpResult[], got: readonly OpResult[]): FieldDiff[] {
  for (const [i, o] of ops.entries()) {
    const w = want[i];
    const g = got[i];
    if (!w || !g) return [{ field: `op #${i + 1} ${opLabel(o)}`, offset: -1, expected: w ? shown(w, w) : 'no answer', actual: g ? shown(g, g) : 'no answer' }];
    // the target's naming decides what is compared: a check or qualification it leaves out is not
    if (shown(w, g) !== shown(g, g)) return [{ field: `op #${i + 1} ${opLabel(o)}`, offset: -1, expected: shown(w, g), actual: shown(g, g) }];
  }
  return [];
}

/**
 * One case's comparisons: a difference the profile documents (model/nested/documented.ts) is noted
 * and reported with the verdict; any other fails the case, naming the step where it showed.
 */
export function caseJudge(ctx: Pick<PropertyContext, 'documented'>) {
  const seen = new Set<string>();
  return {
    expect(profile: string, step: string, diff: readonly FieldDiff[]): void {
      const other = diff.filter((d) => {
        const q = documentedDifference(profile, d.field);
        if (q) seen.add(q.name);
        return !q;
      });
      if (other.length) throw new Violation(`${step} differs from the model of ${profile}`, other);
    },
    /** the case passed: report the documented differences it showed */
    done(): void {
      for (const name of seen) ctx.documented?.(name);
    },
  };
}
