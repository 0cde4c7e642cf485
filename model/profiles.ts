// Profiles: kernel revisions whose behaviour the reference model reproduces. Each names the
// layouts it uses; later parts of the model (eVMCS, nested state) hang their differences here too.
import type { Layout } from './layout.js';
import { frozenVmcs12, vmcs12Before419, vmcs12Before58 } from './vmcs12-layouts.js';

export interface Profile {
  readonly name: string;
  readonly description: string;
  readonly vmcs12: Layout;
}

const profile = (name: string, description: string, vmcs12: (n: string) => Layout): Profile => ({
  name,
  description,
  vmcs12: vmcs12(name),
});

export const PROFILES: readonly Profile[] = [
  profile('linux-4.18', 'vmcs12 frozen; u32 revision_id; CR3_TARGET_VALUE0..3 accessible', vmcs12Before419),
  profile('linux-4.19', 'struct vmcs_hdr replaces revision_id (same bytes); KVM_GET/SET_NESTED_STATE', vmcs12Before58),
  profile('linux-5.8', 'cr3_target_value0..3 become dead_space (same bytes)', frozenVmcs12),
  profile('linux-6.1', 'Debian linux-source-6.1 (6.1.192)', frozenVmcs12),
  profile('linux-6.12', 'Debian linux-source-6.12 (6.12.117)', frozenVmcs12),
];

export const DEFAULT_PROFILE = 'linux-6.12';

export function findProfile(name: string): Profile | undefined {
  return PROFILES.find((p) => p.name === name);
}

export const profileNames = (): string[] => PROFILES.map((p) => p.name);
