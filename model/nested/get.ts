// KVM_GET_NESTED_STATE (kernel-facts §8): the size computation, every flag condition, the syncs
// before copying, the E2BIG protocol, and the quirk that the shadow vmcs12 can be written past `size`.
import { copyEnlightenedToVmcs12 } from '../evmcs.js';
import { VMCS12 } from '../catalog/by-name.js';
import { BIT } from '../vmentry/bits.js';
import { writeHeader, type NestedHeader } from './blob.js';
import { FLAGS, HEADER_SIZE, INVALID_GPA, OFFSET, SMM_FLAGS, VMCS12_BLOB_SIZE, VMX_HDR_FLAGS, type Errno } from './constants.js';
import { syncVmcs02ToVmcs12, type Vcpu } from './vcpu.js';

export interface GetResult {
  /** the ioctl's answer: 0, or -E2BIG with `size` written back */
  readonly errno: Errno | null;
  /** the size KVM reports (the needed size on E2BIG) */
  readonly size: number;
  /** the user's buffer after the call (bytes KVM did not write stay zero) */
  readonly buffer: Uint8Array;
  /** bytes written: can exceed `size` (quirk GET_SHADOW_PAST_SIZE) */
  readonly written: number;
  readonly header: NestedHeader;
}

/** vmx_get_nested_state's header and size, without copying. */
export function nestedStateHeader(v: Vcpu): NestedHeader {
  const b = v.profile.nested!;
  const h: NestedHeader = { flags: 0, format: 0, size: HEADER_SIZE, vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA, smmFlags: 0, pad: 0, vmxFlags: 0, preemptionTimerDeadline: 0n };
  // 4.20-5.1: the flag meant "eVMCS enabled", whatever the VMX state (the historical bug)
  if (b.evmcsFlag === 'when-enabled' && v.nestedAllowed() && v.evmcsEnabled) h.flags |= FLAGS.EVMCS;
  if (!(v.nestedAllowed() && (v.vmxon || v.smm.vmxon))) return h;
  h.vmxonPa = v.vmxonPtr;
  h.vmcs12Pa = v.currentVmptr;
  if (v.hasValidVmcs12()) {
    h.size += VMCS12_BLOB_SIZE;
    if (b.evmcsFlag === 'when-active' && v.evmptr !== 'invalid') h.flags |= FLAGS.EVMCS;
    if (v.guestMode && v.usesShadowVmcs() && v.linkPointer() !== INVALID_GPA) h.size += VMCS12_BLOB_SIZE;
  }
  if (v.smm.vmxon) h.smmFlags |= SMM_FLAGS.VMXON;
  if (v.smm.guestMode) h.smmFlags |= SMM_FLAGS.GUEST_MODE;
  if (v.guestMode) {
    h.flags |= FLAGS.GUEST_MODE;
    if (v.nestedRunPending) h.flags |= FLAGS.RUN_PENDING;
    if (v.mtfPending && b.getsMtf) h.flags |= FLAGS.MTF_PENDING;
    if (b.headerFlags && Number(VMCS12.read(v.vmcs12, 'pin_based_vm_exec_control')) & BIT.pin.preemption && v.hasPreemptionTimerDeadline) {
      h.vmxFlags |= VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE;
      h.preemptionTimerDeadline = v.preemptionTimerDeadline;
    }
  }
  return h;
}

/** KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE): vmx_get_nested_state(NULL) = 128 + 8192. */
export const NESTED_STATE_MAX_SIZE = HEADER_SIZE + 2 * VMCS12_BLOB_SIZE;

/** KVM_GET_NESTED_STATE into a user buffer of `userSize` bytes (the `size` the caller passes). */
export function getNestedState(v: Vcpu, userSize: number): GetResult {
  const h = nestedStateHeader(v);
  const buffer = new Uint8Array(Math.max(0, userSize));
  if (userSize < h.size) {
    // the wrapper writes the needed size into the user's header (a VMM's struct always holds it) and
    // fails; nothing else is written, so what KVM stored ends at byte 8 (`written` is an end, as below)
    // The buffer shown is the first `userSize` bytes of that struct: with fewer than 8 its visible part
    // of the size field still changes (real KVM 6.12, README K14: a 5-byte GET shows byte 4 = 0x80)
    const struct = new Uint8Array(Math.max(buffer.length, OFFSET.size + 4));
    new DataView(struct.buffer).setUint32(OFFSET.size, h.size, true);
    buffer.set(struct.subarray(0, buffer.length));
    return { errno: 'E2BIG', size: h.size, buffer, written: OFFSET.size + 4, header: h };
  }
  writeHeader(buffer, h);
  let written = HEADER_SIZE;
  if (!v.hasValidVmcs12()) return { errno: null, size: h.size, buffer, written, header: h };
  if (v.guestMode) syncVmcs02ToVmcs12(v); // F8
  // sync first: outside guest mode an active eVMCS is copied in full, ignoring hv_clean_fields
  if (!v.guestMode && !v.needVmcs12ToShadowSync && v.evmcsMapped()) {
    const page = v.page(v.evmptr as bigint).subarray(0, 1024);
    v.vmcs12 = copyEnlightenedToVmcs12(page, v.vmcs12, 0, { enlightenmentsGroup: v.profile.evmcs?.enlightenmentsGroup ?? false }).vmcs12;
  }
  buffer.set(v.vmcs12, OFFSET.vmcs12);
  written = OFFSET.vmcs12 + VMCS12_BLOB_SIZE;
  // quirk GET_SHADOW_PAST_SIZE: this copy is not gated on guest mode, the size above is. The user's
  // buffer ends at `userSize` (the protocol's contract: unmapped memory after it), so a buffer that
  // holds `size` but not the shadow copy is filled to its end and copy_to_user fails: EFAULT (found
  // on real KVM 6.12 in Bochs, README K10)
  if (v.usesShadowVmcs() && v.linkPointer() !== INVALID_GPA) {
    const room = buffer.length - OFFSET.shadowVmcs12;
    buffer.set(v.shadowVmcs12.subarray(0, Math.min(room, VMCS12_BLOB_SIZE)), OFFSET.shadowVmcs12);
    written = OFFSET.shadowVmcs12 + Math.min(room, VMCS12_BLOB_SIZE);
    if (room < VMCS12_BLOB_SIZE) return { errno: 'EFAULT', size: h.size, buffer, written, header: h };
  }
  return { errno: null, size: h.size, buffer, written, header: h };
}
