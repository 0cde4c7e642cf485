// One migration step as a VMM performs it: refuse early where the destination lacks a capability,
// restore CPUID and MSRs, enable eVMCS if configured, SET nested state, GET again, KVM_RUN; and say
// what the guest lost on the way. The judgement (judgeRestore) goes by what a VMM sees of each step,
// so the model's step here and a hop composed through targets (harness/hop.ts) are judged alike.
import { readHeader } from '../nested/blob.js';
import { FLAGS, HEADER_SIZE, OFFSET, SIZE_WITH_SHADOW, SMM_FLAGS, VMCS12_BLOB_SIZE, VMCS12_STRUCT_SIZE, VMX_HDR_FLAGS, type Errno } from '../nested/constants.js';
import { applyOp, syncWritesTimerValue, Vcpu, type OpResult, type VcpuConfig } from '../nested/vcpu.js';
import { VMCS12 } from '../catalog/by-name.js';
import { findProfile, type Profile } from '../profiles.js';
import { filterDiff } from '../filter-diff.js';
import { CONTROL_MSRS, MSR, MSR_NAMES, type MsrSet } from '../vmx-msrs.js';
import { NESTED_4_19, type NestedBehaviour } from '../nested/behaviour.js';
import type { Host } from './hosts.js';
import type { Outcome } from './outcome.js';
import type { Stream } from './stream.js';
import { getNestedState } from '../nested/get.js';
import { setNestedState } from '../nested/set.js';
import { postLoadProblem } from '../vmm/qemu.js';

export interface StepResult {
  readonly outcome: Outcome;
  readonly stream: Stream;
  /** the destination vCPU, when the guest runs there */
  readonly destination: Vcpu | null;
  /** what GET returned on the destination right after SET (before KVM_RUN) */
  readonly restoredBlob: Uint8Array | null;
}

/** The VMX MSR values the destination must accept: allowed-1 a subset, allowed-0 a superset (KVM_SET_MSRS). */
export function msrSubsetProblem(src: MsrSet, dst: MsrSet): string | null {
  for (const [i, v] of src) {
    const d = dst.get(i);
    if (d === undefined) continue;
    const isControl = CONTROL_MSRS.some((c) => c.index === i);
    if (isControl) {
      if ((v >> 32n) & ~(d >> 32n)) return `${MSR_NAMES[i]}: allowed-1 bits 0x${((v >> 32n) & ~(d >> 32n)).toString(16)} are not supported by the destination`;
      if (d & 0xffffffffn & ~(v & 0xffffffffn)) return `${MSR_NAMES[i]}: the destination requires allowed-0 bits 0x${(d & 0xffffffffn & ~v).toString(16)}`;
    } else if (i === MSR.VMFUNC && v & ~d) return `${MSR_NAMES[i]}: VM functions 0x${(v & ~d).toString(16)} are not supported by the destination`;
  }
  return null;
}

/** GET's answer on a destination after SET(b), by the documented normalisation (bytes 998..4095 of each page read back zero). */
function expectedAfterRestore(b: Uint8Array): Uint8Array {
  const out = b.slice();
  for (const page of [OFFSET.vmcs12, OFFSET.shadowVmcs12]) out.fill(0, Math.min(out.length, page + VMCS12_STRUCT_SIZE), Math.min(out.length, page + VMCS12_BLOB_SIZE));
  return out;
}

/** Names what the destination's GET lost relative to what the source's GET said. */
export function losses(sourceBlob: Uint8Array, restored: Uint8Array): string[] {
  const a = readHeader(sourceBlob);
  const b = readHeader(restored);
  const lost: string[] = [];
  for (const [name, bit] of Object.entries(FLAGS)) if (a.flags & bit && !(b.flags & bit)) lost.push(`flag ${name}`);
  if (a.smmFlags & SMM_FLAGS.VMXON && !(b.smmFlags & SMM_FLAGS.VMXON)) lost.push('SMM VMXON state (quirk Q1)');
  if (a.smmFlags & SMM_FLAGS.GUEST_MODE && !(b.smmFlags & SMM_FLAGS.GUEST_MODE)) lost.push('SMM guest mode');
  const deadline = (x: typeof a) => (x.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE ? x.preemptionTimerDeadline : null);
  if (deadline(a) !== null && deadline(b) !== deadline(a)) lost.push('preemption-timer deadline');
  if (a.vmxonPa !== b.vmxonPa || a.vmcs12Pa !== b.vmcs12Pa) lost.push(`VMX pointers (vmxon 0x${a.vmxonPa.toString(16)} -> 0x${b.vmxonPa.toString(16)}, vmcs12 0x${a.vmcs12Pa.toString(16)} -> 0x${b.vmcs12Pa.toString(16)})`);
  if (a.size !== b.size) lost.push(`state size ${a.size} -> ${b.size}`);
  const want = expectedAfterRestore(sourceBlob);
  // a timer value GET took from the clock (the destination's differs) is no state that was lost
  const page = (blob: Uint8Array) => blob.subarray(OFFSET.vmcs12);
  const timed = (h: typeof a, blob: Uint8Array) => h.flags & FLAGS.GUEST_MODE && blob.length >= OFFSET.vmcs12 + VMCS12_STRUCT_SIZE && syncWritesTimerValue(page(blob), (h.flags & FLAGS.RUN_PENDING) !== 0);
  if (timed(a, want) && timed(b, restored)) VMCS12.write(page(want), 'vmx_preemption_timer_value', VMCS12.read(page(restored), 'vmx_preemption_timer_value'));
  const n = Math.min(want.length, restored.length);
  const members = new Set<string>();
  for (let i = HEADER_SIZE; i < n; i++) if (want[i] !== restored[i]) members.add(memberAt(i));
  if (members.size) lost.push(`vmcs12 state: ${[...members].join(', ')}`);
  return lost;
}

/** The vmcs12 member (of the blob's vmcs12 or shadow vmcs12 page) a blob byte belongs to, by name. */
function memberAt(i: number): string {
  const [page, label] = i >= OFFSET.shadowVmcs12 ? [OFFSET.shadowVmcs12, 'shadow vmcs12'] : [OFFSET.vmcs12, 'vmcs12'];
  const o = i - page;
  const name = VMCS12.at(o);
  return name ? `${label}.${name}` : `${label} +${o}`;
}

/** Controls an eVMCS-using L1 could use on the source but not here; unknown without filter facts. */
function evmcsFilterLoss(f: RestoreFacts): string[] | { unknown: string } {
  const [src, dst, config] = [f.srcProfile, f.dstProfile, f.config];
  // the filter only matters where the L1 still has eVMCS after the move
  if (!config.evmcsEnabled || !f.evmcsOnDestination || config.hypervCpuid === false) return [];
  if (!src.evmcs || !dst.evmcs) return { unknown: `no eVMCS filter facts for ${!src.evmcs ? src.name : dst.name}` };
  const ebx = typeof config.hypervCpuid === 'object' ? config.hypervCpuid.nestedEbx : 0;
  const d = filterDiff(src, dst, f.vmxMsrs, ebx);
  const hit = d.differences.filter((m) => m.lost.bits.length);
  if (!hit.length) return [];
  const n = hit.reduce((a, m) => a + m.lost.bits.length, 0);
  return [`${n} controls the L1 could use under ${src.name} are hidden by the ${dst.name} eVMCS filter (${hit.map((m) => m.name.replace('IA32_VMX_', '')).join(', ')}; see filter diff)`];
}

/**
 * The checks a VMM makes before it touches the destination, from what it knows of that host (its
 * module parameter and KVM_GET_MSRS): the reason it refuses, or null. QEMU's post_load checks of the
 * nested state itself are the VMM's load (model/vmm/qemu.ts).
 */
export function destinationRefusal(config: VcpuConfig, vmxMsrs: MsrSet, dst: Host): string | null {
  if (config.vmxInCpuid && !dst.nested) return 'VMX is in the guest CPUID but the destination runs with nested=0: the VMX MSRs cannot be restored';
  return config.vmxInCpuid ? msrSubsetProblem(vmxMsrs, dst.vmxMsrs) : null;
}

/** The configuration the VMM gives the destination's vCPU: the source's, on this host (eVMCS only where it has the capability). */
export const destinationConfig = (config: VcpuConfig, dst: Host): VcpuConfig => ({ ...config, nested: dst.nested, evmcsEnabled: config.evmcsEnabled && dst.evmcsCap });

/** KVM_SET_NESTED_STATE's answer as a restore needs it (a target may not say why: then the reason is the errno). */
export interface SetSeen {
  readonly ret: number;
  readonly errno: Errno | null;
  readonly rule: string;
  readonly reason?: string;
}

/**
 * What a VMM sees of a restore on the destination, step by step in QEMU's order: SET (null: the stream
 * carried no nested state), KVM_SET_MP_STATE, GET right after SET, the first KVM_RUN, and GET after it
 * (made when the carried state has the EVMCS flag: whether the eVMCS survived the KVM_RUN). A step
 * after one that failed is not looked at.
 */
export interface RestoreSeen {
  readonly set: SetSeen | null;
  readonly mpState: OpResult;
  readonly restored: Uint8Array | null;
  readonly run: OpResult;
  readonly afterRun: Uint8Array | null;
}

/** What the judgement of a restore needs besides what was seen: the two profiles and what the VMM saved. */
export interface RestoreFacts {
  readonly srcProfile: Profile;
  readonly dstProfile: Profile;
  /** the source's GET */
  readonly sourceBlob: Uint8Array;
  /** the blob the VMM passed to the destination's SET (null: it carried no nested state) */
  readonly carried: Uint8Array | null;
  /** the VM's configuration as saved (its eVMCS capability, Hyper-V CPUID) and the VMX MSRs the stream carries */
  readonly config: VcpuConfig;
  readonly vmxMsrs: MsrSet;
  /** the destination's eVMCS capability (destinationConfig) */
  readonly evmcsOnDestination: boolean;
  /**
   * what GET after SET should give of the source's state, before the documented zeroing of the page
   * tails: the source's own (a VMM that restores the registers GET reads in guest mode), or the
   * normalisation for one that cannot (harness/nested-common.ts restoredL2Registers)
   */
  readonly expected?: (sourceBlob: Uint8Array) => Uint8Array;
}

/** Whether a blob has the EVMCS flag (the restore then looks at the eVMCS after the first KVM_RUN). */
export const namesEvmcs = (b: Uint8Array | null): boolean => !!b && b.length >= HEADER_SIZE && (readHeader(b).flags & FLAGS.EVMCS) !== 0;

/** A restore's outcome, from what the VMM saw: failed at the first step that failed, else what the guest lost. */
export function judgeRestore(f: RestoreFacts, seen: RestoreSeen): Outcome {
  const s = seen.set;
  if (s && s.ret !== 0) return { kind: 'failed', errno: s.errno ?? 'ret-2', rule: s.rule, reason: s.reason ?? `KVM_SET_NESTED_STATE returned ${s.ret}` };
  const mp = seen.mpState;
  if (mp.result !== 'ok') return { kind: 'failed', errno: 'EINVAL', rule: 'KVM_SET_MP_STATE', reason: mp.reason };
  if (seen.run.result === 'internal-error') return { kind: 'failed', errno: 'internal-error', rule: 'KVM_RUN', reason: seen.run.reason };
  const lost: string[] = [];
  if (f.config.evmcsEnabled && !f.evmcsOnDestination) lost.push('the eVMCS enlightenment (KVM_CAP_HYPERV_ENLIGHTENED_VMCS absent on the destination)');
  if (seen.restored) {
    // under 4.20-5.1 the EVMCS flag meant "enabled": a destination vCPU with eVMCS enabled keeps that
    const keepsEnabled = f.srcProfile.nested?.evmcsFlag === 'when-enabled' && f.evmcsOnDestination;
    const want = f.expected ? f.expected(f.sourceBlob) : f.sourceBlob;
    lost.push(...losses(want, seen.restored).filter((l) => !(keepsEnabled && l === 'flag EVMCS')));
    // a deadline the VMM did not carry, SET fixes again from vmcs12's timer value against the
    // destination's TSC (nested_vmx_enter_non_root_mode): the timer restarts, whatever GET then shows
    const deadlineBit = (b: Uint8Array) => readHeader(b).vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE;
    const dropped = !!f.carried && f.carried.length >= HEADER_SIZE && deadlineBit(f.sourceBlob) !== 0 && deadlineBit(f.carried) === 0;
    if (dropped && !lost.includes('preemption-timer deadline')) lost.push('preemption-timer deadline');
  }
  // a VMM sees an eVMCS map-pending after SET and one mapped alike; one the first KVM_RUN released is gone from GET
  if (namesEvmcs(seen.restored) && seen.afterRun && !namesEvmcs(seen.afterRun))
    lost.push('the restored eVMCS and its vmcs12: the first KVM_RUN released it (the VP-assist page names no eVMCS)');
  const filterLoss = evmcsFilterLoss(f);
  if (!Array.isArray(filterLoss)) return { kind: 'unknown', reason: filterLoss.unknown };
  lost.push(...filterLoss);
  return lost.length ? { kind: 'degraded', lost } : { kind: 'ok' };
}

/** The behaviour of a vCPU on a host without KVM_CAP_NESTED_STATE: 4.19's, with no flag SET could take (it has no SET). */
export const vcpuProfile = (p: Profile): Profile & { nested: NestedBehaviour } => ({ ...p, nested: p.nested ?? { ...NESTED_4_19, setFlagsMask: 0 } });

const OK: OpResult = { result: 'ok' };

export function restoreFromStream(stream: Stream, srcProfile: Profile, dst: Host): StepResult {
  const refused = (reason: string): StepResult => ({ outcome: { kind: 'refused', reason }, stream, destination: null, restoredBlob: null });
  const dstProfile = findProfile(dst.profile);
  if (!dstProfile) return refused(`unknown destination profile ${dst.profile}`);
  const h = stream.nestedState && readHeader(stream.nestedState);
  const postLoad = h && postLoadProblem(h, dst.nestedStateMax);
  if (postLoad) return refused(postLoad);
  const refusal = destinationRefusal(stream.config, stream.vmxMsrs, dst);
  if (refusal) return refused(refusal);
  const saved = { ...stream.config, evmcsEnabled: stream.evmcsEnabled, inSmm: stream.inSmm };
  const config = destinationConfig(saved, dst);
  const v = new Vcpu(vcpuProfile(dstProfile), config);
  v.memory = new Map([...stream.memory].map(([k, p]) => [k, p.slice()]));
  v.vpAssist = stream.vpAssist && { ...stream.vpAssist };
  v.efer = stream.efer; // KVM_SET_SREGS comes before the nested state in QEMU
  const nested = stream.nestedState && dstProfile.nested ? stream.nestedState : null;
  const facts: RestoreFacts = { srcProfile, dstProfile, sourceBlob: stream.sourceBlob, carried: nested, config: saved, vmxMsrs: stream.vmxMsrs, evmcsOnDestination: config.evmcsEnabled };
  const seen = { set: null as SetSeen | null, mpState: OK, restored: null as Uint8Array | null, run: OK, afterRun: null as Uint8Array | null };
  const step = (): StepResult => {
    const outcome = judgeRestore(facts, seen);
    return { outcome, stream, destination: outcome.kind === 'failed' ? null : v, restoredBlob: seen.restored };
  };
  if (nested) {
    const s = setNestedState(v, nested);
    seen.set = { ret: s.ret, errno: s.errno, rule: s.rule, reason: s.why };
    if (s.ret !== 0) return step();
  }
  // the debug registers and the run state after the nested state, as QEMU orders them: GET in guest
  // mode reads DR7 and the activity state back from them (F8). Only a wait-for-SIPI L2 has a run
  // state KVM can refuse, and only outside L2
  v.dr7 = stream.dr7; // KVM_SET_DEBUGREGS
  v.interruptibility = stream.interruptibility; // KVM_SET_VCPU_EVENTS (interrupt shadow, NMI masked)
  seen.mpState = applyOp(v, { op: 'set-mp-state', state: stream.mpState });
  if (seen.mpState.result !== 'ok') return step();
  const get = () => {
    const g = getNestedState(v, SIZE_WITH_SHADOW);
    return g.buffer.subarray(0, g.size).slice();
  };
  if (nested) seen.restored = get();
  seen.run = applyOp(v, { op: 'run' });
  if (seen.run.result !== 'internal-error' && namesEvmcs(nested)) seen.afterRun = get();
  return step();
}
