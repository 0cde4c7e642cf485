// KVM's VM-entry consistency checks through a target: valid vmcs12 states (built for the vCPU's
// capability set) enter L2; a state with one rule broken fails VMLAUNCH with that rule's outcome and
// KVM_SET_NESTED_STATE with -EINVAL at V14 naming it (or 2 at S8 for prepare_vmcs02's check); with two
// rules broken the one KVM checks first is reported; and an L2 entered from a valid state round-trips.
import fc from 'fast-check';
import { encodingOf, VMCS12 } from '../model/catalog/by-name.js';
import { BIT } from '../model/vmentry/bits.js';
import { encodeBlob } from '../model/nested/blob.js';
import { FLAGS } from '../model/nested/constants.js';
import { DEFAULT_VCPU, type GuestOp, type OpResult, type VcpuConfig } from '../model/nested/vcpu.js';
import { nestedCaps } from '../model/vmentry/caps.js';
import { allFailures, entryOutcome } from '../model/vmentry/check.js';
import { draftInput, draftPage, linkHeader, type Vmcs12Draft } from '../model/vmentry/draft.js';
import { vmentryRules, type VmentryRule } from '../model/vmentry/rules.js';
import { MSR, type MsrSet } from '../model/vmx-msrs.js';
import { capabilitySet, capabilitySetWithin, mostlyHost64 } from '../generators/capabilities.js';
import { PAGES, VMXON, writeGuestOps } from '../generators/nested.js';
import { BREAK_CAPS, breakCapsWithin, breakRules, capsBreaking, type Broken } from '../generators/one-broken.js';
import { rawGuest, validGuest } from '../generators/valid-guest.js';
import { profileOf } from '../harness/common.js';
import { must, Violation, type PropertyContext, type PropertyDef } from '../harness/property.js';
import { afterRestore, destinationOf, diffBlobs, getFull, reach, restoredL2Registers, restoreMpState, saveMpState, withoutTimerValueAtGet } from '../harness/nested-common.js';

const L1: readonly GuestOp[] = [...VMXON, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }];
const launchOps = (d: Vmcs12Draft): GuestOp[] => [...L1, ...writeGuestOps(d), { op: 'vmlaunch' }];

/** A vCPU as a VMM configures one for these checks: its capability MSRs, MAXPHYADDR, eVMCS on or off. */
const configFor = (msrs: MsrSet | undefined, maxPhyAddr: number, evmcs: boolean): VcpuConfig => ({
  ...DEFAULT_VCPU,
  maxPhyAddr,
  ...(msrs ? { vmxMsrs: msrs } : {}),
  ...(evmcs ? { hypervCpuid: true, evmcsEnabled: true } : {}),
});

/**
 * The vCPU's VMX MSRs: KVM's default (none restored) or a generated KVM-shaped set. A target that
 * reports its vCPU's MSRs gets them said explicitly (its defaults are not the model's) or a set
 * inside them, since it refuses wider ones from a VMM.
 */
const vcpuCapabilities = (ctx: PropertyContext): fc.Arbitrary<MsrSet | undefined> => {
  const own = ctx.target.vmxMsrs;
  const ownHost64 = own !== undefined && (((own.get(MSR.TRUE_EXIT_CTLS) ?? own.get(MSR.EXIT_CTLS) ?? 0n) >> 32n) & 0x200n) !== 0n;
  return own ? fc.oneof(fc.constant(own), mostlyHost64(capabilitySetWithin(own), ownHost64)) : fc.option(mostlyHost64(capabilitySet), { nil: undefined });
};

/** Capabilities, MAXPHYADDR, eVMCS, and a guest valid for them. */
const validCase = (ctx: PropertyContext) => {
  const evmcsCheck = profileOf(ctx.target).evmcs?.check ?? null;
  return fc
    .record({ msrs: vcpuCapabilities(ctx), maxPhyAddr: fc.constantFrom(36, 39, 46, 52), evmcs: evmcsCheck ? fc.boolean() : fc.constant(false) })
    .chain(({ msrs, maxPhyAddr, evmcs }) =>
      validGuest(nestedCaps(msrs), { maxPhyAddr, evmcsCheck: evmcs ? evmcsCheck : null, ...memoryOf(ctx) }).map((d) => ({ config: configFor(msrs, maxPhyAddr, evmcs), draft: d })),
    );
};

/** A target with an end to its guest memory gets states whose addresses lie inside it. */
const memoryOf = (ctx: PropertyContext) => (ctx.target.guestMemory ? { memory: ctx.target.guestMemory } : {});

const draftExit = (d: Vmcs12Draft) => Number(d.fields.get('vm_exit_controls') ?? 0n);
const show = (r: OpResult) => `${r.result}${'error' in r && r.error !== undefined ? ` ${r.error}` : ''}${'check' in r && r.check ? ` (${r.check})` : ''}`;
/** A real kernel does not name the check that failed (as its SET rule is ""): then the outcome alone is compared. */
const namesCheck = (r: OpResult) => 'check' in r && r.check !== undefined && r.check !== '';

export const validGuestEnters: PropertyDef = {
  id: 'vmentry.valid-guest-enters',
  description: 'Builds a vmcs12 from random choices within a generated capability set so that every modelled VM-entry check holds, writes it with VMWRITE and runs VMLAUNCH on the target.',
  invariant: 'a vmcs12 built to pass every VM-entry check for the vCPU capability set enters L2 on VMLAUNCH (a 32-bit host, where the capabilities force one, fails only the address-space-size check)',
  groups: ['nested-state'],
  runs: 100,
  async build(ctx) {
    return fc.asyncProperty(validCase(ctx), async ({ config, draft }) => {
      const src = await reach(ctx, config, launchOps(draft));
      const r = src.results.at(-1)!;
      const host64 = (draftExit(draft) & BIT.exit.hostAddrSpace) !== 0;
      const want = host64 ? 'ok' : `VMfailValid 8${namesCheck(r) ? ' (host.address-space-size)' : ''}`;
      if (show(r) !== want) throw new Violation(`VMLAUNCH of a valid guest answered ${show(r)}${'reason' in r ? `: ${r.reason}` : ''}`, [{ field: 'VMLAUNCH', offset: -1, expected: want, actual: show(r) }]);
    });
  },
};

/** The capability sets breakers may use: the model's, or for a target that reports its vCPU's VMX MSRs, sets within them. */
const breakCaps = (ctx: PropertyContext) => (ctx.target.vmxMsrs ? breakCapsWithin(ctx.target.vmxMsrs) : BREAK_CAPS);
/** The capability set of a two-rule case: KVM's default, or the target's own. */
const pairCaps = (ctx: PropertyContext) => (ctx.target.vmxMsrs ? 'target' : 'kvm-default');

/** Rules a state can break alone, each with the capability sets that let it. */
function breakableRules(ctx: PropertyContext): [VmentryRule, string[]][] {
  const p = profileOf(ctx.target);
  const opts = { evmcsCheck: p.evmcs?.check ?? [] };
  return vmentryRules(p)
    .filter((r) => !r.unreachable && (p.evmcs || !r.id.startsWith('evmcs.')))
    .map((r): [VmentryRule, string[]] => [r, capsBreaking([r], opts, breakCaps(ctx))])
    .filter(([, caps]) => caps.length > 0);
}

/** The blob of an L2 in guest mode (run pending) with this vmcs12, a shadow vmcs12 where VMCS shadowing needs one. */
function guestModeBlob(d: Vmcs12Draft, page: Uint8Array): Uint8Array {
  const proc = d.fields.get('cpu_based_vm_exec_control') ?? 0n;
  const proc2 = d.fields.get('secondary_vm_exec_control') ?? 0n;
  const shadow = (proc & BigInt(BIT.proc.secondary)) !== 0n && (proc2 & BigInt(BIT.proc2.shadowVmcs)) !== 0n && d.fields.get('vmcs_link_pointer') !== (1n << 64n) - 1n;
  const shadowPage = new Uint8Array(4096);
  VMCS12.write(shadowPage, 'hdr', linkHeader(true));
  return encodeBlob({ flags: FLAGS.GUEST_MODE | FLAGS.RUN_PENDING, vmxonPa: PAGES.vmxon, vmcs12Pa: PAGES.vmcs }, page, shadow ? shadowPage : null);
}

/** The destination's guest memory for a draft: the linked VMCS header and PDPTEs, written before SET. */
const memoryOps = (d: Vmcs12Draft): GuestOp[] => writeGuestOps(d).filter((o) => o.op === 'write-memory');

async function expectEntryFails(ctx: PropertyContext, b: Broken, rule: VmentryRule, config: VcpuConfig): Promise<void> {
  const src = await reach(ctx, config, launchOps(b.draft));
  const r = src.results.at(-1)!;
  // a 64-bit L1 cannot VMLAUNCH into a 32-bit host: rules of 32-bit hosts show on restore only
  const host32 = ((draftExit(b.draft) & BIT.exit.hostAddrSpace) === 0 && rule.id !== 'host.address-space-size') || undefined;
  // the MSR-load breakers put the refused entry last: its index + 1 is the list's count
  const qualification = rule.stage === 'msr-load' ? Number(b.draft.fields.get('vm_entry_msr_load_count') ?? 0n) : (rule.qualification ?? 0);
  const o = host32 ? ({ kind: 'VMfailValid', error: 8 } as const) : entryOutcome(rule, qualification);
  const shown = host32 ? 'host.address-space-size' : rule.id;
  const named = namesCheck(r) ? ` (${shown})` : '';
  const want = o.kind === 'VMfailValid' ? `VMfailValid ${o.error}${named}` : `vmexit ${o.exitReason}${named}`;
  if (show(r) !== want) throw new Violation(`VMLAUNCH with ${rule.id} broken answered ${show(r)}`, [{ field: 'VMLAUNCH', offset: -1, expected: want, actual: show(r) }]);
  if (o.kind === 'vmexit') {
    const qual = must(await ctx.target.guestOp(src.vcpu, { op: 'vmread', field: encodingOf('exit_qualification') }));
    if (qual.result !== 'ok' || qual.value !== BigInt(o.qualification))
      throw new Violation(`the entry-failure VM-exit for ${rule.id} carries exit qualification ${show(qual)} ${qual.result === 'ok' ? qual.value : ''}`, [{ field: 'exit_qualification', offset: VMCS12.offset('exit_qualification'), expected: String(o.qualification), actual: qual.result === 'ok' ? String(qual.value) : show(qual) }]);
  }
}

async function expectRestoreFails(ctx: PropertyContext, b: Broken, rule: VmentryRule, config: VcpuConfig): Promise<void> {
  const dst = must(await ctx.target.createVcpu(config));
  for (const o of memoryOps(b.draft)) must(await ctx.target.guestOp(dst, o));
  const s = must(await ctx.target.setNestedState(dst, guestModeBlob(b.draft, draftPage(b.draft, profileOf(ctx.target).vmcs12))));
  const [ret, where] = rule.vmentryOnly ? [0, 'S9'] : rule.stage === 'prepare' ? [2, 'S8'] : [-22, `V14 ${rule.id}`];
  // a real kernel does not say which rule refused (its rule is ""): then the answer alone is compared
  const want = s.rule === '' ? `${ret}` : `${ret} ${where}`;
  const got = s.rule === '' ? `${s.ret}` : `${s.ret} ${s.rule}${s.rule === 'V14' ? ` ${s.vmentryCheck ?? '?'}` : ''}`;
  if (got !== want) throw new Violation(`SET of an L2 with ${rule.id} broken answered ${got}`, [{ field: 'SET', offset: -1, expected: want, actual: got }]);
}

export const oneBrokenFailsWithItsRule: PropertyDef = {
  id: 'vmentry.one-broken-fails-with-its-rule',
  description: "Takes a valid guest, breaks exactly one named VM-entry rule with that rule's breaker, and compares VMLAUNCH and a guest-mode SET against the rule's outcome.",
  invariant: 'a valid vmcs12 with exactly one rule broken fails VMLAUNCH with that rule (a 32-bit host fails host.address-space-size first: L1 is 64-bit; VMfailValid 7 controls, 8 host state, else an entry-failure VM-exit: 0x80000021 with the rule\'s exit qualification, or 0x80000022 with the refused MSR-load entry\'s index + 1) and SET in guest mode with -EINVAL at V14 naming it (2 at S8 for prepare_vmcs02; a VMLAUNCH-only rule passes SET)',
  groups: ['nested-state'],
  runs: 300,
  async build(ctx) {
    const p = profileOf(ctx.target);
    const rules = breakableRules(ctx);
    const arb = fc.constantFrom(...rules).chain(([rule, caps]) =>
      fc.tuple(fc.constant(rule), fc.constantFrom(...caps), fc.constantFrom(36, 46), rawGuest).map(([rule, capsName, maxPhyAddr, r]) => {
        const msrs = breakCaps(ctx)[capsName]!;
        return { rule, broken: breakRules(nestedCaps(msrs), [rule], r, { maxPhyAddr, evmcsCheck: p.evmcs?.check ?? [], ...memoryOf(ctx) })!, config: (b: boolean) => configFor(msrs, maxPhyAddr, b) };
      }),
    );
    return fc.asyncProperty(arb, async ({ rule, broken, config }) => {
      await expectEntryFails(ctx, broken, rule, config(broken.evmcs));
      await expectRestoreFails(ctx, broken, rule, config(broken.evmcs));
    });
  },
};

export const checkOrder: PropertyDef = {
  id: 'vmentry.check-order',
  description: "Breaks two rules of a valid guest and checks that VMLAUNCH names the one earlier in KVM's check order.",
  invariant: 'with two rules broken, VMLAUNCH reports the one KVM checks first (controls, then host state, then guest state, each in KVM\'s order)',
  groups: ['nested-state'],
  runs: 200,
  async build(ctx) {
    const p = profileOf(ctx.target);
    const table = vmentryRules(p);
    const rules = breakableRules(ctx).map(([r]) => r);
    const opts = { evmcsCheck: p.evmcs?.check ?? [], ...memoryOf(ctx) };
    const caps = breakCaps(ctx);
    const pair = fc.tuple(fc.constantFrom(...rules), fc.constantFrom(...rules)).filter(([a, b]) => table.indexOf(a) < table.indexOf(b) && capsBreaking([a, b], opts, caps).includes(pairCaps(ctx)));
    return fc.asyncProperty(pair, rawGuest, async ([a, b], r) => {
      const msrs = caps[pairCaps(ctx)]!;
      const broken = breakRules(nestedCaps(msrs), [a, b], r, opts);
      // merged plans can mend or add breakage: keep the cases that break exactly these two (see the generator tests)
      fc.pre(broken !== null && breaksExactly(ctx, broken, [a, b], msrs));
      if (!broken) return;
      const src = await reach(ctx, configFor(ctx.target.vmxMsrs ? msrs : undefined, 36, broken.evmcs), launchOps(broken.draft));
      const res = src.results.at(-1)!;
      if (!namesCheck(res)) {
        // a target that does not name the check: the order shows where the two outcomes differ
        const [oa, ob] = [entryOutcome(a), entryOutcome(b)];
        const text = (o: typeof oa) => (o.kind === 'VMfailValid' ? `VMfailValid ${o.error}` : `vmexit ${o.exitReason}`);
        fc.pre(text(oa) !== text(ob));
        if (show(res) !== text(oa)) throw new Violation(`with ${a.id} and ${b.id} broken, VMLAUNCH answered ${show(res)}, the outcome of ${text(ob) === show(res) ? b.id : 'neither'}`, [{ field: 'first failing check', offset: -1, expected: `${a.id}: ${text(oa)}`, actual: show(res) }]);
        return;
      }
      const got = 'check' in res ? res.check : undefined;
      if (got !== a.id) throw new Violation(`with ${a.id} and ${b.id} broken, VMLAUNCH reported ${got ?? show(res)}`, [{ field: 'first failing check', offset: -1, expected: a.id, actual: got ?? show(res) }]);
    });
  },
};

/** Oracle for the pair: the rule table's own evaluation of the state (the generator is checked against it in tests). */
function breaksExactly(ctx: PropertyContext, b: Broken, rules: readonly VmentryRule[], msrs: MsrSet): boolean {
  const p = profileOf(ctx.target);
  const f = allFailures(vmentryRules(p), draftInput(b.draft, nestedCaps(msrs), { maxPhyAddr: 36, runPending: true, evmcsCheck: b.evmcs ? (p.evmcs?.check ?? []) : null }), 'vmentry');
  return f.length === rules.length && rules.every((r) => f.includes(r));
}

export const validGuestRoundTrip: PropertyDef = {
  id: 'vmentry.restore-round-trip',
  description: 'Enters L2 from a valid guest, saves with GET, restores on a fresh vCPU with the guest memory and compares GET again.',
  invariant: 'an L2 entered from a valid vmcs12 (run pending or after KVM_RUN) is saved and restored: SET(GET(s)) succeeds on a destination with the guest memory migrated and the run state restored after it (KVM_SET_MP_STATE), and GET again is byte-identical after the documented normalisation (vmcs12 bytes past 998 come back zero; an L2 whose restore does not load DR7 or EFER from vmcs12 shows those of the destination vCPU, L2_REGISTERS_FROM_DESTINATION; a preemption-timer value GET took from the clock is not compared, PREEMPTION_TIMER_VALUE_AT_GET)',
  groups: ['nested-state'],
  runs: 100,
  async build(ctx) {
    return fc.asyncProperty(validCase(ctx), fc.boolean(), async ({ config, draft }, ran) => {
      fc.pre((draftExit(draft) & BIT.exit.hostAddrSpace) !== 0); // VMLAUNCH needs a 64-bit host (vmentry.valid-guest-enters covers the rest)
      const src = await reach(ctx, config, [...launchOps(draft), ...(ran ? [{ op: 'run' } as const] : [])]);
      const b1 = await getFull(ctx, src.vcpu);
      const mp = await saveMpState(ctx, src.vcpu);
      const dst = await destinationOf(ctx, src);
      const s = must(await ctx.target.setNestedState(dst, b1));
      if (s.ret !== 0) throw new Violation(`SET of a valid L2 failed: ${s.ret} at ${s.rule}${s.vmentryCheck ? ` (${s.vmentryCheck})` : ''}`, [{ field: 'SET', offset: -1, expected: '0', actual: `${s.ret} ${s.rule} ${s.vmentryCheck ?? ''}` }]);
      await restoreMpState(ctx, dst, mp);
      const b2 = await getFull(ctx, dst);
      const d = diffBlobs(withoutTimerValueAtGet(restoredL2Registers(afterRestore(b1))), withoutTimerValueAtGet(b2));
      if (d.length) throw new Violation(`GET after SET(GET(s)) differs in ${d.length} place(s)`, d);
    });
  },
};

export const vmentryChecksSuite: readonly PropertyDef[] = [validGuestEnters, oneBrokenFailsWithItsRule, checkOrder];
