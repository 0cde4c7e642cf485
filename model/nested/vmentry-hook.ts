// The vCPU's side of the VM-entry checks: what KVM reads from the vCPU (its nested VMX MSRs,
// MAXPHYADDR, nested_run_pending, guest memory, guest_cpuid_has_evmcs) turned into a check input.
import { nestedCaps } from '../vmentry/caps.js';
import { firstFailure } from '../vmentry/check.js';
import { memberReader, View, type CheckInput } from '../vmentry/input.js';
import { msrLoadVmcs12Writes } from '../vmentry/msr-load.js';
import { vmentryRules, type Stage, type VmentryRule } from '../vmentry/rules.js';
import type { Profile } from '../profiles.js';
import type { CheckRule } from '../catalog/vmx-controls.js';
import type { Layout } from '../layout.js';
import type { MsrSet } from '../vmx-msrs.js';
import { GUEST_CPU } from '../vmentry/guest-cpu.js';
import { msrAddressBits } from '../vmentry/revision.js';
import { writeBytes } from '../vmcs12-access.js';

const ZERO_PAGE = new Uint8Array(4096);

/**
 * What the checks read from a vCPU. vcpu.ts's Vcpu has all of it; it is spelled out here because
 * vcpu.ts imports this module, which must not import vcpu.ts back.
 */
export interface EntryVcpu {
  readonly profile: Profile;
  readonly config: { readonly vmxMsrs?: MsrSet | undefined; readonly maxPhyAddr: number; readonly hostLa57?: boolean | undefined };
  readonly nestedRunPending: boolean;
  readonly memory: ReadonlyMap<bigint, Uint8Array>;
  readonly vmcs12: Uint8Array;
  guestCpuidHasEvmcs(): boolean;
}

/** The first rule that fails, its stage and the exit qualification a guest-state failure reports. */
export interface EntryFailure {
  rule: string;
  stage?: Stage;
  qualification?: number;
}

/** vcpu.ts's VmentryChecks over what the checks read (a Vcpu is one). */
export type EntryChecks = (vcpu: EntryVcpu, vmcs12: Uint8Array, fromVmentry: boolean) => EntryFailure | null;

/** What KVM reads besides the vmcs12: the same on a live vCPU and on a destination predicted from a stream. */
export interface EntryContext {
  readonly vmxMsrs: MsrSet | undefined;
  readonly maxPhyAddr: number;
  readonly runPending: boolean;
  readonly evmcsCheck: readonly CheckRule[] | null;
  readonly memory: ReadonlyMap<bigint, Uint8Array>;
  /** the canonical width of the MSR and base checks (CheckInput.msrAddressBits) */
  readonly msrAddressBits: number;
}

export function entryInput(layout: Layout, vmcs12: Uint8Array, c: EntryContext): CheckInput {
  return {
    f: memberReader(layout, vmcs12),
    caps: nestedCaps(c.vmxMsrs),
    maxPhyAddr: c.maxPhyAddr,
    runPending: c.runPending,
    evmcsCheck: c.evmcsCheck,
    msrAddressBits: c.msrAddressBits,
    guestPage: (gpa) => c.memory.get(gpa) ?? ZERO_PAGE,
  };
}

export function checkInput(v: EntryVcpu, vmcs12: Uint8Array, fromVmentry: boolean): CheckInput {
  return entryInput(v.profile.vmcs12, vmcs12, {
    vmxMsrs: v.config.vmxMsrs,
    maxPhyAddr: v.config.maxPhyAddr,
    runPending: fromVmentry || v.nestedRunPending,
    evmcsCheck: v.guestCpuidHasEvmcs() && v.profile.evmcs ? v.profile.evmcs.check : null,
    memory: v.memory,
    // the profile's revision says whose width: the host's paging depth (a vCPU fact) or L1's (GUEST_CPU)
    msrAddressBits: msrAddressBits(v.profile.vmentry, v.config.hostLa57 ?? false, GUEST_CPU.virtualAddressBits),
  });
}

/** On restore, V14 runs these stages; prepare_vmcs02's check follows at S8. */
export const RESTORE_STAGES = ['controls', 'host', 'guest'] as const;

/**
 * Rule V14 and VMLAUNCH/VMRESUME: nested_vmx_check_controls, (on entry) the address-space size,
 * nested_vmx_check_host_state and nested_vmx_check_guest_state; on entry also prepare_vmcs02's
 * checks, which on restore belong to S8 (prepareVmcs02 below), and the MSR-load list. Over any rule
 * table (tests give it a mutated one).
 */
export const vmentryChecksWith =
  (rulesOf: (p: Profile) => readonly VmentryRule[]): EntryChecks =>
  (v, vmcs12, fromVmentry) => {
    const input = checkInput(v, vmcs12, fromVmentry);
    const bad = fromVmentry ? firstFailure(rulesOf(v.profile), input, 'vmentry') : firstFailure(rulesOf(v.profile), input, 'restore', RESTORE_STAGES);
    return bad && { rule: bad.id, stage: bad.stage, qualification: bad.qualificationOf ? bad.qualificationOf(new View(input)) : (bad.qualification ?? 0) };
  };

export const kvmVmentryChecks: EntryChecks = vmentryChecksWith(vmentryRules);

/**
 * The VM-entry MSR-load list's writes into the vmcs12 (vmx_set_msr in guest mode stores SYSENTER_*
 * there): every entry before the first failing one has been written, whether the entry then fails or not.
 */
export function applyEntryMsrLoad(v: EntryVcpu): void {
  for (const w of msrLoadVmcs12Writes(checkInput(v, v.vmcs12, true))) {
    const m = v.profile.vmcs12.members.find((x) => x.name === w.member && !x.padding);
    if (m) writeBytes(v.vmcs12, m.offset, m.size, w.value);
  }
}

/** prepare_vmcs02 on restore (from_vmentry = false): only the guest-CR3 check can fail there. */
export const kvmPrepareVmcs02 = (v: EntryVcpu): boolean => firstFailure(vmentryRules(v.profile), checkInput(v, v.vmcs12, false), 'restore', ['prepare']) === null;
