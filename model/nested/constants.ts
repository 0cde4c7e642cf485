// struct kvm_nested_state and its constants (uapi asm/kvm.h; kernel-facts §7).

export const HEADER_SIZE = 128;
export const VMCS12_BLOB_SIZE = 0x1000; // KVM_STATE_NESTED_VMX_VMCS_SIZE
export const VMCS12_STRUCT_SIZE = 998; // what SET copies of each page
export const SIZE_WITH_VMCS12 = HEADER_SIZE + VMCS12_BLOB_SIZE; // 4224
export const SIZE_WITH_SHADOW = HEADER_SIZE + 2 * VMCS12_BLOB_SIZE; // 8320, also KVM_CAP_NESTED_STATE
export const MIN_SIZE_FOR_VMCS12 = HEADER_SIZE + VMCS12_STRUCT_SIZE; // 1126
export const MIN_SIZE_FOR_SHADOW = HEADER_SIZE + VMCS12_BLOB_SIZE + VMCS12_STRUCT_SIZE; // 5222

export const INVALID_GPA = 0xffff_ffff_ffff_ffffn;

export const FLAGS = {
  GUEST_MODE: 0x1,
  RUN_PENDING: 0x2,
  EVMCS: 0x4,
  MTF_PENDING: 0x8,
  GIF_SET: 0x100,
} as const;

export const SMM_FLAGS = { GUEST_MODE: 0x1, VMXON: 0x2 } as const;
export const VMX_HDR_FLAGS = { PREEMPTION_TIMER_DEADLINE: 0x1 } as const;
export const FORMAT = { VMX: 0, SVM: 1 } as const;

/** Byte offsets in the blob. */
export const OFFSET = {
  flags: 0,
  format: 2,
  size: 4,
  vmxonPa: 8,
  vmcs12Pa: 16,
  smmFlags: 24,
  pad: 26,
  vmxFlags: 28,
  preemptionTimerDeadline: 32,
  vmcs12: 128,
  shadowVmcs12: 4224,
} as const;

export const IOCTL = { KVM_GET_NESTED_STATE: 0xc080aeben, KVM_SET_NESTED_STATE: 0x4080aebfn } as const;
export const KVM_CAP = { NESTED_STATE: 157, HYPERV_ENLIGHTENED_VMCS: 163 } as const;

/** The errnos the model answers, by name, with their numbers (the ioctl returns the negative). The
 * schemas that name errnos list these (tests/vocabulary.test.ts keeps them in step). */
export const ERRNO = { EINVAL: 22, EFAULT: 14, E2BIG: 7, ENOMEM: 12, ENOTTY: 25 } as const;
export type Errno = keyof typeof ERRNO;

/** KVM_GET/SET_MP_STATE's run states (uapi linux/kvm.h), the x86 ones. */
export const MP_STATE = { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4, AP_RESET_HOLD: 9 } as const;
