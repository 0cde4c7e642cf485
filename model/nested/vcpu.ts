// A vCPU's nested-VMX state as KVM keeps it, and the guest operations that change it (kernel-facts
// §8-11). Mutable by design: it is a state machine; clone() before exploring.
import { EVMCS, encodingOf, hdrRevision, hdrShadow, makeHdr, VMCS12 } from '../catalog/by-name.js';
import { KVM_EVMCS_VERSION } from '../catalog/evmcs.js';
import { VMCS12_REVISION, VMCS12_SIZE } from '../catalog/vmcs12.js';
import { copyEnlightenedToVmcs12, copyVmcs12ToEnlightened } from '../evmcs.js';
import type { Profile } from '../profiles.js';
import { accessTableFor, recordInstructionError, vmread, vmwriteInstruction, writeBytes } from '../vmcs12-access.js';
import { BIT, DR7_RESET, EFER_LONG_MODE, INTR, PREEMPTION_TIMER_RATE } from '../vmentry/bits.js';
import { evmcsVmread } from '../evmcs.js';
import { INVALID_GPA, MP_STATE } from './constants.js';
import type { NestedBehaviour } from './behaviour.js';
import type { MsrSet } from '../vmx-msrs.js';
import { entryFailureReason } from '../vmentry/check.js';
import { nestedCaps } from '../vmentry/caps.js';
import { applyEntryMsrLoad, kvmPrepareVmcs02, kvmVmentryChecks, type EntryFailure } from './vmentry-hook.js';
import { enlightenedVmptrld, namedEvmcs, type EvmcsPointer } from './evmcs-pointer.js';

/** The vCPU configuration a VMM sets up before restoring (schema: reports/schema/vcpu.schema.json). */
export interface VcpuConfig {
  /** the kvm_intel `nested` module parameter */
  readonly nested: boolean;
  /** VMX in guest CPUID.1:ECX */
  readonly vmxInCpuid: boolean;
  /** KVM_CAP_HYPERV_ENLIGHTENED_VMCS enabled on the vCPU */
  readonly evmcsEnabled: boolean;
  /** Hyper-V CPUID set (hyperv_enabled), optionally with leaf 0x4000000A */
  readonly hypervCpuid: boolean | { readonly nestedEax: number; readonly nestedEbx: number };
  /** the vCPU is in SMM (KVM_SET_VCPU_EVENTS smi.smm) */
  readonly inSmm: boolean;
  /** guest MAXPHYADDR (CPUID 0x80000008.EAX[7:0]), 36 when the leaf is absent */
  readonly maxPhyAddr: number;
  /**
   * the vCPU's VMX capability MSRs (host-initiated values, KVM_SET_MSRS before the nested state);
   * absent, or for an MSR the set lacks: DEFAULT_VMX_MSRS (model/vmentry/caps.ts), a permissive
   * KVM-like set
   */
  readonly vmxMsrs?: MsrSet;
  /**
   * a fact of the host, not of the VMM's set-up: its CPU has 5-level paging (kvm_cpu_cap_has(LA57)).
   * 6.12's canonical checks on MSR values and descriptor bases then take 57 bits (fidelity-audit F13;
   * model/vmentry/revision.ts). Absent: false. A real-KVM target answers for its own host
   */
  readonly hostLa57?: boolean;
}

export const DEFAULT_VCPU: VcpuConfig = { nested: true, vmxInCpuid: true, evmcsEnabled: false, hypervCpuid: false, inSmm: false, maxPhyAddr: 36 };

/**
 * The result vocabulary of a guest operation, in one place (the target protocol's schema lists the
 * same: tests/vocabulary.test.ts). `not-retired`: KVM returns to L1 without completing the
 * instruction, neither failing it nor moving RIP past it, so L1 executes it again (forever, unless
 * something else changes): VMPTRLD while an eVMCS is in use.
 */
export const OP_RESULTS = ['ok', 'VMfailInvalid', 'VMfailValid', '#UD', 'internal-error', 'ENOTTY', 'EINVAL', 'vmexit', 'not-retired'] as const;

/** What a guest operation did: KVM's answer, never an exception. */
export type OpResult =
  /**
   * `l2`, from a target whose L2 runs code (the kvm: agent): `exited`, the operation entered L2, which
   * ran to its first stop and exited to L1 (the model's L2 runs none: it stays in guest mode);
   * `entered`, the operation entered L2, which ran its code and is still in guest mode (halted, or
   * waiting): its execution state is the target's own; from a VM-entry (the target's VMLAUNCH is a
   * KVM_RUN), no entry stays pending as the model's does until the next KVM_RUN
   */
  | { readonly result: 'ok'; readonly value?: bigint; readonly l2?: 'exited' | 'entered' }
  | { readonly result: 'VMfailInvalid' | 'VMfailValid' | '#UD' | 'internal-error' | 'ENOTTY' | 'EINVAL'; readonly error?: number; readonly reason: string; readonly check?: string }
  /** VMLAUNCH/VMRESUME that ended in a VM-exit for a failed VM-entry: `error` holds the exit reason, `qualification` the exit qualification */
  | { readonly result: 'vmexit'; readonly error: number; readonly reason: string; readonly check: string; readonly qualification?: number }
  /** the instruction was neither completed nor failed: L1 executes it again (OP_RESULTS) */
  | { readonly result: 'not-retired'; readonly reason: string };

/** VM-instruction error numbers (SDM). */
export const VMXERR = {
  VMCLEAR_INVALID_ADDRESS: 2,
  VMCLEAR_VMXON_POINTER: 3,
  VMLAUNCH_NONCLEAR_VMCS: 4,
  VMRESUME_NONLAUNCHED_VMCS: 5,
  ENTRY_INVALID_CONTROL_FIELD: 7,
  ENTRY_INVALID_HOST_STATE_FIELD: 8,
  VMPTRLD_INVALID_ADDRESS: 9,
  VMPTRLD_VMXON_POINTER: 10,
  VMPTRLD_INCORRECT_VMCS_REVISION_ID: 11,
  VMXON_IN_VMX_ROOT_OPERATION: 15,
} as const;

/**
 * VM-entry consistency checks (rule V14 and VMLAUNCH/VMRESUME): null when they pass, else the first
 * rule that fails (model/vmentry/rules.ts), its stage and the exit qualification a guest-state
 * failure reports. Pluggable.
 */
export type VmentryChecks = (vcpu: Vcpu, vmcs12: Uint8Array, fromVmentry: boolean) => EntryFailure | null;

export interface VcpuHooks {
  vmentryChecks: VmentryChecks;
  /** prepare_vmcs02 (from_vmentry = false) succeeding; when it fails, SET returns the positive 2 (quirk) */
  prepareVmcs02: (vcpu: Vcpu) => boolean;
}

export const DEFAULT_HOOKS: VcpuHooks = { vmentryChecks: kvmVmentryChecks, prepareVmcs02: kvmPrepareVmcs02 };

const PROC = encodingOf('cpu_based_vm_exec_control');
const PROC2 = encodingOf('secondary_vm_exec_control');
const LINK = encodingOf('vmcs_link_pointer');
/** exit reason bit 31: the VM-entry failed */
const VMX_EXIT_REASONS_FAILED_VMENTRY = 0x8000_0000n;
const RFLAGS_IF = 0x200n;
/** the vCPU's EFER with LMA and LME set or cleared, as KVM derives it where no EFER is loaded */
const withLongMode = (efer: bigint, on: boolean): bigint => (on ? efer | EFER_LONG_MODE : efer & ~EFER_LONG_MODE);

export class Vcpu {
  evmcsEnabled: boolean;
  inSmm: boolean;
  vmxon = false;
  vmxonPtr = INVALID_GPA;
  currentVmptr = INVALID_GPA;
  evmptr: EvmcsPointer = 'invalid';
  guestMode = false;
  nestedRunPending = false;
  mtfPending = false;
  smm = { vmxon: false, guestMode: false };
  /** KVM's 4 KiB vmcs12 cache and shadow cache */
  vmcs12: Uint8Array = new Uint8Array(VMCS12_SIZE);
  shadowVmcs12: Uint8Array = new Uint8Array(VMCS12_SIZE);
  hasPreemptionTimerDeadline = false;
  preemptionTimerDeadline = 0n;
  needVmcs12ToShadowSync = false;
  /** guest physical memory, by page */
  memory = new Map<bigint, Uint8Array>();
  /** the Hyper-V VP-assist page: which eVMCS the guest points at */
  vpAssist: { currentNestedVmcs: bigint; enlightenVmentry: boolean } | null = null;
  /** KVM_REQ_GET_NESTED_STATE_PAGES: made by SET (a map-pending eVMCS, or L2 restored), served by the next KVM_RUN or nested VM-exit */
  statePagesRequested = false;
  /** L1 TSC, advanced by KVM_RUN; the deadline is in TSC units >> 5 */
  tsc = 0n;
  /**
   * KVM's vcpu->arch.mp_state (KVM_GET/SET_MP_STATE). A fresh vCPU 0 is RUNNABLE. The vCPU has an
   * in-kernel local APIC (KVM_CREATE_IRQCHIP, a VMM's usual set-up), so a halted L2 halts in KVM.
   */
  mpState: number = MP_STATE.RUNNABLE;
  /** the vCPU's DR7 and EFER (vcpu->arch): a fresh vCPU's are DR7's reset value and 0 */
  dr7 = DR7_RESET;
  efer = 0n;
  /**
   * the vCPU's interrupt shadow and NMI blocking (GUEST_INTERRUPTIBILITY_INFO of the VMCS it runs;
   * KVM_GET/SET_VCPU_EVENTS): a fresh vCPU's are 0
   */
  interruptibility = 0n;

  constructor(
    readonly profile: Profile & { nested: NestedBehaviour },
    public config: VcpuConfig,
    readonly hooks: VcpuHooks = DEFAULT_HOOKS,
  ) {
    // KVM_CAP_HYPERV_ENLIGHTENED_VMCS came with 4.20: before it, a VMM cannot have enabled it
    this.evmcsEnabled = config.evmcsEnabled && profile.nested.evmcsFlag !== 'none';
    this.inSmm = config.inSmm;
  }

  clone(): Vcpu {
    const c = new Vcpu(this.profile, this.config, this.hooks);
    Object.assign(c, this, {
      smm: { ...this.smm },
      vmcs12: this.vmcs12.slice(),
      shadowVmcs12: this.shadowVmcs12.slice(),
      memory: new Map([...this.memory].map(([k, v]) => [k, v.slice()])),
      vpAssist: this.vpAssist && { ...this.vpAssist },
    });
    return c;
  }

  /** KVM_SET_CPUID2 and friends: the VMM changes the configuration of a live vCPU */
  reconfigure(change: Partial<VcpuConfig>): void {
    this.config = { ...this.config, ...change };
    if (change.inSmm !== undefined) this.inSmm = change.inSmm;
  }

  /** nested_vmx_allowed / guest_cpu_cap_has(VMX): module parameter and guest CPUID */
  nestedAllowed(): boolean {
    return this.config.nested && this.config.vmxInCpuid;
  }

  /** guest_cpuid_has_evmcs: Hyper-V CPUID set and the eVMCS capability enabled */
  guestCpuidHasEvmcs(): boolean {
    return this.config.hypervCpuid !== false && this.evmcsEnabled;
  }

  /** page_address_valid: 4 KiB aligned, no bits at or above MAXPHYADDR */
  pageAddressValid(gpa: bigint): boolean {
    return (gpa & 0xfffn) === 0n && gpa >> BigInt(this.config.maxPhyAddr) === 0n;
  }

  page(gpa: bigint): Uint8Array {
    let p = this.memory.get(gpa);
    if (!p) this.memory.set(gpa, (p = new Uint8Array(VMCS12_SIZE)));
    return p;
  }

  /** vmcs12 uses shadow VMCS: primary bit 31 (activate secondary) and secondary bit 14 */
  usesShadowVmcs(v: Uint8Array = this.vmcs12): boolean {
    const t = accessTableFor(this.profile.vmcs12);
    const primary = vmread(t, v, PROC);
    const secondary = vmread(t, v, PROC2);
    return primary.ok && secondary.ok && (Number(primary.value) & BIT.proc.secondary) !== 0 && (Number(secondary.value) & BIT.proc2.shadowVmcs) !== 0;
  }

  linkPointer(v: Uint8Array = this.vmcs12): bigint {
    const r = vmread(accessTableFor(this.profile.vmcs12), v, LINK);
    return r.ok ? r.value : INVALID_GPA;
  }

  /** vmx_has_valid_vmcs12: a current VMCS, or (5.2+, where vmcs12 is copied from it) an eVMCS */
  hasValidVmcs12(): boolean {
    return this.currentVmptr !== INVALID_GPA || (this.profile.nested.evmcsFlag === 'when-active' && this.evmptr !== 'invalid');
  }

  evmcsMapped(): boolean {
    return typeof this.evmptr === 'bigint';
  }

  /** free_nested(): everything nested goes, the eVMCS is released */
  freeNested(): void {
    this.vmxon = false;
    this.smm = { vmxon: false, guestMode: false };
    this.vmxonPtr = INVALID_GPA;
    this.currentVmptr = INVALID_GPA;
    this.evmptr = 'invalid';
    this.needVmcs12ToShadowSync = false;
    this.statePagesRequested = false;
  }

  /** vmx_leave_nested(): force a VM-exit to L1, then free_nested() */
  leaveNested(): void {
    if (this.guestMode) this.vmexit(0xffff_ffffn);
    this.nestedRunPending = false;
    this.freeNested();
  }

  /** nested_vmx_vmexit to L1; the model also forgets the L2's preemption-timer deadline here. */
  vmexit(reason: bigint): void {
    this.exitToL1(reason);
    this.hasPreemptionTimerDeadline = false;
  }

  /**
   * What every nested_vmx_vmexit does, the -1 of SMM entry and of vmx_leave_nested (SET, F12)
   * included. A pending MTF trap is discarded (F6). A pending KVM_REQ_GET_NESTED_STATE_PAGES is
   * served first, so an exit forced before the first KVM_RUN after a restore still looks up a pending
   * eVMCS (clearing its hv_clean_fields in guest memory; a failure is ignored). vmcs02 is synced into
   * vmcs12 on every exit, -1 included (F8). A real exit then runs prepare_vmcs12 and schedules the
   * eVMCS sync. Last, the cached shadow vmcs12 is written to guest memory at the link pointer
   * (nested_flush_cached_shadow_vmcs12, F12).
   */
  exitToL1(reason: bigint): void {
    this.mtfPending = false;
    if (this.statePagesRequested) {
      this.statePagesRequested = false;
      getEvmcsPage(this);
    }
    this.guestMode = false;
    this.nestedRunPending = false;
    syncVmcs02ToVmcs12(this);
    if (reason !== 0xffff_ffffn) {
      prepareVmcs12(this.vmcs12, reason);
      if (this.evmcsMapped()) this.needVmcs12ToShadowSync = true;
    }
    const link = this.linkPointer();
    if (this.usesShadowVmcs() && link !== INVALID_GPA) this.writeGuest(link, this.shadowVmcs12);
    // load_vmcs12_host_state: DR7 to its reset value; EFER from vmcs12's host state or, without
    // that control, the vCPU's with the long-mode bits of the host address-space size
    const exit = Number(VMCS12.read(this.vmcs12, 'vm_exit_controls'));
    this.dr7 = DR7_RESET;
    this.interruptibility = 0n; // a VM-exit leaves L1 with no STI or MOV-SS blocking
    this.efer = exit & BIT.exit.loadEfer ? VMCS12.read(this.vmcs12, 'host_ia32_efer') : withLongMode(this.efer, (exit & BIT.exit.hostAddrSpace) !== 0);
    // and every exit, the -1 of SMM entry and of vmx_leave_nested too, makes the vCPU RUNNABLE ("in
    // case we halted in L2")
    this.mpState = MP_STATE.RUNNABLE;
  }

  /** Stores bytes at a guest-physical address (a region need not be page-aligned: it then spans two pages). */
  writeGuest(gpa: bigint, bytes: Uint8Array): void {
    const at = Number(gpa & 0xfffn);
    const first = VMCS12_SIZE - at;
    this.page(gpa - BigInt(at)).set(bytes.subarray(0, first), at);
    if (bytes.length > first) this.page(gpa - BigInt(at) + BigInt(VMCS12_SIZE)).set(bytes.subarray(first));
  }
}

export type GuestOp =
  | { op: 'enable-evmcs' }
  | { op: 'vmxon'; pa: bigint }
  | { op: 'vmxoff' }
  | { op: 'init-vmcs'; pa: bigint; shadow?: boolean }
  | { op: 'vmptrld'; pa: bigint }
  | { op: 'vmclear'; pa: bigint }
  | { op: 'vmwrite'; field: bigint; value: bigint }
  | { op: 'vmread'; field: bigint }
  | { op: 'vmlaunch' }
  | { op: 'vmresume' }
  | { op: 'init-evmcs'; pa: bigint; revision?: number }
  | { op: 'set-vp-assist'; currentNestedVmcs: bigint; enlightenVmentry: boolean }
  | { op: 'evmcs-entry'; launch: boolean }
  | { op: 'vmexit'; reason: bigint }
  | { op: 'mtf' }
  | { op: 'smm-entry' }
  | { op: 'rsm' }
  | { op: 'run' }
  /** the VMM's KVM_GET_MP_STATE: the value is the run state (MP_STATE) */
  | { op: 'get-mp-state' }
  /** the VMM's KVM_SET_MP_STATE (a VMM restores it after the nested state) */
  | { op: 'set-mp-state'; state: number }
  /** the guest (or the VMM restoring guest memory) stores 8 bytes at a guest-physical address */
  | { op: 'write-memory'; pa: bigint; value: bigint };

/**
 * nested_vmx_fail: VMfailValid records its error in the current VMCS; with none (no vmcs12 and no
 * eVMCS) there is nowhere to record it, and the instruction is VMfailInvalid instead (quirk
 * VMFAIL_VALID_WITHOUT_VMCS; seen on real KVM: a second VMXON before any VMPTRLD is VMfailInvalid).
 * The error lands in the cached vmcs12's vm_instruction_error, where GET and VMREAD see it (F7,
 * seen on real KVM 6.12: a VMWRITE of an unknown encoding leaves 12 there). With an eVMCS set
 * (mapped, or map-pending: 6.1 tests `!= EVMPTR_INVALID`, 6.12 `nested_vmx_is_evmptr12_set`, the
 * same) nested_vmx_failValid also schedules the vmcs12 -> eVMCS sync ("Enlightened VMCS 'shadows'
 * all fields"), so the next KVM_RUN copies the error into the eVMCS, where L1 reads it (F7, the
 * eVMCS side), and GET until then shows the vmcs12 without copying the eVMCS in.
 */
function failValid(v: Vcpu, reason: string, error: number, check?: string): OpResult {
  if (v.currentVmptr === INVALID_GPA && !v.evmcsMapped()) return { result: 'VMfailInvalid', reason: `${reason} (no current VMCS to hold error ${error})` };
  recordInstructionError(accessTableFor(v.profile.vmcs12), v.vmcs12, error);
  if (v.evmptr !== 'invalid') v.needVmcs12ToShadowSync = true;
  return { result: 'VMfailValid', reason, error, ...(check !== undefined ? { check } : {}) };
}

const ok = (value?: bigint): OpResult => (value === undefined ? { result: 'ok' } : { result: 'ok', value });
const fail = (result: Exclude<OpResult['result'], 'ok' | 'vmexit' | 'not-retired'>, reason: string, error?: number): OpResult => ({ result, reason, ...(error !== undefined ? { error } : {}) });

function vmentry(v: Vcpu, launch: boolean): OpResult {
  // nested_vmx_run: a current VMCS whose header has the shadow bit cannot be entered, before any other check (F3)
  if (hdrShadow(VMCS12.read(v.vmcs12, 'hdr'))) return fail('VMfailInvalid', `${launch ? 'VMLAUNCH' : 'VMRESUME'} of a shadow VMCS (header bit 31)`);
  // `launch_state == launch`: a u32 compared with a bool, so only 1 stops VMLAUNCH and only 0 stops
  // VMRESUME; any other value enters either way (F9, quirk Q4)
  const launchState = VMCS12.read(v.vmcs12, 'launch_state');
  if (launch && launchState === 1n) return failValid(v, 'VMLAUNCH of a launched VMCS', VMXERR.VMLAUNCH_NONCLEAR_VMCS);
  if (!launch && launchState === 0n) return failValid(v, 'VMRESUME of a VMCS that was not launched', VMXERR.VMRESUME_NONLAUNCHED_VMCS);
  const bad = v.hooks.vmentryChecks(v, v.vmcs12, true);
  if (bad && (bad.stage === 'controls' || bad.stage === 'host' || bad.stage === undefined))
    return failValid(v, `VM-entry check ${bad.rule}`, bad.stage === 'host' ? VMXERR.ENTRY_INVALID_HOST_STATE_FIELD : VMXERR.ENTRY_INVALID_CONTROL_FIELD, bad.rule);
  // the MSR-load list runs after prepare_vmcs02: its entries up to a failing one are written
  if (!bad || bad.stage === 'msr-load') applyEntryMsrLoad(v);
  if (bad) return entryFailureExit(v, bad.rule, entryFailureReason(bad.stage), bad.qualification ?? 0);
  loadL2Registers(v, true);
  // launch_state stays as it is until L2 exits to L1 (F5: prepare_vmcs12 sets it, see Vcpu.vmexit)
  // nested_cache_shadow_vmcs12: the shadow vmcs12 is read from the link pointer's page on entry
  const link = v.linkPointer();
  if (v.usesShadowVmcs() && link !== INVALID_GPA && v.pageAddressValid(link)) v.shadowVmcs12 = v.page(link).slice();
  v.guestMode = true;
  v.nestedRunPending = true;
  v.hasPreemptionTimerDeadline = false; // nested_vmx_run: a new entry, a new deadline
  startPreemptionTimer(v);
  // nested_vmx_run: an L2 entered in wait-for-SIPI, or halted with nothing to wake it, is not "run
  // pending", and the vCPU's run state says so (GET in guest mode reads the activity state back from it)
  const activity = VMCS12.read(v.vmcs12, 'guest_activity_state');
  if (activity === 3n || (activity === 1n && !wakeEventPending(v.vmcs12))) {
    v.nestedRunPending = false;
    v.mpState = activity === 3n ? MP_STATE.INIT_RECEIVED : MP_STATE.HALTED;
  }
  return ok();
}

/** an injected event, NMI-window exiting, or interrupt-window exiting with RFLAGS.IF */
function wakeEventPending(vmcs12: Uint8Array): boolean {
  const proc = Number(VMCS12.read(vmcs12, 'cpu_based_vm_exec_control'));
  const injected = (Number(VMCS12.read(vmcs12, 'vm_entry_intr_info_field')) & INTR.VALID) !== 0;
  return injected || (proc & BIT.proc.nmiWindow) !== 0 || ((proc & BIT.proc.intrWindow) !== 0 && (VMCS12.read(vmcs12, 'guest_rflags') & RFLAGS_IF) !== 0n);
}

/**
 * A guest-state, prepare_vmcs02 or MSR-load failure on VMLAUNCH/VMRESUME: L1 gets a VM-exit with
 * the VM-entry-failure bit (invalid guest state, or MSR loading), the exit qualification says why;
 * the VMCS is not marked launched and L2 never runs.
 */
function entryFailureExit(v: Vcpu, rule: string, reason: number, qualification: number): OpResult {
  VMCS12.write(v.vmcs12, 'vm_exit_reason', BigInt(reason));
  VMCS12.write(v.vmcs12, 'exit_qualification', BigInt(qualification));
  if (v.evmcsMapped()) v.needVmcs12ToShadowSync = true;
  const what = reason === entryFailureReason('msr-load') ? 'MSR loading' : 'invalid guest state';
  return { result: 'vmexit', error: reason, reason: `VM-entry failure (${what}, qualification ${qualification}): ${rule}`, check: rule, qualification };
}

/** nested_vmx_run with an eVMCS in use: its fields are copied into vmcs12 by its clean fields; it has no launch state. */
function copyEvmcsIn(v: Vcpu, launch: boolean): void {
  const page = v.page(v.evmptr as bigint);
  const clean = Number(EVMCS.read(page, 'hv_clean_fields'));
  v.vmcs12 = copyEnlightenedToVmcs12(page.subarray(0, 1024), v.vmcs12, clean, { enlightenmentsGroup: v.profile.evmcs?.enlightenmentsGroup ?? false }).vmcs12;
  VMCS12.write(v.vmcs12, 'launch_state', launch ? 0n : 1n); // = !launch
}

/** Runs one guest (or VMM) operation. KVM's answer comes back; the vCPU changes in place. */
export function applyOp(v: Vcpu, o: GuestOp): OpResult {
  const table = accessTableFor(v.profile.vmcs12);
  switch (o.op) {
    case 'enable-evmcs':
      if (v.profile.nested.evmcsFlag === 'none') return fail('ENOTTY', 'KVM_CAP_HYPERV_ENLIGHTENED_VMCS does not exist before 4.20');
      v.evmcsEnabled = true; // no way to turn it off again
      return ok();
    case 'vmxon':
      if (!v.nestedAllowed()) return fail('#UD', 'VMX is not allowed for this vCPU');
      if (v.inSmm) return fail('#UD', 'VMXON in SMM');
      if (v.vmxon) return failValid(v, 'already in VMX operation', VMXERR.VMXON_IN_VMX_ROOT_OPERATION);
      if (!v.pageAddressValid(o.pa)) return fail('VMfailInvalid', 'VMXON pointer is not a valid page address');
      // handle_vmxon reads the region's first 32 bits from guest memory (found on real KVM, kvm:debian-6.1)
      if (VMCS12.read(v.page(o.pa), 'hdr') !== BigInt(VMCS12_REVISION)) return fail('VMfailInvalid', 'the VMXON region does not start with VMCS12_REVISION');
      v.vmxon = true;
      v.vmxonPtr = o.pa;
      v.vmcs12 = new Uint8Array(VMCS12_SIZE); // enter_vmx_operation allocates zeroed caches
      v.shadowVmcs12 = new Uint8Array(VMCS12_SIZE);
      return ok();
    case 'vmxoff':
      if (!v.vmxon || v.guestMode) return fail('#UD', 'VMXOFF outside VMX root operation');
      v.freeNested();
      return ok();
    case 'init-vmcs': {
      const p = v.page(o.pa);
      p.fill(0);
      VMCS12.write(p, 'hdr', makeHdr(o.shadow ?? false));
      return ok();
    }
    case 'init-evmcs': {
      const p = v.page(o.pa);
      p.fill(0);
      EVMCS.write(p, 'revision_id', BigInt(o.revision ?? KVM_EVMCS_VERSION));
      return ok();
    }
    case 'set-vp-assist':
      v.vpAssist = { currentNestedVmcs: o.currentNestedVmcs, enlightenVmentry: o.enlightenVmentry };
      return ok();
    case 'vmptrld': {
      if (!v.vmxon || v.guestMode) return fail('#UD', 'VMPTRLD outside VMX root operation');
      if (!v.pageAddressValid(o.pa)) return failValid(v, 'VMPTRLD of an invalid address', VMXERR.VMPTRLD_INVALID_ADDRESS);
      if (o.pa === v.vmxonPtr) return failValid(v, 'VMPTRLD of the VMXON pointer', VMXERR.VMPTRLD_VMXON_POINTER);
      // handle_vmptrld (6.1 and 6.12 alike), after the address checks: "Forbid normal VMPTRLD if
      // Enlightened version was used" is a bare `return 1` while the eVMCS is mapped (not while it is
      // only map-pending): no VMfail, no state change, RIP not advanced (F11, real KVM: README K13)
      if (v.evmcsMapped()) return { result: 'not-retired', reason: 'VMPTRLD while an eVMCS is in use: KVM returns to L1 without completing the instruction; L1 executes it again' };
      // the header is read and checked only for a new pointer (a VMPTRLD of the current VMCS succeeds
      // whatever the guest wrote over its region since); a shadow VMCS is refused when the vCPU's
      // PROCBASED_CTLS2 does not offer VMCS shadowing (nested_cpu_has_vmx_shadow_vmcs), with the
      // revision's error number (F11, 6.1 and 6.12 alike)
      if (v.currentVmptr !== o.pa) {
        const page = v.page(o.pa);
        const hdr = VMCS12.read(page, 'hdr');
        if (hdrRevision(hdr) !== VMCS12_REVISION) return failValid(v, 'VMCS revision id mismatch', VMXERR.VMPTRLD_INCORRECT_VMCS_REVISION_ID);
        if (hdrShadow(hdr) && !(nestedCaps(v.config.vmxMsrs).proc2.may & BIT.proc2.shadowVmcs)) return failValid(v, 'a shadow VMCS, and the vCPU does not offer VMCS shadowing', VMXERR.VMPTRLD_INCORRECT_VMCS_REVISION_ID);
        if (v.currentVmptr !== INVALID_GPA) v.page(v.currentVmptr).set(v.vmcs12);
        v.currentVmptr = o.pa;
        v.vmcs12 = page.slice(); // the whole 4 KiB page is read from guest memory
      }
      return ok();
    }
    case 'vmclear': {
      if (!v.vmxon || v.guestMode) return fail('#UD', 'VMCLEAR outside VMX root operation');
      if (!v.pageAddressValid(o.pa)) return failValid(v, 'VMCLEAR of an invalid address', VMXERR.VMCLEAR_INVALID_ADDRESS);
      if (o.pa === v.vmxonPtr) return failValid(v, 'VMCLEAR of the VMXON pointer', VMXERR.VMCLEAR_VMXON_POINTER);
      // handle_vmclear (6.1 and 6.12 alike): with eVMCS for the guest and a VP-assist page naming an
      // eVMCS, the operand is taken for an eVMCS, whatever it is: no launch_state is written and the
      // current VMCS stays, even at that address; the eVMCS in use is released when it is the operand
      // (quirk VMCLEAR_OPERAND_TAKEN_FOR_EVMCS)
      if (v.guestCpuidHasEvmcs() && namedEvmcs(v) !== null) {
        if (v.evmcsMapped() && o.pa === v.evmptr) v.evmptr = 'invalid';
        return ok();
      }
      if (o.pa === v.currentVmptr) {
        v.page(o.pa).set(v.vmcs12);
        v.currentVmptr = INVALID_GPA;
      }
      VMCS12.write(v.page(o.pa), 'launch_state', 0n); // clear
      return ok();
    }
    case 'vmwrite': {
      if (!v.vmxon || v.guestMode) return fail('#UD', 'VMWRITE outside VMX root operation');
      if (v.currentVmptr === INVALID_GPA) return fail('VMfailInvalid', v.evmcsMapped() ? 'VMWRITE with an eVMCS: there is no current vmcs12' : 'no current VMCS');
      const r = vmwriteInstruction(table, v.vmcs12, o.field, o.value, { vmwriteAnyField: true });
      return r.ok ? ok() : failValid(v, r.reason, r.error);
    }
    case 'vmread': {
      if (!v.vmxon || v.guestMode) return fail('#UD', 'VMREAD outside VMX root operation');
      if (v.evmcsMapped()) {
        const r = evmcsVmread(v.page(v.evmptr as bigint), o.field); // the Windows 11 workaround
        return r.ok ? ok(r.value) : failValid(v, r.reason, r.error);
      }
      if (v.currentVmptr === INVALID_GPA) return fail('VMfailInvalid', 'no current VMCS');
      const r = vmread(table, v.vmcs12, o.field);
      return r.ok ? ok(r.value) : failValid(v, r.reason, r.error);
    }
    case 'vmlaunch':
    case 'vmresume': {
      if (!v.vmxon || v.guestMode) return fail('#UD', `${o.op.toUpperCase()} outside VMX root operation`);
      const launch = o.op === 'vmlaunch';
      const ev = enlightenedVmptrld(v, launch);
      if (ev.status === 'vmfail') return fail('VMfailInvalid', ev.why);
      if (!v.evmcsMapped() && v.currentVmptr === INVALID_GPA) return fail('VMfailInvalid', 'no current VMCS');
      if (v.evmcsMapped()) copyEvmcsIn(v, launch);
      return vmentry(v, launch);
    }
    case 'evmcs-entry':
      return applyOp(v, { op: o.launch ? 'vmlaunch' : 'vmresume' });
    case 'vmexit':
      if (!v.guestMode) return fail('#UD', 'no L2 is running');
      v.vmexit(o.reason);
      return ok();
    case 'mtf':
      if (!v.guestMode || !(Number(VMCS12.read(v.vmcs12, 'cpu_based_vm_exec_control')) & BIT.proc.mtf)) return fail('#UD', 'MTF needs L2 running with the monitor-trap-flag control');
      v.mtfPending = true;
      return ok();
    case 'smm-entry':
      if (v.inSmm) return fail('#UD', 'already in SMM');
      v.inSmm = true;
      if (v.vmxon) {
        v.smm.vmxon = true;
        v.vmxon = false;
      }
      if (v.guestMode) {
        // vmx_enter_smm: nested_vmx_vmexit(-1)
        v.smm.guestMode = true;
        v.exitToL1(0xffff_ffffn);
      }
      return ok();
    case 'rsm':
      if (!v.inSmm) return fail('#UD', 'RSM outside SMM');
      v.inSmm = false;
      if (v.smm.vmxon) {
        v.vmxon = true;
        v.smm.vmxon = false;
      }
      if (v.smm.guestMode) {
        // vmx_leave_smm: nested_vmx_enter_non_root_mode(from_vmentry = false) with the entry pending:
        // prepare_vmcs02 loads DR7 and EFER as a VMLAUNCH would, and the state pages are requested
        v.guestMode = true;
        v.nestedRunPending = true;
        v.smm.guestMode = false;
        v.statePagesRequested = true;
        loadL2Registers(v, true);
        startPreemptionTimer(v); // the deadline the L2 had (SMM entry keeps it)
      }
      return ok();
    case 'run':
      return run(v);
    case 'get-mp-state':
      return ok(BigInt(v.mpState));
    case 'set-mp-state':
      return setMpState(v, o.state);
    case 'write-memory':
      writeBytes(v.page(o.pa & ~0xfffn), Number(o.pa & 0xff8n), 8, o.value);
      return ok();
  }
}

/**
 * prepare_vmcs02's DR7 and EFER: vmcs12's guest values only for an entry that is pending (a
 * VMLAUNCH/VMRESUME, or a restore with RUN_PENDING) under the load controls; otherwise DR7 stays the
 * vCPU's and EFER is the vCPU's with the long-mode bits of the IA-32e entry control
 * (nested_vmx_calc_efer). So a restored L2 that has run shows the destination vCPU's registers until
 * the VMM restores them (real KVM 6.12, README K16). prepare_vmcs02_early loads the interruptibility
 * state from vmcs12 for a pending entry only, too (README K22).
 */
export function loadL2Registers(v: Vcpu, runPending: boolean): void {
  const entry = Number(VMCS12.read(v.vmcs12, 'vm_entry_controls'));
  if (runPending) v.interruptibility = VMCS12.read(v.vmcs12, 'guest_interruptibility_info');
  if (runPending && entry & BIT.entry.loadDebug) v.dr7 = VMCS12.read(v.vmcs12, 'guest_dr7');
  v.efer = runPending && entry & BIT.entry.loadEfer ? VMCS12.read(v.vmcs12, 'guest_ia32_efer') : withLongMode(v.efer, (entry & BIT.entry.ia32e) !== 0);
}

/**
 * sync_vmcs02_to_vmcs12 (and _rare), on GET in guest mode and on every nested VM-exit: the fields
 * whose vmcs02 value is not what vmcs12 put there (F8). The activity state from the run state (so a restored
 * L2 keeps HLT or wait-for-SIPI only when the VMM restores mp_state too: real KVM 6.12, README K15);
 * under the save controls DR7 and EFER from the vCPU's registers (K16) and the preemption timer's
 * remaining time unless an entry is pending; the guest-linear address from vmcs02's exit information
 * (VMCS02_EXIT_INFO_ZERO); the interruptibility state from the vCPU's (K22). The rest (registers,
 * segments, descriptor tables, …)
 * is what prepare_vmcs02 loaded, which the model's L2, running no code, never changes (README, model
 * assumptions on the guest path).
 */
export function syncVmcs02ToVmcs12(v: Vcpu): void {
  const activity = v.mpState === MP_STATE.HALTED ? 1n : v.mpState === MP_STATE.INIT_RECEIVED ? 3n : 0n;
  VMCS12.write(v.vmcs12, 'guest_activity_state', activity);
  const exit = Number(VMCS12.read(v.vmcs12, 'vm_exit_controls'));
  if (syncWritesTimerValue(v.vmcs12, v.nestedRunPending)) VMCS12.write(v.vmcs12, 'vmx_preemption_timer_value', preemptionTimerValue(v));
  VMCS12.write(v.vmcs12, 'guest_linear_address', VMCS02_EXIT_INFO.guestLinearAddress);
  VMCS12.write(v.vmcs12, 'guest_interruptibility_info', v.interruptibility);
  if (exit & BIT.exit.saveDebug) VMCS12.write(v.vmcs12, 'guest_dr7', v.dr7);
  if (exit & BIT.exit.saveEfer) VMCS12.write(v.vmcs12, 'guest_ia32_efer', v.efer);
}

/** sync_vmcs02_to_vmcs12 writes the timer's remaining time: the timer on, its save exit control, no entry pending. */
export function syncWritesTimerValue(vmcs12: Uint8Array, runPending: boolean): boolean {
  const pin = Number(VMCS12.read(vmcs12, 'pin_based_vm_exec_control'));
  return (pin & BIT.pin.preemption) !== 0 && (Number(VMCS12.read(vmcs12, 'vm_exit_controls')) & BIT.exit.savePreemption) !== 0 && !runPending;
}

/**
 * vmcs02's exit-information fields KVM copies into vmcs12 (prepare_vmcs12, sync_vmcs02_to_vmcs12).
 * Only the CPU writes them, on a VM-exit of L2 from hardware; the model's L2 runs no code and has none,
 * so they hold what a vmcs02 no exit has written (KVM allocates it zeroed): named assumption
 * VMCS02_EXIT_INFO_ZERO.
 */
const VMCS02_EXIT_INFO = { instructionLen: 0n, instructionInfo: 0n, guestLinearAddress: 0n } as const;

/**
 * prepare_vmcs12 for the VM-exits the model has: those KVM synthesizes for L1 with
 * nested_vmx_vmexit(reason, 0, 0) (the `vmexit` operation, the MTF exit), so qualification 0. Unless
 * the reason reports a failed VM-entry: launch_state = 1 (F5: KVM marks the VMCS launched here, not
 * at VM-entry); the injected event's VALID bit cleared ("vm_entry_intr_info_field is cleared on
 * exit"); IDT-vectoring 0 (vmcs12_save_pending_event: the model's exits come after the entry
 * delivered its event, so nothing is queued for re-injection); no interruption information; the
 * instruction length and information of vmcs02 (VMCS02_EXIT_INFO). The VM-exit MSR-store list is
 * not processed (README, model assumptions on the guest path).
 */
function prepareVmcs12(vmcs12: Uint8Array, reason: bigint): void {
  VMCS12.write(vmcs12, 'vm_exit_reason', reason);
  VMCS12.write(vmcs12, 'exit_qualification', 0n);
  if (reason & VMX_EXIT_REASONS_FAILED_VMENTRY) return;
  VMCS12.write(vmcs12, 'launch_state', 1n);
  VMCS12.write(vmcs12, 'vm_entry_intr_info_field', VMCS12.read(vmcs12, 'vm_entry_intr_info_field') & ~BigInt(INTR.VALID));
  VMCS12.write(vmcs12, 'idt_vectoring_info_field', 0n);
  VMCS12.write(vmcs12, 'vm_exit_intr_info', 0n);
  VMCS12.write(vmcs12, 'vm_exit_instruction_len', VMCS02_EXIT_INFO.instructionLen);
  VMCS12.write(vmcs12, 'vmx_instruction_info', VMCS02_EXIT_INFO.instructionInfo);
}

/**
 * nested_vmx_enter_non_root_mode (VMLAUNCH/VMRESUME, SET into L2, RSM into L2): with the preemption
 * timer on, the deadline is fixed at the entry, in L1 TSC units >> 5, unless one is set already (a
 * restored one, or the one RSM returns to): vmx_calc_preemption_timer_value.
 */
export function startPreemptionTimer(v: Vcpu): void {
  if (!(Number(VMCS12.read(v.vmcs12, 'pin_based_vm_exec_control')) & BIT.pin.preemption) || v.hasPreemptionTimerDeadline) return;
  v.hasPreemptionTimerDeadline = true;
  v.preemptionTimerDeadline = (v.tsc >> PREEMPTION_TIMER_RATE) + VMCS12.read(v.vmcs12, 'vmx_preemption_timer_value');
}

/**
 * vmx_get_preemption_timer_value: the hrtimer's remaining time, in L1 TSC units >> 5, 0 once it has
 * run out, as a u32. On real hardware it depends on when GET runs; the model's clock is L1's TSC,
 * which only KVM_RUN advances (README: PREEMPTION_TIMER_VALUE_AT_GET).
 */
function preemptionTimerValue(v: Vcpu): bigint {
  const now = v.tsc >> PREEMPTION_TIMER_RATE;
  return v.preemptionTimerDeadline > now ? (v.preemptionTimerDeadline - now) & 0xffff_ffffn : 0n;
}

/**
 * kvm_arch_vcpu_ioctl_set_mpstate (6.1 = 6.12): RUNNABLE always; the others need the in-kernel APIC
 * (which the vCPU has); INIT_RECEIVED is refused where INIT is blocked: in SMM, or in VMX root
 * operation outside L2. SIPI_RECEIVED also queues a SIPI the model does not carry: the guest-ops
 * schema does not offer it.
 */
function setMpState(v: Vcpu, state: number): OpResult {
  const known: number[] = [MP_STATE.RUNNABLE, MP_STATE.UNINITIALIZED, MP_STATE.HALTED, MP_STATE.INIT_RECEIVED, MP_STATE.AP_RESET_HOLD];
  if (!known.includes(state)) return fail('EINVAL', `KVM_SET_MP_STATE: ${state} is not an x86 run state`);
  if (state === MP_STATE.INIT_RECEIVED && (v.inSmm || (v.vmxon && !v.guestMode))) return fail('EINVAL', 'KVM_SET_MP_STATE: INIT_RECEIVED while INIT is blocked (SMM, or VMX root operation)');
  v.mpState = state;
  return ok();
}

/**
 * nested_get_evmcs_page: with eVMCS for the guest, a map-pending eVMCS is looked up in the VP-assist
 * page (F4): found, it is mapped and the restored vmcs12 is to be written into it; named nowhere, it
 * is released; with a wrong revision it is released and the lookup fails. Without eVMCS for the
 * guest (no Hyper-V CPUID) it stays pending.
 */
function getEvmcsPage(v: Vcpu): { readonly ok: true } | { readonly ok: false; readonly why: string } {
  if (!v.guestCpuidHasEvmcs() || v.evmptr !== 'map-pending') return { ok: true };
  const r = enlightenedVmptrld(v, false);
  if (r.status === 'vmfail') return { ok: false, why: r.why };
  v.needVmcs12ToShadowSync = true;
  return { ok: true };
}

/**
 * KVM_RUN: serve KVM_REQ_GET_NESTED_STATE_PAGES (a failed eVMCS lookup is KVM_EXIT_INTERNAL_ERROR for
 * this KVM_RUN only: the eVMCS is released by then; whether the request is made again is the
 * profile's), sync vmcs12 into the eVMCS, enter L2 if a VM-entry is pending.
 */
function run(v: Vcpu): OpResult {
  // a vCPU that is not RUNNABLE (a halted or wait-for-SIPI L2) blocks in vcpu_block until the VMM's
  // signal: it never reaches vcpu_enter_guest, where the requests and the entry below are handled
  if (v.mpState !== MP_STATE.RUNNABLE) return ok();
  if (v.statePagesRequested) {
    v.statePagesRequested = false;
    const pages = getEvmcsPage(v);
    if (!pages.ok) {
      v.statePagesRequested = v.profile.nested.statePagesRequeuedOnFailure;
      return fail('internal-error', `KVM_EXIT_INTERNAL_ERROR: the restored eVMCS cannot be mapped (${pages.why}); it is released`);
    }
  }
  if (v.needVmcs12ToShadowSync && v.evmcsMapped()) {
    const page = v.page(v.evmptr as bigint);
    page.set(copyVmcs12ToEnlightened(v.vmcs12, page.subarray(0, 1024)));
    v.needVmcs12ToShadowSync = false;
  }
  v.tsc += 0x1000n;
  if (v.guestMode && v.nestedRunPending) {
    v.nestedRunPending = false;
  } else if (v.guestMode && v.mtfPending) {
    v.mtfPending = false;
    v.vmexit(37n); // the pending MTF VM-exit is delivered
  }
  return ok();
}
