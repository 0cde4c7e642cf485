// Guest segment registers for a valid vmcs12 (F1). Without unrestricted guest KVM checks them in
// software on VMLAUNCH/VMRESUME, so a valid guest carries segments a protected-mode or a
// virtual-8086 guest really has: written here from the SDM's rules, not from the model's checks.
// With unrestricted guest KVM checks nothing in software, but the CPU checks vmcs02, which carries
// these fields unchanged: on real KVM (6.12 in Bochs, README K12) random segments under unrestricted
// guest fail VM-entry with 0x80000021. So those guests get the SDM's real-mode segments instead.

/** The segment registers in vmcs12 member spelling. */
export const SEGS = ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'tr', 'ldtr'] as const;
export type Seg = (typeof SEGS)[number];
export const DATA_SEGS = ['ds', 'es', 'fs', 'gs'] as const;

/** Which segment rules the guest must satisfy: protected mode, virtual-8086 mode, or real mode under unrestricted guest. */
export type SegmentMode = 'protected' | 'rmode' | 'ug-real' | 'ug-protected';

/** Access-rights bits (SDM "Format of Access Rights") */
export const ARB = { S: 0x10, P: 0x80, L: 0x2000, DB: 0x4000, G: 0x8000, UNUSABLE: 0x1_0000 } as const;
export const dplBits = (dpl: number): number => (dpl & 3) << 5;

export interface SegmentValue {
  selector: bigint;
  base: bigint;
  limit: bigint;
  ar: bigint;
}

/** A stream of random 64-bit words. */
export type Words = () => bigint;

const canon = (x: bigint) => { const v = x & 0xffff_ffff_ffffn; return v & 0x8000_0000_0000n ? v | 0xffff_0000_0000_0000n : v; };
/** a limit consistent with the granularity bit: G set, the low 12 bits are ones; G clear, 20 bits */
const limitFor = (g: boolean, x: bigint) => (g ? ((x & 0xfffffn) << 12n) | 0xfffn : x & 0xfffffn);
const bit = (x: bigint, n: number) => ((x >> BigInt(n)) & 1n) === 1n;

function usable(type: number, s: boolean, dpl: number, w: bigint, extra = 0): { ar: bigint; limit: bigint } {
  const g = bit(w, 40);
  const ar = type | (s ? ARB.S : 0) | dplBits(dpl) | ARB.P | (g ? ARB.G : 0) | extra;
  return { ar: BigInt(ar), limit: limitFor(g, w >> 8n) };
}

/** Protected-mode segments: CS and SS share an RPL; DPLs follow the SDM; TR a busy TSS; LDTR usable or not. */
function protectedMode(next: Words, ia32e: boolean, cpl0 = false): Map<Seg, SegmentValue> {
  const m = new Map<Seg, SegmentValue>();
  const ctl = next();
  const rpl = cpl0 ? 0 : Number(ctl & 3n);
  const sel = (w: bigint, r: number, ti = false) => (((w >> 16n) & 0x1fffn) << 3n) | (ti ? 4n : 0n) | BigInt(r);
  // CS: accessed code, readable or not; non-conforming DPL = RPL, conforming DPL <= RPL
  const wc = next();
  const conforming = bit(ctl, 2);
  const csType = 0x9 | (bit(wc, 1) ? 0x2 : 0) | (conforming ? 0x4 : 0);
  const csDpl = conforming ? Number(wc % BigInt(rpl + 1)) : rpl;
  const cs = usable(csType, true, csDpl, wc, ia32e ? ARB.L : bit(wc, 2) ? ARB.DB : 0);
  m.set('cs', { selector: sel(wc, rpl), base: wc & 0xffff_ffffn, limit: cs.limit, ar: cs.ar });
  // SS: read/write data (expand-up or down), DPL = RPL; in IA-32e mode it may be unusable, and then
  // still has DPL = RPL: the CPU checks SS.DPL whether or not SS is usable (KVM's software check
  // skips an unusable SS; on real KVM an unusable SS with DPL 0 and RPL 1 failed with 0x80000021, K12)
  const ws = next();
  const ss = ia32e && bit(ctl, 3) ? { ar: BigInt(ARB.UNUSABLE | dplBits(rpl)), limit: 0n } : usable(bit(ws, 1) ? 7 : 3, true, rpl, ws, bit(ws, 2) ? ARB.DB : 0);
  m.set('ss', { selector: sel(ws, rpl), base: ws & 0xffff_ffffn, limit: ss.limit, ar: ss.ar });
  // DS ES FS GS: unusable, or accessed data / readable code with DPL >= RPL (conforming code: any DPL)
  DATA_SEGS.forEach((s, i) => {
    const w = next();
    const r = Number((w >> 4n) & 3n);
    const fsgs = s === 'fs' || s === 'gs';
    const base = fsgs ? canon(w >> 3n) : (w >> 8n) & 0xffff_ffffn;
    if (bit(ctl, 4 + i)) return m.set(s, { selector: sel(w, r), base, limit: 0n, ar: BigInt(ARB.UNUSABLE) });
    const code = bit(w, 6);
    const type = code ? 0xb | (bit(w, 7) ? 0x4 : 0) : 0x1 | Number((w >> 8n) & 6n);
    const dpl = code && type & 0x4 ? Number((w >> 10n) & 3n) : r + Number((w >> 10n) % BigInt(4 - r));
    const u = usable(type, true, dpl, w, bit(w, 3) ? ARB.DB : 0);
    m.set(s, { selector: sel(w, r), base, limit: u.limit, ar: u.ar });
  });
  // TR: TI clear, a busy 32/64-bit TSS (a busy 16-bit one outside IA-32e mode too)
  const wt = next();
  const tr = usable(!ia32e && bit(wt, 1) ? 3 : 11, false, 0, wt);
  m.set('tr', { selector: sel(wt | 0x1_0000n, Number(wt & 3n)), base: canon(wt >> 2n), limit: tr.limit, ar: tr.ar });
  // LDTR: unusable, or an LDT with TI clear
  const wl = next();
  const ldtr = bit(ctl, 8) ? { ar: BigInt(ARB.UNUSABLE), limit: 0n } : usable(2, false, 0, wl);
  m.set('ldtr', { selector: sel(wl, Number(wl & 3n)), base: canon(wl >> 2n), limit: ldtr.limit, ar: ldtr.ar });
  return m;
}

/** Virtual-8086 mode: base = selector × 16, limit 0xffff, access rights 0xf3 for CS..GS; TR and LDTR as in protected mode. */
function rmode(next: Words): Map<Seg, SegmentValue> {
  const m = protectedMode(next, false);
  for (const s of ['cs', 'ss', ...DATA_SEGS] as const) {
    const selector = next() & 0xffffn;
    m.set(s, { selector, base: selector << 4n, limit: 0xffffn, ar: 0xf3n });
  }
  return m;
}

/**
 * Real mode under unrestricted guest (CR0.PE clear): base = selector × 16, limit 0xffff, SS and the
 * data segments read/write accessed data with DPL 0 (0x93), CS accessed code with DPL 0 (0x9b), as
 * the SDM requires of SS.DPL and of CS.DPL = SS.DPL there; TR and LDTR as in protected mode.
 */
function ugReal(next: Words): Map<Seg, SegmentValue> {
  const m = protectedMode(next, false);
  for (const s of ['cs', 'ss', ...DATA_SEGS] as const) {
    // CS's RPL 0: Bochs (the CPU of the kvm: target) checks a non-conforming CS's DPL against its
    // RPL also here, where the SDM compares it with SS.DPL (README K12); any other selector is free
    const selector = next() & (s === 'cs' ? 0xfffcn : 0xffffn);
    m.set(s, { selector, base: selector << 4n, limit: 0xffffn, ar: s === 'cs' ? 0x9bn : 0x93n });
  }
  return m;
}

/**
 * Protected mode under unrestricted guest: the SDM drops "SS.RPL = CS.RPL" there (SS.DPL still
 * equals a non-conforming CS's DPL), so half of these guests get another SS RPL: valid for the CPU,
 * refused by KVM's own checks were it to run them without unrestricted guest.
 */
function ugProtected(next: Words, ia32e: boolean, cpl0: boolean): Map<Seg, SegmentValue> {
  const m = protectedMode(next, ia32e, cpl0);
  const w = next();
  const ss = m.get('ss')!;
  if (w & 1n) m.set('ss', { ...ss, selector: ss.selector ^ (1n + ((w >> 1n) % 3n)) });
  return m;
}

/** The segment fields (selector, base, limit, access rights of each register) for a mode; `cpl0`: SS.DPL 0, as a halted guest needs. */
export function segmentFields(mode: SegmentMode, next: Words, ia32e: boolean, cpl0 = false): Map<string, bigint> {
  const segs = mode === 'protected' ? protectedMode(next, ia32e, cpl0) : mode === 'rmode' ? rmode(next) : mode === 'ug-protected' ? ugProtected(next, ia32e, cpl0) : ugReal(next);
  const f = new Map<string, bigint>();
  for (const [s, v] of segs) {
    f.set(`guest_${s}_selector`, v.selector);
    f.set(`guest_${s}_base`, v.base);
    f.set(`guest_${s}_limit`, v.limit);
    f.set(`guest_${s}_ar_bytes`, v.ar);
  }
  return f;
}

/** A word stream over a fixed list, cycling (deterministic: breakers reuse it). */
export const cycle = (words: readonly bigint[]): Words => { let i = 0; return () => words[i++ % words.length]!; };
