// Breakers for the checks KVM makes only on VMLAUNCH/VMRESUME after the vmcs12 checks: the guest
// segment registers without unrestricted guest (F1), and the VM-entry MSR-load list (F2). Each
// puts the guest in the branch its rule belongs to, then changes one segment or appends one entry.
import { BIT } from '../model/vmentry/bits.js';
import type { Vmcs12Draft } from '../model/vmentry/draft.js';
import type { MsrEntry } from '../model/vmentry/msr-load.js';
import { andNot, get, or, pick, put, type Breaker } from './breaker.js';
import { ARB, cycle, DATA_SEGS, dplBits, segmentFields, type Seg, type SegmentMode } from './guest-segments.js';
import { ENTRY_MSR_AREA, MSR } from './msr-list.js';

const VM = 0x2_0000n;
const NO_UG = { proc2: BIT.proc2.unrestricted };

const sel = (d: Vmcs12Draft, s: Seg) => Number(get(d, `guest_${s}_selector`));
const ar = (d: Vmcs12Draft, s: Seg) => Number(get(d, `guest_${s}_ar_bytes`));
const setSel = (d: Vmcs12Draft, s: Seg, v: number) => put(d, `guest_${s}_selector`, BigInt(v & 0xffff));
const setAr = (d: Vmcs12Draft, s: Seg, v: number) => put(d, `guest_${s}_ar_bytes`, BigInt(v >>> 0));
const dplOf = (a: number) => (a >> 5) & 3;
const withDpl = (a: number, dpl: number) => (a & ~0x60) | dplBits(dpl);
const rplOf = (d: Vmcs12Draft, s: Seg) => sel(d, s) & 3;

/** Rewrites every segment valid for a mode (when the generator chose the other one). */
const rewrite = (d: Vmcs12Draft, mode: SegmentMode) => {
  const ia32e = (get(d, 'vm_entry_controls') & BigInt(BIT.entry.ia32e)) !== 0n;
  for (const [m, v] of segmentFields(mode, cycle([get(d, 'guest_rip'), get(d, 'guest_rsp'), get(d, 'tsc_offset')]), ia32e)) put(d, m, v);
  return true;
};
/** KVM's protected-mode branch: RFLAGS.VM clear (CR0.PE is set without unrestricted guest) */
const protectedMode = (d: Vmcs12Draft) => ((get(d, 'guest_rflags') & VM) === 0n ? true : (andNot(d, 'guest_rflags', VM), rewrite(d, 'protected')));
/** KVM's real-mode branch: RFLAGS.VM set, a virtual-8086 guest outside IA-32e mode */
const vm86Mode = (d: Vmcs12Draft) => ((get(d, 'guest_rflags') & VM) !== 0n ? true : (or(d, 'guest_rflags', VM), rewrite(d, 'rmode')));

/** A usable segment again (for the checks that pass over unusable ones): type given, S as given, DPL = RPL, present. */
const usable = (d: Vmcs12Draft, s: Seg, type: number, system = false) => setAr(d, s, type | (system ? 0 : ARB.S) | ARB.P | dplBits(rplOf(d, s)));

const rmodeBreaker = (s: Seg): Breaker => ({
  plan: { off: { ...NO_UG, entry: BIT.entry.ia32e } },
  apply: (d) => {
    vm86Mode(d);
    const base = `guest_${s}_base`;
    return [() => put(d, base, get(d, base) + 16n), () => put(d, `guest_${s}_limit`, 0xfffen), () => setAr(d, s, ar(d, s) | ARB.G), () => setAr(d, s, ar(d, s) | ARB.UNUSABLE)][pick(d, 4)]!();
  },
});

const protectedBreaker = (apply: (d: Vmcs12Draft) => boolean): Breaker => ({ plan: { off: NO_UG }, apply: (d) => protectedMode(d) && apply(d) });

const dataBreaker = (s: Seg): Breaker =>
  protectedBreaker((d) =>
    pick(d, 2) === 0
      ? setAr(d, s, 0x3 | ARB.P) // usable, S clear
      : setSel(d, s, sel(d, s) | 3) && setAr(d, s, 0x3 | ARB.S | ARB.P), // data with DPL 0 < RPL 3
  );

const SEGMENT_BREAKERS: Record<string, Breaker> = {
  ...Object.fromEntries((['cs', 'ss', ...DATA_SEGS] as const).map((s) => [`prepare.rmode-segment.${s}`, rmodeBreaker(s)])),
  'prepare.cs-ss-rpl': protectedBreaker((d) => {
    const r = (rplOf(d, 'cs') + 1) & 3;
    setSel(d, 'ss', (sel(d, 'ss') & ~3) | r);
    return setAr(d, 'ss', withDpl(ar(d, 'ss'), r)); // SS keeps DPL = RPL, usable or not (the CPU checks it either way)
  }),
  'prepare.code-segment': protectedBreaker((d) => {
    const a = ar(d, 'cs');
    const r = rplOf(d, 'cs');
    const conforming = (a & 0x4) !== 0;
    switch (pick(d, 4)) {
      case 0: return setAr(d, 'cs', a | ARB.UNUSABLE);
      case 1: return setAr(d, 'cs', a & ~ARB.S);
      case 2: return conforming && r === 3 ? setAr(d, 'cs', a & ~0x1) : setAr(d, 'cs', withDpl(a, conforming ? r + 1 : (r + 1) & 3));
      default: return setAr(d, 'cs', a & ~0x1); // not accessed
    }
  }),
  'prepare.stack-segment': protectedBreaker((d) => {
    if (ar(d, 'ss') & ARB.UNUSABLE) usable(d, 'ss', 3);
    const a = ar(d, 'ss');
    return [() => setAr(d, 'ss', (a & ~0xf) | 0x1), () => setAr(d, 'ss', a & ~ARB.S), () => setAr(d, 'ss', withDpl(a, (dplOf(a) + 1) & 3))][pick(d, 3)]!();
  }),
  ...Object.fromEntries(DATA_SEGS.map((s) => [`prepare.data-segment.${s}`, dataBreaker(s)])),
  'prepare.tr': protectedBreaker((d) => [() => setAr(d, 'tr', ar(d, 'tr') | ARB.UNUSABLE), () => setSel(d, 'tr', sel(d, 'tr') | 4), () => setAr(d, 'tr', (ar(d, 'tr') & ~0xf) | 9)][pick(d, 3)]!()),
  'prepare.ldtr': protectedBreaker((d) => (pick(d, 2) === 0 ? usable(d, 'ldtr', 2, true) && setSel(d, 'ldtr', sel(d, 'ldtr') | 4) : usable(d, 'ldtr', 3, true) && setSel(d, 'ldtr', sel(d, 'ldtr') & ~4))),
};

/**
 * One refused entry after the valid list, so the failing entry is the last: the exit qualification
 * (its index + 1) is the list's count.
 */
const appendEntry = (entry: (d: Vmcs12Draft) => MsrEntry): Breaker => ({
  apply: (d) => {
    const list = [...(d.msrLoad ?? []), entry(d)];
    d.msrLoad = list;
    return put(d, 'vm_entry_msr_load_count', BigInt(list.length));
  },
});

const MSR_LOAD_BREAKERS: Record<string, Breaker> = {
  // one entry past the cap, 512 × (IA32_VMX_MISC[27:25] + 1), after as many valid ones
  'msr-load.count': {
    apply: (d, c) => {
      const cap = 512 * (Number((c.caps.misc >> 25n) & 7n) + 1);
      d.msrLoad = Array.from({ length: cap }, () => ({ index: MSR.KERNEL_GS_BASE, value: 0n }));
      return put(d, 'vm_entry_msr_load_addr', ENTRY_MSR_AREA) && put(d, 'vm_entry_msr_load_count', BigInt(cap + 1));
    },
  },
  'msr-load.refused-index': appendEntry((d) => ({ index: [MSR.FS_BASE, MSR.GS_BASE, MSR.SMM_MONITOR_CTL, MSR.UCODE_WRITE, MSR.UCODE_REV][pick(d, 5)]!, value: 0n })),
  'msr-load.reserved': appendEntry((d) => ({ index: MSR.KERNEL_GS_BASE, reserved: 1 << pick(d, 32), value: 0n })),
  // MSR 0 (P5_MC_ADDR) has no write; KERNEL_GS_BASE refuses a non-canonical base
  'msr-load.write': appendEntry((d) => (pick(d, 2) === 0 ? { index: 0, value: get(d, 'guest_rip') } : { index: MSR.KERNEL_GS_BASE, value: 1n << 47n })),
};

export const ENTRY_BREAKERS: Readonly<Record<string, Breaker>> = { ...SEGMENT_BREAKERS, ...MSR_LOAD_BREAKERS };
