// How each kernel revision treats nested state (history.md): the flag meanings and allow-lists that
// changed over time. Profiles without KVM_CAP_NESTED_STATE have no entry.
import { FLAGS } from './constants.js';

export interface NestedBehaviour {
  /** 4.19 had no EVMCS flag; 4.20-5.1 set it when eVMCS was enabled; 5.2+ only when one is active */
  readonly evmcsFlag: 'none' | 'when-enabled' | 'when-active';
  /** the ioctl's flag allow-list (W3) */
  readonly setFlagsMask: number;
  /** GET emits KVM_STATE_NESTED_MTF_PENDING (5.6+) */
  readonly getsMtf: boolean;
  /** hdr.vmx.flags and the preemption-timer deadline exist (5.8+) */
  readonly headerFlags: boolean;
  /**
   * after a KVM_RUN whose eVMCS lookup failed (KVM_EXIT_INTERNAL_ERROR), KVM_REQ_GET_NESTED_STATE_PAGES
   * is made again (6.12: vcpu_enter_guest) or dropped (6.1, and the model's older profiles). The
   * eVMCS is released either way, so the next KVM_RUN runs; only the vmcs12 pages of an L2 (APIC
   * access, posted interrupts: not modelled) are mapped on it in 6.12 and never in 6.1.
   */
  readonly statePagesRequeuedOnFailure: boolean;
}

const BASE = FLAGS.GUEST_MODE | FLAGS.RUN_PENDING;

export const NESTED_4_19: NestedBehaviour = { evmcsFlag: 'none', setFlagsMask: BASE, getsMtf: false, headerFlags: false, statePagesRequeuedOnFailure: false };
export const NESTED_4_20: NestedBehaviour = { ...NESTED_4_19, evmcsFlag: 'when-enabled', setFlagsMask: BASE | FLAGS.EVMCS };
export const NESTED_5_2: NestedBehaviour = { ...NESTED_4_19, evmcsFlag: 'when-active', setFlagsMask: BASE | FLAGS.EVMCS };
/** 5.6 emits MTF_PENDING but its own allow-list rejects it: the asymmetric profile */
export const NESTED_5_6: NestedBehaviour = { ...NESTED_5_2, getsMtf: true };
export const NESTED_5_7: NestedBehaviour = { ...NESTED_5_6, setFlagsMask: BASE | FLAGS.EVMCS | FLAGS.MTF_PENDING };
export const NESTED_5_8: NestedBehaviour = { ...NESTED_5_7, setFlagsMask: BASE | FLAGS.EVMCS | FLAGS.MTF_PENDING | FLAGS.GIF_SET, headerFlags: true };
/** 6.12 makes the state-pages request again after a failed eVMCS map (kernel-facts §12) */
export const NESTED_6_12: NestedBehaviour = { ...NESTED_5_8, statePagesRequeuedOnFailure: true };
