// What VMLAUNCH/VMRESUME checks beyond the vmcs12 consistency checks, as the fidelity audit found
// it in 6.1 and 6.12: the guest segment registers without unrestricted guest (F1) and the VM-entry
// MSR-load list (F2). Each audit input is replayed and the kernel's answer asserted.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { capabilitySet, mostlyHost64 } from '../generators/capabilities.js';
import { PAGES, VMXON, writeGuestOps } from '../generators/nested.js';
import { buildValidGuest, rawGuest, validGuest, type ControlPlan } from '../generators/valid-guest.js';
import { encodeBlob, readHeader } from '../model/nested/blob.js';
import { FLAGS } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { opsFromJson } from '../model/nested/ops-json.js';
import { setNestedState } from '../model/nested/set.js';
import { applyOp, DEFAULT_VCPU, Vcpu, type GuestOp, type OpResult, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { readBytes } from '../model/vmcs12-access.js';
import { BIT } from '../model/vmentry/bits.js';
import { nestedCaps } from '../model/vmentry/caps.js';
import { draftPage, INVALID_LINK, type Vmcs12Draft } from '../model/vmentry/draft.js';
import { ENTRY_MSR_AREA } from '../generators/msr-list.js';

const P = findProfile('linux-6.12')!;
const vcpu = (config: Partial<VcpuConfig> = {}) => new Vcpu({ ...P, nested: P.nested! }, { ...DEFAULT_VCPU, ...config });
const run = (v: Vcpu, ops: readonly GuestOp[]): OpResult[] => ops.map((o) => applyOp(v, o));
const L1: GuestOp[] = [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }];
const launch = (v: Vcpu, d: Vmcs12Draft) => run(v, [...L1, ...writeGuestOps(d), { op: 'vmlaunch' }]).at(-1)!;
const flags = (v: Vcpu) => readHeader(getNestedState(v, 8320).buffer).flags;
const member = (v: Vcpu, name: string) => { const m = P.vmcs12.members.find((x) => x.name === name)!; return readBytes(v.vmcs12, m.offset, m.size); };

const RAW = fc.sample(rawGuest, { numRuns: 1, seed: 11 })[0]!;
/** a valid guest (64-bit host, no link pointer, no MSR-load list, active), with a plan */
const guest = (plan: ControlPlan, raw = RAW): Vmcs12Draft => {
  const d = buildValidGuest(nestedCaps(undefined), { ...raw, activity: 0n, msrs: [] }, { plan });
  d.fields.set('vmcs_link_pointer', INVALID_LINK);
  return d;
};
const NO_UG: ControlPlan = { off: { proc2: BIT.proc2.unrestricted } };
const UG: ControlPlan = { on: { proc: BIT.proc.secondary, proc2: BIT.proc2.unrestricted | BIT.proc2.ept } };
const protectedGuest = () => { const d = guest(NO_UG, { ...RAW, vm86: false }); return d; };
/** the audit's F1 input: the control, host and CR fields a VMLAUNCH needs, nothing else */
const F1_OPS = [
  { op: 'init-vmcs', pa: '0x1000' }, { op: 'vmxon', pa: '0x1000' }, { op: 'init-vmcs', pa: '0x2000' }, { op: 'vmptrld', pa: '0x2000' },
  ...[[0x4000, 0x16], [0x4002, 0x0400_6172], [0x400c, 0x36ffb], [0x4012, 0x11fb], [0x6c00, 0x8000_0021], [0x6c04, 0x2020], [0xc02, 8], [0xc0c, 0x10], [0x6800, 0x8000_0021], [0x6804, 0x2000]].map(([field, value]) => ({ op: 'vmwrite', field: `0x${field!.toString(16)}`, value: `0x${value!.toString(16)}` })),
  { op: 'vmwrite', field: '0x2800', value: '0xffffffffffffffff' },
  { op: 'vmlaunch' },
];
const zeroAccessRights = (d: Vmcs12Draft) => { for (const s of ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'tr', 'ldtr']) d.fields.set(`guest_${s}_ar_bytes`, 0n); return d; };

describe('F1: the guest segment checks of prepare_vmcs02 (vmx_guest_state_valid)', () => {
  test('the audit input (zero access rights, no unrestricted guest) is an entry-failure VM-exit 0x80000021 at code_segment_valid; GET shows the VMCS not launched', () => {
    const ops = opsFromJson(F1_OPS);
    const v = vcpu();
    const r = run(v, ops).at(-1)!;
    expect(r).toMatchObject({ result: 'vmexit', error: 0x8000_0021, check: 'prepare.code-segment' });
    expect([member(v, 'exit_qualification'), member(v, 'launch_state'), flags(v)]).toEqual([0n, 0n, 0]);
  });

  test('never on restore: SET of the same L2 in guest mode succeeds', () => {
    const d = zeroAccessRights(protectedGuest());
    const r = setNestedState(vcpu(), encodeBlob({ flags: FLAGS.GUEST_MODE | FLAGS.RUN_PENDING, vmxonPa: PAGES.vmxon, vmcs12Pa: PAGES.vmcs }, draftPage(d, P.vmcs12)));
    expect(r).toMatchObject({ ret: 0 });
  });

  test('unrestricted guest in vmcs12 turns them off; without it (or with secondary controls off) they run', () => {
    expect(launch(vcpu(), zeroAccessRights(guest(UG)))).toMatchObject({ result: 'ok' });
    expect(launch(vcpu(), zeroAccessRights(protectedGuest()))).toMatchObject({ result: 'vmexit', check: 'prepare.code-segment' });
    const off = zeroAccessRights(guest(UG));
    off.fields.set('cpu_based_vm_exec_control', off.fields.get('cpu_based_vm_exec_control')! & ~BigInt(BIT.proc.secondary));
    off.fields.set('guest_cr0', off.fields.get('guest_cr0')! | 0x8000_0021n); // PE, NE, PG: fixed without unrestricted guest
    off.fields.set('vm_entry_intr_info_field', 0n);
    off.fields.set('guest_cs_selector', 0n);
    off.fields.set('guest_ss_selector', 0n);
    off.fields.set('guest_rflags', off.fields.get('guest_rflags')! & ~0x2_0000n);
    expect(launch(vcpu(), off)).toMatchObject({ result: 'vmexit', check: 'prepare.code-segment' });
  });

  test('KVM reads "present" as not unusable: a usable CS with the AR P bit clear enters', () => {
    const d = protectedGuest();
    d.fields.set('guest_cs_ar_bytes', d.fields.get('guest_cs_ar_bytes')! & ~0x80n);
    expect(launch(vcpu(), d)).toMatchObject({ result: 'ok' });
  });

  test('RFLAGS.VM selects the virtual-8086 rules: protected-mode segments fail rmode_segment_valid for CS first', () => {
    const d = protectedGuest();
    d.fields.set('guest_cs_selector', 0x10n);
    d.fields.set('guest_cs_base', 0n);
    d.fields.set('guest_rflags', d.fields.get('guest_rflags')! | 0x2_0000n);
    expect(launch(vcpu(), d)).toMatchObject({ result: 'vmexit', error: 0x8000_0021, check: 'prepare.rmode-segment.cs' });
  });

  test('order: after nested_vmx_check_guest_state, before the guest-CR3 load', () => {
    const d = zeroAccessRights(protectedGuest());
    d.fields.set('guest_cr3', 1n << 40n);
    expect(launch(vcpu(), d)).toMatchObject({ check: 'prepare.code-segment' });
    d.fields.set('guest_activity_state', 2n);
    expect(launch(vcpu(), d)).toMatchObject({ check: 'guest.activity-state' });
  });

  test('validGuest varies the branch: protected mode, virtual-8086 mode, and unrestricted guest in protected and in real mode all occur', () => {
    const seen = new Set<string>();
    for (const d of fc.sample(validGuest(nestedCaps(undefined)), { numRuns: 300, seed: 3 })) {
      const ug = (d.fields.get('cpu_based_vm_exec_control')! & 0x8000_0000n) !== 0n && (d.fields.get('secondary_vm_exec_control')! & 0x80n) !== 0n;
      const vm86 = (d.fields.get('guest_rflags')! & 0x2_0000n) !== 0n;
      seen.add(ug ? (d.fields.get('guest_cr0')! & 1n ? 'ug-protected' : 'ug-real') : vm86 ? 'vm86' : 'protected');
    }
    expect([...seen].sort()).toEqual(['protected', 'ug-protected', 'ug-real', 'vm86']);
  });

  test('validGuest writes what the CPU checks on vmcs02 too (K12): RFLAGS reserved bits clear and bit 1 set, no VM flag outside protected legacy mode, RIP canonical or 32-bit, no blocking, SS.DPL 0 when halted', () => {
    for (const d of fc.sample(validGuest(nestedCaps(undefined)), { numRuns: 500, seed: 4 })) {
      const f = (m: string) => d.fields.get(m) ?? 0n;
      const ia32e = (f('vm_entry_controls') & 0x200n) !== 0n;
      expect(f('guest_rflags') & ~0x3f_7fd7n).toBe(0n); // bits 63:22, 15, 5 and 3 clear
      expect(f('guest_rflags') & 2n).toBe(2n);
      if (ia32e || !(f('guest_cr0') & 1n)) expect(f('guest_rflags') & 0x2_0000n).toBe(0n);
      const rip = f('guest_rip');
      if (ia32e) expect(rip >> 47n === 0n || rip >> 47n === 0x1_ffffn).toBe(true);
      else expect(rip >> 32n).toBe(0n);
      expect(f('guest_interruptibility_info')).toBe(0n);
      if (f('guest_activity_state') === 1n) expect((f('guest_ss_ar_bytes') >> 5n) & 3n).toBe(0n);
    }
  });
});

describe('F2: the VM-entry MSR-load list', () => {
  const withList = (d: Vmcs12Draft, count: number, addr: bigint) => (d.fields.set('vm_entry_msr_load_count', BigInt(count)), d.fields.set('vm_entry_msr_load_addr', addr), d);

  test('the audit input (one entry at 0x8000 in zero memory: MSR 0) is a VM-exit 0x80000022 with qualification 1', () => {
    const v = vcpu();
    expect(launch(v, withList(protectedGuest(), 1, 0x8000n))).toMatchObject({ result: 'vmexit', error: 0x8000_0022, check: 'msr-load.write' });
    expect([member(v, 'vm_exit_reason'), member(v, 'exit_qualification'), member(v, 'launch_state'), flags(v)]).toEqual([0x8000_0022n, 1n, 0n, 0]);
  });

  test('entries before the failing one are written (SYSENTER_* land in the vmcs12, ESP made canonical); the qualification is its index + 1', () => {
    const d = protectedGuest();
    d.msrLoad = [{ index: 0x174, value: 0x1234_5678_9abcn }, { index: 0x175, value: 0x0000_8000_0000_0000n }, { index: 0x79, value: 0n }, { index: 0x176, value: 0x42n }];
    const v = vcpu();
    expect(launch(v, withList(d, 4, ENTRY_MSR_AREA))).toMatchObject({ result: 'vmexit', error: 0x8000_0022, check: 'msr-load.refused-index' });
    expect([member(v, 'exit_qualification'), member(v, 'guest_sysenter_cs'), member(v, 'guest_sysenter_esp'), member(v, 'guest_sysenter_eip')]).toEqual([3n, 0x5678_9abcn, 0xffff_8000_0000_0000n, 0n]);
  });

  test('each refusal: reserved bits, a non-canonical KERNEL_GS_BASE; a valid list enters and writes every entry', () => {
    const d = protectedGuest();
    d.msrLoad = [{ index: 0xc000_0102, value: 0n, reserved: 1 }];
    expect(launch(vcpu(), withList(d, 1, ENTRY_MSR_AREA))).toMatchObject({ check: 'msr-load.reserved' });
    d.msrLoad = [{ index: 0xc000_0102, value: 1n << 47n }];
    expect(launch(vcpu(), withList(d, 1, ENTRY_MSR_AREA))).toMatchObject({ check: 'msr-load.write' });
    d.msrLoad = [{ index: 0xc000_0102, value: 0xffff_8000_0000_0000n }, { index: 0x176, value: 0x42n }];
    const v = vcpu();
    expect(launch(v, withList(d, 2, ENTRY_MSR_AREA))).toMatchObject({ result: 'ok' });
    expect(member(v, 'guest_sysenter_eip')).toBe(0x42n);
  });

  test('the cap 512 × (IA32_VMX_MISC[27:25] + 1) is checked per entry: entry 513 fails after 512 loaded; MISC[27:25] = 1 lets it load', () => {
    const d = protectedGuest();
    d.msrLoad = Array.from({ length: 513 }, () => ({ index: 0xc000_0102, value: 0n }));
    const v = vcpu();
    expect(launch(v, withList(d, 513, ENTRY_MSR_AREA))).toMatchObject({ result: 'vmexit', error: 0x8000_0022, check: 'msr-load.count' });
    expect(member(v, 'exit_qualification')).toBe(513n);
    const misc = new Map([[0x485, 0x2000_0165n | (1n << 25n)]]);
    expect(launch(vcpu({ vmxMsrs: misc }), withList(d, 513, ENTRY_MSR_AREA))).toMatchObject({ result: 'ok' });
  });

  test('never on restore: SET with a list KVM would refuse succeeds', () => {
    const d = withList(protectedGuest(), 1, 0x8000n);
    const r = setNestedState(vcpu(), encodeBlob({ flags: FLAGS.GUEST_MODE | FLAGS.RUN_PENDING, vmxonPa: PAGES.vmxon, vmcs12Pa: PAGES.vmcs }, draftPage(d, P.vmcs12)));
    expect(r).toMatchObject({ ret: 0 });
  });
});

test('vmentry.valid-guest-enters: at least 95 % of its guests reach VM-entry (the rest: capability sets forcing a 32-bit host)', () => {
  const arb = fc
    .record({ msrs: fc.option(mostlyHost64(capabilitySet), { nil: undefined }), maxPhyAddr: fc.constantFrom(36, 39, 46, 52) })
    .chain(({ msrs, maxPhyAddr }) => validGuest(nestedCaps(msrs), { maxPhyAddr }).map((d) => ({ msrs, maxPhyAddr, d })));
  const results = fc.sample(arb, { numRuns: 1000, seed: 5 }).map(({ msrs, maxPhyAddr, d }) => launch(vcpu({ maxPhyAddr, ...(msrs ? { vmxMsrs: msrs } : {}) }), d));
  const entered = results.filter((r) => r.result === 'ok').length;
  expect(results.filter((r) => r.result !== 'ok').every((r) => 'check' in r && r.check === 'host.address-space-size')).toBe(true);
  expect(entered / results.length).toBeGreaterThanOrEqual(0.95);
});

describe('F5: launch_state is set on the L2 → L1 exit (prepare_vmcs12), not at VM-entry', () => {
  test('GET while L2 is pending or running after VMLAUNCH shows 0; a real exit makes it 1; VMRESUME then enters', () => {
    const v = vcpu();
    expect(launch(v, protectedGuest())).toMatchObject({ result: 'ok' });
    expect([member(v, 'launch_state'), flags(v)]).toEqual([0n, FLAGS.GUEST_MODE | FLAGS.RUN_PENDING]);
    run(v, [{ op: 'run' }]);
    expect([member(v, 'launch_state'), flags(v)]).toEqual([0n, FLAGS.GUEST_MODE]);
    run(v, [{ op: 'vmexit', reason: 0x12n }]);
    expect([member(v, 'launch_state'), member(v, 'vm_exit_reason'), flags(v)]).toEqual([1n, 0x12n, 0]);
    expect(run(v, [{ op: 'vmresume' }]).at(-1)).toMatchObject({ result: 'ok' });
  });

  test('SMM entry from L2 (nested_vmx_vmexit with -1) does not run prepare_vmcs12: launch_state stays 0', () => {
    const v = vcpu();
    launch(v, protectedGuest());
    run(v, [{ op: 'run' }, { op: 'smm-entry' }]);
    expect(member(v, 'launch_state')).toBe(0n);
    run(v, [{ op: 'rsm' }, { op: 'run' }, { op: 'vmexit', reason: 1n }]);
    expect(member(v, 'launch_state')).toBe(1n);
  });
});

describe('F6: a pending MTF trap is discarded on every nested VM-exit', () => {
  const mtfGuest = () => guest({ ...NO_UG, on: { proc: BIT.proc.mtf } }, { ...RAW, vm86: false });

  test('the audit input: vmlaunch, run, mtf, vmexit 0x12, vmresume: GET has GUEST_MODE | RUN_PENDING, no MTF_PENDING', () => {
    const v = vcpu();
    expect(launch(v, mtfGuest())).toMatchObject({ result: 'ok' });
    const r = run(v, [{ op: 'run' }, { op: 'mtf' }, { op: 'vmexit', reason: 0x12n }, { op: 'vmresume' }]);
    expect(r.map((x) => x.result)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(flags(v)).toBe(FLAGS.GUEST_MODE | FLAGS.RUN_PENDING);
  });

  test('SMM entry from L2 discards it too: after RSM no MTF VM-exit is pending', () => {
    const v = vcpu();
    launch(v, mtfGuest());
    run(v, [{ op: 'run' }, { op: 'mtf' }]);
    expect(flags(v) & FLAGS.MTF_PENDING).toBe(FLAGS.MTF_PENDING);
    run(v, [{ op: 'smm-entry' }, { op: 'rsm' }]);
    expect(flags(v) & FLAGS.MTF_PENDING).toBe(0);
  });
});
