// Named bits of the VMX controls and x86 registers the VM-entry checks look at (SDM / asm/vmx.h).
export const BIT = {
  pin: { extIntr: 0x1, nmi: 0x8, vnmi: 0x20, preemption: 0x40, posted: 0x80 },
  proc: { nmiWindow: 0x40_0000, tprShadow: 0x20_0000, ioBitmaps: 0x200_0000, mtf: 0x800_0000, msrBitmaps: 0x1000_0000, secondary: 0x8000_0000 },
  proc2: {
    apicAccess: 0x1,
    ept: 0x2,
    x2apic: 0x10,
    vpid: 0x20,
    unrestricted: 0x80,
    apicRegVirt: 0x100,
    vid: 0x200,
    vmfunc: 0x2000,
    shadowVmcs: 0x4000,
    pml: 0x2_0000,
    modeBasedEpt: 0x40_0000,
  },
  exit: { saveDebug: 0x4, hostAddrSpace: 0x200, loadPerf: 0x1000, ackIntr: 0x8000, loadPat: 0x8_0000, loadEfer: 0x20_0000, savePreemption: 0x40_0000 },
  entry: { loadDebug: 0x4, ia32e: 0x200, loadPerf: 0x2000, loadPat: 0x4000, loadEfer: 0x8000, loadBndcfgs: 0x1_0000 },
} as const;

export const CR0 = { PE: 0x1n, WP: 0x1_0000n, NE: 0x20n, PG: 0x8000_0000n } as const;
export const CR4 = { PAE: 0x20n, VMXE: 0x2000n, PCIDE: 0x2_0000n, CET: 0x80_0000n } as const;
export const EFER = { SCE: 0x1n, LME: 0x100n, LMA: 0x400n, NX: 0x800n } as const;

/** VM-entry interruption-information field (SDM "VM-Entry Controls for Event Injection"). */
export const INTR = { VALID: 0x8000_0000, DELIVER_CODE: 0x800, TYPE_MASK: 0x700, VECTOR_MASK: 0xff, RESERVED: 0x7fff_f000 } as const;
export const INTR_TYPE = { EXT: 0, RESERVED: 1, NMI: 2, HARD_EXCEPTION: 3, SOFT_INTR: 4, PRIV_SW_EXCEPTION: 5, SOFT_EXCEPTION: 6, OTHER: 7 } as const;

/** Exceptions that push an error code (x86_exception_has_error_code): #DF #TS #NP #SS #GP #PF #AC. */
export const EXCEPTIONS_WITH_ERROR_CODE = (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 17);

export const MISC = { zeroLenInjection: 1n << 30n } as const;
export const EPT_CAP = { execOnly: 0x1n, walk4: 0x40n, walk5: 0x80n, uc: 0x100n, wb: 0x4000n, ad: 0x20_0000n } as const;
