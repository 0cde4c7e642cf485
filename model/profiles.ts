// Profiles: kernel revisions whose behaviour the reference model reproduces. Each names the
// layouts it uses; later parts of the model (eVMCS, nested state) hang their differences here too.
import { CHECK_LINUX_6_1, CHECK_LINUX_6_12, FILTER_LINUX_6_1, FILTER_LINUX_6_12, type CheckRule, type FilterRule } from './catalog/vmx-controls.js';
import { evmcsLayout } from './evmcs.js';
import type { Layout } from './layout.js';
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
  readonly vmcs12: Layout;
  readonly evmcs?: EvmcsProfile;
}

const profile = (name: string, description: string, vmcs12: (n: string) => Layout, evmcs?: Omit<EvmcsProfile, 'layout'>): Profile => ({
  name,
  description,
  vmcs12: vmcs12(name),
  ...(evmcs ? { evmcs: { ...evmcs, layout: evmcsLayout(name) } } : {}),
});

export const PROFILES: readonly Profile[] = [
  profile('linux-4.18', 'vmcs12 frozen; u32 revision_id; CR3_TARGET_VALUE0..3 accessible', vmcs12Before419),
  profile('linux-4.19', 'struct vmcs_hdr replaces revision_id (same bytes); KVM_GET/SET_NESTED_STATE', vmcs12Before58),
  profile('linux-5.8', 'cr3_target_value0..3 become dead_space (same bytes)', frozenVmcs12),
  profile('linux-6.1', 'Debian linux-source-6.1 (6.1.192)', frozenVmcs12, { filter: FILTER_LINUX_6_1, filterStyle: 'deny-list', check: CHECK_LINUX_6_1, enlightenmentsGroup: false }),
  profile('linux-6.12', 'Debian linux-source-6.12 (6.12.117)', frozenVmcs12, { filter: FILTER_LINUX_6_12, filterStyle: 'allow-list', check: CHECK_LINUX_6_12, enlightenmentsGroup: true }),
];

export const DEFAULT_PROFILE = 'linux-6.12';

export function findProfile(name: string): Profile | undefined {
  return PROFILES.find((p) => p.name === name);
}

export const profileNames = (): string[] => PROFILES.map((p) => p.name);
