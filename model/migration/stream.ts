// What a VMM (QEMU's rules, history.md) saves on the source and carries in the migration stream.
import { encodeBlob, readHeader, writeHeader } from '../nested/blob.js';
import { FORMAT, HEADER_SIZE, INVALID_GPA, SIZE_WITH_SHADOW, SIZE_WITH_VMCS12 } from '../nested/constants.js';
import type { Vcpu, VcpuConfig } from '../nested/vcpu.js';
import type { Host } from './hosts.js';
import type { MsrSet } from '../vmx-msrs.js';
import { MODEL_OPS, type VcpuOps } from './vcpu-ops.js';

export interface StreamOptions {
  /** some QEMU versions do not carry hdr.vmx.flags and the deadline: they arrive zeroed */
  readonly qemuDropsVmxFlags: boolean;
}

export interface Stream {
  /** the nested-state section, or null when QEMU's subsection was not needed */
  readonly nestedState: Uint8Array | null;
  /** the unfiltered VMX MSRs (host-initiated reads are never filtered) */
  readonly vmxMsrs: MsrSet;
  /** CPUID and the VM's enlightenments, as configured on the source */
  readonly config: VcpuConfig;
  readonly evmcsEnabled: boolean;
  readonly inSmm: boolean;
  /** guest RAM travels too: VMCS regions, the eVMCS, the VP-assist page */
  readonly memory: ReadonlyMap<bigint, Uint8Array>;
  readonly vpAssist: Vcpu['vpAssist'];
  /** what the source's GET returned, before the stream rules */
  readonly sourceBlob: Uint8Array;
  /** KVM_GET_MP_STATE on the source: QEMU's cpu state carries it, and restores it after the nested state */
  readonly mpState: number;
  /** the vCPU's registers GET in guest mode reads (F8): EFER travels in sregs (restored before the
   * nested state), DR7 in the debug registers (after it) */
  readonly efer: bigint;
  readonly dr7: bigint;
}

/**
 * QEMU's subsection rules: the nested state is sent when it says anything (VMXON, or any flag: under
 * 4.20-5.1 the EVMCS flag alone forced it, seed 003); the vmcs12 when `size` reaches past the header;
 * the shadow vmcs12 when it reaches past the first 4 KiB.
 */
export function saveToStream(src: Vcpu, host: Host, opts: StreamOptions, ops: Pick<VcpuOps, 'getNestedState'> = MODEL_OPS): Stream {
  // without KVM_CAP_NESTED_STATE the VMM cannot ask: it saves nothing nested
  const g = host.nestedStateMax ? ops.getNestedState(src, SIZE_WITH_SHADOW) : { buffer: encodeBlob({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA }), size: HEADER_SIZE };
  const blob = g.buffer.subarray(0, g.size);
  const h = readHeader(blob);
  const needed = h.format === FORMAT.VMX && (h.vmxonPa !== INVALID_GPA || h.flags !== 0);
  let carried: Uint8Array | null = null;
  if (needed) {
    const len = h.size > SIZE_WITH_VMCS12 ? SIZE_WITH_SHADOW : h.size > HEADER_SIZE ? SIZE_WITH_VMCS12 : HEADER_SIZE;
    carried = blob.slice(0, Math.min(len, blob.length));
    if (opts.qemuDropsVmxFlags) writeHeader(carried, { ...readHeader(carried), vmxFlags: 0, preemptionTimerDeadline: 0n });
  }
  return {
    nestedState: carried,
    vmxMsrs: host.vmxMsrs,
    config: src.config,
    evmcsEnabled: src.evmcsEnabled,
    inSmm: src.inSmm,
    memory: new Map([...src.memory].map(([k, v]) => [k, v.slice()])),
    vpAssist: src.vpAssist && { ...src.vpAssist },
    sourceBlob: blob.slice(),
    mpState: src.mpState,
    efer: src.efer,
    dr7: src.dr7,
  };
}
