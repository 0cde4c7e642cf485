// Nested-state round trip: for every reachable state, SET(GET(s)) on a vCPU configured as the VMM
// restores it succeeds, and GET again returns the same blob, modulo the documented normalisation
// (vmcs12 bytes 998..4095 come back zero). Two kernel behaviours are checked as the kernel has them:
// quirk Q1 (SMM VMXON without a vmcs12 is restored as plain VMXON) and 5.6's MTF asymmetry (GET emits
// a flag its own SET rejects at W3).
import fc from 'fast-check';
import { readHeader, writeHeader } from '../model/nested/blob.js';
import { hdrRevision, VMCS12 } from '../model/catalog/by-name.js';
import { VMCS12_REVISION } from '../model/catalog/vmcs12.js';
import { FLAGS, HEADER_SIZE, INVALID_GPA, OFFSET, SMM_FLAGS } from '../model/nested/constants.js';
import { guestOpsFor, vcpuConfigFor } from '../generators/nested.js';
import { profileOf } from '../harness/common.js';
import { expectNoDiff, must, Violation, type PropertyDef } from '../harness/property.js';
import { afterRestore, refusedAt, destinationOf, diffBlobs, getFull, linkPageStillValid, reach, restoredL2Registers, restoreMpState, saveMpState, withoutTimerValueAtGet } from '../harness/nested-common.js';

export const nestedRoundTrip: PropertyDef = {
  id: 'nested.round-trip',
  description: 'Reaches a state through generated guest operations, GETs it, SETs it on a vCPU configured as the VMM would, GETs again and diffs the blobs after the documented normalisation.',
  invariant:
    'SET(GET(s)) succeeds for every reachable state and GET again is byte-identical after the documented normalisation (vmcs12 bytes past 998 come back zero; an L2 whose restore does not load DR7 or EFER from vmcs12 shows those of the destination vCPU, L2_REGISTERS_FROM_DESTINATION; a preemption-timer value GET took from the clock is not compared, PREEMPTION_TIMER_VALUE_AT_GET); where the kernel cannot (quirk Q1, 5.6 MTF asymmetry, EVMCS_RESUME_BEFORE_LAUNCH, LINK_PAGE_REREAD_ON_RESTORE, EVMCS_CHECK_AFTER_THE_FACT, 4.20-5.1 eVMCS L2) it fails exactly as the kernel does',
  groups: ['nested-state'],
  runs: 200,
  async build(ctx) {
    const behaviour = profileOf(ctx.target).nested!;
    return fc.asyncProperty(vcpuConfigFor(ctx.target), guestOpsFor(ctx.target), async (config, ops) => {
      const src = await reach(ctx, config, ops);
      const b1 = await getFull(ctx, src.vcpu);
      const h1 = readHeader(b1);
      const mp = await saveMpState(ctx, src.vcpu);
      const dst = await destinationOf(ctx, src);
      const s = must(await ctx.target.setNestedState(dst, b1));
      const rejected = h1.flags & ~behaviour.setFlagsMask;
      if (rejected) {
        // linux-5.6: MTF_PENDING is emitted but not in SET's allow-list
        if (s.errno !== 'EINVAL') throw new Violation(`flags 0x${rejected.toString(16)} are outside this profile's SET allow-list, yet SET answered ${s.ret}`);
        return;
      }
      const vmcs12 = b1.subarray(OFFSET.vmcs12);
      const revised = VMCS12.fits(vmcs12, 'hdr') && hdrRevision(VMCS12.read(vmcs12, 'hdr')) === VMCS12_REVISION;
      if (h1.flags & FLAGS.EVMCS && behaviour.evmcsFlag === 'when-active' && h1.size > HEADER_SIZE && !revised) {
        // quirk EVMCS_RESUME_BEFORE_LAUNCH: the vmcs12 cache gets its revision id only on an
        // enlightened VMLAUNCH; an L1 whose first enlightened entry is a VMRESUME leaves it unset,
        // and the blob GET produces is refused by SET at V12
        if (!refusedAt(s, 'V12')) throw new Violation(`a vmcs12 without its revision id (quirk EVMCS_RESUME_BEFORE_LAUNCH) was answered ${s.ret} at ${s.rule}, expected -EINVAL at V12`);
        return;
      }
      if (behaviour.evmcsFlag === 'when-enabled' && h1.flags & FLAGS.GUEST_MODE && h1.size === 128) {
        // 4.20-5.1 carry no vmcs12 for an L2 run from an eVMCS: SET refuses the header alone
        if (!refusedAt(s, 'V9')) throw new Violation(`an L2 without a vmcs12 on a "flag when enabled" kernel was answered ${s.ret} at ${s.rule}, expected -EINVAL at V9`);
        return;
      }
      // Two ways an L2 can be unrestorable, as in the kernel, both because SET repeats checks against
      // the vCPU as it is now: quirk LINK_PAGE_REREAD_ON_RESTORE (the guest rewrote the VMCS
      // link-pointer page after VMLAUNCH; SET reads it again) and EVMCS_CHECK_AFTER_THE_FACT (the
      // eVMCS capability was enabled after the entry; SET applies the eVMCS control check the entry
      // never met, and refuses controls outside it)
      const linkStale = h1.flags & FLAGS.GUEST_MODE && h1.size > 128 && !linkPageStillValid(b1, src.memory);
      const evmcsLate = h1.flags & FLAGS.GUEST_MODE && src.evmcsEnabledAfterEntry;
      if (linkStale || evmcsLate) {
        const allowed = (c = '') => (linkStale && c.startsWith('guest.link-pointer.')) || (evmcsLate && c.startsWith('evmcs.'));
        if (s.ret === 0 && !linkStale) return;
        if (!refusedAt(s, 'V14') || (s.rule && !allowed(s.vmentryCheck)))
          throw new Violation(`an L2 ${linkStale ? 'whose link-pointer page changed after entry (LINK_PAGE_REREAD_ON_RESTORE)' : 'entered before eVMCS was enabled (EVMCS_CHECK_AFTER_THE_FACT)'} was answered ${s.ret} at ${s.rule} ${s.vmentryCheck ?? ''}, expected -EINVAL at V14 (${linkStale ? 'guest.link-pointer.*' : 'evmcs.*'})`);
        return;
      }
      if (s.ret !== 0) throw new Violation(`SET of the state GET produced failed: ret ${s.ret} (${s.errno}) at rule ${s.rule || '?'}${s.vmentryCheck ? ` (${s.vmentryCheck})` : ''}`, [{ field: 'SET', offset: -1, expected: '0', actual: `${s.ret} ${s.rule}` }]);
      await restoreMpState(ctx, dst, mp);
      const b2 = await getFull(ctx, dst);
      let want = withoutTimerValueAtGet(restoredL2Registers(afterRestore(b1)));
      const evmcsCarriesVmcs12 = h1.flags & FLAGS.EVMCS && behaviour.evmcsFlag === 'when-active';
      const q1 = h1.smmFlags & SMM_FLAGS.VMXON && h1.vmcs12Pa === INVALID_GPA && !evmcsCarriesVmcs12 && h1.size < 1126;
      if (q1) {
        // Q1: the early return at V9 comes before S4, so smm.vmxon is not restored: plain VMXON
        want = want.slice();
        writeHeader(want, { ...h1, smmFlags: 0 });
      }
      expectNoDiff(q1 ? 'GET after SET (expecting quirk Q1)' : 'GET after SET(GET(s))', diffBlobs(want, withoutTimerValueAtGet(b2)));
    });
  },
};
