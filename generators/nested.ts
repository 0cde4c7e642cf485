// vCPU configurations and guest-operation sequences that reach the interesting nested states: L1
// only, a vmcs12 loaded, L2 running (with run pending), eVMCS active or enabled but unused, SMM,
// shadow VMCS, the preemption timer armed, MTF pending. Steps are small scenarios so shrinking
// removes whole steps and counterexamples read as a story.
import fc from 'fast-check';
import type { GuestOp, VcpuConfig } from '../model/nested/vcpu.js';
import { EVMCS, encodingOf } from '../model/catalog/by-name.js';
import { KVM_EVMCS_VERSION } from '../model/catalog/evmcs.js';
import { CHECK_LINUX_6_1, CHECK_LINUX_6_12 } from '../model/catalog/vmx-controls.js';
import { VMCS12_REVISION } from '../model/catalog/vmcs12.js';
import { vmwriteOp as w } from '../model/nested/ops-json.js';
import { BIT } from '../model/vmentry/bits.js';
import { nestedCaps } from '../model/vmentry/caps.js';
import { draftStores, type Vmcs12Draft } from '../model/vmentry/draft.js';
import { evmcsLayout } from '../model/evmcs.js';
import { widthBytes } from '../model/encoding.js';
import { readBytes, writeBytes } from '../model/vmcs12-access.js';
import { validGuest, type ControlPlan } from './valid-guest.js';
import type { GuestMemory } from '../model/nested/guest-memory.js';

export const PAGES = { vmxon: 0x1000n, vmcs: 0x2000n, vmcs2: 0x3000n, evmcs: 0x4000n, shadow: 0x5000n } as const;

/**
 * vCPU configurations: nested off 1 case in 10, or 1 in 500 on a target where switching it costs a
 * module reload (Target.nestedParamChange): on kvm: two reloads (off, then on again) take 10-14 s,
 * as long as 30 whole cases; at 1 in 10 they were 85 of the 100 s of ioctls in 20 cases, at 1 in 50
 * still half of them. A default run there (about 1,100 nested-state cases) draws a few.
 */
export const vcpuConfigFor = (t: { readonly nestedParamChange?: string | undefined } = {}): fc.Arbitrary<VcpuConfig> => fc.record({
  nested: fc.oneof({ weight: t.nestedParamChange ? 499 : 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  vmxInCpuid: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  evmcsEnabled: fc.boolean(),
  hypervCpuid: fc.oneof(fc.boolean(), fc.record({ nestedEax: fc.nat(0xffff), nestedEbx: fc.nat(1) })),
  inSmm: fc.constant(false),
  maxPhyAddr: fc.constantFrom(36, 39, 46, 52),
});
export const vcpuConfig = vcpuConfigFor();

/** The guest memory a draft relies on (linked VMCS header, PDPTEs, VM-entry MSR-load list), as stores. */
const memoryOps = (d: Vmcs12Draft): GuestOp[] => draftStores(d).map((s) => ({ op: 'write-memory', pa: s.pa, value: s.value }));

/** The operations that put a draft vmcs12 in place: its guest memory, then a VMWRITE per field into the current VMCS. */
export function writeGuestOps(d: Vmcs12Draft): GuestOp[] {
  return [...memoryOps(d), ...[...d.fields].map(([m, v]) => w(m, v))];
}

const EVMCS_SLOT = new Map(evmcsLayout('evmcs').fields.map((f) => [f.encoding, f]));

/**
 * An enlightened VMCS holding a draft: L1 writes the eVMCS in memory (fields KVM copies into the
 * vmcs12 on an enlightened entry; the rest read as zero there), then points the VP-assist page at it.
 */
export function writeEvmcsOps(d: Vmcs12Draft, pa: bigint): GuestOp[] {
  const page = new Uint8Array(1024);
  for (const [m, v] of d.fields) {
    const slot = EVMCS_SLOT.get(Number(encodingOf(m)));
    if (slot) writeBytes(page, slot.offset, widthBytes(slot.width), v);
  }
  const ops: GuestOp[] = [...memoryOps(d), { op: 'init-evmcs', pa, revision: KVM_EVMCS_VERSION }];
  // init-evmcs writes revision_id and abort; the fields follow, 8-byte aligned
  for (let off = EVMCS.offset('host_es_selector'); off < page.length; off += 8) {
    const value = readBytes(page, off, 8);
    if (value) ops.push({ op: 'write-memory', pa: pa + BigInt(off), value });
  }
  return ops;
}

/** L2 guests valid for KVM's default capabilities, half of them also within both kernels' eVMCS checks; their addresses inside `memory` when the target has an end to it. */
const validL2 = (memory: GuestMemory | undefined, plan?: ControlPlan) =>
  fc.boolean().chain((evmcsSafe) => validGuest(nestedCaps(undefined), { evmcsCheck: evmcsSafe ? [...CHECK_LINUX_6_1, ...CHECK_LINUX_6_12] : null, ...(plan ? { plan } : {}), ...(memory ? { memory } : {}) }));

/** VMXON and a current VMCS (operations that fail harmlessly where they are already done). */
/** VMXON as an L1 hypervisor does it: the region starts with the revision id (KVM checks it). */
export const VMXON: readonly GuestOp[] = [{ op: 'init-vmcs', pa: PAGES.vmxon }, { op: 'vmxon', pa: PAGES.vmxon }];

const L1_WITH_VMCS: readonly GuestOp[] = [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }];

/** VMWRITEs that turn VMCS shadowing on (the secondary controls, SHADOW_VMCS) with the link pointer at the shadow page. */
function enableShadowVmcs(): GuestOp[] {
  return [w('cpu_based_vm_exec_control', BigInt(BIT.proc.secondary)), w('secondary_vm_exec_control', BigInt(BIT.proc2.shadowVmcs)), w('vmcs_link_pointer', PAGES.shadow)];
}

/**
 * Scenario steps. Each is a few operations a guest (or the VMM) performs. A target whose guest memory
 * has an end (the kvm: agent's 16 MiB) gets valid L2s whose addresses lie inside it: a case pointing
 * outside would be skipped, not checked.
 */
export const stepFor = (memory?: GuestMemory): fc.Arbitrary<GuestOp[]> => fc.oneof(
  { weight: 4, arbitrary: fc.constant<GuestOp[]>([...VMXON]) },
  { weight: 3, arbitrary: fc.constantFrom(PAGES.vmcs, PAGES.vmcs2).map((pa): GuestOp[] => [{ op: 'init-vmcs', pa }, { op: 'vmptrld', pa }]) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          ...['pin_based_vm_exec_control', 'cpu_based_vm_exec_control', 'secondary_vm_exec_control', 'vm_exit_controls', 'vm_entry_controls'],
          ...['guest_rip', 'guest_cr0', 'vmx_preemption_timer_value', 'guest_es_selector', 'vmcs_link_pointer'],
        ),
        fc.bigInt(0n, (1n << 64n) - 1n),
      )
      .map(([m, v]): GuestOp[] => [w(m, v)]),
  },
  // shadow VMCS: activate secondary controls + SHADOW_VMCS, and a link pointer to a shadow region
  { weight: 2, arbitrary: fc.constant<GuestOp[]>([{ op: 'init-vmcs', pa: PAGES.shadow, shadow: true }, ...enableShadowVmcs()]) },
  // a whole valid L2 written into the current VMCS (VMXON and a VMCS first, if need be), then VMLAUNCH
  { weight: 4, arbitrary: validL2(memory).map((d): GuestOp[] => [...L1_WITH_VMCS, ...writeGuestOps(d), { op: 'vmlaunch' }]) },
  // preemption timer armed
  { weight: 1, arbitrary: fc.tuple(validL2(memory, { on: { pin: BIT.pin.preemption } }), fc.nat(0xffff)).map(([d, t]): GuestOp[] => [...L1_WITH_VMCS, ...writeGuestOps(d), w('vmx_preemption_timer_value', BigInt(t)), { op: 'vmlaunch' }]) },
  // monitor trap flag: L2 runs, then an MTF VM-exit is pending
  { weight: 1, arbitrary: validL2(memory, { on: { proc: BIT.proc.mtf } }).map((d): GuestOp[] => [...L1_WITH_VMCS, ...writeGuestOps(d), { op: 'vmlaunch' }, { op: 'run' }, { op: 'mtf' }]) },
  { weight: 3, arbitrary: fc.constantFrom<GuestOp[]>([{ op: 'vmlaunch' }], [{ op: 'vmresume' }], [{ op: 'run' }], [{ op: 'vmexit', reason: 1n }]) },
  // L1 reads the VM-instruction error, as a hypervisor does after a VMfailValid: from the vmcs12, or
  // with an eVMCS in use from the eVMCS, where the KVM_RUN before it has synced the error (F7)
  { weight: 1, arbitrary: fc.constant<GuestOp[]>([{ op: 'run' }, { op: 'vmread', field: encodingOf('vm_instruction_error') }]) },
  { weight: 1, arbitrary: fc.constantFrom<GuestOp[]>([{ op: 'vmclear', pa: PAGES.vmcs }], [{ op: 'vmxoff' }], [{ op: 'smm-entry' }], [{ op: 'rsm' }]) },
  // eVMCS: enable the capability, write an eVMCS, point the VP-assist page at it, enlightened entry
  {
    weight: 2,
    arbitrary: fc.tuple(fc.boolean(), fc.constantFrom(KVM_EVMCS_VERSION, KVM_EVMCS_VERSION, VMCS12_REVISION, 7)).map(([launch, revision]): GuestOp[] => [
      { op: 'enable-evmcs' },
      { op: 'init-evmcs', pa: PAGES.evmcs, revision },
      { op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: true },
      { op: 'evmcs-entry', launch },
    ]),
  },
  // eVMCS with a valid L2 in it (within both kernels' eVMCS checks), enlightened VMLAUNCH
  {
    weight: 2,
    arbitrary: validGuest(nestedCaps(undefined), { evmcsCheck: [...CHECK_LINUX_6_1, ...CHECK_LINUX_6_12], ...(memory ? { memory } : {}) }).map((d): GuestOp[] => [
      { op: 'enable-evmcs' },
      ...VMXON,
      ...writeEvmcsOps(d, PAGES.evmcs),
      { op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: true },
      { op: 'evmcs-entry', launch: true },
    ]),
  },
  // eVMCS enabled but never used: the seed-003 guest
  { weight: 1, arbitrary: fc.constant<GuestOp[]>([{ op: 'enable-evmcs' }]) },
);

export const step = stepFor();
/** What a target says about its vCPUs that shapes the scenarios it can be given (Target's fields of these names). */
export interface ScenarioLimits {
  readonly guestMemory?: GuestMemory | undefined;
  /** guest operations the target does not carry out: steps using one are left out, not skipped later */
  readonly unsupportedGuestOps?: Readonly<Record<string, string>> | undefined;
}

const offered = (limits: ScenarioLimits) => (steps: GuestOp[][]): GuestOp[] =>
  steps.filter((s) => !s.some((o) => limits.unsupportedGuestOps?.[o.op] !== undefined)).flat();

export const guestOpsFor = (limits: ScenarioLimits = {}, maxSteps = 8): fc.Arbitrary<GuestOp[]> => fc.array(stepFor(limits.guestMemory), { maxLength: maxSteps }).map(offered(limits));
export const guestOps = guestOpsFor();

export { opsToJson } from '../model/nested/ops-json.js';

/** A vmcs12 that enables shadow VMCS with a valid link pointer, loaded in L1. */
export const SHADOW_SETUP: readonly GuestOp[] = [
  ...VMXON,
  { op: 'init-vmcs', pa: PAGES.vmcs },
  { op: 'vmptrld', pa: PAGES.vmcs },
  { op: 'init-vmcs', pa: PAGES.shadow, shadow: true },
  ...enableShadowVmcs(),
];

/** Sequences that start from the shadow-VMCS setup half of the time (for properties about it). */
export const guestOpsOftenShadowFor = (limits: ScenarioLimits = {}): fc.Arbitrary<GuestOp[]> =>
  fc.oneof(guestOpsFor(limits), fc.array(stepFor(limits.guestMemory), { maxLength: 3 }).map((t) => [...SHADOW_SETUP, ...offered(limits)(t)]));
export const guestOpsOftenShadow = guestOpsOftenShadowFor();
