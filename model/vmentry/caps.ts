// The nested VMX capabilities the VM-entry checks read (vmx->nested.msrs in KVM), from a vCPU's
// capability MSR set. A set may be partial (generated sets carry only the control MSRs): an MSR it
// lacks takes its value from DEFAULT_VMX_MSRS.
import { controlBit, type ControlClass } from '../catalog/vmx-controls.js';
import { VMCS12_REVISION } from '../catalog/vmcs12.js';
import { ALWAYSON, MSR, type MsrSet } from '../vmx-msrs.js';
import { BIT } from './bits.js';

const join = (low: number, high: number): bigint => (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
const or = (...bits: number[]): number => bits.reduce((a, b) => (a | b) >>> 0, 0);
/** control bits by their names in the controls table (model/catalog/vmx-controls.ts) */
const named = (c: ControlClass, ...names: string[]): number => or(...names.map((n) => controlBit(c, n)));

/** IA32_VMX_BASIC: VMCS12_REVISION in bits 30:0; a 4 KiB region, WB, INS/OUTS info, TRUE MSRs above it. */
export const DEFAULT_VMX_BASIC = (0x00d8_1000n << 32n) | BigInt(VMCS12_REVISION);

/** CR4 bits a guest whose CPUID offers VME, TSC, DE, PSE, PAE, MCE, PGE, FXSR, XMM, VMX, PCID, XSAVE,
 * FSGSBASE, SMEP, SMAP, PKU and UMIP (and not SMX, LA57, LAM) may set: KVM's CR4 fixed-1 for it. */
export const DEFAULT_CR4_FIXED1 = 0x0077_2fffn;

/**
 * The default capability set: what KVM's nested_vmx_setup_*_ctls advertise on a host offering every
 * feature they pass through (APICv, EPT with A/D bits, VPID, unrestricted guest, VMFUNC; no SGX, no
 * 5-level EPT). TRUE MSRs hold the real allowed-0 bits; the others add the default-1 bits.
 */
export const DEFAULT_VMX_MSRS: MsrSet = (() => {
  const pinHigh = or(ALWAYSON.pin, BIT.pin.extIntr, BIT.pin.nmi, BIT.pin.vnmi, BIT.pin.preemption, BIT.pin.posted);
  const cr3Exiting = named('proc', 'CPU_BASED_CR3_LOAD_EXITING', 'CPU_BASED_CR3_STORE_EXITING');
  const procHigh = or(
    ALWAYSON.proc,
    BIT.proc.intrWindow,
    BIT.proc.nmiWindow,
    cr3Exiting,
    named('proc', 'CPU_BASED_USE_TSC_OFFSETTING', 'CPU_BASED_HLT_EXITING', 'CPU_BASED_INVLPG_EXITING', 'CPU_BASED_MWAIT_EXITING', 'CPU_BASED_CR8_LOAD_EXITING', 'CPU_BASED_CR8_STORE_EXITING'),
    named('proc', 'CPU_BASED_MOV_DR_EXITING', 'CPU_BASED_UNCOND_IO_EXITING', 'CPU_BASED_MONITOR_EXITING', 'CPU_BASED_RDPMC_EXITING', 'CPU_BASED_RDTSC_EXITING', 'CPU_BASED_PAUSE_EXITING'),
    BIT.proc.ioBitmaps,
    BIT.proc.mtf,
    BIT.proc.tprShadow,
    BIT.proc.secondary,
    BIT.proc.msrBitmaps,
  );
  const procLow = (ALWAYSON.proc & ~cr3Exiting) >>> 0; // CR3-load/store exiting may be 0
  const proc2High = or(
    named('proc2', 'SECONDARY_EXEC_DESC', 'SECONDARY_EXEC_ENABLE_RDTSCP', 'SECONDARY_EXEC_WBINVD_EXITING', 'SECONDARY_EXEC_RDRAND_EXITING', 'SECONDARY_EXEC_ENABLE_INVPCID'),
    named('proc2', 'SECONDARY_EXEC_RDSEED_EXITING', 'SECONDARY_EXEC_ENABLE_XSAVES', 'SECONDARY_EXEC_TSC_SCALING', 'SECONDARY_EXEC_ENABLE_USR_WAIT_PAUSE'),
    BIT.proc2.x2apic,
    BIT.proc2.apicRegVirt,
    BIT.proc2.vid,
    BIT.proc2.vmfunc,
    BIT.proc2.shadowVmcs,
    BIT.proc2.ept,
    BIT.proc2.pml,
    BIT.proc2.vpid,
    BIT.proc2.unrestricted,
    BIT.proc2.apicAccess,
  );
  const exitHigh = or(
    ALWAYSON.exit,
    named('exit', 'VM_EXIT_SAVE_IA32_PAT', 'VM_EXIT_CLEAR_BNDCFGS', 'VM_EXIT_SAVE_IA32_EFER'),
    BIT.exit.hostAddrSpace,
    BIT.exit.loadPat,
    BIT.exit.loadEfer,
    BIT.exit.savePreemption,
    BIT.exit.ackIntr,
    BIT.exit.loadPerf,
  );
  const entryHigh = or(ALWAYSON.entry, BIT.entry.ia32e, BIT.entry.loadPat, BIT.entry.loadBndcfgs, BIT.entry.loadEfer, BIT.entry.loadPerf);
  const exitLow = (ALWAYSON.exit & ~BIT.exit.saveDebug) >>> 0;
  const entryLow = (ALWAYSON.entry & ~BIT.entry.loadDebug) >>> 0;
  return new Map<number, bigint>([
    [MSR.BASIC, DEFAULT_VMX_BASIC],
    [MSR.PINBASED_CTLS, join(ALWAYSON.pin, pinHigh)],
    [MSR.PROCBASED_CTLS, join(ALWAYSON.proc, procHigh)],
    [MSR.EXIT_CTLS, join(ALWAYSON.exit, exitHigh)],
    [MSR.ENTRY_CTLS, join(ALWAYSON.entry, entryHigh)],
    // SAVE_EFER_LMA, preemption-timer rate 5, HLT and WAIT-FOR-SIPI, VMWRITE to any field; no CR3 targets
    [MSR.MISC, 0x2000_0165n],
    [MSR.CR0_FIXED0, 0x8000_0021n],
    [MSR.CR0_FIXED1, 0xffff_ffffn],
    [MSR.CR4_FIXED0, 0x2000n],
    [MSR.CR4_FIXED1, DEFAULT_CR4_FIXED1],
    [MSR.VMCS_ENUM, 0x32n],
    [MSR.PROCBASED_CTLS2, join(0, proc2High)],
    // EPT: execute-only, 4-level walks, WB, INVEPT (single, global), 2M/1G pages, A/D; VPID caps above
    [MSR.EPT_VPID_CAP, 0x0000_0f01_0633_4041n],
    [MSR.TRUE_PINBASED_CTLS, join(ALWAYSON.pin, pinHigh)],
    [MSR.TRUE_PROCBASED_CTLS, join(procLow, procHigh)],
    [MSR.TRUE_EXIT_CTLS, join(exitLow, exitHigh)],
    [MSR.TRUE_ENTRY_CTLS, join(entryLow, entryHigh)],
    [MSR.VMFUNC, 1n],
  ]);
})();

/** One control class: bits that must be 1 (allowed-0 half) and bits that may be 1 (allowed-1 half). */
export interface Allowed {
  readonly must: number;
  readonly may: number;
}

export interface NestedCaps {
  readonly pin: Allowed;
  readonly proc: Allowed;
  readonly proc2: Allowed;
  readonly exit: Allowed;
  readonly entry: Allowed;
  readonly misc: bigint;
  readonly cr0Fixed0: bigint;
  readonly cr0Fixed1: bigint;
  readonly cr4Fixed0: bigint;
  readonly cr4Fixed1: bigint;
  readonly eptCaps: bigint;
  readonly vmfunc: bigint;
}

/** vmx->nested.msrs from an MSR set: the TRUE MSRs where present (KVM checks against them). */
export function nestedCaps(msrs: MsrSet | undefined): NestedCaps {
  const get = (i: number): bigint => msrs?.get(i) ?? DEFAULT_VMX_MSRS.get(i)!;
  const ctl = (trueIdx: number, idx: number): Allowed => {
    const v = msrs?.get(trueIdx) ?? msrs?.get(idx) ?? DEFAULT_VMX_MSRS.get(trueIdx)!;
    return { must: Number(v & 0xffff_ffffn), may: Number(v >> 32n) };
  };
  return {
    pin: ctl(MSR.TRUE_PINBASED_CTLS, MSR.PINBASED_CTLS),
    proc: ctl(MSR.TRUE_PROCBASED_CTLS, MSR.PROCBASED_CTLS),
    proc2: ctl(MSR.PROCBASED_CTLS2, MSR.PROCBASED_CTLS2),
    exit: ctl(MSR.TRUE_EXIT_CTLS, MSR.EXIT_CTLS),
    entry: ctl(MSR.TRUE_ENTRY_CTLS, MSR.ENTRY_CTLS),
    misc: get(MSR.MISC),
    cr0Fixed0: get(MSR.CR0_FIXED0),
    cr0Fixed1: get(MSR.CR0_FIXED1),
    cr4Fixed0: get(MSR.CR4_FIXED0),
    cr4Fixed1: get(MSR.CR4_FIXED1),
    eptCaps: get(MSR.EPT_VPID_CAP) & 0xffff_ffffn,
    vmfunc: get(MSR.VMFUNC),
  };
}

/** vmx_control_verify: every must-be-1 bit set, nothing outside the may-be-1 bits. */
export const controlOk = (value: number, a: Allowed): boolean => ((value & a.may) | a.must) >>> 0 === value >>> 0;

/** Where a control word fails controlOk, for people: bits set beyond may-be-1 (`unoffered`), must-be-1 bits clear (`required`). */
export const outsideAllowed = (value: number, a: Allowed): { readonly unoffered: number; readonly required: number } => ({ unoffered: (value & ~a.may) >>> 0, required: (a.must & ~value) >>> 0 });

/** IA32_VMX_MISC bits 24:16: how many CR3-target values the vCPU supports. */
export const cr3TargetCount = (c: NestedCaps): number => Number((c.misc >> 16n) & 0x1ffn);
