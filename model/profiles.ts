// Profiles: kernel revisions whose behaviour the reference model reproduces. Each names the
// layouts it uses; later parts of the model (eVMCS, nested state) hang their differences here too.
import { CHECK_LINUX_6_1, CHECK_LINUX_6_12, FILTER_LINUX_6_1, FILTER_LINUX_6_12, type CheckRule, type FilterRule } from './catalog/vmx-controls.js';
import { evmcsLayout } from './evmcs.js';
import { NESTED_4_19, NESTED_4_20, NESTED_5_2, NESTED_5_6, NESTED_5_7, NESTED_5_8, NESTED_6_12, type NestedBehaviour } from './nested/behaviour.js';
import type { Layout } from './layout.js';
import { assumedFrom61, VMENTRY_6_1, VMENTRY_6_12, type VmentryRevision } from './vmentry/revision.js';
import { frozenVmcs12, vmcs12Before419, vmcs12Before58 } from './vmcs12-layouts.js';

/** What a profile knows of the enlightened VMCS. Absent where the spec has no facts for that kernel. */
export interface EvmcsProfile {
  readonly layout: Layout;
  /** nested_evmcs_filter_control_msr's table */
  readonly filter: readonly FilterRule[];
  readonly filterStyle: 'deny-list' | 'allow-list';
  /** nested_evmcs_check_controls, in order */
  readonly check: readonly CheckRule[];
  /** 6.12 copies the ENLIGHTENMENTSCONTROL group into hv_vcpu->nested */
  readonly enlightenmentsGroup: boolean;
}

export interface Profile {
  readonly name: string;
  readonly description: string;
  /** the kernel version (major, minor) whose behaviour this is; newer kernels without a profile of their own get the newest older one */
  readonly kernel: readonly [number, number];
  readonly vmcs12: Layout;
  readonly evmcs?: EvmcsProfile;
  /** which VM-entry consistency checks this kernel runs (model/vmentry/revision.ts): required, so no profile silently gets another kernel's */
  readonly vmentry: VmentryRevision;
  /** KVM_GET/SET_NESTED_STATE behaviour; absent before 4.19 (no KVM_CAP_NESTED_STATE) */
  readonly nested?: NestedBehaviour;
}

const profile = (name: string, kernel: readonly [number, number], description: string, vmcs12: (n: string) => Layout, vmentry: VmentryRevision, nested?: NestedBehaviour, evmcs?: Omit<EvmcsProfile, 'layout'>): Profile => ({
  name,
  description,
  kernel,
  vmcs12: vmcs12(name),
  vmentry,
  ...(nested ? { nested } : {}),
  ...(evmcs ? { evmcs: { ...evmcs, layout: evmcsLayout(name) } } : {}),
});

export const PROFILES: readonly Profile[] = [
  profile('linux-4.18', [4, 18], 'vmcs12 frozen; u32 revision_id; CR3_TARGET_VALUE0..3 accessible; no nested-state ioctls', vmcs12Before419, assumedFrom61('4.18')),
  profile('linux-4.19', [4, 19], 'struct vmcs_hdr replaces revision_id (same bytes); KVM_GET/SET_NESTED_STATE, flags GUEST_MODE and RUN_PENDING', vmcs12Before58, assumedFrom61('4.19'), NESTED_4_19),
  profile('linux-4.20', [4, 20], 'KVM_STATE_NESTED_EVMCS set whenever eVMCS is enabled (4.20-5.1, "flag when enabled")', vmcs12Before58, assumedFrom61('4.20'), NESTED_4_20),
  profile('linux-5.2', [5, 2], 'KVM_STATE_NESTED_EVMCS only when an eVMCS is active ("flag when active")', vmcs12Before58, assumedFrom61('5.2'), NESTED_5_2),
  profile('linux-5.6', [5, 6], 'emits MTF_PENDING that its own SET rejects', vmcs12Before58, assumedFrom61('5.6'), NESTED_5_6),
  profile('linux-5.7', [5, 7], 'SET accepts MTF_PENDING', vmcs12Before58, assumedFrom61('5.7'), NESTED_5_7),
  profile('linux-5.8', [5, 8], 'hdr.vmx.flags and the preemption-timer deadline; GIF_SET; cr3_target_value0..3 become dead_space (same bytes)', frozenVmcs12, assumedFrom61('5.8'), NESTED_5_8),
  profile('linux-6.1', [6, 1], 'Debian linux-source-6.1 (6.1.192)', frozenVmcs12, VMENTRY_6_1, NESTED_5_8, { filter: FILTER_LINUX_6_1, filterStyle: 'deny-list', check: CHECK_LINUX_6_1, enlightenmentsGroup: false }),
  profile('linux-6.12', [6, 12], 'Debian linux-source-6.12 (6.12.117)', frozenVmcs12, VMENTRY_6_12, NESTED_6_12, { filter: FILTER_LINUX_6_12, filterStyle: 'allow-list', check: CHECK_LINUX_6_12, enlightenmentsGroup: true }),
];

export { DEFAULT_PROFILE } from './default-profile.js';

export function findProfile(name: string): Profile | undefined {
  return PROFILES.find((p) => p.name === name);
}

/** The profile of a kernel: the one of the same version, or the newest older one. */
export function profileForKernel(major: number, minor: number): Profile {
  const older = PROFILES.filter((p) => p.kernel[0] < major || (p.kernel[0] === major && p.kernel[1] <= minor));
  const pick = older.length ? older : [PROFILES[0]!];
  return pick.reduce((a, b) => (b.kernel[0] > a.kernel[0] || (b.kernel[0] === a.kernel[0] && b.kernel[1] > a.kernel[1]) ? b : a));
}

export const profileNames = (): string[] => PROFILES.map((p) => p.name);
