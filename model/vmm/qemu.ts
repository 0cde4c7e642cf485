// QEMU's rules for nested state in the migration stream (history.md "Notes for modelling",
// anchors §1.2): which parts of a KVM_GET_NESTED_STATE answer its subsections carry, and the checks
// its post_load makes before KVM_SET_NESTED_STATE. The model's migration step (model/migration) and
// the reference VMM behind the `vmm` target group (reference.ts) both go by these.
import { readHeader, writeHeader, type NestedHeader } from '../nested/blob.js';
import { FORMAT, HEADER_SIZE, INVALID_GPA, SIZE_WITH_SHADOW, SIZE_WITH_VMCS12 } from '../nested/constants.js';

export interface CarryOptions {
  /** some QEMU versions do not carry hdr.vmx.flags and the deadline: they arrive zeroed */
  readonly dropsVmxFlags: boolean;
}

/**
 * What the stream carries of a GET answer (the first `size` bytes of the buffer): the nested state
 * is sent when it says anything (VMXON, or any flag: under 4.20-5.1 the EVMCS flag alone forced it,
 * seed 003); the vmcs12 when `size` reaches past the header; the shadow vmcs12 when it reaches past
 * the first 4 KiB. Null: nothing nested is sent.
 */
export function qemuCarried(blob: Uint8Array, opts: CarryOptions): Uint8Array | null {
  const h = readHeader(blob);
  const needed = h.format === FORMAT.VMX && (h.vmxonPa !== INVALID_GPA || h.flags !== 0);
  if (!needed) return null;
  const len = h.size > SIZE_WITH_VMCS12 ? SIZE_WITH_SHADOW : h.size > HEADER_SIZE ? SIZE_WITH_VMCS12 : HEADER_SIZE;
  const carried = blob.slice(0, Math.min(len, blob.length));
  if (opts.dropsVmxFlags) writeHeader(carried, { ...readHeader(carried), vmxFlags: 0, preemptionTimerDeadline: 0n });
  return carried;
}

/**
 * QEMU's post_load checks of the nested state it received, on a destination whose
 * KVM_CAP_NESTED_STATE is `nestedStateCap` (0: the kernel has no nested-state ioctls): the reason the
 * VMM refuses the stream, or null.
 */
export function postLoadProblem(h: NestedHeader, nestedStateCap: number): string | null {
  if (!nestedStateCap) return `the stream carries nested state (flags 0x${h.flags.toString(16)}) but the destination kernel has no KVM_CAP_NESTED_STATE`;
  if (h.size < HEADER_SIZE || h.size > nestedStateCap) return `nested state size ${h.size} is outside 128..${nestedStateCap}`;
  if (h.format !== FORMAT.VMX) return `nested state format ${h.format} is not VMX`;
  return null;
}
