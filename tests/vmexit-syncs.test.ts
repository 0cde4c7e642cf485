// What a nested VM-exit and GET in guest mode write into vmcs12 beyond the activity state, DR7 and
// EFER (the rest of audit F8), and what an enlightened VMLAUNCH clears (F10.5), on 6.1 and 6.12.
// Expectations come from the kernel functions (prepare_vmcs12, sync_vmcs02_to_vmcs12,
// vmx_calc/get_preemption_timer_value, nested_vmx_handle_enlightened_vmptrld), not from the model.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { encodingOf, VMCS12 } from '../model/catalog/by-name.js';
import { KVM_EVMCS_VERSION } from '../model/catalog/evmcs.js';
import { FLAGS, MP_STATE, OFFSET, SIZE_WITH_SHADOW, VMCS12_STRUCT_SIZE, VMX_HDR_FLAGS } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { applyOp, DEFAULT_VCPU, Vcpu, type GuestOp, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { nestedCaps } from '../model/vmentry/caps.js';
import { BIT, INTR } from '../model/vmentry/bits.js';
import type { Vmcs12Draft } from '../model/vmentry/draft.js';
import { vmwriteOp } from '../model/nested/ops-json.js';
import { PAGES, VMXON, writeGuestOps } from '../generators/nested.js';
import { validGuest, type ControlPlan } from '../generators/valid-guest.js';
import { afterRestore, deadlineFixedBySet, diffBlobs, timerValueAtGet, withoutTimerValueAtGet } from '../harness/nested-common.js';
import { readHeader, writeHeader } from '../model/nested/blob.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { referenceTarget, type ReferenceModel } from '../targets/reference.js';
import { expectCaught } from './expect-caught.js';
import { plantBug } from './plant.js';

const PROFILES = ['linux-6.1', 'linux-6.12'] as const;
const vcpu = (profile: string, config: Partial<VcpuConfig> = {}) => {
  const p = findProfile(profile)!;
  return new Vcpu({ ...p, nested: p.nested! }, { ...DEFAULT_VCPU, ...config });
};
const field = (d: Vmcs12Draft, m: string) => d.fields.get(m) ?? 0n;
const has = (d: Vmcs12Draft, m: string, bit: number) => (Number(field(d, m)) & bit) !== 0;

/** An active L2 (64-bit host, activity 0) valid for the default capabilities, `inject` or not, with `plan`'s controls. */
function guest(seed: number, inject: boolean, plan: ControlPlan = {}, also: (d: Vmcs12Draft) => boolean = () => true): Vmcs12Draft {
  const arb = validGuest(nestedCaps(undefined), { plan }).filter(
    (d) => has(d, 'vm_exit_controls', BIT.exit.hostAddrSpace) && field(d, 'guest_activity_state') === 0n && has(d, 'vm_entry_intr_info_field', INTR.VALID) === inject && also(d),
  );
  return fc.sample(arb, { seed, numRuns: 1 })[0]!;
}

const launchOps = (d: Vmcs12Draft, extra: GuestOp[] = []): GuestOp[] => [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, ...writeGuestOps(d), ...extra, { op: 'vmlaunch' }];
function launched(profile: string, d: Vmcs12Draft, extra: GuestOp[] = []): Vcpu {
  const v = vcpu(profile);
  for (const o of launchOps(d, extra)) expect(applyOp(v, o).result, o.op).toBe('ok');
  expect(v.guestMode).toBe(true);
  return v;
}
const blobOf = (v: Vcpu) => {
  const g = getNestedState(v, SIZE_WITH_SHADOW);
  return g.buffer.subarray(0, g.size).slice();
};
const got = (v: Vcpu, m: string) => VMCS12.read(blobOf(v).subarray(OFFSET.vmcs12), m);

describe.each(PROFILES)('a nested VM-exit on %s (prepare_vmcs12)', (profile) => {
  const injecting = guest(11, true);

  test('audit F8 input: VMLAUNCH with an injected event, KVM_RUN, VM-exit 0x12: the VALID bit is cleared, the rest of the field kept', () => {
    const info = field(injecting, 'vm_entry_intr_info_field');
    const v = launched(profile, injecting);
    expect(applyOp(v, { op: 'run' }).result).toBe('ok');
    expect(applyOp(v, { op: 'vmexit', reason: 0x12n }).result).toBe('ok');
    expect(got(v, 'vm_entry_intr_info_field')).toBe(info & ~BigInt(INTR.VALID));
    // and L1's VMRESUME then injects nothing
    expect(applyOp(v, { op: 'vmresume' }).result).toBe('ok');
    expect(got(v, 'vm_entry_intr_info_field') & BigInt(INTR.VALID)).toBe(0n);
  });

  test('the exit-information fields of a synthesized exit: reason, qualification 0, nothing vectoring, no interruption information, vmcs02\'s zero instruction length and information; launched', () => {
    const v = launched(profile, injecting, [
      vmwriteOp('exit_qualification', 0x55n),
      vmwriteOp('idt_vectoring_info_field', 0x8000_0b0en),
      vmwriteOp('vm_exit_intr_info', 0x8000_0300n),
      vmwriteOp('vm_exit_instruction_len', 3n),
      vmwriteOp('vmx_instruction_info', 0x1234n),
    ]);
    applyOp(v, { op: 'vmexit', reason: 0x12n });
    const b = blobOf(v).subarray(OFFSET.vmcs12);
    const read = (m: string) => VMCS12.read(b, m);
    expect(['vm_exit_reason', 'exit_qualification', 'idt_vectoring_info_field', 'vm_exit_intr_info', 'vm_exit_instruction_len', 'vmx_instruction_info', 'launch_state'].map(read)).toEqual([0x12n, 0n, 0n, 0n, 0n, 0n, 1n]);
  });

  test('the -1 of SMM entry syncs vmcs02 (an L2 halted since shows activity HLT) but writes no exit information and keeps the VALID bit', () => {
    const v = launched(profile, injecting, [vmwriteOp('exit_qualification', 0x55n)]);
    expect(applyOp(v, { op: 'set-mp-state', state: MP_STATE.HALTED }).result).toBe('ok');
    expect(applyOp(v, { op: 'smm-entry' }).result).toBe('ok');
    const read = (m: string) => VMCS12.read(v.vmcs12, m);
    expect(['guest_activity_state', 'exit_qualification', 'launch_state', 'vm_entry_intr_info_field'].map(read)).toEqual([1n, 0x55n, 0n, field(injecting, 'vm_entry_intr_info_field')]);
  });

  test('an entry-failure exit writes only the reason and the qualification (the injected event keeps VALID)', () => {
    const v = vcpu(profile);
    // the F1 guest of the audit: CS access rights 0 fail code_segment_valid without unrestricted guest
    const d = guest(11, true, { off: { proc2: BIT.proc2.unrestricted } });
    const r = [...launchOps(d, [vmwriteOp('guest_cs_ar_bytes', 0n)])].map((o) => applyOp(v, o)).at(-1)!;
    expect(r).toMatchObject({ result: 'vmexit', error: 0x8000_0021 });
    expect(VMCS12.read(v.vmcs12, 'vm_entry_intr_info_field')).toBe(field(d, 'vm_entry_intr_info_field'));
    expect(VMCS12.read(v.vmcs12, 'launch_state')).toBe(0n);
  });

  test('GET in guest mode writes vmcs02\'s guest-linear address over what L1 wrote (sync_vmcs02_to_vmcs12)', () => {
    const v = launched(profile, injecting, [vmwriteOp('guest_linear_address', 0xdead_b000n)]);
    expect(VMCS12.read(v.vmcs12, 'guest_linear_address')).toBe(0xdead_b000n);
    expect(got(v, 'guest_linear_address')).toBe(0n);
  });
});

describe.each(PROFILES)('the preemption timer on %s (nested_vmx_enter_non_root_mode, sync_vmcs02_to_vmcs12)', (profile) => {
  const VALUE = 0x1000n;
  const timed = guest(13, false, { on: { pin: BIT.pin.preemption, exit: BIT.exit.savePreemption } });
  const unsaved = guest(13, false, { on: { pin: BIT.pin.preemption }, off: { exit: BIT.exit.savePreemption } });
  const arm = [vmwriteOp('vmx_preemption_timer_value', VALUE)];
  /** L1's TSC >> 5 as a KVM_RUN advances it: the model's clock (0x1000 TSC cycles per KVM_RUN) */
  const PER_RUN = 0x1000n >> 5n;

  test('VMLAUNCH fixes the deadline (GET while the entry is pending carries it); the vmcs12 value is kept while pending', () => {
    const v = launched(profile, timed, arm);
    const g = getNestedState(v, SIZE_WITH_SHADOW);
    expect(g.header.flags & FLAGS.RUN_PENDING).toBe(FLAGS.RUN_PENDING);
    expect([g.header.vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE, g.header.preemptionTimerDeadline]).toEqual([VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE, VALUE]);
    expect(got(v, 'vmx_preemption_timer_value')).toBe(VALUE);
  });

  test('after KVM_RUN, GET under the save control writes the remaining time; 0 once it has run out', () => {
    const v = launched(profile, timed, arm);
    applyOp(v, { op: 'run' });
    expect(got(v, 'vmx_preemption_timer_value')).toBe(VALUE - PER_RUN);
    applyOp(v, { op: 'run' });
    expect(got(v, 'vmx_preemption_timer_value')).toBe(VALUE - 2n * PER_RUN);
    for (let i = 0; i < 40; i++) applyOp(v, { op: 'run' });
    expect(got(v, 'vmx_preemption_timer_value')).toBe(0n);
  });

  test('without the save control GET leaves the value L1 wrote', () => {
    const v = launched(profile, unsaved, arm);
    applyOp(v, { op: 'run' });
    expect(got(v, 'vmx_preemption_timer_value')).toBe(VALUE);
  });

  test('a VM-exit under the save control writes the remaining time too', () => {
    const v = launched(profile, timed, arm);
    applyOp(v, { op: 'run' });
    applyOp(v, { op: 'vmexit', reason: 1n });
    expect(VMCS12.read(v.vmcs12, 'vmx_preemption_timer_value')).toBe(VALUE - PER_RUN);
  });

  test('SET of an L2 without a deadline fixes one from the restored vmcs12 (GET after SET carries it)', () => {
    const src = launched(profile, timed, arm);
    const blob = blobOf(src);
    blob.fill(0, OFFSET.vmxFlags, OFFSET.preemptionTimerDeadline + 8); // QEMU without hdr.vmx.flags
    const dst = vcpu(profile);
    dst.memory = new Map([...src.memory].map(([k, p]) => [k, p.slice()]));
    expect(setNestedState(dst, blob).ret).toBe(0);
    const g = getNestedState(dst, SIZE_WITH_SHADOW);
    expect([g.header.vmxFlags, g.header.preemptionTimerDeadline]).toEqual([VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE, VALUE]);
    // the migration normalisation DEADLINE_FIXED_BY_SET takes that deadline, and only a plausible one
    const after = blobOf(dst);
    expect(diffBlobs(deadlineFixedBySet(afterRestore(blob), after), after)).toEqual([]);
    const early = after.slice();
    writeHeader(early, { ...readHeader(after), preemptionTimerDeadline: VALUE - 1n });
    expect(readHeader(deadlineFixedBySet(afterRestore(blob), early)).vmxFlags).toBe(0);
  });

  test('the round-trip normalisation PREEMPTION_TIMER_VALUE_AT_GET applies exactly where GET wrote the remaining time', () => {
    const pending = launched(profile, timed, arm);
    expect(timerValueAtGet(blobOf(pending))).toBe(false);
    applyOp(pending, { op: 'run' });
    const ran = blobOf(pending);
    expect(timerValueAtGet(ran)).toBe(true);
    expect(VMCS12.read(withoutTimerValueAtGet(ran).subarray(OFFSET.vmcs12), 'vmx_preemption_timer_value')).toBe(0n);
    const other = launched(profile, unsaved, arm);
    applyOp(other, { op: 'run' });
    expect(timerValueAtGet(blobOf(other))).toBe(false);
  });
});

test('nested.round-trip catches a GET that writes the remaining time without the save control (the normalisation hides the field only where the control is set)', async () => {
  const def = ALL_PROPERTIES.find((p) => p.id === 'nested.round-trip')!;
  // one-line bug: sync_vmcs02_to_vmcs12 forgets VM_EXIT_SAVE_VMX_PREEMPTION_TIMER
  const m = await plantBug<typeof import('../model/nested/vcpu.js')>(
    'nested/vcpu.ts',
    "return (pin & BIT.pin.preemption) !== 0 && (Number(VMCS12.read(vmcs12, 'vm_exit_controls')) & BIT.exit.savePreemption) !== 0 && !runPending;",
    'return (pin & BIT.pin.preemption) !== 0 && !runPending;',
  );
  // get.ts calls the real sync: the planted one runs first, as GET's own would
  const model: Partial<ReferenceModel> = {
    applyOp: m.applyOp as ReferenceModel['applyOp'],
    getNestedState: (v, n) => {
      if (v.guestMode) m.syncVmcs02ToVmcs12(v as Parameters<typeof m.syncVmcs02ToVmcs12>[0]);
      return getNestedState(v, n);
    },
  };
  const f = await expectCaught(def, referenceTarget({ model }), { runs: 400 });
  expect(f.counterexample.diff.some((d) => /^vmcs12 \+92[89]|^vmcs12 \+93[01]/.test(d.field))).toBe(true);
});

describe.each(PROFILES)('an enlightened VMLAUNCH on %s clears the vmcs12 struct, not the cache (F10.5)', (profile) => {
  test('bytes 998..4095 of KVM\'s cache keep what the VMCS used before the eVMCS left there; GET shows them', () => {
    const v = vcpu(profile, { evmcsEnabled: true, hypervCpuid: { nestedEax: 0, nestedEbx: 0 } });
    const ops: GuestOp[] = [
      ...VMXON,
      { op: 'init-vmcs', pa: PAGES.vmcs },
      { op: 'write-memory', pa: PAGES.vmcs + 1000n, value: 0xfeed_f00dn },
      { op: 'vmptrld', pa: PAGES.vmcs },
      { op: 'vmwrite', field: encodingOf('guest_rip'), value: 0x1234n },
      { op: 'init-evmcs', pa: PAGES.evmcs, revision: KVM_EVMCS_VERSION },
      { op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: true },
      { op: 'evmcs-entry', launch: true },
    ];
    for (const o of ops) applyOp(v, o);
    const page = getNestedState(v, SIZE_WITH_SHADOW).buffer.subarray(OFFSET.vmcs12, OFFSET.vmcs12 + 4096);
    expect(VMCS12.read(page, 'guest_rip')).toBe(0n); // the struct was cleared
    expect(new DataView(page.buffer, page.byteOffset + 1000, 4).getUint32(0, true)).toBe(0xfeed_f00d);
    expect(page.subarray(VMCS12_STRUCT_SIZE, 1000).every((b) => b === 0)).toBe(true);
  });
});
