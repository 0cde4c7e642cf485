// The one interface every implementation under test sits behind (DESIGN §4). Suites talk to
// targets only through it. A KVM-style errno or VMfail is an `ok` answer; `error` means the
// target itself broke; `unsupported` means it does not offer the operation.
import type { LayoutDescriptor } from '../model/layout.js';
import type { AccessOutcome, AccessPath } from '../model/vmcs12-access.js';
import type { MsrSet } from '../model/vmx-msrs.js';
import type { GuestOp, OpResult, VcpuConfig } from '../model/nested/vcpu.js';
import type { GuestMemory } from '../model/nested/guest-memory.js';
import type { Errno } from '../model/nested/constants.js';
import type { VmmInfo, VmmLoaded, VmmLoadInput, VmmSaved, VmmSaveInput } from '../model/vmm/types.js';

// the VMM step is model data (model/vmm/types.ts), re-exported for the targets that offer it
export type { VmmInfo, VmmLoaded, VmmLoadInput, VmmSaved, VmmSaveInput };

/**
 * The operation groups. A migration has none of its own: it is composed of the `nested-state`
 * operations of the hosts at both ends and a VMM's `vmm` step (harness/hop.ts).
 */
export const GROUPS = ['layout', 'vmcs12-access', 'layout-revisions', 'evmcs-sync', 'msr-filter', 'nested-state', 'vmm'] as const;
export type Group = (typeof GROUPS)[number];

export type TargetResult<T> =
  | { readonly status: 'ok'; readonly value: T }
  | { readonly status: 'unsupported'; readonly reason: string }
  | { readonly status: 'error'; readonly reason: string; readonly stderr?: readonly string[] };

export interface TargetIdentity {
  readonly name: string;
  readonly version: string;
  readonly profile?: string;
}

export type Vmcs12Op = { readonly op: 'read'; readonly encoding: bigint } | { readonly op: 'write'; readonly encoding: bigint; readonly value: bigint };

export interface Vmcs12AccessResult {
  /** the page after all writes */
  readonly page: Uint8Array;
  /** one outcome per op: the value read, or the value stored after truncation, or a VMfail */
  readonly results: readonly AccessOutcome[];
}

export interface RevisionSetDescriptor {
  readonly current: LayoutDescriptor;
  readonly known: readonly LayoutDescriptor[];
}

export type RevisionRead =
  | { readonly accepted: true; readonly translatedFrom: string | null; readonly page: Uint8Array }
  | { readonly accepted: false; readonly reason: string };

/** nested_evmcs_check_controls: 0, or -EINVAL with the first rule that failed. */
export type ControlCheck = { readonly ok: true } | { readonly ok: false; readonly errno: 'EINVAL'; readonly rule: string };

export interface VmxMsrValue {
  /** MSR index, 0x480..0x491 */
  readonly index: number;
  readonly value: bigint;
}

/** KVM_GET_NESTED_STATE's answer: the user buffer after the call, and what the ioctl said. */
export interface GetAnswer {
  readonly errno: Errno | null;
  readonly size: number;
  readonly buffer: Uint8Array;
  /** bytes KVM wrote into the buffer (can exceed `size`: quirk GET_SHADOW_PAST_SIZE) */
  readonly written: number;
}

/** KVM_SET_NESTED_STATE's answer: the ioctl value (0, -errno, or the positive 2) and the deciding rule. */
export interface SetAnswer {
  readonly ret: number;
  readonly errno: Errno | null;
  /** the rule id of kernel-facts §9 (a real-KVM target may not know it: then "") */
  readonly rule: string;
  /** at V14: the VM-entry check that failed (model/vmentry/rules.ts), where the target knows it */
  readonly vmentryCheck?: string;
  /** why, in words, where the target knows (free text for people: never compared) */
  readonly reason?: string;
}

export interface Target {
  readonly identity: TargetIdentity;
  readonly groups: ReadonlySet<Group>;
  /** why a group is missing, when the target knows (e.g. which kernel file lacked what) */
  readonly unsupportedReasons?: Readonly<Partial<Record<Group, string>>>;
  /** guest operations (by `op`) the target does not carry out, with why: a case needing one is skipped up front */
  readonly unsupportedGuestOps?: Readonly<Record<string, string>>;
  /**
   * how `vmcs12Access` is carried out: `table` (the default) is vmcs12_read_any/vmcs12_write_any on
   * the page; `instruction` is L1's VMREAD/VMWRITE, where handle_vmwrite's own rules apply too
   */
  readonly vmcs12AccessPath?: AccessPath;
  /** the VMX MSRs a fresh vCPU of the target reports: capability sets it refuses lie outside them */
  readonly vmxMsrs?: MsrSet;
  /**
   * the guest memory a vCPU has (a real VM's has an end, the model's does not): generated addresses
   * stay inside, since real KVM answers differently for memory that does not exist (an APIC-access
   * page without backing is KVM_EXIT_INTERNAL_ERROR; an MSR-list or PDPTE read fails)
   */
  readonly guestMemory?: GuestMemory;
  /** group `vmm`: the stream versions the VMM writes and the known bugs it declares */
  readonly vmm?: VmmInfo;
  /** at most this many shrinking attempts after a failure (a slow target); unbounded when absent */
  readonly shrinkBudget?: number;
  /** a slow target's default case count for the properties that need it (a property's own count if lower; --runs overrides) */
  readonly defaultRuns?: number;
  /**
   * what a vCPU whose `nested` setting differs from the previous one costs (the kvm: agent reloads
   * kvm_intel): generated configurations then turn nested off rarely, since each such case pays twice
   */
  readonly nestedParamChange?: string;
  /** called before each property: a process target that broke restarts here (DESIGN §4) */
  beforeProperty?(): Promise<TargetResult<null>>;
  /** group `layout`: the structure's layout descriptor */
  layout(structure: 'vmcs12' | 'evmcs'): Promise<TargetResult<LayoutDescriptor>>;
  /** group `vmcs12-access`: a batch of VMREAD/VMWRITEs on a copy of `page` */
  vmcs12Access(page: Uint8Array, ops: readonly Vmcs12Op[]): Promise<TargetResult<Vmcs12AccessResult>>;
  /** group `layout-revisions`: read a page of any revision the set knows, as the current layout */
  readRevisions(set: RevisionSetDescriptor, page: Uint8Array): Promise<TargetResult<RevisionRead>>;
  /** group `evmcs-sync`: copy_enlightened_to_vmcs12 under a clean-fields mask; returns the new vmcs12 page */
  evmcsToVmcs12(evmcs: Uint8Array, vmcs12: Uint8Array, cleanFields: number): Promise<TargetResult<Uint8Array>>;
  /** group `evmcs-sync`: copy_vmcs12_to_enlightened; returns the new eVMCS bytes */
  vmcs12ToEvmcs(vmcs12: Uint8Array, evmcs: Uint8Array): Promise<TargetResult<Uint8Array>>;
  /** group `msr-filter`: what a guest RDMSR sees with eVMCS enabled, for the given Hyper-V CPUID 0x4000000A.EBX */
  filterVmxMsrs(msrs: readonly VmxMsrValue[], hvNestedEbx: number): Promise<TargetResult<bigint[]>>;
  /** group `msr-filter`: nested_evmcs_check_controls on a vmcs12 page */
  evmcsCheckControls(vmcs12: Uint8Array): Promise<TargetResult<ControlCheck>>;
  /** group `nested-state`: a vCPU configured as a VMM would before restoring; returns a handle */
  createVcpu(config: VcpuConfig): Promise<TargetResult<string>>;
  /** group `nested-state`: a guest (or VMM) operation on the vCPU */
  guestOp(vcpu: string, op: GuestOp): Promise<TargetResult<OpResult>>;
  /** group `nested-state`: KVM_GET_NESTED_STATE with a user buffer of `userSize` bytes */
  getNestedState(vcpu: string, userSize: number): Promise<TargetResult<GetAnswer>>;
  /** group `nested-state`: KVM_SET_NESTED_STATE from a user buffer (null: a NULL pointer) */
  setNestedState(vcpu: string, blob: Uint8Array | null): Promise<TargetResult<SetAnswer>>;
  destroyVcpu(vcpu: string): Promise<TargetResult<null>>;
  /** group `vmm`: the VMM's save: GET (through the kernel the input describes), then its stream bytes */
  vmmSave(input: VmmSaveInput): Promise<TargetResult<VmmSaved>>;
  /** group `vmm`: the VMM's load: stream bytes into what it restores, the blob it passes to SET included */
  vmmLoad(input: VmmLoadInput): Promise<TargetResult<VmmLoaded>>;
  close(): Promise<void>;
}

/**
 * Why a target that is a kernel (linux:, kvm:) lacks the `vmm` group: the VMM step is user-space code
 * between two hosts, which a VMM team checks through an exec: adapter (examples/vmm-adapter.mjs).
 */
export const KERNEL_HAS_NO_VMM = (what: string): string =>
  `${what}: the VMM step (save into a migration stream, load from it) is a VMM's user-space code, not the kernel's; check a VMM through an exec: adapter around its save/restore code (targets/PROTOCOL.md, "The vmm group"; examples/vmm-adapter.mjs)`;

export const ok = <T>(value: T): TargetResult<T> => ({ status: 'ok', value });
export const unsupported = <T>(reason: string): TargetResult<T> => ({ status: 'unsupported', reason });
