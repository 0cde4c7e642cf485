// One migration step as a VMM performs it: refuse early where the destination lacks a capability,
// restore CPUID and MSRs, enable eVMCS if configured, SET nested state, GET again, KVM_RUN; and say
// what the guest lost on the way.
import { readHeader } from '../nested/blob.js';
import { FLAGS, HEADER_SIZE, OFFSET, SMM_FLAGS, VMCS12_BLOB_SIZE, VMCS12_STRUCT_SIZE, VMX_HDR_FLAGS } from '../nested/constants.js';
import { syncWritesTimerValue, Vcpu } from '../nested/vcpu.js';
import { VMCS12 } from '../catalog/by-name.js';
import { findProfile, type Profile } from '../profiles.js';
import { filterDiff } from '../filter-diff.js';
import { CONTROL_MSRS, MSR, MSR_NAMES, type MsrSet } from '../vmx-msrs.js';
import { NESTED_4_19, type NestedBehaviour } from '../nested/behaviour.js';
import type { Host } from './hosts.js';
import type { Outcome } from './outcome.js';
import { saveToStream, type Stream, type StreamOptions } from './stream.js';
import { MODEL_OPS, type VcpuOps } from './vcpu-ops.js';
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
  let bytes = 0;
  for (let i = HEADER_SIZE; i < n; i++) if (want[i] !== restored[i]) bytes++;
  if (bytes) lost.push(`${bytes} bytes of vmcs12 state`);
  return lost;
}

/** Controls an eVMCS-using L1 could use on the source but not here; unknown without filter facts. */
function evmcsFilterLoss(src: Profile, dst: Profile, stream: Stream, evmcsOnDestination: boolean): string[] | { unknown: string } {
  // the filter only matters where the L1 still has eVMCS after the move
  if (!stream.evmcsEnabled || !evmcsOnDestination || stream.config.hypervCpuid === false) return [];
  if (!src.evmcs || !dst.evmcs) return { unknown: `no eVMCS filter facts for ${!src.evmcs ? src.name : dst.name}` };
  const ebx = typeof stream.config.hypervCpuid === 'object' ? stream.config.hypervCpuid.nestedEbx : 0;
  const d = filterDiff(src, dst, stream.vmxMsrs, ebx);
  const hit = d.differences.filter((m) => m.lost.bits.length);
  if (!hit.length) return [];
  const n = hit.reduce((a, m) => a + m.lost.bits.length, 0);
  return [`${n} controls the L1 could use under ${src.name} are hidden by the ${dst.name} eVMCS filter (${hit.map((m) => m.name.replace('IA32_VMX_', '')).join(', ')}; see filter diff)`];
}

export function restoreFromStream(stream: Stream, srcProfile: Profile, dst: Host, ops: VcpuOps = MODEL_OPS): StepResult {
  const refused = (reason: string): StepResult => ({ outcome: { kind: 'refused', reason }, stream, destination: null, restoredBlob: null });
  const dstProfile = findProfile(dst.profile);
  if (!dstProfile) return refused(`unknown destination profile ${dst.profile}`);
  const h = stream.nestedState && readHeader(stream.nestedState);
  const postLoad = h && postLoadProblem(h, dst.nestedStateMax);
  if (postLoad) return refused(postLoad);
  if (stream.config.vmxInCpuid && !dst.nested) return refused('VMX is in the guest CPUID but the destination runs with nested=0: the VMX MSRs cannot be restored');
  const msr = stream.config.vmxInCpuid ? msrSubsetProblem(stream.vmxMsrs, dst.vmxMsrs) : null;
  if (msr) return refused(msr);
  const lost: string[] = [];
  const evmcs = stream.evmcsEnabled && dst.evmcsCap;
  if (stream.evmcsEnabled && !dst.evmcsCap) lost.push('the eVMCS enlightenment (KVM_CAP_HYPERV_ENLIGHTENED_VMCS absent on the destination)');
  const v = new Vcpu({ ...dstProfile, nested: dstProfile.nested ?? ({ ...NESTED_4_19, setFlagsMask: 0 } as NestedBehaviour) }, { ...stream.config, nested: dst.nested, evmcsEnabled: evmcs, inSmm: stream.inSmm }, ops.hooks);
  v.memory = new Map([...stream.memory].map(([k, p]) => [k, p.slice()]));
  v.vpAssist = stream.vpAssist && { ...stream.vpAssist };
  v.efer = stream.efer; // KVM_SET_SREGS comes before the nested state in QEMU
  let restored: Uint8Array | null = null;
  if (stream.nestedState && dstProfile.nested) {
    const s = ops.setNestedState(v, stream.nestedState);
    if (s.ret !== 0)
      return { outcome: { kind: 'failed', errno: s.errno ?? 'ret-2', rule: s.rule, reason: s.why }, stream, destination: null, restoredBlob: null };
  }
  // the debug registers and the run state after the nested state, as QEMU orders them: GET in guest
  // mode reads DR7 and the activity state back from them (F8). Only a wait-for-SIPI L2 has a run
  // state KVM can refuse, and only outside L2
  v.dr7 = stream.dr7; // KVM_SET_DEBUGREGS
  const mp = ops.applyOp(v, { op: 'set-mp-state', state: stream.mpState });
  if (mp.result !== 'ok') return { outcome: { kind: 'failed', errno: 'EINVAL', rule: 'KVM_SET_MP_STATE', reason: mp.reason }, stream, destination: null, restoredBlob: null };
  if (stream.nestedState && dstProfile.nested) {
    const g = ops.getNestedState(v, 8320);
    restored = g.buffer.subarray(0, g.size).slice();
    // under 4.20-5.1 the EVMCS flag meant "enabled": a destination vCPU with eVMCS enabled keeps that
    const keepsEnabled = srcProfile.nested?.evmcsFlag === 'when-enabled' && v.evmcsEnabled;
    lost.push(...losses(stream.sourceBlob, restored).filter((l) => !(keepsEnabled && l === 'flag EVMCS')));
    // a deadline the stream does not carry, SET fixes again from vmcs12's timer value against the
    // destination's TSC (nested_vmx_enter_non_root_mode): the timer restarts, whatever GET then shows
    const dropped = (readHeader(stream.sourceBlob).vmxFlags & ~h!.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE) !== 0;
    if (dropped && !lost.includes('preemption-timer deadline')) lost.push('preemption-timer deadline');
  }
  const evmcsPending = v.evmptr === 'map-pending';
  const run = ops.applyOp(v, { op: 'run' });
  if (run.result === 'internal-error') return { outcome: { kind: 'failed', errno: 'internal-error', rule: 'KVM_RUN', reason: run.reason }, stream, destination: null, restoredBlob: restored };
  if (evmcsPending && !v.evmcsMapped())
    lost.push(v.evmptr === 'invalid' ? 'the restored eVMCS and its vmcs12: the first KVM_RUN released it (the VP-assist page names no eVMCS)' : 'the restored eVMCS: still map-pending after the first KVM_RUN');
  const filterLoss = evmcsFilterLoss(srcProfile, dstProfile, stream, evmcs);
  if (!Array.isArray(filterLoss)) return { outcome: { kind: 'unknown', reason: filterLoss.unknown }, stream, destination: v, restoredBlob: restored };
  lost.push(...filterLoss);
  return { outcome: lost.length ? { kind: 'degraded', lost } : { kind: 'ok' }, stream, destination: v, restoredBlob: restored };
}

export function migrate(src: Vcpu, srcHost: Host, dst: Host, opts: StreamOptions, ops: VcpuOps = MODEL_OPS): StepResult {
  return restoreFromStream(saveToStream(src, srcHost, opts, ops), src.profile, dst, ops);
}
