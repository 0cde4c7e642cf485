// The vCPU operations a migration performs on both hosts: the model's, or a target's own set (the
// reference target passes its model functions, so a replaced one shows in its migrations too).
import { getNestedState } from '../nested/get.js';
import { setNestedState } from '../nested/set.js';
import { applyOp, DEFAULT_HOOKS, type VcpuHooks } from '../nested/vcpu.js';

export interface VcpuOps {
  readonly applyOp: typeof applyOp;
  readonly setNestedState: typeof setNestedState;
  readonly getNestedState: typeof getNestedState;
  readonly hooks: VcpuHooks;
}

export const MODEL_OPS: VcpuOps = { applyOp, setNestedState, getNestedState, hooks: DEFAULT_HOOKS };
