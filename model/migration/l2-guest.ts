// The L2 a scenario launches: the smallest vmcs12 that passes KVM's VM-entry checks under the
// default nested capabilities (64-bit L2, flat segments, every address at 1 MiB, no link pointer,
// no MSR-load list). Close to what generators/valid-guest.ts builds from all-zero choices, written
// out once so model/ does not depend on generators/; tests/scenarios.test.ts checks that every
// scenario still enters. Without unrestricted guest KVM checks the segments on VMLAUNCH (F1).
import type { GuestOp } from '../nested/vcpu.js';

const w = (field: number, value: bigint): GuestOp => ({ op: 'vmwrite', field: BigInt(field), value });

/** pin, processor-based, secondary, exit and entry controls of the minimal guest */
export type Controls = Record<'pin' | 'proc' | 'proc2' | 'exit' | 'entry', number>;
export const L2_CONTROLS: Readonly<Controls> = { pin: 0x16, proc: 0x0400_6172, proc2: 0, exit: 0x3_6ffb, entry: 0x13fb };

const MIB = 0x10_0000n;
const CR0 = 0x8000_0021n; // PG | NE | PE
const CR4 = 0x2020n; // VMXE | PAE

/** VMWRITEs of the minimal guest's non-zero fields, the controls given (scenarios turn features on) */
export function writeL2(controls: Partial<Controls> = {}): GuestOp[] {
  const c = { ...L2_CONTROLS, ...controls };
  return [
    // >>> 0: a control word with bit 31 set is a 32-bit field, not a negative number
    w(0x4000, BigInt(c.pin >>> 0)), w(0x4002, BigInt(c.proc >>> 0)), w(0x401e, BigInt(c.proc2 >>> 0)), w(0x400c, BigInt(c.exit >>> 0)), w(0x4012, BigInt(c.entry >>> 0)),
    // I/O and MSR bitmaps, VM-exit/entry MSR areas, virtual-APIC, APIC-access, EPTP-list, VMREAD/VMWRITE bitmaps, PML
    ...[0x2000, 0x2002, 0x2004, 0x2012, 0x2014, 0x200e, 0x2026, 0x2028, 0x2024, 0x2016, 0x2008, 0x2006, 0x200a].map((f) => w(f, MIB)),
    w(0x0, 1n), // VPID
    w(0x201a, MIB | 0x1en), // EPTP: WB, 4-level, A/D
    w(0x6800, CR0), w(0x6804, CR4), w(0x6802, MIB), // guest CR0, CR4, CR3
    w(0x2806, 0x500n), w(0x2c02, 0x500n), // guest and host EFER: LME | LMA
    w(0x2800, 0xffff_ffff_ffff_ffffn), // no link pointer
    w(0x6c00, CR0), w(0x6c04, CR4), w(0x6c02, MIB), // host CR0, CR4, CR3
    w(0xc02, 8n), w(0xc0c, 8n), w(0xc04, 8n), // host CS, TR, SS selectors
    ...flatSegments(),
  ];
}

/** 64-bit code at selector 8, flat data at 0x10 for SS DS ES FS GS, a busy TSS at 0x18, no LDT (unusable) */
function flatSegments(): GuestOp[] {
  const seg = (sel: number, limit: number, ar: number, n: number) => [w(0x800 + 2 * n, BigInt(sel)), w(0x4800 + 2 * n, BigInt(limit >>> 0)), w(0x4814 + 2 * n, BigInt(ar))];
  // encodings in SDM order: ES CS SS DS FS GS LDTR TR
  const DATA = [0x10, 0xffff_ffff, 0xc093] as const;
  return [...seg(...DATA, 0), ...seg(0x8, 0xffff_ffff, 0xa09b, 1), ...seg(...DATA, 2), ...seg(...DATA, 3), ...seg(...DATA, 4), ...seg(...DATA, 5), ...seg(0, 0, 0x1_0000, 6), ...seg(0x18, 0x67, 0x8b, 7)];
}
