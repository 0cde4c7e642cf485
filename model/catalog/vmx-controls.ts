// Names of the VMX control bits, from the EVMCS1 masks of both kernels (kernel-tables/*/evmcs-filter.json)
// and the bits kernel-facts §6.5 names. A bit with no name here is printed as "bit N".
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

/** linux 6.1: deny-list: EVMCS1_UNSUPPORTED_* bits are cleared */
export const FILTER_LINUX_6_1: readonly FilterRule[] = [
  { msr: 0x483, name: 'MSR_IA32_VMX_EXIT_CTLS', controls: 'exit', half: 'high', op: 'clear', mask: 0x00400000, maskWithoutPerfGlobalCtrl: 0x00401000 },
  { msr: 0x48f, name: 'MSR_IA32_VMX_TRUE_EXIT_CTLS', controls: 'exit', half: 'high', op: 'clear', mask: 0x00400000, maskWithoutPerfGlobalCtrl: 0x00401000 },
  { msr: 0x484, name: 'MSR_IA32_VMX_ENTRY_CTLS', controls: 'entry', half: 'high', op: 'clear', mask: 0x00000000, maskWithoutPerfGlobalCtrl: 0x00002000 },
  { msr: 0x490, name: 'MSR_IA32_VMX_TRUE_ENTRY_CTLS', controls: 'entry', half: 'high', op: 'clear', mask: 0x00000000, maskWithoutPerfGlobalCtrl: 0x00002000 },
  { msr: 0x48b, name: 'MSR_IA32_VMX_PROCBASED_CTLS2', controls: 'proc2', half: 'high', op: 'clear', mask: 0x02026701, maskWithoutPerfGlobalCtrl: 0x02026701 },
  { msr: 0x481, name: 'MSR_IA32_VMX_PINBASED_CTLS', controls: 'pin', half: 'high', op: 'clear', mask: 0x000000c0, maskWithoutPerfGlobalCtrl: 0x000000c0 },
  { msr: 0x48d, name: 'MSR_IA32_VMX_TRUE_PINBASED_CTLS', controls: 'pin', half: 'high', op: 'clear', mask: 0x000000c0, maskWithoutPerfGlobalCtrl: 0x000000c0 },
  { msr: 0x491, name: 'MSR_IA32_VMX_VMFUNC', controls: 'vmfunc', half: 'low', op: 'clear', mask: 0x00000001, maskWithoutPerfGlobalCtrl: 0x00000001 },
];
export const CHECK_LINUX_6_1: readonly CheckRule[] = [
  { rule: 'pin', field: 'pin_based_vm_exec_control', kind: 'deny', mask: 0x000000c0 },
  { rule: '2ndexec', field: 'secondary_vm_exec_control', kind: 'deny', mask: 0x02026701 },
  { rule: 'exit', field: 'vm_exit_controls', kind: 'deny', mask: 0x00400000 },
  { rule: 'entry', field: 'vm_entry_controls', kind: 'deny', mask: 0x00000000 },
  { rule: 'vmfunc-high', field: 'vm_function_control', kind: 'high-bits', mask: 0 },
  { rule: 'vmfunc', field: 'vm_function_control', kind: 'deny', mask: 0x00000001 },
];

/** linux 6.12: allow-list: only EVMCS1_SUPPORTED_* bits are kept */
export const FILTER_LINUX_6_12: readonly FilterRule[] = [
  { msr: 0x483, name: 'MSR_IA32_VMX_EXIT_CTLS', controls: 'exit', half: 'high', op: 'keep', mask: 0x03bfffff, maskWithoutPerfGlobalCtrl: 0x03bfefff },
  { msr: 0x48f, name: 'MSR_IA32_VMX_TRUE_EXIT_CTLS', controls: 'exit', half: 'high', op: 'keep', mask: 0x03bfffff, maskWithoutPerfGlobalCtrl: 0x03bfefff },
  { msr: 0x484, name: 'MSR_IA32_VMX_ENTRY_CTLS', controls: 'entry', half: 'high', op: 'keep', mask: 0x0007f3ff, maskWithoutPerfGlobalCtrl: 0x0007d3ff },
  { msr: 0x490, name: 'MSR_IA32_VMX_TRUE_ENTRY_CTLS', controls: 'entry', half: 'high', op: 'keep', mask: 0x0007f3ff, maskWithoutPerfGlobalCtrl: 0x0007d3ff },
  { msr: 0x482, name: 'MSR_IA32_VMX_PROCBASED_CTLS', controls: 'proc', half: 'high', op: 'keep', mask: 0xfff9fffe, maskWithoutPerfGlobalCtrl: 0xfff9fffe },
  { msr: 0x48e, name: 'MSR_IA32_VMX_TRUE_PROCBASED_CTLS', controls: 'proc', half: 'high', op: 'keep', mask: 0xfff9fffe, maskWithoutPerfGlobalCtrl: 0xfff9fffe },
  { msr: 0x48b, name: 'MSR_IA32_VMX_PROCBASED_CTLS2', controls: 'proc2', half: 'high', op: 'keep', mask: 0xc51998fe, maskWithoutPerfGlobalCtrl: 0xc51998fe },
  { msr: 0x481, name: 'MSR_IA32_VMX_PINBASED_CTLS', controls: 'pin', half: 'high', op: 'keep', mask: 0x0000003f, maskWithoutPerfGlobalCtrl: 0x0000003f },
  { msr: 0x48d, name: 'MSR_IA32_VMX_TRUE_PINBASED_CTLS', controls: 'pin', half: 'high', op: 'keep', mask: 0x0000003f, maskWithoutPerfGlobalCtrl: 0x0000003f },
  { msr: 0x491, name: 'MSR_IA32_VMX_VMFUNC', controls: 'vmfunc', half: 'low', op: 'keep', mask: 0x00000000, maskWithoutPerfGlobalCtrl: 0x00000000 },
];
export const CHECK_LINUX_6_12: readonly CheckRule[] = [
  { rule: 'pin', field: 'pin_based_vm_exec_control', kind: 'allow', mask: 0x0000003f },
  { rule: 'exec', field: 'cpu_based_vm_exec_control', kind: 'allow', mask: 0xfff9fffe },
  { rule: '2ndexec', field: 'secondary_vm_exec_control', kind: 'allow', mask: 0xc51998fe },
  { rule: 'exit', field: 'vm_exit_controls', kind: 'allow', mask: 0x03bfffff },
  { rule: 'entry', field: 'vm_entry_controls', kind: 'allow', mask: 0x0007f3ff },
  { rule: 'vmfunc-high', field: 'vm_function_control', kind: 'high-bits', mask: 0 },
  { rule: 'vmfunc', field: 'vm_function_control', kind: 'allow', mask: 0x00000000 },
];
