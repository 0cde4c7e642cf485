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
}

const BASE = FLAGS.GUEST_MODE | FLAGS.RUN_PENDING;

export const NESTED_4_19: NestedBehaviour = { evmcsFlag: 'none', setFlagsMask: BASE, getsMtf: false, headerFlags: false };
export const NESTED_4_20: NestedBehaviour = { evmcsFlag: 'when-enabled', setFlagsMask: BASE | FLAGS.EVMCS, getsMtf: false, headerFlags: false };
export const NESTED_5_2: NestedBehaviour = { evmcsFlag: 'when-active', setFlagsMask: BASE | FLAGS.EVMCS, getsMtf: false, headerFlags: false };
/** 5.6 emits MTF_PENDING but its own allow-list rejects it: the asymmetric profile */
export const NESTED_5_6: NestedBehaviour = { ...NESTED_5_2, getsMtf: true };
export const NESTED_5_7: NestedBehaviour = { ...NESTED_5_6, setFlagsMask: BASE | FLAGS.EVMCS | FLAGS.MTF_PENDING };
export const NESTED_5_8: NestedBehaviour = { ...NESTED_5_7, setFlagsMask: BASE | FLAGS.EVMCS | FLAGS.MTF_PENDING | FLAGS.GIF_SET, headerFlags: true };
