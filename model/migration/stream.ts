// What a VMM (QEMU's rules, history.md) saves on the source and carries in the migration stream.
import { encodeBlob } from '../nested/blob.js';
import { HEADER_SIZE, INVALID_GPA, SIZE_WITH_SHADOW } from '../nested/constants.js';
import type { Vcpu, VcpuConfig } from '../nested/vcpu.js';
import type { Host } from './hosts.js';
import type { MsrSet } from '../vmx-msrs.js';
import { getNestedState } from '../nested/get.js';
import { qemuCarried } from '../vmm/qemu.js';

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
  /** the interrupt shadow and NMI blocking: vcpu events, restored after the nested state */
  readonly interruptibility: bigint;
}

/** The source's side of a migration: GET, then QEMU's subsection rules (model/vmm/qemu.ts). */
export function saveToStream(src: Vcpu, host: Host, opts: StreamOptions): Stream {
  // without KVM_CAP_NESTED_STATE the VMM cannot ask: it saves nothing nested
  const g = host.nestedStateMax ? getNestedState(src, SIZE_WITH_SHADOW) : { buffer: encodeBlob({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA }), size: HEADER_SIZE };
  const blob = g.buffer.subarray(0, g.size);
  const carried = qemuCarried(blob, { dropsVmxFlags: opts.qemuDropsVmxFlags });
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
    interruptibility: src.interruptibility,
  };
}
