// Named bits of the VMX controls and x86 registers the VM-entry checks look at (SDM / asm/vmx.h).
// The control bits are short names for entries of the one controls table, model/catalog/vmx-controls.ts.
import { controlBit } from '../catalog/vmx-controls.js';

const pin = (n: string) => controlBit('pin', `PIN_BASED_${n}`);
const proc = (n: string) => controlBit('proc', `CPU_BASED_${n}`);
const proc2 = (n: string) => controlBit('proc2', `SECONDARY_EXEC_${n}`);
const exit = (n: string) => controlBit('exit', `VM_EXIT_${n}`);
const entry = (n: string) => controlBit('entry', `VM_ENTRY_${n}`);

export const BIT = {
  pin: { extIntr: pin('EXT_INTR_MASK'), nmi: pin('NMI_EXITING'), vnmi: pin('VIRTUAL_NMIS'), preemption: pin('VMX_PREEMPTION_TIMER'), posted: pin('POSTED_INTR') },
  proc: {
    intrWindow: proc('INTR_WINDOW_EXITING'),
    nmiWindow: proc('NMI_WINDOW_EXITING'),
    tprShadow: proc('TPR_SHADOW'),
    ioBitmaps: proc('USE_IO_BITMAPS'),
    mtf: proc('MONITOR_TRAP_FLAG'),
    msrBitmaps: proc('USE_MSR_BITMAPS'),
    secondary: proc('ACTIVATE_SECONDARY_CONTROLS'),
  },
  proc2: {
    apicAccess: proc2('VIRTUALIZE_APIC_ACCESSES'),
    ept: proc2('ENABLE_EPT'),
    x2apic: proc2('VIRTUALIZE_X2APIC_MODE'),
    vpid: proc2('ENABLE_VPID'),
    unrestricted: proc2('UNRESTRICTED_GUEST'),
    apicRegVirt: proc2('APIC_REGISTER_VIRT'),
    vid: proc2('VIRTUAL_INTR_DELIVERY'),
    vmfunc: proc2('ENABLE_VMFUNC'),
    shadowVmcs: proc2('SHADOW_VMCS'),
    pml: proc2('ENABLE_PML'),
    modeBasedEpt: proc2('MODE_BASED_EPT_EXEC'),
    tscScaling: proc2('TSC_SCALING'),
  },
  exit: {
    saveDebug: exit('SAVE_DEBUG_CONTROLS'),
    hostAddrSpace: exit('HOST_ADDR_SPACE_SIZE'),
    loadPerf: exit('LOAD_IA32_PERF_GLOBAL_CTRL'),
    ackIntr: exit('ACK_INTR_ON_EXIT'),
    loadPat: exit('LOAD_IA32_PAT'),
    loadEfer: exit('LOAD_IA32_EFER'),
    saveEfer: exit('SAVE_IA32_EFER'),
    savePreemption: exit('SAVE_VMX_PREEMPTION_TIMER'),
  },
  entry: {
    loadDebug: entry('LOAD_DEBUG_CONTROLS'),
    ia32e: entry('IA32E_MODE'),
    loadPerf: entry('LOAD_IA32_PERF_GLOBAL_CTRL'),
    loadPat: entry('LOAD_IA32_PAT'),
    loadEfer: entry('LOAD_IA32_EFER'),
    loadBndcfgs: entry('LOAD_BNDCFGS'),
  },
} as const;

export const CR0 = { PE: 0x1n, WP: 0x1_0000n, NE: 0x20n, PG: 0x8000_0000n } as const;
export const CR4 = { PAE: 0x20n, VMXE: 0x2000n, PCIDE: 0x2_0000n, CET: 0x80_0000n } as const;
export const EFER = { SCE: 0x1n, LME: 0x100n, LMA: 0x400n, NX: 0x800n } as const;
/** EFER.LMA and LME, which KVM sets or clears together from the IA-32e entry (host address-space) control */
export const EFER_LONG_MODE = EFER.LMA | EFER.LME;
/** DR7 at reset and after every VM-exit (SDM; load_vmcs12_host_state) */
export const DR7_RESET = 0x400n;

/** VM-entry interruption-information field (SDM "VM-Entry Controls for Event Injection"). */
export const INTR = { VALID: 0x8000_0000, DELIVER_CODE: 0x800, TYPE_MASK: 0x700, VECTOR_MASK: 0xff, RESERVED: 0x7fff_f000 } as const;
export const INTR_TYPE = { EXT: 0, RESERVED: 1, NMI: 2, HARD_EXCEPTION: 3, SOFT_INTR: 4, PRIV_SW_EXCEPTION: 5, SOFT_EXCEPTION: 6, OTHER: 7 } as const;

/** Exceptions that push an error code (x86_exception_has_error_code): #DF #TS #NP #SS #GP #PF #AC. */
export const EXCEPTIONS_WITH_ERROR_CODE = (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 17);

export const MISC = { zeroLenInjection: 1n << 30n } as const;
/** VMX_MISC_EMULATED_PREEMPTION_TIMER_RATE (MISC bits 4:0): KVM's emulated timer counts L1 TSC >> 5 */
export const PREEMPTION_TIMER_RATE = 5n;
export const EPT_CAP = { execOnly: 0x1n, walk4: 0x40n, walk5: 0x80n, uc: 0x100n, wb: 0x4000n, ad: 0x20_0000n } as const;
