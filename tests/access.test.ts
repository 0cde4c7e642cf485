// KVM's VMREAD/VMWRITE rules on a vmcs12 page, case by case.
import { expect, test } from 'vitest';
import { findProfile } from '../model/profiles.js';
import { access, accessTableFor, vmread, vmwrite, vmwriteInstruction, VMXERR_UNSUPPORTED_VMCS_COMPONENT, VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT } from '../model/vmcs12-access.js';

const layout = findProfile('linux-6.12')!.vmcs12;
const t = accessTableFor(layout);

test('a _HIGH write changes only bits 63:32 of the member', () => {
  const p = new Uint8Array(4096);
  vmwrite(t, p, 0x2000n, 0x1111_2222_3333_4444n);
  vmwrite(t, p, 0x2001n, 0xdead_beef_cafen);
  expect(vmread(t, p, 0x2000n)).toEqual({ ok: true, value: 0xbeef_cafe_3333_4444n });
  expect(vmread(t, p, 0x2001n)).toEqual({ ok: true, value: 0xbeef_cafen });
});

test('writes truncate to the field width', () => {
  const p = new Uint8Array(4096);
  expect(vmwrite(t, p, 0x0800n, 0x12345n)).toEqual({ ok: true, value: 0x2345n });
  expect(vmread(t, p, 0x0800n)).toEqual({ ok: true, value: 0x2345n });
});

test('bits at or above 15, holes and the dead CR3-target encodings fail as unsupported components', () => {
  const p = new Uint8Array(4096);
  for (const e of [0x1_0000_0800n, 0x8000n, 0x6008n, 0x0008n, 0x2034n]) {
    const r = vmread(t, p, e);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBe(VMXERR_UNSUPPORTED_VMCS_COMPONENT);
  }
  expect(p.every((b) => b === 0)).toBe(true);
});

test('handle_vmwrite: read-only fields need VMWRITE-any-field, AR bytes are masked', () => {
  const p = new Uint8Array(4096);
  const r = vmwriteInstruction(t, p, 0x4402n, 1n, { vmwriteAnyField: false });
  expect(r.ok ? 0 : r.error).toBe(VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT);
  expect(vmwriteInstruction(t, p, 0x4402n, 1n, { vmwriteAnyField: true }).ok).toBe(true);
  expect(vmwriteInstruction(t, p, 0x4814n, 0xffffffffn, { vmwriteAnyField: true })).toEqual({ ok: true, value: 0x1f0ffn });
});

test("the instruction path (a target running L1's VMWRITE) masks guest AR bytes with 0x1f0ff; the table path stores all 32 bits", () => {
  const viaTable = new Uint8Array(4096);
  const viaInstr = new Uint8Array(4096);
  expect(access(t, viaTable, { op: 'write', encoding: 0x4814n, value: 0xffff_ffffn })).toEqual({ ok: true, value: 0xffff_ffffn });
  expect(access(t, viaInstr, { op: 'write', encoding: 0x4814n, value: 0xffff_ffffn }, 'instruction')).toEqual({ ok: true, value: 0x1f0ffn });
  // read-only fields stay writable: KVM's default IA32_VMX_MISC grants VMWRITE to any field
  expect(access(t, viaInstr, { op: 'write', encoding: 0x4402n, value: 7n }, 'instruction')).toEqual({ ok: true, value: 7n });
  expect(access(t, viaInstr, { op: 'read', encoding: 0x4814n }, 'instruction')).toEqual({ ok: true, value: 0x1f0ffn });
});
