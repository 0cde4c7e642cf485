// The static compatibility check: from what a VMM knows before moving a guest (the two hosts, the
// VM's configuration, the header of the state it would send), predict the outcome without running
// anything. A table of rules written independently of the simulation, so the two can be compared.
import { readHeader } from '../nested/blob.js';
import { FLAGS, HEADER_SIZE, INVALID_GPA, MIN_SIZE_FOR_VMCS12, SMM_FLAGS, VMX_HDR_FLAGS } from '../nested/constants.js';
import type { RestoreRule } from '../nested/rules.js';
import { findProfile } from '../profiles.js';
import { EVMCS, hdrRevision, VMCS12 } from '../catalog/by-name.js';
import { EVMCS_ACCEPTED_REVISIONS } from '../catalog/evmcs.js';
import { VMCS12_REVISION } from '../catalog/vmcs12.js';
import { filterDiff } from '../filter-diff.js';
import type { Host } from './hosts.js';
import type { Outcome } from './outcome.js';
import { msrSubsetProblem } from './step.js';
import type { Stream } from './stream.js';
import { firstFailure } from '../vmentry/check.js';
import { vmentryRules } from '../vmentry/rules.js';
import { entryInput, RESTORE_STAGES } from '../nested/vmentry-hook.js';

export function predict(srcHost: Host, dst: Host, stream: Stream): Outcome {
  const src = findProfile(srcHost.profile)!;
  const dstP = findProfile(dst.profile);
  if (!dstP) return { kind: 'unknown', reason: `no profile ${dst.profile}` };
  const blob = stream.nestedState;
  const h = blob && readHeader(blob);
  // refusals, in the order a VMM meets them
  if (h && !dst.nestedStateMax) return { kind: 'refused', reason: 'no KVM_CAP_NESTED_STATE on the destination' };
  if (h && (h.size < HEADER_SIZE || h.size > dst.nestedStateMax || h.format !== 0)) return { kind: 'refused', reason: 'nested state the destination VMM cannot load' };
  if (stream.config.vmxInCpuid && !dst.nested) return { kind: 'refused', reason: 'nested=0 on the destination' };
  if (stream.config.vmxInCpuid && msrSubsetProblem(stream.vmxMsrs, dst.vmxMsrs)) return { kind: 'refused', reason: 'VMX MSRs beyond the destination' };
  const lost: string[] = [];
  const evmcsOn = stream.evmcsEnabled && dst.evmcsCap;
  if (stream.evmcsEnabled && !dst.evmcsCap) lost.push('eVMCS enlightenment');
  if (h && dstP.nested) {
    const b = dstP.nested;
    const failed = (rule: RestoreRule, reason: string): Outcome => ({ kind: 'failed', errno: 'EINVAL', rule, reason });
    if (h.flags & ~b.setFlagsMask) return failed('W3', 'a flag the destination does not accept');
    const evmcsFlag = (h.flags & FLAGS.EVMCS) !== 0 && b.evmcsFlag !== 'none';
    if (evmcsFlag && b.evmcsFlag === 'when-active' && (!evmcsOn || !dst.nested)) return failed('V8', 'EVMCS without eVMCS enabled on the destination');
    if (evmcsFlag && b.evmcsFlag === 'when-enabled' && !dst.nested) return failed('V8', 'EVMCS without nested');
    const hasVmcs12 = h.size >= MIN_SIZE_FOR_VMCS12;
    if (h.vmxonPa !== INVALID_GPA && !hasVmcs12 && (h.flags & FLAGS.GUEST_MODE || (evmcsFlag && b.evmcsFlag === 'when-active') || h.vmcs12Pa !== INVALID_GPA))
      return failed('V9', 'the destination expects a vmcs12 the stream does not carry');
    if (h.vmxonPa !== INVALID_GPA && hasVmcs12 && h.vmcs12Pa === INVALID_GPA && !(evmcsFlag && b.evmcsFlag === 'when-active')) return failed('V10c', 'a vmcs12 with neither a pointer nor an eVMCS');
    const vmcs12 = blob.subarray(HEADER_SIZE, MIN_SIZE_FOR_VMCS12);
    if (hasVmcs12 && vmcs12.length >= 4 /* its hdr */ && hdrRevision(VMCS12.read(vmcs12, 'hdr')) !== VMCS12_REVISION) return failed('V12', 'vmcs12 without its revision id');
    // V14 and S8: a guest-mode state must pass the destination's VM-entry checks (restore mode)
    if (hasVmcs12 && h.flags & FLAGS.GUEST_MODE) {
      const input = entryInput(dstP.vmcs12, vmcs12, {
        vmxMsrs: stream.vmxMsrs,
        maxPhyAddr: stream.config.maxPhyAddr,
        runPending: (h.flags & FLAGS.RUN_PENDING) !== 0,
        evmcsCheck: evmcsOn && stream.config.hypervCpuid !== false && dstP.evmcs ? dstP.evmcs.check : null,
        memory: stream.memory,
      });
      const bad = firstFailure(vmentryRules(dstP), input, 'restore', RESTORE_STAGES);
      if (bad) return failed('V14', `VM-entry check ${bad.id} fails`);
      if (firstFailure(vmentryRules(dstP), input, 'restore', ['prepare'])) return { kind: 'failed', errno: 'ret-2', rule: 'S8', reason: 'prepare_vmcs02 fails' };
    }
    if (h.smmFlags & SMM_FLAGS.VMXON && !hasVmcs12 && h.vmxonPa !== INVALID_GPA) lost.push('SMM VMXON (quirk Q1)');
    const src0 = readHeader(stream.sourceBlob);
    if (src0.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE && (!(h.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE) || !b.headerFlags)) lost.push('preemption-timer deadline');
    if (h.flags & FLAGS.MTF_PENDING && !b.getsMtf) lost.push('MTF pending');
    if (h.flags & FLAGS.EVMCS && src.nested?.evmcsFlag === 'when-active' && b.evmcsFlag === 'when-enabled') lost.push('the vmcs12 copied from the eVMCS');
    // map-pending resolves on the first KVM_RUN from the VP-assist page in guest memory
    if (evmcsFlag && b.evmcsFlag === 'when-active' && h.vmcs12Pa === INVALID_GPA && h.vmxonPa !== INVALID_GPA) {
      const gpa = stream.vpAssist?.currentNestedVmcs;
      const page = gpa !== undefined ? stream.memory.get(gpa) : undefined;
      const rev = page ? Number(EVMCS.read(page, 'revision_id')) : -1;
      if (!page || !EVMCS_ACCEPTED_REVISIONS.includes(rev)) return { kind: 'failed', errno: 'internal-error', rule: 'KVM_RUN', reason: 'the eVMCS cannot be mapped from the VP-assist page' };
    }
  }
  if (evmcsOn && stream.config.hypervCpuid !== false) {
    if (!src.evmcs || !dstP.evmcs) return { kind: 'unknown', reason: 'no eVMCS filter facts' };
    const ebx = typeof stream.config.hypervCpuid === 'object' ? stream.config.hypervCpuid.nestedEbx : 0;
    if (filterDiff(src, dstP, stream.vmxMsrs, ebx).differences.some((d) => d.lost.bits.length)) lost.push('eVMCS-visible controls');
  }
  return lost.length ? { kind: 'degraded', lost } : { kind: 'ok' };
}
