// Hosts: a profile plus what that machine offers (history.md, kernel-facts §6, §11). A library of
// named hosts covers every profile; users describe their own in JSON (reports/schema/host.schema.json).
import { assumedFullCapabilities } from '../filter-diff.js';
import { findProfile, PROFILES, type Profile } from '../profiles.js';
import type { MsrSet } from '../vmx-msrs.js';

export interface Host {
  readonly name: string;
  readonly profile: string;
  /** kvm_intel nested=1 */
  readonly nested: boolean;
  /** KVM_CAP_NESTED_STATE: the maximum size, 0 when absent */
  readonly nestedStateMax: number;
  /** KVM_CAP_HYPERV_ENLIGHTENED_VMCS */
  readonly evmcsCap: boolean;
  /** what KVM_GET_MSRS reports for the VMX capability MSRs (host-initiated, unfiltered) */
  readonly vmxMsrs: MsrSet;
}

export const defaultVmxMsrs = (): MsrSet => assumedFullCapabilities().msrs;

/** The host a profile describes, as Debian builds it (nested on, every capability it has). */
export function hostFor(p: Profile, overrides: Partial<Host> = {}): Host {
  return {
    name: p.name,
    profile: p.name,
    nested: true,
    nestedStateMax: p.nested ? 8320 : 0,
    evmcsCap: (p.nested?.evmcsFlag ?? 'none') !== 'none',
    vmxMsrs: defaultVmxMsrs(),
    ...overrides,
  };
}

export const HOSTS: readonly Host[] = [
  ...PROFILES.map((p) => hostFor(p)),
  hostFor(findProfile('linux-6.12')!, { name: 'linux-6.12-nonested', nested: false }),
];

export const findHost = (name: string): Host | undefined => HOSTS.find((h) => h.name === name);
