// nested_vmx_handle_enlightened_vmptrld (6.1 and 6.12): which eVMCS the VP-assist page names, and
// what KVM does when it names none or one of a wrong revision. An enlightened VMLAUNCH/VMRESUME and
// the first KVM_RUN after restoring a map-pending eVMCS both go through it (fidelity-audit F4, F10).
import { EVMCS, makeHdr, VMCS12 } from '../catalog/by-name.js';
import { CLEAN_FIELDS, EVMCS_ACCEPTED_REVISIONS } from '../catalog/evmcs.js';
import { INVALID_GPA, VMCS12_STRUCT_SIZE } from './constants.js';

/** EVMPTR_MAP_PENDING (-2): a VP-assist page naming it names no eVMCS (evmptr_is_valid). */
const EVMPTR_MAP_PENDING = 0xffff_ffff_ffff_fffen;

export type EvmcsPointer = 'invalid' | 'map-pending' | bigint;

/**
 * The lookup's answer. EVMPTRLD_ERROR (kvm_vcpu_map failing) has no case: the model's guest memory
 * has no end, so every GPA maps (README, named assumption GUEST_MEMORY_UNBOUNDED).
 */
export type EvmptrldStatus = { readonly status: 'disabled' | 'succeeded' } | { readonly status: 'vmfail'; readonly why: string };

/** What the lookup reads and changes on a vCPU (vcpu.ts's Vcpu has it; spelled out so that vcpu.ts can import this module). */
export interface EvmcsVcpu {
  evmptr: EvmcsPointer;
  currentVmptr: bigint;
  readonly vmcs12: Uint8Array;
  readonly vpAssist: { readonly currentNestedVmcs: bigint; readonly enlightenVmentry: boolean } | null;
  guestCpuidHasEvmcs(): boolean;
  page(gpa: bigint): Uint8Array;
}

/**
 * nested_get_evmptr (6.12) / nested_enlightened_vmentry (6.1): the eVMCS the VP-assist page names, or
 * null without a VP-assist page, with enlighten_vmentry clear, or with current_nested_vmcs -1 or -2.
 */
export function namedEvmcs(v: Pick<EvmcsVcpu, 'vpAssist'>): bigint | null {
  if (!v.vpAssist?.enlightenVmentry) return null;
  const gpa = v.vpAssist.currentNestedVmcs;
  return gpa === INVALID_GPA || gpa === EVMPTR_MAP_PENDING ? null : gpa;
}

/**
 * The lookup, `fromLaunch` for a VMLAUNCH. Without eVMCS for the guest it does nothing; when the
 * VP-assist page names no eVMCS it releases the one in use (or pending); a new GPA drops the current
 * VMCS without writing its cache back, and its revision is checked then only (a wrong one releases
 * it: VMfail); a VMLAUNCH of a new one clears the vmcs12 struct (not the cache's tail) and writes its header. Clean fields are cleared (bits 15:0, in guest memory) on a VMLAUNCH or a new GPA.
 */
export function enlightenedVmptrld(v: EvmcsVcpu, fromLaunch: boolean): EvmptrldStatus {
  if (!v.guestCpuidHasEvmcs()) return { status: 'disabled' };
  const gpa = namedEvmcs(v);
  if (gpa === null) {
    v.evmptr = 'invalid';
    return { status: 'disabled' };
  }
  const changed = v.evmptr !== gpa;
  const page = v.page(gpa);
  if (changed) {
    v.currentVmptr = INVALID_GPA;
    v.evmptr = 'invalid';
    const revision = Number(EVMCS.read(page, 'revision_id'));
    if (!EVMCS_ACCEPTED_REVISIONS.includes(revision)) return { status: 'vmfail', why: `eVMCS revision 0x${revision.toString(16)} is neither 1 nor VMCS12_REVISION` };
    v.evmptr = gpa;
    if (fromLaunch) {
      // memset(vmcs12, 0, sizeof(*vmcs12)): the struct's 998 bytes; the rest of KVM's 4 KiB cache,
      // which GET copies whole, keeps what it held (F10.5)
      v.vmcs12.fill(0, 0, VMCS12_STRUCT_SIZE);
      VMCS12.write(v.vmcs12, 'hdr', makeHdr(false));
    }
  }
  if (fromLaunch || changed) EVMCS.write(page, 'hv_clean_fields', EVMCS.read(page, 'hv_clean_fields') & ~BigInt(CLEAN_FIELDS.ALL));
  return { status: 'succeeded' };
}
