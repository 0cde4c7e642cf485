// The enlightened VMCS: its layout, VMREAD while an eVMCS is mapped, and KVM's two copy directions
// (kernel-facts §5, §10), all derived from the eVMCS catalog.
import { EVMCS_FIELDS, EVMCS_MEMBERS, EVMCS_SIZE, CLEAN_FIELDS, KVM_EVMCS_VERSION, type EvmcsFieldSpec } from './catalog/evmcs.js';
import { VMCS12_MEMBERS, VMCS12_SIZE } from './catalog/vmcs12.js';
import { hex, widthBytes, widthOf } from './encoding.js';
import type { Layout, LayoutField } from './layout.js';
import { readBytes, VMXERR_UNSUPPORTED_VMCS_COMPONENT, writeBytes, type AccessOutcome } from './vmcs12-access.js';

export function evmcsLayout(name: string): Layout {
  const byName = new Map(EVMCS_MEMBERS.map((m) => [m.name, m]));
  const fields: LayoutField[] = EVMCS_FIELDS.map((f) => ({
    encoding: f.encoding,
    name: f.name,
    member: f.member,
    high: false,
    offset: byName.get(f.member)!.offset,
    width: widthOf(f.encoding),
    cleanGroup: f.cleanGroup,
  }));
  return { structure: 'evmcs', name, revision: KVM_EVMCS_VERSION, size: EVMCS_SIZE, members: EVMCS_MEMBERS, fields };
}

const fieldByEncoding = new Map(EVMCS_FIELDS.map((f) => [f.encoding, f]));
const evmcsOffset = new Map(EVMCS_MEMBERS.map((m) => [m.name, m]));

/**
 * Quirk EVMCS_LOOKUP_TRUNCATES_TO_U16 (kernel-facts §13.8): evmcs_field_offset() casts the encoding to
 * u16 before ROL16 and has no `field >> 15` check, so bits 16..63 of the VMREAD operand are ignored
 * and an encoding with high bits set aliases to its low 16 bits. Bit 15 still misses (no entry has it).
 */
export function evmcsVmread(evmcs: Uint8Array, encoding: bigint): AccessOutcome {
  const enc = Number(encoding & 0xffffn);
  const f = fieldByEncoding.get(enc);
  if (!f) return { ok: false, vmfail: 'valid', error: VMXERR_UNSUPPORTED_VMCS_COMPONENT, reason: `no eVMCS field for encoding ${hex(encoding)}` };
  return { ok: true, value: readBytes(evmcs, evmcsOffset.get(f.member)!.offset, widthBytes(widthOf(enc))) };
}

interface CopyStep {
  readonly from: number;
  readonly to: number;
  /** bytes moved: the destination's size (a C assignment truncates) */
  readonly bytes: number;
  readonly fromBytes: number;
  /** 0 for unconditional copies */
  readonly group: number;
}

// the copies go by name: every copied member exists in both structures
const vmcs12Member = new Map(VMCS12_MEMBERS.map((m) => [m.name, m]));

function steps(filter: (f: EvmcsFieldSpec) => boolean, dir: 'in' | 'out'): CopyStep[] {
  return EVMCS_FIELDS.filter(filter).map((f) => {
    const e = evmcsOffset.get(f.member)!;
    const v = vmcs12Member.get(f.member)!;
    const [src, dst] = dir === 'in' ? [e, v] : [v, e];
    return { from: src.offset, to: dst.offset, bytes: dst.size, fromBytes: src.size, group: f.copy.startsWith('always') ? 0 : CLEAN_FIELDS[f.cleanGroup] };
  });
}

const COPY_IN = steps((f) => f.copy.startsWith('in') || f.copy.startsWith('always'), 'in');
const COPY_OUT = steps((f) => f.copy.endsWith('out'), 'out');

/** What copy_enlightened_to_vmcs12 produces besides the vmcs12 (6.12 only). */
export interface HvNestedState {
  readonly paPageGpa: bigint;
  readonly vmId: bigint;
  readonly vpId: number;
}

export interface CopyInResult {
  readonly vmcs12: Uint8Array;
  /** 6.12: the ENLIGHTENMENTSCONTROL group, copied into hv_vcpu->nested when dirty */
  readonly hvNested: HvNestedState | null;
  /** 6.12: set when CONTROL_GRP1, CONTROL_GRP2 or CONTROL_PROC is dirty */
  readonly forceMsrBitmapRecalc: boolean;
}

/**
 * copy_enlightened_to_vmcs12(vmx, hv_clean_fields): a group is copied iff its bit is clear in the
 * mask; the unconditional fields always; fields KVM never copies in keep their vmcs12 value.
 */
export function copyEnlightenedToVmcs12(evmcs: Uint8Array, vmcs12: Uint8Array, cleanFields: number, opts: { enlightenmentsGroup: boolean }): CopyInResult {
  if (evmcs.length !== EVMCS_SIZE || vmcs12.length !== VMCS12_SIZE) throw new RangeError('eVMCS must be 1024 bytes and vmcs12 4096');
  const out = vmcs12.slice();
  for (const s of COPY_IN) {
    if (s.group & cleanFields) continue;
    writeBytes(out, s.to, s.bytes, readBytes(evmcs, s.from, s.fromBytes));
  }
  const dirty = (g: number) => (cleanFields & g) === 0;
  let hvNested: HvNestedState | null = null;
  if (opts.enlightenmentsGroup && dirty(CLEAN_FIELDS.ENLIGHTENMENTSCONTROL)) {
    const at = (n: string) => evmcsOffset.get(n)!;
    hvNested = {
      paPageGpa: readBytes(evmcs, at('partition_assist_page').offset, 8),
      vmId: readBytes(evmcs, at('hv_vm_id').offset, 8),
      vpId: Number(readBytes(evmcs, at('hv_vp_id').offset, 4)),
    };
  }
  const forceMsrBitmapRecalc = opts.enlightenmentsGroup && (dirty(CLEAN_FIELDS.CONTROL_GRP1) || dirty(CLEAN_FIELDS.CONTROL_GRP2) || dirty(CLEAN_FIELDS.CONTROL_PROC));
  return { vmcs12: out, hvNested, forceMsrBitmapRecalc };
}

/** copy_vmcs12_to_enlightened: the 72 fields, unconditionally; hv_clean_fields is left alone. */
export function copyVmcs12ToEnlightened(vmcs12: Uint8Array, evmcs: Uint8Array): Uint8Array {
  if (evmcs.length !== EVMCS_SIZE || vmcs12.length !== VMCS12_SIZE) throw new RangeError('eVMCS must be 1024 bytes and vmcs12 4096');
  const out = evmcs.slice();
  for (const s of COPY_OUT) writeBytes(out, s.to, s.bytes, readBytes(vmcs12, s.from, s.fromBytes));
  return out;
}
