// Migration scenarios: what the guest did before the move, as a recipe of guest operations on a
// VM configured as the VMM would. One recipe per scenario keeps matrix cells reproducible.
import { vmwriteOp as w } from '../nested/ops-json.js';
import type { GuestOp, VcpuConfig } from '../nested/vcpu.js';
import { DEFAULT_VCPU } from '../nested/vcpu.js';
import { BIT } from '../vmentry/bits.js';
import { L2_CONTROLS, writeL2 } from './l2-guest.js';

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** the VM configuration: Hyper-V enlightenments and eVMCS as the VMM sets them */
  readonly vm: VcpuConfig;
  readonly ops: readonly GuestOp[];
  /** a source must offer this for the scenario to mean anything */
  readonly needs?: 'evmcs';
}

const pa = { vmxon: 0x1000n, vmcs: 0x2000n, evmcs: 0x4000n, shadow: 0x5000n };
const HYPERV: VcpuConfig = { ...DEFAULT_VCPU, hypervCpuid: { nestedEax: 0x0101, nestedEbx: 1 }, evmcsEnabled: true };
/** VMXON as an L1 hypervisor does it: the region starts with the revision id (KVM checks it) */
const vmxon: GuestOp[] = [{ op: 'init-vmcs', pa: pa.vmxon }, { op: 'vmxon', pa: pa.vmxon }];
const loaded: GuestOp[] = [...vmxon, { op: 'init-vmcs', pa: pa.vmcs }, { op: 'vmptrld', pa: pa.vmcs }];
/** a valid L2 (VMLAUNCH runs the VM-entry checks) that halts at its entry point */
const l2 = writeL2;

/** a Hyper-V L1's enlightened VMLAUNCH of the eVMCS its VP-assist page names, and KVM_RUN */
const enlightenedLaunch: GuestOp[] = [
  ...vmxon,
  { op: 'init-evmcs', pa: pa.evmcs },
  { op: 'set-vp-assist', currentNestedVmcs: pa.evmcs, enlightenVmentry: true },
  { op: 'evmcs-entry', launch: true },
  { op: 'run' },
];

export const SCENARIOS: readonly Scenario[] = [
  { name: 'never-nested', description: 'VMX in CPUID, the guest never ran VMXON', vm: DEFAULT_VCPU, ops: [] },
  { name: 'l1-only', description: 'VMXON, no current VMCS', vm: DEFAULT_VCPU, ops: vmxon },
  { name: 'vmcs12-loaded', description: 'VMXON and VMPTRLD, L1 running', vm: DEFAULT_VCPU, ops: [...loaded, w('guest_rip', 0xfff0n)] },
  { name: 'l2-running', description: 'L2 entered with VMLAUNCH and run', vm: DEFAULT_VCPU, ops: [...loaded, ...l2(), { op: 'vmlaunch' }, { op: 'run' }] },
  { name: 'l2-run-pending', description: 'VMLAUNCH emulated, L2 not yet entered', vm: DEFAULT_VCPU, ops: [...loaded, ...l2(), { op: 'vmlaunch' }] },
  {
    name: 'shadow-vmcs',
    description: 'L2 running with shadow VMCS (8320-byte state)',
    vm: DEFAULT_VCPU,
    ops: [...loaded, { op: 'init-vmcs', pa: pa.shadow, shadow: true }, ...l2({ proc: L2_CONTROLS.proc | BIT.proc.secondary, proc2: BIT.proc2.shadowVmcs }), w('vmcs_link_pointer', pa.shadow), { op: 'vmlaunch' }, { op: 'run' }],
  },
  { name: 'preemption-timer', description: 'L2 running with the preemption timer armed (the longest value: a real halted L2 is not woken by it during the move)', vm: DEFAULT_VCPU, ops: [...loaded, ...l2({ pin: L2_CONTROLS.pin | BIT.pin.preemption }), w('vmx_preemption_timer_value', 0xffff_ffffn), { op: 'vmlaunch' }, { op: 'run' }] },
  { name: 'mtf-pending', description: 'L2 with a monitor-trap-flag VM-exit pending', vm: DEFAULT_VCPU, ops: [...loaded, ...l2({ proc: L2_CONTROLS.proc | BIT.proc.mtf }), { op: 'vmlaunch' }, { op: 'run' }, { op: 'mtf' }] },
  { name: 'smm', description: 'VMXON, then an SMI: VMX state parked in SMM', vm: DEFAULT_VCPU, ops: [...loaded, { op: 'smm-entry' }] },
  { name: 'evmcs-active', description: 'Hyper-V L1 running L2 from an enlightened VMCS', vm: HYPERV, needs: 'evmcs', ops: enlightenedLaunch },
  {
    name: 'evmcs-vp-assist-off',
    description: 'Hyper-V L1 turned enlightened VM-entry off in its VP-assist page after an enlightened entry (its eVMCS stays in use until the next one): the first KVM_RUN after a restore releases it (F4)',
    vm: HYPERV,
    needs: 'evmcs',
    ops: [...enlightenedLaunch, { op: 'set-vp-assist', currentNestedVmcs: pa.evmcs, enlightenVmentry: false }],
  },
  { name: 'evmcs-enabled-unused', description: 'eVMCS enabled by the VMM, the guest never ran a nested hypervisor (seed 003)', vm: HYPERV, ops: [], needs: 'evmcs' },
];

export const findScenario = (name: string): Scenario | undefined => SCENARIOS.find((s) => s.name === name);
