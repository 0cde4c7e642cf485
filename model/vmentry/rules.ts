// KVM's VM-entry consistency checks on a vmcs12, one rule per condition, in the order KVM evaluates
// them (the first failure decides). Facts from Debian's linux-source 6.1 and 6.12, arch/x86/kvm/vmx/
// nested.c; what differs between kernels is data, the profile's VmentryRevision (revision.ts): two
// CET/WP rules, the FREEZE_IN_SMM quirk and whose canonical width the MSR and base checks use. Stages:
//   controls -> VMfailValid 7 on VMLAUNCH/VMRESUME, -EINVAL (V14) on restore
//   host     -> VMfailValid 8,                      -EINVAL (V14)
//   guest    -> VM-exit "invalid guest state" (0x80000021) with an exit qualification, -EINVAL (V14)
//   prepare  -> (prepare_vmcs02) VM-exit 0x80000021,  the positive 2 on restore (S8); its guest
//               segment checks (segments.ts) on VMLAUNCH/VMRESUME only
//   msr-load -> (the VM-entry MSR-load list, msr-load.ts) VM-exit 0x80000022, VMLAUNCH/VMRESUME only
import { evmcsCheckControls } from '../vmx-msrs.js';
import type { CheckRule } from '../catalog/vmx-controls.js';
import { BIT, CR0, CR4, EFER, EPT_CAP, EXCEPTIONS_WITH_ERROR_CODE, INTR, INTR_TYPE, MISC } from './bits.js';
import { controlOk, cr3TargetCount } from './caps.js';
import { canonical, fixedBitsValid, GUEST_CPU, patValid } from './guest-cpu.js';
import type { View } from './input.js';
import type { Stage, VmentryRule } from './rule.js';
import { readBytes } from '../vmcs12-access.js';
import { hdrRevision, hdrShadow, VMCS12 } from '../catalog/by-name.js';
import { VMCS12_REVISION } from '../catalog/vmcs12.js';
import type { Profile } from '../profiles.js';
import type { VmentryRevision } from './revision.js';
import { segmentRules } from './segments.js';
import { walkEntryMsrLoad, type MsrLoadFailure } from './msr-load.js';

export type { Stage, VmentryRule } from './rule.js';

const f = (v: View, m: string) => v.s.f(m);
const r = (id: string, stage: Stage, fn: string, desc: string, fails: (v: View) => boolean, extra: Partial<VmentryRule> = {}): VmentryRule => ({ id, stage, fn, desc, fails, ...extra });

const EXEC = 'nested_check_vm_execution_controls';
const APICV = 'nested_vmx_check_apicv_controls';
const EPTP = 'nested_vmx_check_eptp';
const ENTRY = 'nested_check_vm_entry_controls';
const HOST = 'nested_vmx_check_host_state';
const GUEST = 'nested_vmx_check_guest_state';
const LINK = 'nested_vmx_check_vmcs_link_ptr';

// --- helpers over the vCPU's capabilities and the guest CPU model -------------------------------
const cr4Valid = (v: View, cr4: bigint) => fixedBitsValid(cr4, v.s.caps.cr4Fixed0, v.s.caps.cr4Fixed1) && (cr4 & ~GUEST_CPU.cr4Valid) === 0n;
const guestCr0Fixed0 = (v: View) =>
  v.s.caps.proc2.may & BIT.proc2.unrestricted && v.has2(BIT.proc2.unrestricted) ? v.s.caps.cr0Fixed0 & ~(CR0.PE | CR0.PG) : v.s.caps.cr0Fixed0;
const eferValid = (e: bigint) => (e & ~GUEST_CPU.eferValid) === 0n;
const perfValid = (p: bigint) => (p & ~GUEST_CPU.perfGlobalCtrlValid) === 0n;
const bit = (x: bigint, b: bigint) => (x & b) !== 0n;
const intr = (v: View) => Number(f(v, 'vm_entry_intr_info_field'));
const injecting = (v: View) => (intr(v) & INTR.VALID) !== 0;
const intrType = (v: View) => (intr(v) & INTR.TYPE_MASK) >> 8;
const intrVector = (v: View) => intr(v) & INTR.VECTOR_MASK;
const shouldHaveErrorCode = (v: View) =>
  intrType(v) === INTR_TYPE.HARD_EXCEPTION && (!v.has2(BIT.proc2.unrestricted) || bit(f(v, 'guest_cr0'), CR0.PE)) && ((EXCEPTIONS_WITH_ERROR_CODE >>> intrVector(v)) & 1) === 1;
const softEvent = (v: View) => [INTR_TYPE.SOFT_EXCEPTION, INTR_TYPE.SOFT_INTR, INTR_TYPE.PRIV_SW_EXCEPTION].includes(intrType(v) as 4);
const eptp = (v: View) => f(v, 'ept_pointer');
const eptCap = (v: View, c: bigint) => (v.s.caps.eptCaps & c) !== 0n;
const HOST_SELECTORS = ['host_cs_selector', 'host_ss_selector', 'host_ds_selector', 'host_es_selector', 'host_fs_selector', 'host_gs_selector', 'host_tr_selector'];
const HOST_BASES = ['host_fs_base', 'host_gs_base', 'host_gdtr_base', 'host_idtr_base', 'host_tr_base'];
const linkPtr = (v: View) => f(v, 'vmcs_link_pointer');
const linkHdr = (v: View) => VMCS12.read(v.s.guestPage(linkPtr(v)), 'hdr');
const debugctlValid = (v: View, freezeQuirk: boolean) => {
  const d = f(v, 'guest_ia32_debugctl') & ~(freezeQuirk ? GUEST_CPU.debugctlFreezeInSmm : 0n);
  return (d & ~GUEST_CPU.debugctlValid) === 0n;
};
/** is_pae_paging for L2 on entry: not long mode (= IA-32e guest, which EFER.LMA must match), PG and PAE */
const paePaging = (v: View) => !v.guestIa32e && bit(f(v, 'guest_cr0'), CR0.PG) && bit(f(v, 'guest_cr4'), CR4.PAE);
/** load_pdptrs: a present PDPTE with reserved bits (2:1, 8:5, MAXPHYADDR..63) fails */
const pdpteBad = (v: View) => {
  const cr3 = f(v, 'guest_cr3') & 0xffff_ffe0n;
  const page = v.s.guestPage(cr3 & ~0xfffn);
  const rsvd = 0x1e6n | (((1n << 64n) - 1n) >> BigInt(v.s.maxPhyAddr)) << BigInt(v.s.maxPhyAddr);
  for (let i = 0; i < 4; i++) {
    const e = readBytes(page, Number(cr3 & 0xfffn) + i * 8, 8);
    if (e & 1n && e & rsvd) return true;
  }
  return false;
};

// --- the table ----------------------------------------------------------------------------------
const CONTROLS: readonly VmentryRule[] = [
  r('ctl.pin', 'controls', EXEC, 'pin-based controls outside the allowed-0/1 settings', (v) => !controlOk(v.pin, v.s.caps.pin)),
  r('ctl.proc', 'controls', EXEC, 'primary processor-based controls outside the allowed-0/1 settings', (v) => !controlOk(v.proc, v.s.caps.proc)),
  r('ctl.proc2', 'controls', EXEC, 'secondary controls (when activated) outside the allowed-0/1 settings', (v) => v.has(BIT.proc.secondary) && !controlOk(v.proc2, v.s.caps.proc2)),
  r('ctl.cr3-target-count', 'controls', EXEC, 'CR3-target count above IA32_VMX_MISC[24:16]', (v) => f(v, 'cr3_target_count') > BigInt(cr3TargetCount(v.s.caps))),
  r('ctl.io-bitmap-a', 'controls', 'nested_vmx_check_io_bitmap_controls', 'use I/O bitmaps: I/O bitmap A not a valid page address', (v) => v.has(BIT.proc.ioBitmaps) && !v.page(f(v, 'io_bitmap_a'))),
  r('ctl.io-bitmap-b', 'controls', 'nested_vmx_check_io_bitmap_controls', 'use I/O bitmaps: I/O bitmap B not a valid page address', (v) => v.has(BIT.proc.ioBitmaps) && !v.page(f(v, 'io_bitmap_b'))),
  r('ctl.msr-bitmap', 'controls', 'nested_vmx_check_msr_bitmap_controls', 'use MSR bitmaps: MSR bitmap not a valid page address', (v) => v.has(BIT.proc.msrBitmaps) && !v.page(f(v, 'msr_bitmap'))),
  r('ctl.virtual-apic-page', 'controls', 'nested_vmx_check_tpr_shadow_controls', 'TPR shadow: virtual-APIC page not a valid page address', (v) => v.has(BIT.proc.tprShadow) && !v.page(f(v, 'virtual_apic_page_addr'))),
  r('ctl.apic-access-page', 'controls', 'nested_vmx_check_apic_access_controls', 'virtualize APIC accesses: APIC-access page not a valid page address', (v) => v.has2(BIT.proc2.apicAccess) && !v.page(f(v, 'apic_access_addr'))),
  r('ctl.apicv.x2apic-and-apic-access', 'controls', APICV, 'virtualize x2APIC mode together with virtualize APIC accesses', (v) => v.apicv && v.has2(BIT.proc2.x2apic) && v.has2(BIT.proc2.apicAccess)),
  r('ctl.apicv.vid-without-ext-intr-exiting', 'controls', APICV, 'virtual-interrupt delivery without external-interrupt exiting', (v) => v.apicv && v.has2(BIT.proc2.vid) && !v.pinHas(BIT.pin.extIntr)),
  r('ctl.apicv.posted-without-vid', 'controls', APICV, 'posted interrupts without virtual-interrupt delivery', (v) => v.pinHas(BIT.pin.posted) && !v.has2(BIT.proc2.vid)),
  r('ctl.apicv.posted-without-ack', 'controls', APICV, 'posted interrupts without acknowledge interrupt on exit', (v) => v.pinHas(BIT.pin.posted) && !v.exitHas(BIT.exit.ackIntr)),
  r('ctl.apicv.posted-nv', 'controls', APICV, 'posted interrupts: notification vector bits 15:8 not zero', (v) => v.pinHas(BIT.pin.posted) && (f(v, 'posted_intr_nv') & 0xff00n) !== 0n),
  r('ctl.apicv.posted-desc', 'controls', APICV, 'posted interrupts: descriptor address not 64-byte aligned or beyond MAXPHYADDR', (v) => v.pinHas(BIT.pin.posted) && !v.legalAligned(f(v, 'posted_intr_desc_addr'), 64n)),
  r('ctl.apicv.without-tpr-shadow', 'controls', APICV, 'x2APIC virtualization, APIC-register virtualization, VID or posted interrupts without TPR shadow', (v) => v.apicv && !v.has(BIT.proc.tprShadow)),
  r('ctl.nmi.virtual-without-exiting', 'controls', 'nested_vmx_check_nmi_controls', 'virtual NMIs without NMI exiting', (v) => v.pinHas(BIT.pin.vnmi) && !v.pinHas(BIT.pin.nmi)),
  r('ctl.nmi.window-without-virtual', 'controls', 'nested_vmx_check_nmi_controls', 'NMI-window exiting without virtual NMIs', (v) => v.has(BIT.proc.nmiWindow) && !v.pinHas(BIT.pin.vnmi)),
  r('ctl.pml.without-ept', 'controls', 'nested_vmx_check_pml_controls', 'PML without EPT', (v) => v.has2(BIT.proc2.pml) && !v.has2(BIT.proc2.ept)),
  r('ctl.pml.address', 'controls', 'nested_vmx_check_pml_controls', 'PML: PML address not a valid page address', (v) => v.has2(BIT.proc2.pml) && v.has2(BIT.proc2.ept) && !v.page(f(v, 'pml_address'))),
  r('ctl.unrestricted-without-ept', 'controls', 'nested_vmx_check_unrestricted_guest_controls', 'unrestricted guest without EPT', (v) => v.has2(BIT.proc2.unrestricted) && !v.has2(BIT.proc2.ept)),
  r('ctl.mode-based-ept-without-ept', 'controls', 'nested_vmx_check_mode_based_ept_exec_controls', 'mode-based execute control for EPT without EPT', (v) => v.has2(BIT.proc2.modeBasedEpt) && !v.has2(BIT.proc2.ept)),
  r('ctl.shadow-vmcs.vmread-bitmap', 'controls', 'nested_vmx_check_shadow_vmcs_controls', 'VMCS shadowing: VMREAD bitmap not a valid page address', (v) => v.has2(BIT.proc2.shadowVmcs) && !v.page(f(v, 'vmread_bitmap'))),
  r('ctl.shadow-vmcs.vmwrite-bitmap', 'controls', 'nested_vmx_check_shadow_vmcs_controls', 'VMCS shadowing: VMWRITE bitmap not a valid page address', (v) => v.has2(BIT.proc2.shadowVmcs) && !v.page(f(v, 'vmwrite_bitmap'))),
  r('ctl.vpid-zero', 'controls', EXEC, 'enable VPID with VPID 0', (v) => v.has2(BIT.proc2.vpid) && f(v, 'virtual_processor_id') === 0n),
  r('ctl.save-preemption-without-timer', 'controls', EXEC, 'save VMX-preemption timer on exit without the preemption timer', (v) => !v.pinHas(BIT.pin.preemption) && v.exitHas(BIT.exit.savePreemption)),
  r('ctl.eptp.memory-type', 'controls', EPTP, 'EPTP memory type neither UC nor WB, or not in IA32_VMX_EPT_VPID_CAP', (v) => v.has2(BIT.proc2.ept) && !(((eptp(v) & 7n) === 0n && eptCap(v, EPT_CAP.uc)) || ((eptp(v) & 7n) === 6n && eptCap(v, EPT_CAP.wb)))),
  r('ctl.eptp.walk-length', 'controls', EPTP, 'EPTP page-walk length neither 4 nor 5, or not in the EPT capabilities', (v) => v.has2(BIT.proc2.ept) && !(((eptp(v) & 0x38n) === 0x18n && eptCap(v, EPT_CAP.walk4)) || ((eptp(v) & 0x38n) === 0x20n && eptCap(v, EPT_CAP.walk5)))),
  r('ctl.eptp.reserved', 'controls', EPTP, 'EPTP bits 11:7 or bits at or above MAXPHYADDR set', (v) => v.has2(BIT.proc2.ept) && (!v.legal(eptp(v)) || ((eptp(v) >> 7n) & 0x1fn) !== 0n)),
  r('ctl.eptp.accessed-dirty', 'controls', EPTP, 'EPTP enables accessed/dirty flags the EPT capabilities lack', (v) => v.has2(BIT.proc2.ept) && bit(eptp(v), 0x40n) && !eptCap(v, EPT_CAP.ad)),
  r('ctl.vmfunc.unsupported', 'controls', EXEC, 'VM-function controls outside IA32_VMX_VMFUNC', (v) => v.has2(BIT.proc2.vmfunc) && (f(v, 'vm_function_control') & ~v.s.caps.vmfunc) !== 0n),
  r('ctl.vmfunc.eptp-switching-without-ept', 'controls', EXEC, 'EPTP switching without EPT', (v) => v.has2(BIT.proc2.vmfunc) && bit(f(v, 'vm_function_control'), 1n) && !v.has2(BIT.proc2.ept)),
  r('ctl.vmfunc.eptp-list', 'controls', EXEC, 'EPTP switching: EPTP-list address not a valid page address', (v) => v.has2(BIT.proc2.vmfunc) && bit(f(v, 'vm_function_control'), 1n) && v.has2(BIT.proc2.ept) && !v.page(f(v, 'eptp_list_address'))),
  r('exit.ctls', 'controls', 'nested_check_vm_exit_controls', 'VM-exit controls outside the allowed-0/1 settings', (v) => !controlOk(v.exit, v.s.caps.exit)),
  r('exit.msr-load', 'controls', 'nested_vmx_check_exit_msr_switch_controls', 'VM-exit MSR-load area not 16-byte aligned or running past MAXPHYADDR', (v) => v.msrSwitchBad(f(v, 'vm_exit_msr_load_count'), f(v, 'vm_exit_msr_load_addr'))),
  r('exit.msr-store', 'controls', 'nested_vmx_check_exit_msr_switch_controls', 'VM-exit MSR-store area not 16-byte aligned or running past MAXPHYADDR', (v) => v.msrSwitchBad(f(v, 'vm_exit_msr_store_count'), f(v, 'vm_exit_msr_store_addr'))),
  r('entry.ctls', 'controls', ENTRY, 'VM-entry controls outside the allowed-0/1 settings', (v) => !controlOk(v.entry, v.s.caps.entry)),
  r('entry.event.type', 'controls', ENTRY, 'event injection: reserved type, or "other event" without MTF in the capabilities', (v) => injecting(v) && (intrType(v) === INTR_TYPE.RESERVED || (intrType(v) === INTR_TYPE.OTHER && !(v.s.caps.proc.may & BIT.proc.mtf)))),
  r('entry.event.vector', 'controls', ENTRY, 'event injection: NMI not vector 2, exception above 31, or other event not vector 0', (v) => injecting(v) && ((intrType(v) === INTR_TYPE.NMI && intrVector(v) !== 2) || (intrType(v) === INTR_TYPE.HARD_EXCEPTION && intrVector(v) > 31) || (intrType(v) === INTR_TYPE.OTHER && intrVector(v) !== 0))),
  r('entry.event.deliver-error-code', 'controls', ENTRY, 'event injection: deliver-error-code bit differs from what the vector and mode require', (v) => injecting(v) && ((intr(v) & INTR.DELIVER_CODE) !== 0) !== shouldHaveErrorCode(v)),
  r('entry.event.error-code', 'controls', ENTRY, 'event injection: error code bits 31:16 not zero', (v) => injecting(v) && (intr(v) & INTR.DELIVER_CODE) !== 0 && (f(v, 'vm_entry_exception_error_code') & 0xffff_0000n) !== 0n),
  r('entry.event.reserved', 'controls', ENTRY, 'event injection: interruption-information bits 30:12 not zero', (v) => injecting(v) && (intr(v) & INTR.RESERVED) !== 0),
  r('entry.event.instruction-length', 'controls', ENTRY, 'event injection: software event with instruction length above 15, or 0 without the zero-length capability', (v) => injecting(v) && softEvent(v) && (f(v, 'vm_entry_instruction_len') > 15n || (f(v, 'vm_entry_instruction_len') === 0n && !(v.s.caps.misc & MISC.zeroLenInjection)))),
  r('entry.msr-load', 'controls', 'nested_vmx_check_entry_msr_switch_controls', 'VM-entry MSR-load area not 16-byte aligned or running past MAXPHYADDR', (v) => v.msrSwitchBad(f(v, 'vm_entry_msr_load_count'), f(v, 'vm_entry_msr_load_addr'))),
];

/** nested_evmcs_check_controls, at the end of nested_vmx_check_controls when guest_cpuid_has_evmcs: one rule per step. */
const evmcsRule = (step: CheckRule): VmentryRule =>
  r(`evmcs.${step.rule}`, 'controls', 'nested_evmcs_check_controls', `eVMCS in use: ${step.field} fails the eVMCS ${step.kind === 'high-bits' ? 'bits 63:32 check' : `${step.kind}-list`}`, (v) => {
    if (!v.s.evmcsCheck) return false;
    const c = { pin_based_vm_exec_control: v.pin, cpu_based_vm_exec_control: v.proc, secondary_vm_exec_control: Number(f(v, 'secondary_vm_exec_control')), vm_exit_controls: v.exit, vm_entry_controls: v.entry, vm_function_control: f(v, 'vm_function_control') };
    return !evmcsCheckControls([step], c).ok;
  }, evmcsUnreachable(step));

/** eVMCS steps no vmcs12 can fail alone, whatever the capabilities */
function evmcsUnreachable(step: CheckRule): Partial<VmentryRule> {
  if (step.kind === 'deny' && step.mask === 0) return { unreachable: 'the deny mask is 0: the step never fails' };
  if (step.kind === 'deny' && step.field === 'vm_exit_controls' && step.mask === BIT.exit.savePreemption)
    return { unreachable: 'it refuses only save-preemption-timer, which needs the preemption timer (else ctl.save-preemption-without-timer), which the pin step refuses first' };
  return {};
}

/** the MSR-value and descriptor-base canonical checks (is_noncanonical_msr_address / _base_address in 6.12), at the revision's width */
const msrCanonical = (v: View, la: bigint) => canonical(la, v.s.msrAddressBits);
const WIDTH = '(6.1: L1\'s width, 48 without CR4.LA57; 6.12: 57 on a host with 5-level paging)';

const ADDRESS_SPACE = r('host.address-space-size', 'host', 'nested_vmx_check_address_space_size', 'host address-space size differs from L1 EFER.LMA (VMLAUNCH/VMRESUME only)', (v) => v.hostIa32e !== GUEST_CPU.l1LongMode, { vmentryOnly: true });

const hostRules = (cet: boolean): VmentryRule[] => [
  r('host.cr0', 'host', HOST, 'host CR0 outside IA32_VMX_CR0_FIXED0/1', (v) => !fixedBitsValid(f(v, 'host_cr0'), v.s.caps.cr0Fixed0, v.s.caps.cr0Fixed1)),
  r('host.cr4', 'host', HOST, 'host CR4 outside IA32_VMX_CR4_FIXED0/1 or reserved for the vCPU', (v) => !cr4Valid(v, f(v, 'host_cr4'))),
  r('host.cr3', 'host', HOST, 'host CR3 has bits at or above MAXPHYADDR', (v) => !v.legal(f(v, 'host_cr3'))),
  ...(cet ? [r('host.cet-without-wp', 'host', HOST, 'host CR4.CET without CR0.WP (6.12)', (v) => bit(f(v, 'host_cr4'), CR4.CET) && !bit(f(v, 'host_cr0'), CR0.WP), { unreachable: 'CR4.CET is reserved for the modelled vCPU: host.cr4 fails first' })] : []),
  r('host.sysenter-esp', 'host', HOST, `host IA32_SYSENTER_ESP not canonical ${WIDTH}`, (v) => !msrCanonical(v, f(v, 'host_ia32_sysenter_esp'))),
  r('host.sysenter-eip', 'host', HOST, `host IA32_SYSENTER_EIP not canonical ${WIDTH}`, (v) => !msrCanonical(v, f(v, 'host_ia32_sysenter_eip'))),
  r('host.pat', 'host', HOST, 'load IA32_PAT on exit: host PAT has an invalid memory type', (v) => v.exitHas(BIT.exit.loadPat) && !patValid(f(v, 'host_ia32_pat'))),
  r('host.perf-global-ctrl', 'host', HOST, 'load PERF_GLOBAL_CTRL on exit: reserved bits set', (v) => v.exitHas(BIT.exit.loadPerf) && !perfValid(f(v, 'host_ia32_perf_global_ctrl'))),
  r('host.ia32e-without-pae', 'host', HOST, '64-bit host without CR4.PAE', (v) => v.hostIa32e && !bit(f(v, 'host_cr4'), CR4.PAE)),
  r('host.ia32e-guest-on-32-bit-host', 'host', HOST, 'IA-32e mode guest with a 32-bit host', (v) => !v.hostIa32e && v.guestIa32e),
  r('host.pcide-on-32-bit-host', 'host', HOST, '32-bit host with CR4.PCIDE', (v) => !v.hostIa32e && bit(f(v, 'host_cr4'), CR4.PCIDE)),
  r('host.rip-high-on-32-bit-host', 'host', HOST, '32-bit host with RIP bits 63:32 set', (v) => !v.hostIa32e && f(v, 'host_rip') >> 32n !== 0n),
  r('host.selector-rpl-ti', 'host', HOST, 'a host selector (CS SS DS ES FS GS TR) with RPL or TI set', (v) => HOST_SELECTORS.some((s) => (f(v, s) & 7n) !== 0n)),
  r('host.cs-zero', 'host', HOST, 'host CS selector 0', (v) => f(v, 'host_cs_selector') === 0n),
  r('host.tr-zero', 'host', HOST, 'host TR selector 0', (v) => f(v, 'host_tr_selector') === 0n),
  r('host.ss-zero-on-32-bit-host', 'host', HOST, 'host SS selector 0 with a 32-bit host', (v) => f(v, 'host_ss_selector') === 0n && !v.hostIa32e),
  r('host.base-canonical', 'host', HOST, `a host FS, GS, GDTR, IDTR or TR base not canonical ${WIDTH}`, (v) => HOST_BASES.some((b) => !msrCanonical(v, f(v, b)))),
  r('host.rip-canonical', 'host', HOST, 'host RIP not canonical (L1\'s width in both)', (v) => !canonical(f(v, 'host_rip'))),
  r('host.efer.reserved', 'host', HOST, 'load IA32_EFER on exit: reserved EFER bits set', (v) => v.exitHas(BIT.exit.loadEfer) && !eferValid(f(v, 'host_ia32_efer'))),
  r('host.efer.lma', 'host', HOST, 'load IA32_EFER on exit: EFER.LMA differs from the host address-space size', (v) => v.exitHas(BIT.exit.loadEfer) && bit(f(v, 'host_ia32_efer'), EFER.LMA) !== v.hostIa32e),
  r('host.efer.lme', 'host', HOST, 'load IA32_EFER on exit: EFER.LME differs from the host address-space size', (v) => v.exitHas(BIT.exit.loadEfer) && bit(f(v, 'host_ia32_efer'), EFER.LME) !== v.hostIa32e),
];

const guestRules = (cet: boolean, freezeQuirk: boolean): VmentryRule[] => [
  r('guest.cr0', 'guest', GUEST, 'guest CR0 outside IA32_VMX_CR0_FIXED0/1 (PE and PG free with unrestricted guest)', (v) => !fixedBitsValid(f(v, 'guest_cr0'), guestCr0Fixed0(v), v.s.caps.cr0Fixed1)),
  r('guest.cr4', 'guest', GUEST, 'guest CR4 outside IA32_VMX_CR4_FIXED0/1 or reserved for the vCPU', (v) => !cr4Valid(v, f(v, 'guest_cr4'))),
  ...(cet ? [r('guest.cet-without-wp', 'guest', GUEST, 'guest CR4.CET without CR0.WP (6.12)', (v) => bit(f(v, 'guest_cr4'), CR4.CET) && !bit(f(v, 'guest_cr0'), CR0.WP), { unreachable: 'CR4.CET is reserved for the modelled vCPU: guest.cr4 fails first' })] : []),
  r('guest.dr7', 'guest', GUEST, 'load debug controls: DR7 bits 63:32 set', (v) => v.entryHas(BIT.entry.loadDebug) && f(v, 'guest_dr7') >> 32n !== 0n),
  r('guest.debugctl', 'guest', GUEST, `load debug controls: IA32_DEBUGCTL bits the vCPU does not support${freezeQuirk ? ' (FREEZE_IN_SMM allowed by quirk)' : ''}`, (v) => v.entryHas(BIT.entry.loadDebug) && !debugctlValid(v, freezeQuirk)),
  r('guest.pat', 'guest', GUEST, 'load IA32_PAT on entry: guest PAT has an invalid memory type', (v) => v.entryHas(BIT.entry.loadPat) && !patValid(f(v, 'guest_ia32_pat'))),
  r('guest.link-pointer.address', 'guest', LINK, 'VMCS link pointer neither -1 nor a valid page address', (v) => linkPtr(v) !== (1n << 64n) - 1n && !v.page(linkPtr(v)), { qualification: 4 }),
  r('guest.link-pointer.revision', 'guest', LINK, 'the page at the VMCS link pointer does not carry VMCS12_REVISION', (v) => linkPtr(v) !== (1n << 64n) - 1n && v.page(linkPtr(v)) && hdrRevision(linkHdr(v)) !== VMCS12_REVISION, { qualification: 4 }),
  r('guest.link-pointer.shadow-bit', 'guest', LINK, "the linked page's shadow-VMCS bit differs from VMCS shadowing", (v) => linkPtr(v) !== (1n << 64n) - 1n && v.page(linkPtr(v)) && hdrShadow(linkHdr(v)) !== v.has2(BIT.proc2.shadowVmcs), { qualification: 4 }),
  r('guest.perf-global-ctrl', 'guest', GUEST, 'load PERF_GLOBAL_CTRL on entry: reserved bits set', (v) => v.entryHas(BIT.entry.loadPerf) && !perfValid(f(v, 'guest_ia32_perf_global_ctrl'))),
  r('guest.pg-without-pe', 'guest', GUEST, 'guest CR0.PG without CR0.PE', (v) => (f(v, 'guest_cr0') & (CR0.PG | CR0.PE)) === CR0.PG),
  r('guest.ia32e-without-pae', 'guest', GUEST, 'IA-32e mode guest without CR4.PAE', (v) => v.guestIa32e && !bit(f(v, 'guest_cr4'), CR4.PAE)),
  r('guest.ia32e-without-pg', 'guest', GUEST, 'IA-32e mode guest without CR0.PG', (v) => v.guestIa32e && !bit(f(v, 'guest_cr0'), CR0.PG)),
  r('guest.efer.reserved', 'guest', GUEST, 'load IA32_EFER on entry (run pending only): reserved EFER bits set', (v) => v.s.runPending && v.entryHas(BIT.entry.loadEfer) && !eferValid(f(v, 'guest_ia32_efer'))),
  r('guest.efer.lma', 'guest', GUEST, 'load IA32_EFER on entry (run pending only): EFER.LMA differs from IA-32e mode guest', (v) => v.s.runPending && v.entryHas(BIT.entry.loadEfer) && bit(f(v, 'guest_ia32_efer'), EFER.LMA) !== v.guestIa32e),
  r('guest.efer.lme', 'guest', GUEST, 'load IA32_EFER on entry (run pending only): CR0.PG set and EFER.LME differs from IA-32e mode guest', (v) => v.s.runPending && v.entryHas(BIT.entry.loadEfer) && bit(f(v, 'guest_cr0'), CR0.PG) && bit(f(v, 'guest_ia32_efer'), EFER.LME) !== v.guestIa32e),
  r('guest.bndcfgs.canonical', 'guest', GUEST, `load BNDCFGS on entry: base not canonical ${WIDTH}`, (v) => v.entryHas(BIT.entry.loadBndcfgs) && !msrCanonical(v, f(v, 'guest_bndcfgs') & ~0xfffn)),
  r('guest.bndcfgs.reserved', 'guest', GUEST, 'load BNDCFGS on entry: bits 11:2 set', (v) => v.entryHas(BIT.entry.loadBndcfgs) && (f(v, 'guest_bndcfgs') & GUEST_CPU.bndcfgsReserved) !== 0n),
  r('guest.activity-state', 'guest', 'nested_check_guest_non_reg_state', 'activity state neither active, HLT nor wait-for-SIPI', (v) => ![0n, 1n, 3n].includes(f(v, 'guest_activity_state'))),
];

const PREPARE: readonly VmentryRule[] = [
  // prepare_vmcs02 checks the guest segments (without unrestricted guest) before it loads CR3
  ...segmentRules((id, fn, desc, fails) => r(id, 'prepare', fn, `${desc} (VMLAUNCH/VMRESUME only)`, fails, { vmentryOnly: true, qualification: 0 })),
  r('prepare.guest-cr3', 'prepare', 'nested_vmx_load_cr3', 'guest CR3 has bits at or above MAXPHYADDR (prepare_vmcs02: restore returns 2)', (v) => !v.legal(f(v, 'guest_cr3')), { qualification: 0 }),
  r('prepare.pdpte', 'prepare', 'nested_vmx_load_cr3', 'PAE paging without EPT: a present PDPTE in guest memory at CR3 has reserved bits (VMLAUNCH/VMRESUME only)', (v) => !v.has2(BIT.proc2.ept) && paePaging(v) && pdpteBad(v), { vmentryOnly: true, qualification: 2 }),
];

/** nested_vmx_load_msr after prepare_vmcs02: one rule per reason the first failing entry fails. */
const msrLoad = (id: MsrLoadFailure, fn: string, desc: string): VmentryRule =>
  r(`msr-load.${id}`, 'msr-load', fn, `VM-entry MSR-load list: ${desc} (VMLAUNCH/VMRESUME only)`, (v) => walkEntryMsrLoad(v.s).failed?.why === id, {
    vmentryOnly: true,
    qualificationOf: (v) => (walkEntryMsrLoad(v.s).failed?.index ?? -1) + 1,
  });
const MSR_LOAD: readonly VmentryRule[] = [
  msrLoad('count', 'nested_vmx_load_msr', 'more entries than 512 × (IA32_VMX_MISC[27:25] + 1), the earlier ones all loading'),
  msrLoad('refused-index', 'nested_vmx_load_msr_check', 'an entry names FS_BASE, GS_BASE, IA32_SMM_MONITOR_CTL, IA32_UCODE_WRITE, IA32_UCODE_REV (or an x2APIC MSR while L1 is in x2APIC mode)'),
  msrLoad('reserved', 'nested_vmx_msr_check_common', "an entry's reserved field (bits 63:32 of its first quadword) is not zero"),
  msrLoad('write', 'kvm_set_msr', 'the write of an entry fails: an MSR the vCPU does not implement, or a value it refuses (6.12: kvm_set_msr_with_filter)'),
];

const table = (rev: VmentryRevision, evmcs: readonly CheckRule[]): readonly VmentryRule[] => [
  ...CONTROLS,
  ...evmcs.map(evmcsRule),
  ADDRESS_SPACE,
  ...hostRules(rev.cetNeedsWp),
  ...guestRules(rev.cetNeedsWp, rev.freezeInSmmQuirk),
  ...PREPARE,
  ...MSR_LOAD,
];

const tables = new WeakMap<Pick<Profile, 'vmentry' | 'evmcs'>, readonly VmentryRule[]>();

/**
 * The rules of a profile, in KVM's order, as its data says: its VM-entry revision (the CET/WP rules
 * and the FREEZE_IN_SMM quirk of 6.12; the canonical width reaches the rules through the check
 * input) and its eVMCS steps (none where the profile has no eVMCS model). Never by name.
 */
export function vmentryRules(profile: Pick<Profile, 'vmentry' | 'evmcs'>): readonly VmentryRule[] {
  let t = tables.get(profile);
  if (!t) tables.set(profile, (t = table(profile.vmentry, profile.evmcs?.check ?? [])));
  return t;
}
