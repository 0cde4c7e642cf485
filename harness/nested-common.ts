// Shared steps of the nested-state suites: reach a state through guest operations, and the
// normalisations a GET after a SET is allowed (documented in kernel-facts §8-9).
import { hdrRevision, hdrShadow, makeHdr, VMCS12 } from '../model/catalog/by-name.js';
import { VMCS12_REVISION } from '../model/catalog/vmcs12.js';
import { readHeader, writeHeader } from '../model/nested/blob.js';
import { BIT, DR7_RESET, EFER_LONG_MODE } from '../model/vmentry/bits.js';
import { FLAGS, HEADER_SIZE, OFFSET, SIZE_WITH_SHADOW, VMCS12_BLOB_SIZE, VMCS12_STRUCT_SIZE, VMX_HDR_FLAGS } from '../model/nested/constants.js';
import type { GuestOp, OpResult, VcpuConfig } from '../model/nested/vcpu.js';
import { bytesHex, type FieldDiff } from '../model/codec.js';
import { HEADER_FIELDS } from '../model/nested/blob.js';
import type { SetAnswer, Target } from '../targets/target.js';
import { must, Violation, type PropertyContext } from './property.js';

export interface Reached extends GuestTrack {
  readonly vcpu: string;
  readonly results: readonly OpResult[];
}

/** What a VMM knows and carries of a guest as it runs: what it restores on a destination before SET. */
export interface GuestTrack {
  /** the cap it enabled, SMM from vcpu events */
  readonly destination: VcpuConfig;
  /** guest memory the source wrote, replayed on the destination (VMMs migrate memory before nested state) */
  readonly memory: readonly GuestOp[];
  /** the last VP-assist page the guest set up (guest memory too; destinationOf leaves it out) */
  readonly vpAssist: GuestOp | null;
  /** the eVMCS capability was enabled after the last successful VM-entry (its control check never ran on that L2) */
  readonly evmcsEnabledAfterEntry: boolean;
  /** where the guest left the state the model's guest is in, by what the target said of its L2 */
  readonly departed: Departure | null;
  /** a VM-entry the target carried out at once (`l2: entered`) that no `run` has since caught the model's up with */
  readonly enteredAtOnce: string | null;
  /** the target said its L2 ran code (`l2: entered` or `exited`): L2's execution state is the target's own (L2_EXECUTION_FIELDS) */
  readonly l2RanCode: boolean;
}

/**
 * Where a target's guest left the state the model's is in, as the target says of its L2 (README K18,
 * K19): a real L2 ran its code and exited to L1, or a real entry left nothing pending. A comparison
 * with the model goes no further; `field` is the diff field model/nested/documented.ts names.
 */
export interface Departure {
  readonly name: 'L2_RUNS_ITS_CODE' | 'ENTRY_NOT_PENDING';
  readonly field: string;
  /** the operation (its index in the operations run together) after which L2 exited, where one did */
  readonly atOp?: number;
}

/** What the target says of its L2, as a track follows it. */
type L2Track = Pick<GuestTrack, 'departed' | 'enteredAtOnce' | 'l2RanCode'>;

/**
 * A track after the target answered `o` with `r` (`where` names the operation; `atOp` is its index
 * among the operations run together): an L2 that exited departs from the model's state, an entry
 * carried out at once stands apart until a `run`, and any `l2` answer means L2 ran its code.
 */
export function followL2(t: L2Track, o: GuestOp, r: OpResult, where: string, atOp?: number): L2Track {
  if (r.result !== 'ok') return t;
  const exited: Departure = { name: 'L2_RUNS_ITS_CODE', field: `L2 ran to its first stop and exited to L1 (${where})`, ...(atOp !== undefined ? { atOp } : {}) };
  return {
    departed: t.departed ?? (r.l2 === 'exited' ? exited : null),
    enteredAtOnce: o.op === 'run' ? null : r.l2 === 'entered' ? where : t.enteredAtOnce,
    l2RanCode: t.l2RanCode || r.l2 !== undefined,
  };
}

/** Where the guest stands apart from the model's if it is saved now (an entry carried out at once is, until a `run`). */
export const departedAtSave = (t: GuestTrack): Departure | null =>
  t.departed ?? (t.enteredAtOnce ? { name: 'ENTRY_NOT_PENDING', field: `the entry was carried out at once (${t.enteredAtOnce}): the saved state has no entry pending where the model's has` } : null);

/** Guest-memory writes: a destination gets them before SET (the VMCS link pointer's page is read there). */
const MEMORY_OPS = new Set<GuestOp['op']>(['init-vmcs', 'init-evmcs', 'write-memory']);

/** A vCPU just created with `config`: nothing run yet. */
export const freshTrack = (config: VcpuConfig): GuestTrack => ({ destination: config, memory: [], vpAssist: null, evmcsEnabledAfterEntry: false, departed: null, enteredAtOnce: null, l2RanCode: false });

/** An operation the target said it does not offer: the case is skipped (unsupported) before it costs anything. */
export function refuseUnoffered(target: Target, ops: readonly GuestOp[]): void {
  const lacking = ops.find((o) => target.unsupportedGuestOps?.[o.op] !== undefined);
  if (lacking) must({ status: 'unsupported', reason: `guest-op ${lacking.op}: ${target.unsupportedGuestOps![lacking.op]}` });
}

export async function reach(ctx: Pick<PropertyContext, 'target'>, config: VcpuConfig, ops: readonly GuestOp[]): Promise<Reached> {
  refuseUnoffered(ctx.target, ops);
  const vcpu = must(await ctx.target.createVcpu(config));
  return { vcpu, ...(await runOps(ctx, vcpu, freshTrack(config), ops)) };
}

/** Guest operations on a vCPU, and what the VMM learns of them. */
export async function runOps(ctx: Pick<PropertyContext, 'target'>, vcpu: string, track: GuestTrack, ops: readonly GuestOp[]): Promise<GuestTrack & { results: OpResult[] }> {
  const results: OpResult[] = [];
  const memory = [...track.memory];
  let { evmcsEnabledAfterEntry, vpAssist } = track;
  let l2: L2Track = track;
  let { evmcsEnabled, inSmm } = track.destination;
  // issued together, the operations travel as one batch (one round trip to a process or machine
  // target), carried out in order
  const answers = await Promise.all(ops.map((o) => ctx.target.guestOp(vcpu, o)));
  for (const [i, o] of ops.entries()) {
    const r = must(answers[i]!);
    results.push(r);
    l2 = followL2(l2, o, r, `op #${i + 1} ${o.op}`, i);
    if (r.result !== 'ok') continue;
    if (MEMORY_OPS.has(o.op)) memory.push(o);
    if (o.op === 'set-vp-assist') vpAssist = o;
    if (o.op === 'vmlaunch' || o.op === 'vmresume' || o.op === 'evmcs-entry') evmcsEnabledAfterEntry = false;
    if (o.op === 'enable-evmcs' && !evmcsEnabled) evmcsEnabledAfterEntry = true;
    if (o.op === 'enable-evmcs') evmcsEnabled = true;
    if (o.op === 'smm-entry') inSmm = true;
    if (o.op === 'rsm') inSmm = false;
  }
  return { results, destination: { ...track.destination, evmcsEnabled, inSmm }, memory, vpAssist, evmcsEnabledAfterEntry, departed: l2.departed, enteredAtOnce: l2.enteredAtOnce, l2RanCode: l2.l2RanCode };
}

/** A destination vCPU configured as the VMM would, with the guest memory migrated, before SET. */
export async function destinationOf(ctx: Pick<PropertyContext, 'target'>, src: Reached): Promise<string> {
  const dst = must(await ctx.target.createVcpu(src.destination));
  for (const r of await Promise.all(src.memory.map((o) => ctx.target.guestOp(dst, o)))) must(r);
  return dst;
}

/** KVM_GET_MP_STATE on the source: a VMM saves the run state beside the nested state. */
export async function saveMpState(ctx: Pick<PropertyContext, 'target'>, vcpu: string): Promise<bigint> {
  return mpStateOf(must(await ctx.target.guestOp(vcpu, { op: 'get-mp-state' })));
}

/** KVM_GET_MP_STATE's answer: the run state (a VMM cannot save a vCPU whose run state it cannot read). */
export function mpStateOf(r: OpResult): bigint {
  if (r.result !== 'ok' || r.value === undefined) throw new Violation(`KVM_GET_MP_STATE answered ${r.result}${'reason' in r ? `: ${r.reason}` : ''}`);
  return r.value;
}

/**
 * KVM_SET_MP_STATE after SET, as QEMU restores a vCPU (nested state first): in guest mode GET reads
 * the activity state back from the run state (F8), so an L2 in HLT or wait-for-SIPI keeps it only
 * when the run state travels too (README K15).
 */
export async function restoreMpState(ctx: Pick<PropertyContext, 'target'>, vcpu: string, state: bigint): Promise<void> {
  const r = must(await ctx.target.guestOp(vcpu, { op: 'set-mp-state', state: Number(state) }));
  if (r.result !== 'ok')
    throw new Violation(`KVM_SET_MP_STATE of the saved run state ${state} was refused on the destination: ${r.result}${'reason' in r ? ` (${r.reason})` : ''}`, [{ field: 'KVM_SET_MP_STATE', offset: -1, expected: 'ok', actual: r.result }]);
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

/**
 * Normalisation L2_REGISTERS_FROM_DESTINATION (README K16, audit F8): prepare_vmcs02 loads vmcs12's
 * DR7 and EFER only for a pending entry under the load controls; any other restored L2 keeps the
 * destination vCPU's (an L2 that has run, or one entered without LOAD_DEBUG_CONTROLS or
 * LOAD_IA32_EFER), and GET in guest mode writes them into vmcs12 under the save controls. On a
 * fresh destination those are DR7 0x400 and EFER 0, with LMA and LME under the IA-32e entry
 * control. A VMM restores its registers itself (QEMU: sregs before SET, debug registers after).
 * GET in guest mode also copies vmcs02's guest-linear address, exit information of L2's last
 * VM-exit to L0 that no VMM carries and the next exit to L1 rewrites: a fresh destination's vmcs02
 * has none, so 0 (README K19: the source's real L2 had run its code and halted). So is the
 * interruptibility state without a pending entry (prepare_vmcs02_early loads it only for one: a
 * VMM restores it with KVM_SET_VCPU_EVENTS; README K22).
 */
export function restoredL2Registers(b: Uint8Array): Uint8Array {
  if (b.length < OFFSET.vmcs12 + VMCS12_STRUCT_SIZE) return b;
  const h = readHeader(b);
  if (!(h.flags & FLAGS.GUEST_MODE)) return b;
  const out = b.slice();
  const page = out.subarray(OFFSET.vmcs12);
  const exit = Number(VMCS12.read(page, 'vm_exit_controls'));
  const entry = Number(VMCS12.read(page, 'vm_entry_controls'));
  const loads = (control: number) => (h.flags & FLAGS.RUN_PENDING) !== 0 && (entry & control) !== 0;
  if (exit & BIT.exit.saveDebug && !loads(BIT.entry.loadDebug)) VMCS12.write(page, 'guest_dr7', DR7_RESET);
  if (exit & BIT.exit.saveEfer && !loads(BIT.entry.loadEfer)) VMCS12.write(page, 'guest_ia32_efer', entry & BIT.entry.ia32e ? EFER_LONG_MODE : 0n);
  VMCS12.write(page, 'guest_linear_address', 0n);
  if (!(h.flags & FLAGS.RUN_PENDING)) VMCS12.write(page, 'guest_interruptibility_info', 0n);
  return out;
}

/**
 * Whether GET wrote the preemption timer's remaining time into this blob's vmcs12 (audit F8,
 * sync_vmcs02_to_vmcs12): in guest mode with no entry pending, under the preemption timer and its
 * "save VMX-preemption timer value" exit control. vmx_get_preemption_timer_value reads an hrtimer,
 * so the value depends on when GET ran, and a destination's deadline counts against its own L1 TSC.
 */
export function timerValueAtGet(b: Uint8Array): boolean {
  if (b.length < OFFSET.vmcs12 + VMCS12_STRUCT_SIZE) return false;
  const h = readHeader(b);
  if (!(h.flags & FLAGS.GUEST_MODE) || h.flags & FLAGS.RUN_PENDING) return false;
  const page = b.subarray(OFFSET.vmcs12);
  return (Number(VMCS12.read(page, 'pin_based_vm_exec_control')) & BIT.pin.preemption) !== 0 && (Number(VMCS12.read(page, 'vm_exit_controls')) & BIT.exit.savePreemption) !== 0;
}

/**
 * Normalisation PREEMPTION_TIMER_VALUE_AT_GET: where GET wrote the timer's remaining time
 * (timerValueAtGet), vmx_preemption_timer_value is not compared; it reads 0 in the blob returned.
 */
export function withoutTimerValueAtGet(b: Uint8Array): Uint8Array {
  if (!timerValueAtGet(b)) return b;
  const out = b.slice();
  VMCS12.write(out.subarray(OFFSET.vmcs12), 'vmx_preemption_timer_value', 0n);
  return out;
}

/**
 * Normalisation DEADLINE_FIXED_BY_SET (audit F8): SET into L2 with the preemption timer on and no
 * deadline in the blob fixes one, vmcs12's timer value plus the destination's L1 TSC >> 5
 * (nested_vmx_enter_non_root_mode), so a 5.8+ destination of a blob without one (an older source)
 * shows one GET after SET. Its value depends on the destination's clock: `want` takes `got`'s flag
 * and deadline when the blob had none and the deadline is at least the timer value.
 */
export function deadlineFixedBySet(want: Uint8Array, got: Uint8Array): Uint8Array {
  if (want.length < OFFSET.vmcs12 + VMCS12_STRUCT_SIZE || got.length < HEADER_SIZE) return want;
  const [w, g] = [readHeader(want), readHeader(got)];
  const flag = VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE;
  const page = want.subarray(OFFSET.vmcs12);
  const timerOn = (Number(VMCS12.read(page, 'pin_based_vm_exec_control')) & BIT.pin.preemption) !== 0;
  if (!(w.flags & FLAGS.GUEST_MODE) || !timerOn || w.vmxFlags & flag || !(g.vmxFlags & flag) || g.preemptionTimerDeadline < VMCS12.read(page, 'vmx_preemption_timer_value')) return want;
  const out = want.slice();
  writeHeader(out, { ...w, vmxFlags: w.vmxFlags | flag, preemptionTimerDeadline: g.preemptionTimerDeadline });
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

/**
 * Whether the page at the blob's VMCS link pointer, as the guest last wrote it, still passes the
 * link-pointer checks (revision, shadow bit = VMCS shadowing) that SET repeats against guest memory.
 */
export function linkPageStillValid(blob: Uint8Array, memory: readonly GuestOp[]): boolean {
  const vmcs12 = blob.subarray(OFFSET.vmcs12);
  const link = VMCS12.read(vmcs12, 'vmcs_link_pointer');
  if (link === (1n << 64n) - 1n) return true;
  const shadow = (Number(VMCS12.read(vmcs12, 'cpu_based_vm_exec_control')) & BIT.proc.secondary) !== 0 && (Number(VMCS12.read(vmcs12, 'secondary_vm_exec_control')) & BIT.proc2.shadowVmcs) !== 0;
  let hdr = 0n;
  for (const o of memory) {
    if (o.op === 'init-vmcs' && o.pa === link) hdr = makeHdr(o.shadow ?? false);
    if (o.op === 'init-evmcs' && o.pa === link) hdr = BigInt(o.revision ?? 1);
    if (o.op === 'write-memory' && (o.pa & ~7n) === link) hdr = o.value & 0xffff_ffffn;
  }
  return hdrRevision(hdr) === VMCS12_REVISION && hdrShadow(hdr) === shadow;
}

/**
 * SET refused a blob with -EINVAL at `rule`; a target that names no rule (a real kernel: `rule` is
 * "") is judged by its errno alone, as the differential properties judge it.
 */
export const refusedAt = (s: SetAnswer, rule: string): boolean => s.errno === 'EINVAL' && ruleAgrees(s.rule, rule);

/** A rule a target named agrees with the expected one; a target that names none (a real kernel, README K21) agrees with any. */
export const ruleAgrees = (named: string, rule: string): boolean => named === rule || named === '';
