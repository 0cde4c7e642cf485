// The VMM step of a migration, as the `vmm` target group asks a VMM for it: save (a GET answer, the
// VMX MSRs and the CPUID into the VMM's stream bytes) and load (stream bytes into the blob the VMM
// passes to KVM_SET_NESTED_STATE). Plain data: targets/PROTOCOL.md gives the wire form.
import type { VcpuConfig } from '../nested/vcpu.js';
import type { MsrSet } from '../vmx-msrs.js';

/** The source kernel as the VMM's save code meets it. */
export interface VmmSourceKernel {
  /** KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE): 8320 on VMX, 0 without the nested-state ioctls */
  readonly nestedStateCap: number;
  /**
   * what KVM_GET_NESTED_STATE stores into a buffer with room for it: its header's `size` is what GET
   * needs (a smaller buffer gets E2BIG), and it may run past `size` (quirk GET_SHADOW_PAST_SIZE: a
   * buffer that holds `size` but not all of it gets EFAULT)
   */
  readonly state: Uint8Array;
}

export interface VmmSaveInput {
  readonly kernel: VmmSourceKernel;
  /** the VMX capability MSRs as KVM_GET_MSRS reads them (host-initiated, unfiltered) */
  readonly vmxMsrs: MsrSet;
  /** the VM's CPUID and enlightenments as the VMM configured them */
  readonly config: VcpuConfig;
  /** write the stream as this older version of the VMM would (one of its `streamVersions`); default: the current one */
  readonly version?: string;
}

/** One KVM_GET_NESTED_STATE the VMM made: the buffer it offered and the answer it got. */
export interface VmmGetCall {
  readonly userSize: number;
  readonly errno: string | null;
}

export type VmmSaved =
  | { readonly stream: Uint8Array; readonly gets: readonly VmmGetCall[] }
  /** the VMM gave up (a GET it could not recover from): no stream */
  | { readonly refused: string; readonly gets: readonly VmmGetCall[] };

export interface VmmLoadInput {
  readonly stream: Uint8Array;
  /** the destination kernel: KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE) */
  readonly kernel: { readonly nestedStateCap: number };
  /** load as this older version of the VMM would; default: the current one */
  readonly version?: string;
}

export type VmmLoaded =
  /** the VMM refuses the stream: the guest does not start on the destination */
  | { readonly refused: string }
  /** what the VMM restores: `set` is the blob it passes to KVM_SET_NESTED_STATE, null when it makes no SET */
  | { readonly set: Uint8Array | null; readonly vmxMsrs: MsrSet; readonly config: VcpuConfig };

/** Known VMM bugs a target may declare: the property that judges each then shows it as an expected failure. */
export const VMM_KNOWN_BUGS = {
  'drops-vmx-flags': 'QEMU versions that do not carry hdr.vmx.flags drop the preemption-timer deadline',
} as const;
export type VmmKnownBug = keyof typeof VMM_KNOWN_BUGS;

/** What a VMM target says about itself (the hello's `vmm`). */
export interface VmmInfo {
  /** the stream versions its save can write, oldest first; the last is what it writes by default */
  readonly streamVersions?: readonly string[];
  readonly knownBugs?: readonly VmmKnownBug[];
}
