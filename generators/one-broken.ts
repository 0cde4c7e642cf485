// A valid vmcs12 with exactly one VM-entry rule broken, for every rule that some capability set lets
// a state break alone. Each breaker names the controls it needs (a plan the valid-guest builder
// honours) and then changes as little as possible. A breaker answers false when the capability set
// makes its rule unbreakable (e.g. a control class whose allowed-0/1 settings allow everything).
import fc from 'fast-check';
import { SHADOW_VMCS_BIT } from '../model/catalog/by-name.js';
import { CONTROL_FIELD as FIELD, type CheckRule } from '../model/catalog/vmx-controls.js';
import { BIT, CR0, CR4, EFER, INTR, INTR_TYPE } from '../model/vmentry/bits.js';
import { cr3TargetCount, DEFAULT_VMX_MSRS, nestedCaps, type NestedCaps } from '../model/vmentry/caps.js';
import { LINK_PAGE, type Vmcs12Draft } from '../model/vmentry/draft.js';
import type { VmentryRule } from '../model/vmentry/rules.js';
import { MSR, type MsrSet } from '../model/vmx-msrs.js';
import { buildValidGuest, rawGuest, type ControlPlan, type RawGuest } from './valid-guest.js';
import type { GuestMemory } from '../model/nested/guest-memory.js';
import { andNot, get, or, put, xor, type Breaker } from './breaker.js';
import { ENTRY_BREAKERS } from './break-entry.js';

type Cls = keyof typeof FIELD;
/** bits some rule gives a meaning to: a breaker never flips one of these by accident */
const FUNCTIONAL: Record<Cls, number> = {
  pin: Object.values(BIT.pin).reduce((a, b) => a | b, 0),
  proc: Object.values(BIT.proc).reduce((a, b) => a | b, 0),
  proc2: Object.values(BIT.proc2).reduce((a, b) => a | b, 0),
  exit: Object.values(BIT.exit).reduce((a, b) => a | b, 0),
  entry: Object.values(BIT.entry).reduce((a, b) => a | b, 0),
};
const lowestBit = (x: number): number => (x === 0 ? 0 : (x & -x) >>> 0);

const inject = (info: number, errorCode = 0n, len = 0n) => (d: Vmcs12Draft) => (put(d, 'vm_entry_intr_info_field', BigInt(info >>> 0)), put(d, 'vm_entry_exception_error_code', errorCode), put(d, 'vm_entry_instruction_len', len));
const event = (type: number, vector: number, extra = 0) => INTR.VALID | (type << 8) | vector | extra;
const NON_CANONICAL = 1n << 47n;

/** allowed-0/1: clear a must-be-1 bit with no other meaning, else set a meaningless bit outside allowed-1 */
const outsideAllowed = (c: Cls): Breaker => ({
  ...(c === 'proc2' ? { plan: { on: { proc: BIT.proc.secondary } } } : {}),
  apply: (d, { caps }) => {
    const must = caps[c].must & ~FUNCTIONAL[c];
    const outside = ~caps[c].may & ~FUNCTIONAL[c];
    if (!must && !outside) return false;
    return xor(d, FIELD[c], BigInt(lowestBit(must || outside)));
  },
});
const misalign = (m: string): Breaker['apply'] => (d) => or(d, m, 0x800n);
const beyond = (m: string): Breaker['apply'] => (d, c) => or(d, m, 1n << BigInt(c.maxPhyAddr));
const has = (caps: NestedCaps, c: Cls, bit: number) => (caps[c].may & bit) !== 0;
/** the needed controls exist in the capabilities */
const needs = (plan: ControlPlan, apply: Breaker['apply'] = () => true): Breaker => ({
  plan,
  apply: (d, c) => Object.entries(plan.on ?? {}).every(([k, bits]) => ((c.caps[k as Cls].may & bits) >>> 0) === bits >>> 0) && apply!(d, c),
});
const SEC = { proc: BIT.proc.secondary };
const EPT = { ...SEC, proc2: BIT.proc2.ept };
const POSTED = { pin: BIT.pin.posted | BIT.pin.extIntr, proc: BIT.proc.tprShadow | BIT.proc.secondary, proc2: BIT.proc2.vid, exit: BIT.exit.ackIntr };
const NO_UG = { proc2: BIT.proc2.unrestricted };
const UG = { proc: BIT.proc.secondary, proc2: BIT.proc2.ept | BIT.proc2.unrestricted };
const HOST32 = { exit: BIT.exit.hostAddrSpace };
const msrArea = (count: string, addr: string): Breaker['apply'] => (d) => (put(d, count, 1n), put(d, addr, (get(d, addr) & ~0xfn) | 8n));

/** eVMCS steps: set one bit the step refuses, in a field where nothing else looks at it */
const evmcsStep = (name: string): Breaker => ({
  evmcs: true,
  plan: name === '2ndexec' || name.startsWith('vmfunc') ? { off: { proc: BIT.proc.secondary } } : {},
  apply: (d, { caps, evmcsCheck }) => {
    const step = evmcsCheck.find((s) => s.rule === name);
    if (!step) return false;
    if (step.kind === 'high-bits') return or(d, 'vm_function_control', 1n << 32n);
    const refused = (step.kind === 'deny' ? step.mask : ~step.mask) >>> 0;
    if (step.field === 'vm_function_control') return refused !== 0 && or(d, 'vm_function_control', BigInt(lowestBit(refused)));
    const cls = (Object.keys(FIELD) as Cls[]).find((k) => FIELD[k] === step.field)!;
    // the raw secondary field is read with secondary controls off: any bit; elsewhere a bit the capabilities allow, without meaning
    const harmless = cls === 'proc2' ? refused : refused & caps[cls].may & ~FUNCTIONAL[cls] | (cls === 'pin' ? refused & caps.pin.may & BIT.pin.preemption : 0);
    return harmless !== 0 && or(d, step.field, BigInt(lowestBit(harmless)));
  },
});

export const BREAKERS: Readonly<Record<string, Breaker>> = {
  'ctl.pin': outsideAllowed('pin'),
  'ctl.proc': outsideAllowed('proc'),
  'ctl.proc2': outsideAllowed('proc2'),
  'ctl.cr3-target-count': { apply: (d, c) => put(d, 'cr3_target_count', BigInt(cr3TargetCount(c.caps) + 1)) },
  'ctl.io-bitmap-a': needs({ on: { proc: BIT.proc.ioBitmaps } }, misalign('io_bitmap_a')),
  'ctl.io-bitmap-b': needs({ on: { proc: BIT.proc.ioBitmaps } }, beyond('io_bitmap_b')),
  'ctl.msr-bitmap': needs({ on: { proc: BIT.proc.msrBitmaps } }, misalign('msr_bitmap')),
  'ctl.virtual-apic-page': needs({ on: { proc: BIT.proc.tprShadow } }, misalign('virtual_apic_page_addr')),
  'ctl.apic-access-page': needs({ on: { ...SEC, proc2: BIT.proc2.apicAccess }, off: { proc2: BIT.proc2.x2apic } }, misalign('apic_access_addr')),
  'ctl.apicv.x2apic-and-apic-access': needs({ on: { proc: BIT.proc.tprShadow | BIT.proc.secondary, proc2: BIT.proc2.x2apic | BIT.proc2.apicAccess } }),
  'ctl.apicv.vid-without-ext-intr-exiting': needs({ on: { proc: BIT.proc.tprShadow | BIT.proc.secondary, proc2: BIT.proc2.vid }, off: { pin: BIT.pin.extIntr | BIT.pin.posted } }),
  'ctl.apicv.posted-without-vid': needs({ on: { pin: BIT.pin.posted, proc: BIT.proc.tprShadow, exit: BIT.exit.ackIntr }, off: { proc2: BIT.proc2.vid } }),
  'ctl.apicv.posted-without-ack': needs({ on: { ...POSTED, exit: 0 }, off: { exit: BIT.exit.ackIntr } }),
  'ctl.apicv.posted-nv': needs({ on: POSTED }, (d) => or(d, 'posted_intr_nv', 0x100n)),
  'ctl.apicv.posted-desc': needs({ on: POSTED }, (d) => or(d, 'posted_intr_desc_addr', 0x20n)),
  'ctl.apicv.without-tpr-shadow': needs({ on: { ...SEC, proc2: BIT.proc2.x2apic }, off: { proc: BIT.proc.tprShadow, pin: BIT.pin.posted } }),
  'ctl.nmi.virtual-without-exiting': needs({ on: { pin: BIT.pin.vnmi }, off: { pin: BIT.pin.nmi } }),
  'ctl.nmi.window-without-virtual': needs({ on: { proc: BIT.proc.nmiWindow }, off: { pin: BIT.pin.vnmi } }),
  'ctl.pml.without-ept': needs({ on: { ...SEC, proc2: BIT.proc2.pml }, off: { proc2: BIT.proc2.ept } }),
  'ctl.pml.address': needs({ on: { ...SEC, proc2: BIT.proc2.ept | BIT.proc2.pml } }, misalign('pml_address')),
  'ctl.unrestricted-without-ept': needs({ on: { ...SEC, proc2: BIT.proc2.unrestricted }, off: { proc2: BIT.proc2.ept } }),
  'ctl.mode-based-ept-without-ept': needs({ on: { ...SEC, proc2: BIT.proc2.modeBasedEpt }, off: { proc2: BIT.proc2.ept } }),
  'ctl.shadow-vmcs.vmread-bitmap': needs({ on: { ...SEC, proc2: BIT.proc2.shadowVmcs } }, misalign('vmread_bitmap')),
  'ctl.shadow-vmcs.vmwrite-bitmap': needs({ on: { ...SEC, proc2: BIT.proc2.shadowVmcs } }, beyond('vmwrite_bitmap')),
  'ctl.vpid-zero': needs({ on: { ...SEC, proc2: BIT.proc2.vpid } }, (d) => put(d, 'virtual_processor_id', 0n)),
  'ctl.save-preemption-without-timer': needs({ on: { exit: BIT.exit.savePreemption }, off: { pin: BIT.pin.preemption } }),
  'ctl.eptp.memory-type': needs({ on: EPT }, (d) => put(d, 'ept_pointer', (get(d, 'ept_pointer') & ~7n) | 1n)),
  'ctl.eptp.walk-length': needs({ on: EPT }, (d) => put(d, 'ept_pointer', (get(d, 'ept_pointer') & ~0x38n) | 0x10n)),
  'ctl.eptp.reserved': needs({ on: EPT }, (d) => or(d, 'ept_pointer', 0x80n)),
  'ctl.eptp.accessed-dirty': needs({ on: EPT }, (d, c) => (c.caps.eptCaps & 0x20_0000n) === 0n && or(d, 'ept_pointer', 0x40n)),
  'ctl.vmfunc.unsupported': needs({ on: { ...SEC, proc2: BIT.proc2.vmfunc } }, (d, c) => {
    const outside = ~c.caps.vmfunc & ~1n & ((1n << 64n) - 1n);
    return or(d, 'vm_function_control', outside & -outside);
  }),
  'ctl.vmfunc.eptp-switching-without-ept': needs({ on: { ...SEC, proc2: BIT.proc2.vmfunc }, off: { proc2: BIT.proc2.ept } }, (d, c) => (c.caps.vmfunc & 1n) !== 0n && or(d, 'vm_function_control', 1n)),
  'ctl.vmfunc.eptp-list': needs({ on: { ...SEC, proc2: BIT.proc2.vmfunc | BIT.proc2.ept } }, (d, c) => (c.caps.vmfunc & 1n) !== 0n && or(d, 'vm_function_control', 1n) && misalign('eptp_list_address')!(d, c)),
  'exit.ctls': outsideAllowed('exit'),
  'exit.msr-load': { apply: msrArea('vm_exit_msr_load_count', 'vm_exit_msr_load_addr') },
  'exit.msr-store': { apply: msrArea('vm_exit_msr_store_count', 'vm_exit_msr_store_addr') },
  'entry.ctls': outsideAllowed('entry'),
  'entry.event.type': { apply: inject(event(INTR_TYPE.RESERVED, 0)) },
  'entry.event.vector': { apply: inject(event(INTR_TYPE.NMI, 3)) },
  'entry.event.deliver-error-code': { apply: inject(event(INTR_TYPE.EXT, 0x20, INTR.DELIVER_CODE)) },
  'entry.event.error-code': { plan: { off: NO_UG }, apply: inject(event(INTR_TYPE.HARD_EXCEPTION, 13, INTR.DELIVER_CODE), 0x1_0000n) },
  'entry.event.reserved': { apply: inject(event(INTR_TYPE.EXT, 0x20, 0x1000)) },
  'entry.event.instruction-length': { apply: inject(event(INTR_TYPE.SOFT_INTR, 0x80), 0n, 16n) },
  'entry.msr-load': { apply: msrArea('vm_entry_msr_load_count', 'vm_entry_msr_load_addr') },
  'host.address-space-size': { plan: { off: HOST32 } },
  'host.cr0': { apply: (d, c) => c.caps.cr0Fixed0 !== 0n && andNot(d, 'host_cr0', c.caps.cr0Fixed0 & -c.caps.cr0Fixed0) },
  'host.cr4': { apply: (d, c) => c.caps.cr4Fixed0 !== 0n && andNot(d, 'host_cr4', c.caps.cr4Fixed0 & -c.caps.cr4Fixed0) },
  'host.cr3': { apply: beyond('host_cr3') },
  'host.sysenter-esp': { apply: (d) => put(d, 'host_ia32_sysenter_esp', NON_CANONICAL) },
  'host.sysenter-eip': { apply: (d) => put(d, 'host_ia32_sysenter_eip', NON_CANONICAL) },
  'host.pat': needs({ on: { exit: BIT.exit.loadPat } }, (d) => put(d, 'host_ia32_pat', 2n)),
  'host.perf-global-ctrl': needs({ on: { exit: BIT.exit.loadPerf } }, (d) => or(d, 'host_ia32_perf_global_ctrl', 0x100n)),
  'host.ia32e-without-pae': { apply: (d) => (get(d, 'vm_exit_controls') & BigInt(BIT.exit.hostAddrSpace)) !== 0n && andNot(d, 'host_cr4', CR4.PAE) },
  'host.ia32e-guest-on-32-bit-host': { plan: { off: HOST32 }, apply: (d, c) => has(c.caps, 'entry', BIT.entry.ia32e) && or(d, 'vm_entry_controls', BigInt(BIT.entry.ia32e)) && or(d, 'guest_cr0', CR0.PG | CR0.PE) && or(d, 'guest_cr4', CR4.PAE) && or(d, 'guest_ia32_efer', EFER.LMA | EFER.LME) && inject(0)(d) },
  'host.pcide-on-32-bit-host': { plan: { off: HOST32 }, apply: (d) => or(d, 'host_cr4', CR4.PCIDE) },
  'host.rip-high-on-32-bit-host': { plan: { off: HOST32 }, apply: (d) => put(d, 'host_rip', 1n << 32n) },
  'host.selector-rpl-ti': { apply: (d) => or(d, 'host_ds_selector', 1n) },
  'host.cs-zero': { apply: (d) => put(d, 'host_cs_selector', 0n) },
  'host.tr-zero': { apply: (d) => put(d, 'host_tr_selector', 0n) },
  'host.ss-zero-on-32-bit-host': { plan: { off: HOST32 }, apply: (d) => put(d, 'host_ss_selector', 0n) },
  'host.base-canonical': { apply: (d) => put(d, 'host_gdtr_base', NON_CANONICAL) },
  'host.rip-canonical': { apply: (d) => (get(d, 'vm_exit_controls') & BigInt(BIT.exit.hostAddrSpace)) !== 0n && put(d, 'host_rip', NON_CANONICAL) },
  'host.efer.reserved': needs({ on: { exit: BIT.exit.loadEfer } }, (d) => or(d, 'host_ia32_efer', 0x2n)),
  'host.efer.lma': needs({ on: { exit: BIT.exit.loadEfer } }, (d) => xor(d, 'host_ia32_efer', EFER.LMA)),
  'host.efer.lme': needs({ on: { exit: BIT.exit.loadEfer } }, (d) => xor(d, 'host_ia32_efer', EFER.LME)),
  'guest.cr0': { plan: { off: NO_UG }, apply: (d, c) => c.caps.cr0Fixed0 !== 0n && andNot(d, 'guest_cr0', (c.caps.cr0Fixed0 & CR0.NE) !== 0n ? CR0.NE : c.caps.cr0Fixed0 & -c.caps.cr0Fixed0) },
  'guest.cr4': { apply: (d, c) => c.caps.cr4Fixed0 !== 0n && andNot(d, 'guest_cr4', c.caps.cr4Fixed0 & -c.caps.cr4Fixed0) },
  'guest.dr7': needs({ on: { entry: BIT.entry.loadDebug } }, (d) => or(d, 'guest_dr7', 1n << 32n)),
  'guest.debugctl': needs({ on: { entry: BIT.entry.loadDebug } }, (d) => or(d, 'guest_ia32_debugctl', 0x40n)),
  'guest.pat': needs({ on: { entry: BIT.entry.loadPat } }, (d) => put(d, 'guest_ia32_pat', 2n)),
  'guest.link-pointer.address': { apply: (d) => put(d, 'vmcs_link_pointer', LINK_PAGE | 0x800n) },
  'guest.link-pointer.revision': { apply: (d) => (put(d, 'vmcs_link_pointer', LINK_PAGE), (d.linkHdr ^= 1n), true) },
  'guest.link-pointer.shadow-bit': { apply: (d) => (put(d, 'vmcs_link_pointer', LINK_PAGE), (d.linkHdr ^= SHADOW_VMCS_BIT), true) },
  'guest.perf-global-ctrl': needs({ on: { entry: BIT.entry.loadPerf } }, (d) => or(d, 'guest_ia32_perf_global_ctrl', 0x100n)),
  'guest.pg-without-pe': needs({ on: UG, off: { entry: BIT.entry.ia32e } }, (d) => put(d, 'guest_cr0', (get(d, 'guest_cr0') | CR0.PG) & ~CR0.PE) && inject(0)(d)),
  'guest.ia32e-without-pae': needs({ on: { entry: BIT.entry.ia32e } }, (d) => (get(d, 'vm_entry_controls') & BigInt(BIT.entry.ia32e)) !== 0n && andNot(d, 'guest_cr4', CR4.PAE)),
  'guest.ia32e-without-pg': needs({ on: { ...UG, entry: BIT.entry.ia32e } }, (d) => (get(d, 'vm_entry_controls') & BigInt(BIT.entry.ia32e)) !== 0n && andNot(d, 'guest_cr0', CR0.PG)),
  'guest.efer.reserved': needs({ on: { entry: BIT.entry.loadEfer } }, (d) => or(d, 'guest_ia32_efer', 0x2n)),
  'guest.efer.lma': needs({ on: { entry: BIT.entry.loadEfer } }, (d) => xor(d, 'guest_ia32_efer', EFER.LMA)),
  'guest.efer.lme': needs({ on: { entry: BIT.entry.loadEfer }, off: NO_UG }, (d) => xor(d, 'guest_ia32_efer', EFER.LME)),
  'guest.bndcfgs.canonical': needs({ on: { entry: BIT.entry.loadBndcfgs } }, (d) => put(d, 'guest_bndcfgs', NON_CANONICAL)),
  'guest.bndcfgs.reserved': needs({ on: { entry: BIT.entry.loadBndcfgs } }, (d) => or(d, 'guest_bndcfgs', 0x4n)),
  'guest.activity-state': { apply: (d) => put(d, 'guest_activity_state', 2n) },
  ...ENTRY_BREAKERS,
  'prepare.guest-cr3': { apply: beyond('guest_cr3') },
  'prepare.pdpte': {
    plan: { off: { proc2: BIT.proc2.ept | BIT.proc2.unrestricted, entry: BIT.entry.ia32e } },
    apply: (d) => or(d, 'guest_cr0', CR0.PG | CR0.PE) && or(d, 'guest_cr4', CR4.PAE) && ((d.pdptes = [0x3n, 0n, 0n, 0n]), true),
  },
};

function breakerFor(ruleId: string): Breaker | undefined {
  return ruleId.startsWith('evmcs.') ? evmcsStep(ruleId.slice('evmcs.'.length)) : BREAKERS[ruleId];
}

export interface Broken {
  readonly draft: Vmcs12Draft;
  /** the eVMCS control check is active for this state */
  readonly evmcs: boolean;
}

export interface BreakOptions {
  readonly maxPhyAddr?: number;
  /** the profile's eVMCS check (for the evmcs.* rules) */
  readonly evmcsCheck?: readonly CheckRule[];
  /** the target's guest memory (GuestOptions.memory) */
  readonly memory?: GuestMemory;
}

const mergePlans = (plans: readonly (ControlPlan | undefined)[]): ControlPlan => {
  const on: Partial<Record<Cls, number>> = {};
  const off: Partial<Record<Cls, number>> = {};
  for (const p of plans) {
    for (const [k, v] of Object.entries(p?.on ?? {})) on[k as Cls] = (on[k as Cls] ?? 0) | v;
    for (const [k, v] of Object.entries(p?.off ?? {})) off[k as Cls] = (off[k as Cls] ?? 0) | v;
  }
  return { on, off };
};

/**
 * A valid state with the given rules broken (one rule: exactly that one; several: their plans merged,
 * which may break more or fewer, so callers check). Null when the capabilities make one unbreakable.
 */
export function breakRules(caps: NestedCaps, rules: readonly VmentryRule[], r: RawGuest, opts: BreakOptions = {}): Broken | null {
  const bs = rules.map((x) => breakerFor(x.id));
  if (bs.some((b) => !b)) return null;
  const evmcs = bs.some((b) => b!.evmcs);
  const maxPhyAddr = opts.maxPhyAddr ?? 36;
  const d = buildValidGuest(caps, r, { maxPhyAddr, evmcsCheck: evmcs ? (opts.evmcsCheck ?? []) : null, plan: mergePlans(bs.map((b) => b!.plan)), ...(opts.memory ? { memory: opts.memory } : {}) });
  const c = { caps, maxPhyAddr, evmcsCheck: opts.evmcsCheck ?? [] };
  return bs.every((b) => !b!.apply || b!.apply(d, c)) ? { draft: d, evmcs } : null;
}

/** oneCheckBroken(caps, rule): valid states with exactly `rule` broken (null where the capabilities forbid it). */
export const oneCheckBroken = (caps: NestedCaps, rule: VmentryRule, opts: BreakOptions = {}): fc.Arbitrary<Broken | null> => rawGuest.map((r) => breakRules(caps, [rule], r, opts));

const withControls = (allowed1: bigint, vmfunc: bigint) => {
  const m = new Map(DEFAULT_VMX_MSRS);
  for (const i of [MSR.TRUE_PINBASED_CTLS, MSR.TRUE_PROCBASED_CTLS, MSR.TRUE_EXIT_CTLS, MSR.TRUE_ENTRY_CTLS, MSR.PROCBASED_CTLS2]) m.set(i, (allowed1 << 32n) | (m.get(i)! & 0xffff_ffffn));
  m.set(MSR.VMFUNC, vmfunc);
  return m;
};

/**
 * Capability sets under which the breakers reach every reachable rule: KVM's default, one offering
 * every control (so eVMCS steps on bits KVM never offers can be broken), and KVM with EPT A/D bits
 * disabled (enable_ept_ad_bits=0).
 */
export const BREAK_CAPS: Readonly<Record<string, MsrSet>> = {
  'kvm-default': DEFAULT_VMX_MSRS,
  'every-control': withControls(0xffff_ffffn, 0xffff_ffffn),
  'no-ept-ad': new Map([...DEFAULT_VMX_MSRS, [MSR.EPT_VPID_CAP, DEFAULT_VMX_MSRS.get(MSR.EPT_VPID_CAP)! & ~0x20_0000n]]),
};

const ZERO_RAW: RawGuest = { pin: 0, proc: 0, proc2: 0, exit: 0, entry: 0, words: Array(32).fill(0n), ia32e: false, link: false, inject: 0, activity: 0n, segs: Array(16).fill(0n), unrestricted: 0, vm86: false, msrs: [] };

/**
 * The capability sets a target that reports its vCPU's VMX MSRs (real KVM) accepts: its own, and its
 * own without EPT A/D bits (narrower is accepted; wider, as `every-control`, is refused).
 */
export const breakCapsWithin = (own: MsrSet): Readonly<Record<string, MsrSet>> => ({
  target: own,
  'target-no-ept-ad': new Map([...own, [MSR.EPT_VPID_CAP, (own.get(MSR.EPT_VPID_CAP) ?? 0n) & ~0x20_0000n]]),
});

/** The capability sets (names in `table`, BREAK_CAPS by default) under which these rules can be broken (breakers depend on capabilities only). */
export const capsBreaking = (rules: readonly VmentryRule[], opts: BreakOptions = {}, table: Readonly<Record<string, MsrSet>> = BREAK_CAPS): string[] =>
  Object.entries(table)
    .filter(([, m]) => breakRules(nestedCaps(m), rules, ZERO_RAW, opts) !== null)
    .map(([n]) => n);
