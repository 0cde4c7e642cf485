// The VMX controls table: the names of the control bits, from the EVMCS1 masks of both kernels
// (kernel-tables/*/evmcs-filter.json) and the bits kernel-facts §6.5 names, and the EVMCS1 masks by
// their kernel names. Bit constants (model/vmentry/bits.ts), the eVMCS filter and check tables
// below and the bit names in reports all derive from here. A bit with no name is printed as "bit N".
export type ControlClass = 'pin' | 'proc' | 'proc2' | 'exit' | 'entry' | 'vmfunc';

export const CONTROL_BIT_NAMES: Readonly<Record<ControlClass, Readonly<Record<number, string>>>> = {
  pin: {
    0: 'PIN_BASED_EXT_INTR_MASK',
    1: '(reserved, default 1)',
    2: '(reserved, default 1)',
    3: 'PIN_BASED_NMI_EXITING',
    4: '(reserved, default 1)',
    5: 'PIN_BASED_VIRTUAL_NMIS',
    6: 'PIN_BASED_VMX_PREEMPTION_TIMER',
    7: 'PIN_BASED_POSTED_INTR',
  },
  proc: {
    1: '(reserved, default 1)',
    2: 'CPU_BASED_INTR_WINDOW_EXITING',
    3: 'CPU_BASED_USE_TSC_OFFSETTING',
    4: '(reserved, default 1)',
    5: '(reserved, default 1)',
    6: '(reserved, default 1)',
    7: 'CPU_BASED_HLT_EXITING',
    8: '(reserved, default 1)',
    9: 'CPU_BASED_INVLPG_EXITING',
    10: 'CPU_BASED_MWAIT_EXITING',
    11: 'CPU_BASED_RDPMC_EXITING',
    12: 'CPU_BASED_RDTSC_EXITING',
    13: '(reserved, default 1)',
    14: '(reserved, default 1)',
    15: 'CPU_BASED_CR3_LOAD_EXITING',
    16: 'CPU_BASED_CR3_STORE_EXITING',
    17: 'CPU_BASED_ACTIVATE_TERTIARY_CONTROLS',
    19: 'CPU_BASED_CR8_LOAD_EXITING',
    20: 'CPU_BASED_CR8_STORE_EXITING',
    21: 'CPU_BASED_TPR_SHADOW',
    22: 'CPU_BASED_NMI_WINDOW_EXITING',
    23: 'CPU_BASED_MOV_DR_EXITING',
    24: 'CPU_BASED_UNCOND_IO_EXITING',
    25: 'CPU_BASED_USE_IO_BITMAPS',
    26: '(reserved, default 1)',
    27: 'CPU_BASED_MONITOR_TRAP_FLAG',
    28: 'CPU_BASED_USE_MSR_BITMAPS',
    29: 'CPU_BASED_MONITOR_EXITING',
    30: 'CPU_BASED_PAUSE_EXITING',
    31: 'CPU_BASED_ACTIVATE_SECONDARY_CONTROLS',
  },
  proc2: {
    0: 'SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES',
    1: 'SECONDARY_EXEC_ENABLE_EPT',
    2: 'SECONDARY_EXEC_DESC',
    3: 'SECONDARY_EXEC_ENABLE_RDTSCP',
    4: 'SECONDARY_EXEC_VIRTUALIZE_X2APIC_MODE',
    5: 'SECONDARY_EXEC_ENABLE_VPID',
    6: 'SECONDARY_EXEC_WBINVD_EXITING',
    7: 'SECONDARY_EXEC_UNRESTRICTED_GUEST',
    8: 'SECONDARY_EXEC_APIC_REGISTER_VIRT',
    9: 'SECONDARY_EXEC_VIRTUAL_INTR_DELIVERY',
    10: 'SECONDARY_EXEC_PAUSE_LOOP_EXITING',
    11: 'SECONDARY_EXEC_RDRAND_EXITING',
    12: 'SECONDARY_EXEC_ENABLE_INVPCID',
    13: 'SECONDARY_EXEC_ENABLE_VMFUNC',
    14: 'SECONDARY_EXEC_SHADOW_VMCS',
    15: 'SECONDARY_EXEC_ENCLS_EXITING',
    16: 'SECONDARY_EXEC_RDSEED_EXITING',
    17: 'SECONDARY_EXEC_ENABLE_PML',
    18: 'SECONDARY_EXEC_EPT_VIOLATION_VE',
    19: 'SECONDARY_EXEC_PT_CONCEAL_VMX',
    20: 'SECONDARY_EXEC_ENABLE_XSAVES',
    22: 'SECONDARY_EXEC_MODE_BASED_EPT_EXEC',
    24: 'SECONDARY_EXEC_PT_USE_GPA',
    25: 'SECONDARY_EXEC_TSC_SCALING',
    26: 'SECONDARY_EXEC_ENABLE_USR_WAIT_PAUSE',
    30: 'SECONDARY_EXEC_BUS_LOCK_DETECTION',
    31: 'SECONDARY_EXEC_NOTIFY_VM_EXITING',
  },
  exit: {
    0: '(reserved, default 1)',
    1: '(reserved, default 1)',
    2: 'VM_EXIT_SAVE_DEBUG_CONTROLS',
    3: '(reserved, default 1)',
    4: '(reserved, default 1)',
    5: '(reserved, default 1)',
    6: '(reserved, default 1)',
    7: '(reserved, default 1)',
    8: '(reserved, default 1)',
    9: 'VM_EXIT_HOST_ADDR_SPACE_SIZE',
    10: '(reserved, default 1)',
    11: '(reserved, default 1)',
    12: 'VM_EXIT_LOAD_IA32_PERF_GLOBAL_CTRL',
    13: '(reserved, default 1)',
    14: '(reserved, default 1)',
    15: 'VM_EXIT_ACK_INTR_ON_EXIT',
    16: '(reserved, default 1)',
    17: '(reserved, default 1)',
    18: 'VM_EXIT_SAVE_IA32_PAT',
    19: 'VM_EXIT_LOAD_IA32_PAT',
    20: 'VM_EXIT_SAVE_IA32_EFER',
    21: 'VM_EXIT_LOAD_IA32_EFER',
    22: 'VM_EXIT_SAVE_VMX_PREEMPTION_TIMER',
    23: 'VM_EXIT_CLEAR_BNDCFGS',
    24: 'VM_EXIT_PT_CONCEAL_PIP',
    25: 'VM_EXIT_CLEAR_IA32_RTIT_CTL',
  },
  entry: {
    0: '(reserved, default 1)',
    1: '(reserved, default 1)',
    2: 'VM_ENTRY_LOAD_DEBUG_CONTROLS',
    3: '(reserved, default 1)',
    4: '(reserved, default 1)',
    5: '(reserved, default 1)',
    6: '(reserved, default 1)',
    7: '(reserved, default 1)',
    8: '(reserved, default 1)',
    9: 'VM_ENTRY_IA32E_MODE',
    10: 'VM_ENTRY_SMM',
    11: 'VM_ENTRY_DEACT_DUAL_MONITOR',
    12: '(reserved, default 1)',
    13: 'VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL',
    14: 'VM_ENTRY_LOAD_IA32_PAT',
    15: 'VM_ENTRY_LOAD_IA32_EFER',
    16: 'VM_ENTRY_LOAD_BNDCFGS',
    17: 'VM_ENTRY_PT_CONCEAL_PIP',
    18: 'VM_ENTRY_LOAD_IA32_RTIT_CTL',
  },
  vmfunc: {
    0: 'VMX_VMFUNC_EPTP_SWITCHING',
  },
};

/** One MSR the eVMCS filter changes: which half, and the mask it keeps (op keep) or clears (op clear),
 * with Hyper-V CPUID 0x4000000A.EBX bit 0 (PERF_GLOBAL_CTRL) set and clear. */
export interface FilterRule {
  readonly msr: number;
  readonly name: string;
  readonly controls: ControlClass;
  readonly half: 'high' | 'low';
  readonly op: 'clear' | 'keep';
  readonly mask: number;
  readonly maskWithoutPerfGlobalCtrl: number;
}

/** One step of nested_evmcs_check_controls, in order: `deny` fails on value & mask, `allow` on value & ~mask. */
export interface CheckRule {
  readonly rule: string;
  readonly field: 'pin_based_vm_exec_control' | 'cpu_based_vm_exec_control' | 'secondary_vm_exec_control' | 'vm_exit_controls' | 'vm_entry_controls' | 'vm_function_control';
  readonly kind: 'deny' | 'allow' | 'high-bits';
  readonly mask: number;
}

/** The vmcs12 member each class of allowed-0/1 controls lives in (VMFUNC is a capability list, not a control word). */
export const CONTROL_FIELD = {
  pin: 'pin_based_vm_exec_control',
  proc: 'cpu_based_vm_exec_control',
  proc2: 'secondary_vm_exec_control',
  exit: 'vm_exit_controls',
  entry: 'vm_entry_controls',
} as const satisfies Record<Exclude<ControlClass, 'vmfunc'>, CheckRule['field']>;

/** The value of a named control bit (throws on a name the table above does not have). */
export function controlBit(controls: ControlClass, name: string): number {
  const bit = Object.entries(CONTROL_BIT_NAMES[controls]).find(([, n]) => n === name)?.[0];
  if (bit === undefined) throw new RangeError(`no ${controls} control is named ${name}`);
  return 2 ** Number(bit);
}

const u32 = (x: number): number => x >>> 0;

/** linux 6.1, evmcs.h: the controls eVMCS v1 cannot carry (a deny-list); EXEC_CTRL is defined, never used. */
export const EVMCS1_MASKS_6_1 = {
  EVMCS1_UNSUPPORTED_PINCTRL: 0x000000c0,
  EVMCS1_UNSUPPORTED_EXEC_CTRL: 0x00020000,
  EVMCS1_UNSUPPORTED_2NDEXEC: 0x02026701,
  EVMCS1_UNSUPPORTED_VMEXIT_CTRL: 0x00400000,
  EVMCS1_UNSUPPORTED_VMENTRY_CTRL: 0x00000000,
  EVMCS1_UNSUPPORTED_VMFUNC: 0x00000001,
} as const;

/** linux 6.12, hyperv_evmcs.h: the controls eVMCS v1 can carry (an allow-list). */
export const EVMCS1_MASKS_6_12 = {
  EVMCS1_SUPPORTED_PINCTRL: 0x0000003f,
  EVMCS1_SUPPORTED_EXEC_CTRL: 0xfff9fffe,
  EVMCS1_SUPPORTED_2NDEXEC: 0xc71998fe,
  EVMCS1_SUPPORTED_3RDEXEC: 0x00000000,
  EVMCS1_SUPPORTED_VMEXIT_CTRL: 0x03bfffff,
  EVMCS1_SUPPORTED_VMENTRY_CTRL: 0x0007f3ff,
  EVMCS1_SUPPORTED_VMFUNC: 0x00000000,
} as const;

/** 6.12's table entry for the secondary controls drops TSC scaling from the macro (kernel-facts §6, no reason given). */
const EVMCS_2NDEXEC_6_12 = u32(EVMCS1_MASKS_6_12.EVMCS1_SUPPORTED_2NDEXEC & ~controlBit('proc2', 'SECONDARY_EXEC_TSC_SCALING'));

/** The MSRs that report each control class, in the order the kernel-tables list them. */
const CONTROL_MSRS: Readonly<Record<ControlClass, readonly (readonly [number, string])[]>> = {
  exit: [[0x483, 'MSR_IA32_VMX_EXIT_CTLS'], [0x48f, 'MSR_IA32_VMX_TRUE_EXIT_CTLS']],
  entry: [[0x484, 'MSR_IA32_VMX_ENTRY_CTLS'], [0x490, 'MSR_IA32_VMX_TRUE_ENTRY_CTLS']],
  proc: [[0x482, 'MSR_IA32_VMX_PROCBASED_CTLS'], [0x48e, 'MSR_IA32_VMX_TRUE_PROCBASED_CTLS']],
  proc2: [[0x48b, 'MSR_IA32_VMX_PROCBASED_CTLS2']],
  pin: [[0x481, 'MSR_IA32_VMX_PINBASED_CTLS'], [0x48d, 'MSR_IA32_VMX_TRUE_PINBASED_CTLS']],
  vmfunc: [[0x491, 'MSR_IA32_VMX_VMFUNC']],
};

/** Without Hyper-V's PERF_GLOBAL_CTRL CPUID bit the filter also takes the perf-global-ctrl load controls away. */
const PERF_GLOBAL_CTRL: Partial<Record<ControlClass, number>> = {
  exit: controlBit('exit', 'VM_EXIT_LOAD_IA32_PERF_GLOBAL_CTRL'),
  entry: controlBit('entry', 'VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL'),
};

function filterTable(op: FilterRule['op'], masks: readonly (readonly [ControlClass, number])[]): readonly FilterRule[] {
  return masks.flatMap(([controls, mask]) =>
    CONTROL_MSRS[controls].map(([msr, name]): FilterRule => {
      const perf = PERF_GLOBAL_CTRL[controls] ?? 0;
      return { msr, name, controls, half: controls === 'vmfunc' ? 'low' : 'high', op, mask: u32(mask), maskWithoutPerfGlobalCtrl: u32(op === 'clear' ? mask | perf : mask & ~perf) };
    }),
  );
}

/** linux 6.1: deny-list: EVMCS1_UNSUPPORTED_* bits are cleared */
const D = EVMCS1_MASKS_6_1;
export const FILTER_LINUX_6_1: readonly FilterRule[] = filterTable('clear', [
  ['exit', D.EVMCS1_UNSUPPORTED_VMEXIT_CTRL],
  ['entry', D.EVMCS1_UNSUPPORTED_VMENTRY_CTRL],
  ['proc2', D.EVMCS1_UNSUPPORTED_2NDEXEC],
  ['pin', D.EVMCS1_UNSUPPORTED_PINCTRL],
  ['vmfunc', D.EVMCS1_UNSUPPORTED_VMFUNC],
]);
export const CHECK_LINUX_6_1: readonly CheckRule[] = [
  { rule: 'pin', field: 'pin_based_vm_exec_control', kind: 'deny', mask: D.EVMCS1_UNSUPPORTED_PINCTRL },
  { rule: '2ndexec', field: 'secondary_vm_exec_control', kind: 'deny', mask: D.EVMCS1_UNSUPPORTED_2NDEXEC },
  { rule: 'exit', field: 'vm_exit_controls', kind: 'deny', mask: D.EVMCS1_UNSUPPORTED_VMEXIT_CTRL },
  { rule: 'entry', field: 'vm_entry_controls', kind: 'deny', mask: D.EVMCS1_UNSUPPORTED_VMENTRY_CTRL },
  { rule: 'vmfunc-high', field: 'vm_function_control', kind: 'high-bits', mask: 0 },
  { rule: 'vmfunc', field: 'vm_function_control', kind: 'deny', mask: D.EVMCS1_UNSUPPORTED_VMFUNC },
];

/** linux 6.12: allow-list: only EVMCS1_SUPPORTED_* bits are kept */
const A = EVMCS1_MASKS_6_12;
export const FILTER_LINUX_6_12: readonly FilterRule[] = filterTable('keep', [
  ['exit', A.EVMCS1_SUPPORTED_VMEXIT_CTRL],
  ['entry', A.EVMCS1_SUPPORTED_VMENTRY_CTRL],
  ['proc', A.EVMCS1_SUPPORTED_EXEC_CTRL],
  ['proc2', EVMCS_2NDEXEC_6_12],
  ['pin', A.EVMCS1_SUPPORTED_PINCTRL],
  ['vmfunc', A.EVMCS1_SUPPORTED_VMFUNC],
]);
export const CHECK_LINUX_6_12: readonly CheckRule[] = [
  { rule: 'pin', field: 'pin_based_vm_exec_control', kind: 'allow', mask: A.EVMCS1_SUPPORTED_PINCTRL },
  { rule: 'exec', field: 'cpu_based_vm_exec_control', kind: 'allow', mask: A.EVMCS1_SUPPORTED_EXEC_CTRL },
  { rule: '2ndexec', field: 'secondary_vm_exec_control', kind: 'allow', mask: EVMCS_2NDEXEC_6_12 },
  { rule: 'exit', field: 'vm_exit_controls', kind: 'allow', mask: A.EVMCS1_SUPPORTED_VMEXIT_CTRL },
  { rule: 'entry', field: 'vm_entry_controls', kind: 'allow', mask: A.EVMCS1_SUPPORTED_VMENTRY_CTRL },
  { rule: 'vmfunc-high', field: 'vm_function_control', kind: 'high-bits', mask: 0 },
  { rule: 'vmfunc', field: 'vm_function_control', kind: 'allow', mask: A.EVMCS1_SUPPORTED_VMFUNC },
];
