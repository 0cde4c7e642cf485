// vmcs12 states that pass KVM's VM-entry checks for a capability set, built constructively: choose
// the controls within the capabilities, drop the ones whose prerequisites were not chosen (never a
// must-be-1 bit), then fill every field consistently with the modes chosen (IA-32e or not, EPT,
// shadow VMCS, event injection). Every address is valid whether or not its control is on, so turning
// a control on later breaks nothing else. `oneCheckBroken` then breaks exactly one rule.
import fc from 'fast-check';
import type { CheckRule } from '../model/catalog/vmx-controls.js';
import { BIT, CR0, CR4, EFER, EPT_CAP, EXCEPTIONS_WITH_ERROR_CODE, INTR, INTR_TYPE, MISC } from '../model/vmentry/bits.js';
import { cr3TargetCount, type NestedCaps } from '../model/vmentry/caps.js';
import { INVALID_LINK, LINK_PAGE, linkHeader, type Vmcs12Draft } from '../model/vmentry/draft.js';
import { GUEST_CPU } from '../model/vmentry/guest-cpu.js';
import { usablePages, type GuestMemory } from '../model/nested/guest-memory.js';
import { cycle, segmentFields } from './guest-segments.js';
import { ENTRY_MSR_AREA, entryMsrList, rawMsrEntry } from './msr-list.js';

/** Controls a breaker needs on (`on`) or off (`off`), by class. */
export interface ControlPlan {
  readonly on?: Partial<Record<'pin' | 'proc' | 'proc2' | 'exit' | 'entry', number>>;
  readonly off?: Partial<Record<'pin' | 'proc' | 'proc2' | 'exit' | 'entry', number>>;
}

export interface GuestOptions {
  readonly maxPhyAddr?: number;
  /** the eVMCS control check applies (guest_cpuid_has_evmcs): controls stay within it */
  readonly evmcsCheck?: readonly CheckRule[] | null;
  readonly plan?: ControlPlan;
  /** the target's guest memory: every address the state points at lies inside it */
  readonly memory?: GuestMemory;
}

const U32 = fc.integer({ min: 0, max: 0xffff_ffff });
const U64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

/** The random choices one valid guest is built from; everything shrinks toward zero. */
export const rawGuest = fc.record({
  pin: U32,
  proc: U32,
  proc2: U32,
  exit: U32,
  entry: U32,
  words: fc.array(U64, { minLength: 32, maxLength: 32 }),
  ia32e: fc.boolean(),
  link: fc.boolean(),
  inject: fc.nat(7),
  activity: fc.constantFrom(0n, 1n, 3n),
  /** the segment registers' random words, virtual-8086 mode, and random segments under unrestricted guest */
  segs: fc.array(U64, { minLength: 16, maxLength: 16 }),
  unrestricted: fc.nat(3),
  vm86: fc.boolean(),
  /** the VM-entry MSR-load list (empty: count 0) */
  msrs: fc.array(rawMsrEntry, { maxLength: 4 }),
});
export type RawGuest = typeof rawGuest extends fc.Arbitrary<infer T> ? T : never;

const has = (x: number, b: number) => (x & b) !== 0;

/** Builds a valid draft from random choices. Pure: the same choices give the same draft. */
export function buildValidGuest(caps: NestedCaps, r: RawGuest, opts: GuestOptions = {}): Vmcs12Draft {
  const maxPhy = BigInt(opts.maxPhyAddr ?? 36);
  let w = 0;
  const word = () => r.words[w++ % r.words.length]!;
  /** a page address in [1 MiB, 2^MAXPHYADDR): clear of the pages scenarios use for VMXON, VMCS and eVMCS */
  // a target's memory: its top MiB holds the VM-entry MSR-load list, the rest the pages
  const listArea = opts.memory ? (opts.memory.bytes < 1n << maxPhy ? opts.memory.bytes : 1n << maxPhy) - 0x10_0000n : ENTRY_MSR_AREA;
  const memory = opts.memory ? { ...opts.memory, reserved: [...opts.memory.reserved, [listArea, listArea + 0x10_0000n] as const] } : undefined;
  const page = memory ? pageIn(memory, maxPhy, word) : () => 0x10_0000n + (word() % (((1n << maxPhy) - 0x10_0000n) >> 12n)) * 0x1000n;
  const canon = () => { const x = word() & 0xffff_ffff_ffffn; return x & 0x8000_0000_0000n ? x | 0xffff_0000_0000_0000n : x; };
  const on = opts.plan?.on ?? {};
  const off = opts.plan?.off ?? {};
  const ctl = (c: 'pin' | 'proc' | 'proc2' | 'exit' | 'entry', x: number) => (((x & caps[c].may) | caps[c].must | (on[c] ?? 0)) & ~(off[c] ?? 0)) >>> 0;
  let pin = ctl('pin', r.pin), proc = ctl('proc', r.proc), proc2 = ctl('proc2', r.proc2), exit = ctl('exit', r.exit), entry = ctl('entry', r.entry);
  // a quarter of the guests ask for unrestricted guest (random controls alone give it to ~5%), where KVM checks no segment
  const wantUg: number = BIT.proc.secondary, ugBits: number = BIT.proc2.unrestricted | BIT.proc2.ept;
  if (r.unrestricted === 3 && !((off.proc ?? 0) & wantUg) && !((off.proc2 ?? 0) & ugBits)) {
    proc = (proc | (wantUg & caps.proc.may)) >>> 0;
    proc2 = (proc2 | (ugBits & caps.proc2.may)) >>> 0;
  }
  let vmfunc = word() & caps.vmfunc;
  // the eVMCS check reads the raw fields: keep every class inside it
  for (const s of opts.evmcsCheck ?? []) {
    const keep = s.kind === 'deny' ? ~s.mask : s.mask; // planned bits stay (a breaker may want one outside)
    if (s.kind === 'high-bits') vmfunc &= 0xffff_ffffn;
    else if (s.field === 'vm_function_control') vmfunc &= BigInt(keep >>> 0);
    else if (s.field === 'pin_based_vm_exec_control') pin &= keep | (on.pin ?? 0);
    else if (s.field === 'cpu_based_vm_exec_control') proc &= keep | (on.proc ?? 0);
    else if (s.field === 'secondary_vm_exec_control') proc2 &= keep | (on.proc2 ?? 0);
    else if (s.field === 'vm_exit_controls') exit &= keep | (on.exit ?? 0);
    else entry &= keep | (on.entry ?? 0);
  }
  // prerequisites: a control whose prerequisite is missing is dropped (unless a must-be-1 or planned bit)
  const keepP = (c: 'pin' | 'proc' | 'proc2' | 'exit' | 'entry') => caps[c].must | (on[c] ?? 0);
  const drop = (c: 'pin' | 'proc' | 'proc2' | 'exit' | 'entry', x: number, bits: number) => (x & ~(bits & ~keepP(c))) >>> 0;
  const eptUsable = (caps.eptCaps & (EPT_CAP.uc | EPT_CAP.wb)) !== 0n && (caps.eptCaps & (EPT_CAP.walk4 | EPT_CAP.walk5)) !== 0n;
  if (!eptUsable) proc2 = drop('proc2', proc2, BIT.proc2.ept);
  if (!has(proc2, BIT.proc2.ept)) { proc2 = drop('proc2', proc2, BIT.proc2.pml | BIT.proc2.unrestricted | BIT.proc2.modeBasedEpt); vmfunc &= ~1n; }
  if (!has(proc, BIT.proc.tprShadow)) { proc2 = drop('proc2', proc2, BIT.proc2.x2apic | BIT.proc2.apicRegVirt | BIT.proc2.vid); pin = drop('pin', pin, BIT.pin.posted); }
  if (has(proc2, BIT.proc2.x2apic)) proc2 = drop('proc2', proc2, BIT.proc2.apicAccess);
  if (!has(pin, BIT.pin.extIntr)) proc2 = drop('proc2', proc2, BIT.proc2.vid);
  if (!has(proc, BIT.proc.secondary) || !has(proc2, BIT.proc2.vid) || !has(exit, BIT.exit.ackIntr)) pin = drop('pin', pin, BIT.pin.posted);
  if (!has(pin, BIT.pin.nmi)) pin = drop('pin', pin, BIT.pin.vnmi);
  if (!has(pin, BIT.pin.vnmi)) proc = drop('proc', proc, BIT.proc.nmiWindow);
  if (!has(pin, BIT.pin.preemption)) exit = drop('exit', exit, BIT.exit.savePreemption);
  // modes: a 64-bit host when the capabilities allow it (VMLAUNCH needs it: L1 is 64-bit); IA-32e guest only then
  const hostIa32e = has(caps.exit.may, BIT.exit.hostAddrSpace) && !has(off.exit ?? 0, BIT.exit.hostAddrSpace);
  exit = hostIa32e ? exit | BIT.exit.hostAddrSpace : drop('exit', exit, BIT.exit.hostAddrSpace);
  const guestIa32e = hostIa32e && (r.ia32e || has(on.entry ?? 0, BIT.entry.ia32e)) && !has(off.entry ?? 0, BIT.entry.ia32e) && has(caps.entry.may, BIT.entry.ia32e);
  entry = guestIa32e ? entry | BIT.entry.ia32e : drop('entry', entry, BIT.entry.ia32e);
  const sec = has(proc, BIT.proc.secondary) ? proc2 : 0;
  const F = new Map<string, bigint>();
  const set = (m: string, v: bigint) => F.set(m, v);
  set('pin_based_vm_exec_control', BigInt(pin >>> 0));
  set('cpu_based_vm_exec_control', BigInt(proc >>> 0));
  set('secondary_vm_exec_control', BigInt(proc2 >>> 0));
  set('vm_exit_controls', BigInt(exit >>> 0));
  set('vm_entry_controls', BigInt(entry >>> 0));
  set('vm_function_control', vmfunc);
  for (const m of ['io_bitmap_a', 'io_bitmap_b', 'msr_bitmap', 'virtual_apic_page_addr', 'apic_access_addr', 'pml_address', 'vmread_bitmap', 'vmwrite_bitmap', 'eptp_list_address']) set(m, page());
  set('posted_intr_desc_addr', page() + (word() % 64n) * 64n);
  set('posted_intr_nv', word() & 0xffn);
  set('virtual_processor_id', 1n + (word() % 0xffffn));
  set('cr3_target_count', word() % BigInt(cr3TargetCount(caps) + 1));
  // a TSC multiplier in [1, 2) (16.48 fixed point), never 0: with TSC scaling on, KVM puts L1's
  // ratio times this one into vmcs02, and the CPU (Bochs) refuses a zero multiplier with a VMfail
  // that KVM reflects as VMfailValid 7 (KVM's software does not check it, README K12)
  set('tsc_multiplier', (1n << 48n) | (word() & 0xffff_ffff_ffffn));
  const mt = caps.eptCaps & EPT_CAP.wb ? 6n : 0n;
  const pwl = caps.eptCaps & EPT_CAP.walk4 ? 0x18n : 0x20n;
  set('ept_pointer', page() | mt | pwl | (caps.eptCaps & EPT_CAP.ad && word() & 1n ? 0x40n : 0n));
  const msrArea = (count: string, addr: string) => { const n = word() % 64n; set(count, n); set(addr, page() + (word() % 200n) * 16n); };
  msrArea('vm_exit_msr_load_count', 'vm_exit_msr_load_addr');
  msrArea('vm_exit_msr_store_count', 'vm_exit_msr_store_addr');
  // the VM-entry MSR-load list is read on entry: valid entries written in guest memory, in an area of its own
  const msrLoad = entryMsrList(r.msrs);
  set('vm_entry_msr_load_count', BigInt(msrLoad.length));
  set('vm_entry_msr_load_addr', listArea + (word() % (opts.memory ? 0x100n : 0x1000n)) * 0x1000n + (word() % 200n) * 16n);
  // guest CR0/CR4: fixed bits, then the mode's requirements
  const ug = has(caps.proc2.may, BIT.proc2.unrestricted) && has(sec, BIT.proc2.unrestricted);
  let gcr0 = ((word() & caps.cr0Fixed1) | caps.cr0Fixed0) & ~(ug ? (word() & 1n ? CR0.PE | CR0.PG : 0n) : 0n);
  if (gcr0 & CR0.PG) gcr0 |= CR0.PE;
  if (guestIa32e) gcr0 |= CR0.PG | CR0.PE;
  const cr4 = (extra: bigint) => (word() & caps.cr4Fixed1 & GUEST_CPU.cr4Valid) | caps.cr4Fixed0 | extra;
  // PCIDE only in IA-32e mode: the CPU refuses it elsewhere (KVM's software does not check it; real KVM 6.12 failed such a guest with 0x80000021, K12)
  const gcr4 = (cr4(guestIa32e ? CR4.PAE : 0n) & ~CR4.CET) & ~(guestIa32e ? 0n : CR4.PCIDE);
  set('guest_cr0', gcr0);
  set('guest_cr4', gcr4);
  // below 4 GiB (a PAE CR3 is 32 bits), in memory no scenario writes: the PDPTEs read as not present
  set('guest_cr3', (opts.memory ? page() : 0x10_0000n + (word() % 0xff00n) * 0x1000n) + (word() & 0xfe0n));
  set('guest_dr7', word() & 0xffff_ffffn);
  set('guest_ia32_debugctl', word() & GUEST_CPU.debugctlValid);
  const pat = () => { let p = 0n; for (let i = 0n; i < 64n; i += 8n) p |= [0n, 1n, 4n, 5n, 6n, 7n][Number(word() % 6n)]! << i; return p; };
  set('guest_ia32_pat', pat());
  set('host_ia32_pat', pat());
  // 0: valid whatever PMU the vCPU has (its valid bits follow CPUID leaf 0xA, which the model fixes
  // and a real vCPU does not: on Bochs KVM refused the model's valid bits as host state, README K12)
  set('guest_ia32_perf_global_ctrl', 0n);
  set('host_ia32_perf_global_ctrl', 0n);
  const efer = (ia32e: boolean) => (word() & (EFER.SCE | EFER.NX)) | (ia32e ? EFER.LMA | EFER.LME : 0n);
  set('guest_ia32_efer', efer(guestIa32e));
  set('host_ia32_efer', efer(hostIa32e));
  set('guest_bndcfgs', (canon() & ~0xfffn) | (word() & 3n));
  set('guest_activity_state', r.activity);
  const shadow = has(sec, BIT.proc2.shadowVmcs);
  set('vmcs_link_pointer', r.link || shadow ? LINK_PAGE : INVALID_LINK);
  // host state
  set('host_cr0', (word() & caps.cr0Fixed1) | caps.cr0Fixed0);
  set('host_cr4', (cr4(hostIa32e ? CR4.PAE : 0n) & ~CR4.CET) & ~(hostIa32e ? 0n : CR4.PCIDE));
  set('host_cr3', page());
  for (const s of ['host_ds_selector', 'host_es_selector', 'host_fs_selector', 'host_gs_selector']) set(s, word() & 0xfff8n);
  for (const s of ['host_cs_selector', 'host_tr_selector', 'host_ss_selector']) set(s, 8n + (word() % 0x1ffen) * 8n);
  for (const b of ['host_fs_base', 'host_gs_base', 'host_gdtr_base', 'host_idtr_base', 'host_tr_base', 'host_ia32_sysenter_esp', 'host_ia32_sysenter_eip']) set(b, canon());
  set('host_rip', hostIa32e ? canon() : word() & 0xffff_ffffn);
  // The CPU checks the vmcs02 KVM builds from these fields (SDM "Checks on the Guest State Area"),
  // also where KVM's software checks do not: on real KVM a guest that broke them failed VM-entry with
  // 0x80000021 (README K12). So the state below is SDM-valid, not merely KVM-valid.
  // HLT needs SS.DPL 0 (so no virtual-8086 mode); wait-for-SIPI takes no injected event, HLT only
  // external interrupts, NMIs and a pending MTF
  const activity = r.activity;
  const injectKind = activity === 3n || (activity === 1n && ![1, 2, 7].includes(r.inject)) ? 0 : r.inject;
  // virtual-8086 mode needs CR0.PE and a legacy-mode guest (RFLAGS.VM must be 0 otherwise)
  const vm86 = r.vm86 && !guestIa32e && (gcr0 & CR0.PE) !== 0n && activity !== 1n;
  const realUg = ug && !(gcr0 & CR0.PE);
  // event injection, consistent with the mode (protected mode unless unrestricted guest with CR0.PE clear)
  const inject = injection(injectKind, word(), caps, realUg);
  set('vm_entry_intr_info_field', inject.info);
  set('vm_entry_exception_error_code', inject.errorCode);
  set('vm_entry_instruction_len', inject.len);
  // RFLAGS: reserved bits 63:22, 15, 5, 3 clear, bit 1 set; VM as the mode says; IF set for an injected external interrupt
  const RFLAGS_FREE = 0x3f_7fd5n & ~0x2_0000n;
  set('guest_rflags', (word() & RFLAGS_FREE) | 2n | (vm86 ? 0x2_0000n : 0n) | (injectKind === 1 ? 0x200n : 0n));
  // segments: KVM checks them without unrestricted guest, the CPU always
  const mode = realUg ? 'ug-real' : vm86 ? 'rmode' : ug ? 'ug-protected' : 'protected';
  for (const [m, v] of segmentFields(mode, cycle(r.segs), guestIa32e, activity === 1n)) set(m, v);
  // RIP: canonical in 64-bit mode (CS.L), else 32 bits; no STI/MOV-SS/NMI blocking
  set('guest_rip', guestIa32e ? canon() : word() & 0xffff_ffffn);
  set('guest_interruptibility_info', 0n);
  // the rest of the guest state nothing checks: random
  for (const m of ['guest_rsp', 'tsc_offset']) set(m, word());
  return { fields: F, linkHdr: linkHeader(shadow), ...(msrLoad.length ? { msrLoad } : {}) };
}

/** Page addresses in [1 MiB, 2^MAXPHYADDR) that a target's guest memory has (a target's memory ends below 4 GiB). */
function pageIn(m: GuestMemory, maxPhy: bigint, word: () => bigint): () => bigint {
  const ranges = usablePages(m, 0x10_0000n, 1n << maxPhy);
  const total = ranges.reduce((n, [a, b]) => n + (b - a), 0n);
  if (total === 0n) throw new Error('the target announces no guest memory above 1 MiB');
  return () => {
    let i = word() % total;
    for (const [a, b] of ranges) {
      if (i < b - a) return (a + i) << 12n;
      i -= b - a;
    }
    throw new Error('unreachable');
  };
}

function injection(kind: number, x: bigint, caps: NestedCaps, realMode: boolean): { info: bigint; errorCode: bigint; len: bigint } {
  const n = Number(x & 0xffn);
  const none = { info: x & 0x7fff_ffffn & ~0x7ffn, errorCode: x >> 32n, len: x >> 48n }; // VALID clear: the rest is not checked
  const valid = (type: number, vector: number, code = false) => BigInt((INTR.VALID | (type << 8) | vector | (code ? INTR.DELIVER_CODE : 0)) >>> 0);
  const len = caps.misc & MISC.zeroLenInjection ? (x >> 8n) % 16n : 1n + ((x >> 8n) % 15n);
  switch (kind) {
    case 1: return { info: valid(INTR_TYPE.EXT, n), errorCode: 0n, len: 0n };
    case 2: return { info: valid(INTR_TYPE.NMI, 2), errorCode: 0n, len: 0n };
    case 3: {
      const v = n % 32;
      const code = !realMode && ((EXCEPTIONS_WITH_ERROR_CODE >>> v) & 1) === 1;
      return { info: valid(INTR_TYPE.HARD_EXCEPTION, v, code), errorCode: code ? (x >> 16n) & 0xffffn : 0n, len: 0n };
    }
    case 4: return { info: valid(INTR_TYPE.SOFT_INTR, n), errorCode: 0n, len };
    case 5: return { info: valid(INTR_TYPE.PRIV_SW_EXCEPTION, 1), errorCode: 0n, len };
    case 6: return { info: valid(INTR_TYPE.SOFT_EXCEPTION, 3), errorCode: 0n, len };
    case 7: return caps.proc.may & BIT.proc.mtf ? { info: valid(INTR_TYPE.OTHER, 0), errorCode: 0n, len: 0n } : none;
    default: return none;
  }
}

/** Valid guests for a capability set (see buildValidGuest). */
export const validGuest = (caps: NestedCaps, opts: GuestOptions = {}): fc.Arbitrary<Vmcs12Draft> => rawGuest.map((r) => buildValidGuest(caps, r, opts));
