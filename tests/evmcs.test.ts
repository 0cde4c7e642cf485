// The eVMCS catalog, copy rules, filter and check reproduce kernel-tables/6.1 and 6.12 exactly.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { CLEAN_FIELDS, EVMCS_FIELDS, EVMCS_MEMBERS, EVMCS_VERSION_RANGE } from '../model/catalog/evmcs.js';
import { CHECK_LINUX_6_1, CHECK_LINUX_6_12, EVMCS1_MASKS_6_1, EVMCS1_MASKS_6_12, FILTER_LINUX_6_1, FILTER_LINUX_6_12 } from '../model/catalog/vmx-controls.js';
import { copyEnlightenedToVmcs12, copyVmcs12ToEnlightened, evmcsVmread } from '../model/evmcs.js';
import { findProfile } from '../model/profiles.js';
import { capabilityProblems, evmcsCheckControls, filterVmxMsr, type MsrSet } from '../model/vmx-msrs.js';
import { writeBytes, readBytes } from '../model/vmcs12-access.js';
import { capabilitySet, capabilitySetWithin } from '../generators/capabilities.js';
import { BOCHS_612 } from './fixtures/bochs-msrs.js';

const load = (v: string, f: string) => JSON.parse(readFileSync(new URL(`./fixtures/kernel-tables/${v}/${f}.json`, import.meta.url), 'utf8'));
const strip = (g: string) => g.replace('HV_VMX_ENLIGHTENED_CLEAN_FIELD_', '');

describe.each([
  ['6.1', FILTER_LINUX_6_1, CHECK_LINUX_6_1, EVMCS1_MASKS_6_1],
  ['6.12', FILTER_LINUX_6_12, CHECK_LINUX_6_12, EVMCS1_MASKS_6_12],
] as const)('eVMCS against linux %s', (v, filter, check, masks) => {
  const layout = load(v, 'evmcs-layout');
  const fields = load(v, 'evmcs-fields');
  const copy = load(v, 'evmcs-copy');
  const filt = load(v, 'evmcs-filter');

  test('members, offsets, sizes; clean-field bits; version', () => {
    expect(EVMCS_MEMBERS.map((m) => [m.name, m.offset, m.size])).toEqual(layout.members.map((m: { name: string; offset: number; size: number }) => [m.name, m.offset, m.size]));
    expect(EVMCS_MEMBERS.reduce((e, m) => (expect(m.offset).toBe(e), e + m.size), 0)).toBe(layout.sizeofEvmcs);
    expect(Object.fromEntries(Object.entries(CLEAN_FIELDS).map(([k, x]) => [`HV_VMX_ENLIGHTENED_CLEAN_FIELD_${k}`, x]))).toEqual(Object.fromEntries(Object.entries(layout.cleanFields).map(([k, x]) => [k, Number(x)])));
    expect(EVMCS_VERSION_RANGE).toBe(Number(layout.evmcsVersionRangeReturned.value));
  });

  test('the 126 encodings with member and clean group', () => {
    expect(EVMCS_FIELDS.map((f) => [f.encoding, f.member, f.cleanGroup])).toEqual(
      fields.entries.map((e: { encoding: string; member: string; cleanGroup: string }) => [Number(e.encoding), e.member, strip(e.cleanGroup)]),
    );
  });

  test('copy rules: groups copied in, the 72 copied out, the never-copied', () => {
    const inByGroup: Record<string, string[]> = {};
    for (const f of EVMCS_FIELDS) if (f.copy.startsWith('in')) (inByGroup[f.cleanGroup] ??= []).push(f.member);
    for (const [g, xs] of Object.entries(copy.toVmcs12.byCleanGroup as Record<string, { src: string; note?: string }[]>)) {
      const vm = xs.filter((x) => !x.note).map((x) => x.src).sort();
      expect((inByGroup[strip(g)] ?? []).sort(), g).toEqual(vm);
    }
    expect(EVMCS_FIELDS.filter((f) => f.copy.startsWith('always')).map((f) => f.member).sort()).toEqual(copy.toVmcs12.unconditional.map((x: { src: string }) => x.src).sort());
    expect(EVMCS_FIELDS.filter((f) => f.copy.endsWith('out')).map((f) => f.member).sort()).toEqual(copy.toEvmcs.fields.map((x: { src: string }) => x.src).sort());
    const copied = new Set(EVMCS_FIELDS.filter((f) => f.copy !== 'none').map((f) => f.member));
    const enlightenments = findProfile(`linux-${v}`)!.evmcs!.enlightenmentsGroup ? ['partition_assist_page', 'hv_vm_id', 'hv_vp_id'] : [];
    expect(EVMCS_MEMBERS.filter((m) => !copied.has(m.name) && !enlightenments.includes(m.name)).map((m) => m.name).sort()).toEqual([...copy.evmcsMembersNeverCopiedEitherWay].sort());
  });

  test('the filter table and the check order', () => {
    expect(filter.map((r) => [r.msr, r.half, r.op === 'keep' ? r.mask : (~r.mask) >>> 0, r.op === 'keep' ? r.maskWithoutPerfGlobalCtrl : (~r.maskWithoutPerfGlobalCtrl) >>> 0])).toEqual(
      filt.msrs.map((m: Record<string, string>) => [Number(m.msr), m.half, Number(m.keepMaskWithPerfCpuid), Number(m.keepMaskWithoutPerfCpuid)]),
    );
    expect(check.map((r) => r.field)).toEqual(filt.checkControls.order.map((o: { field: string }) => o.field));
  });

  test('the EVMCS1 masks by their kernel names, and the check masks the kernel tests each field against', () => {
    const named = Object.entries(filt.masks as Record<string, { value: string }>).filter(([k]) => k.startsWith('EVMCS1_'));
    expect(masks).toEqual(Object.fromEntries(named.map(([k, m]) => [k, Number(m.value)])));
    // "(u32)value & 0x…" (deny) or "(u32)value & ~0x…" (allow); the high-bits rule has none
    const invalidIf = filt.checkControls.order.map((o: { invalidIf: string }) => /& ~?(0x[0-9a-f]+)/.exec(o.invalidIf)?.[1]);
    expect(check.map((r) => (r.kind === 'high-bits' ? undefined : r.mask))).toEqual(invalidIf.map((x: string | undefined) => (x === undefined ? undefined : Number(x))));
  });
});

test('quirk EVMCS_LOOKUP_TRUNCATES_TO_U16: high operand bits alias to the low 16; bit 15 and _HIGH miss', () => {
  const e = new Uint8Array(1024);
  const rip = EVMCS_MEMBERS.find((m) => m.name === 'guest_rip')!;
  writeBytes(e, rip.offset, 8, 0x1234n);
  expect(evmcsVmread(e, 0x681en)).toEqual({ ok: true, value: 0x1234n });
  expect(evmcsVmread(e, 0xdead_0000_681en)).toEqual({ ok: true, value: 0x1234n });
  expect(evmcsVmread(e, 0x681fn).ok).toBe(false);
  expect(evmcsVmread(e, 0x8000n | 0x681en).ok).toBe(false);
});

test('copy-in honours the clean mask; 6.12 also copies the enlightenments group and flags a bitmap recalc', () => {
  const e = new Uint8Array(1024);
  const at = (n: string) => EVMCS_MEMBERS.find((m) => m.name === n)!.offset;
  writeBytes(e, at('guest_rsp'), 8, 7n);
  writeBytes(e, at('guest_rip'), 8, 9n);
  writeBytes(e, at('hv_vp_id'), 4, 3n);
  const v = findProfile('linux-6.12')!.vmcs12;
  const vat = (n: string) => v.members.find((m) => m.name === n)!.offset;
  const clean = CLEAN_FIELDS.GUEST_BASIC | CLEAN_FIELDS.CONTROL_GRP1 | CLEAN_FIELDS.CONTROL_GRP2 | CLEAN_FIELDS.CONTROL_PROC;
  const r = copyEnlightenedToVmcs12(e, new Uint8Array(4096), clean, { enlightenmentsGroup: true });
  expect(readBytes(r.vmcs12, vat('guest_rsp'), 8)).toBe(0n); // GUEST_BASIC clean: kept
  expect(readBytes(r.vmcs12, vat('guest_rip'), 8)).toBe(9n); // unconditional
  expect(r.hvNested?.vpId).toBe(3);
  expect(r.forceMsrBitmapRecalc).toBe(false);
  expect(copyEnlightenedToVmcs12(e, new Uint8Array(4096), 0, { enlightenmentsGroup: false })).toMatchObject({ hvNested: null, forceMsrBitmapRecalc: false });
  const out = copyVmcs12ToEnlightened(r.vmcs12, new Uint8Array(1024).fill(0xaa));
  expect(readBytes(out, at('hv_clean_fields'), 4)).toBe(0xaaaaaaaan); // never touched
});

test('quirk EVMCS1_TSC_SCALING_CONTRADICTION: TSC_MULTIPLIER is copied, yet TSC scaling is filtered and rejected (6.1 and 6.12)', () => {
  expect(EVMCS_FIELDS.find((f) => f.member === 'tsc_multiplier')).toMatchObject({ cleanGroup: 'CONTROL_GRP2', copy: 'in' });
  for (const p of ['linux-6.1', 'linux-6.12']) {
    const ev = findProfile(p)!.evmcs!;
    expect(filterVmxMsr(ev.filter, 0x48b, 0xffffffff_00000000n, 1) >> 32n & (1n << 25n)).toBe(0n);
    const c = { pin_based_vm_exec_control: 0, cpu_based_vm_exec_control: 0, secondary_vm_exec_control: 1 << 25, vm_exit_controls: 0, vm_entry_controls: 0, vm_function_control: 0n };
    expect(evmcsCheckControls(ev.check, c)).toEqual({ ok: false, errno: 'EINVAL', rule: '2ndexec' });
  }
});

test('the secondary field is checked raw, even with ACTIVATE_SECONDARY_CONTROLS clear; the CPUID bit is ignored', () => {
  const ev = findProfile('linux-6.1')!.evmcs!;
  const c = { pin_based_vm_exec_control: 0, cpu_based_vm_exec_control: 0, secondary_vm_exec_control: 1 << 14, vm_exit_controls: 0x1000, vm_entry_controls: 0x2000, vm_function_control: 0n };
  expect(evmcsCheckControls(ev.check, c)).toEqual({ ok: false, errno: 'EINVAL', rule: '2ndexec' });
  expect(evmcsCheckControls(ev.check, { ...c, secondary_vm_exec_control: 0 })).toEqual({ ok: true });
  expect(evmcsCheckControls(ev.check, { ...c, secondary_vm_exec_control: 0, vm_function_control: 1n << 32n })).toEqual({ ok: false, errno: 'EINVAL', rule: 'vmfunc-high' });
});

test('generated capability sets are consistent', () => {
  fc.assert(fc.property(capabilitySet, (m) => capabilityProblems(m).length === 0));
});

/** KVM's host-initiated restore rules for the VMX MSRs (vmx_set_vmx_msr), restated as the test's own oracle. */
function kvmAccepts(caps: MsrSet, m: MsrSet): string | null {
  const lo = (v: bigint) => v & 0xffffffffn;
  const hi = (v: bigint) => v >> 32n;
  for (const [i, v] of m) {
    const c = caps.get(i)!;
    if ([0x48b, 0x48d, 0x48e, 0x48f, 0x490].includes(i)) {
      if ((lo(c) & ~lo(v)) !== 0n) return `${i.toString(16)}: a must-be-1 bit cleared`;
      if ((hi(v) & ~hi(c)) !== 0n) return `${i.toString(16)}: an allowed-1 bit added`;
    } else if (i >= 0x481 && i <= 0x484) {
      const twin = m.get(i + 0xc)!; // KVM derives PINBASED..ENTRY from TRUE_* (0x48d..0x490)
      const always = { 0x481: 0x16n, 0x482: 0x0401e172n, 0x483: 0x00036dffn, 0x484: 0x000011ffn }[i]!;
      if (v !== ((hi(twin) << 32n) | lo(twin) | always)) return `${i.toString(16)}: not what KVM derives from its TRUE twin`;
    } else if (i === 0x491) {
      if ((v & ~c) !== 0n) return 'vmfunc widened';
    } else if (v !== c) return `${i.toString(16)}: changed`;
  }
  return null;
}

test('capability sets generated inside a target-reported set are ones KVM accepts from a VMM, and consistent', () => {
  fc.assert(fc.property(capabilitySetWithin(BOCHS_612), (m) => kvmAccepts(BOCHS_612, m) === null && capabilityProblems(m).length === 0 && m.size === BOCHS_612.size));
  // and they vary: some allowed-1 bit of the TRUE procbased controls is dropped in some set
  expect(fc.sample(capabilitySetWithin(BOCHS_612), 50).some((m) => m.get(0x48e) !== BOCHS_612.get(0x48e))).toBe(true);
});
