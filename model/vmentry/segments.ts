// KVM's software check of the guest segment registers on VMLAUNCH/VMRESUME (F1). prepare_vmcs02
// fails the entry when `from_vmentry && !vmx_guest_state_valid(vcpu)`; that holds unless the vmcs02
// runs L2 as an unrestricted guest, which prepare_vmcs02_early allows only when vmcs12 itself has
// SECONDARY_EXEC_UNRESTRICTED_GUEST (activated). The checks are vmx.c's __vmx_guest_state_valid and
// its helpers, identical in 6.1 and 6.12. Never on restore (from_vmentry = false).
//
// What the helpers see (vmx_get_segment on the vmcs02, written from the vmcs12's fields): the AR
// bytes' type (3:0), S (4), DPL (6:5) and unusable (16) bits. "present" is *not* the AR P bit (7):
// KVM derives it as !unusable, so every `!present` test is the unusable test. The branch: real-mode
// rules when guest CR0.PE is clear or RFLAGS.VM is set, else the protected-mode rules.
import { BIT, CR0 } from './bits.js';
import type { View } from './input.js';
import type { VmentryRule } from './rule.js';

export const SEGMENT_NAMES = ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'tr', 'ldtr'] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];

/** RFLAGS.VM (virtual-8086 mode) */
export const RFLAGS_VM = 0x2_0000n;

/** Access-rights bits (asm/vmx.h VMX_AR_*): type bits, S, DPL, P, unusable. */
export const AR = { ACCESSED: 0x1, WRITEABLE: 0x4, CODE: 0x8, S: 0x10, DPL_SHIFT: 5, P: 0x80, AVL_L_DB_G: 0xf000, UNUSABLE: 0x1_0000 } as const;

/** A segment as vmx_get_segment decodes it from the vmcs12 fields. */
export interface Segment {
  readonly selector: number;
  readonly base: bigint;
  readonly limit: number;
  readonly ar: number;
  readonly unusable: boolean;
  readonly type: number;
  readonly s: boolean;
  readonly dpl: number;
}

export function segmentOf(v: View, seg: SegmentName): Segment {
  const ar = Number(v.s.f(`guest_${seg}_ar_bytes`));
  return {
    selector: Number(v.s.f(`guest_${seg}_selector`)),
    base: v.s.f(`guest_${seg}_base`),
    limit: Number(v.s.f(`guest_${seg}_limit`)),
    ar,
    unusable: (ar & AR.UNUSABLE) !== 0,
    type: ar & 0xf,
    s: (ar & AR.S) !== 0,
    dpl: (ar >> AR.DPL_SHIFT) & 3,
  };
}

const rpl = (s: Segment) => s.selector & 3;
const ti = (s: Segment) => (s.selector & 4) !== 0;

/** vmx_guest_state_valid is false only without unrestricted guest in the vmcs02, i.e. in vmcs12 */
const checked = (v: View) => !v.has2(BIT.proc2.unrestricted);
/** is_protmode is false, or RFLAGS.VM: __vmx_guest_state_valid takes its real-mode branch */
export const realModeBranch = (v: View): boolean => (v.s.f('guest_cr0') & CR0.PE) === 0n || (v.s.f('guest_rflags') & RFLAGS_VM) !== 0n;

/**
 * rmode_segment_valid: base = selector << 4, limit 0xffff, and the AR bytes re-encoded with DPL 3 (and
 * type 3 for CS) equal 0xf3: usable, type 3 (CS: any), S set, AVL/L/D-B/G clear. P and DPL are not read.
 */
const rmodeBad = (s: Segment, isCs: boolean) =>
  s.base !== BigInt(s.selector) << 4n || s.limit !== 0xffff || s.unusable || (!isCs && s.type !== 3) || !s.s || (s.ar & AR.AVL_L_DB_G) !== 0;
/** code_segment_valid: usable, accessed code, S; conforming: DPL <= RPL, else DPL = RPL */
const codeBad = (cs: Segment) =>
  cs.unusable || (~cs.type & (AR.CODE | AR.ACCESSED)) !== 0 || !cs.s || (cs.type & AR.WRITEABLE ? cs.dpl > rpl(cs) : cs.dpl !== rpl(cs));
/** stack_segment_valid: unusable, or type 3 or 7 with S and DPL = RPL */
const stackBad = (ss: Segment) => !ss.unusable && ((ss.type !== 3 && ss.type !== 7) || !ss.s || ss.dpl !== rpl(ss));
/** data_segment_valid: unusable, or S and (unless conforming code: type bits 3 and 2 both set) DPL >= RPL */
const dataBad = (d: Segment) => !d.unusable && (!d.s || ((~d.type & (AR.CODE | AR.WRITEABLE)) !== 0 && d.dpl < rpl(d)));
/** tr_valid: usable, TI clear, type 3 (16-bit busy TSS) or 11 (busy TSS), whatever the guest mode */
const trBad = (tr: Segment) => tr.unusable || ti(tr) || (tr.type !== 3 && tr.type !== 11);
/** ldtr_valid: unusable, or TI clear and type 2 */
const ldtrBad = (l: Segment) => !l.unusable && (ti(l) || l.type !== 2);

type Make = (id: string, fn: string, desc: string, fails: (v: View) => boolean) => VmentryRule;

/** The rules in __vmx_guest_state_valid's order: the real-mode branch, then the protected-mode one. */
export function segmentRules(make: Make): VmentryRule[] {
  const rm = (v: View) => checked(v) && realModeBranch(v);
  const pm = (v: View) => checked(v) && !realModeBranch(v);
  const seg = segmentOf;
  return [
    ...(['cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const).map((s) =>
      make(`prepare.rmode-segment.${s}`, 'rmode_segment_valid', `no unrestricted guest, CR0.PE clear or RFLAGS.VM: ${s.toUpperCase()} base not selector << 4, limit not 0xffff, or access rights (DPL read as 3${s === 'cs' ? ', type as 3' : ''}) not 0xf3`, (v) => rm(v) && rmodeBad(seg(v, s), s === 'cs')),
    ),
    make('prepare.cs-ss-rpl', 'cs_ss_rpl_check', 'no unrestricted guest, protected mode: CS and SS selectors differ in RPL', (v) => pm(v) && rpl(seg(v, 'cs')) !== rpl(seg(v, 'ss'))),
    make('prepare.code-segment', 'code_segment_valid', 'no unrestricted guest, protected mode: CS unusable, not an accessed code segment, S clear, or DPL not RPL (conforming: DPL above RPL)', (v) => pm(v) && codeBad(seg(v, 'cs'))),
    make('prepare.stack-segment', 'stack_segment_valid', 'no unrestricted guest, protected mode: SS usable and not type 3 or 7, S clear, or DPL not RPL', (v) => pm(v) && stackBad(seg(v, 'ss'))),
    ...(['ds', 'es', 'fs', 'gs'] as const).map((s) =>
      make(`prepare.data-segment.${s}`, 'data_segment_valid', `no unrestricted guest, protected mode: ${s.toUpperCase()} usable with S clear, or DPL below RPL (not a conforming code segment)`, (v) => pm(v) && dataBad(seg(v, s))),
    ),
    make('prepare.tr', 'tr_valid', 'no unrestricted guest, protected mode: TR unusable, TI set, or type neither 3 nor 11', (v) => pm(v) && trBad(seg(v, 'tr'))),
    make('prepare.ldtr', 'ldtr_valid', 'no unrestricted guest, protected mode: LDTR usable with TI set or type not 2', (v) => pm(v) && ldtrBad(seg(v, 'ldtr'))),
  ];
}
