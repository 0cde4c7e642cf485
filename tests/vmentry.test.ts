// The VM-entry rule table and its generators: every valid guest passes every rule; every reachable
// rule can be broken alone; the rules no state can break alone are exactly the ones marked so; and
// the facts the table encodes, rule by rule where a profile or the restore path differs.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { capabilitySet } from '../generators/capabilities.js';
import { BREAK_CAPS, capsBreaking, oneCheckBroken } from '../generators/one-broken.js';
import { validGuest } from '../generators/valid-guest.js';
import { PAGES, writeGuestOps } from '../generators/nested.js';
import { encodeBlob } from '../model/nested/blob.js';
import { FLAGS } from '../model/nested/constants.js';
import { setNestedState } from '../model/nested/set.js';
import { applyOp, DEFAULT_VCPU, Vcpu, type GuestOp, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile, PROFILES as ALL_PROFILES, type Profile } from '../model/profiles.js';
import { msrAddressBits, VMENTRY_6_1, VMENTRY_6_12 } from '../model/vmentry/revision.js';
import { msrLoadVmcs12Writes, walkEntryMsrLoad } from '../model/vmentry/msr-load.js';
import { readBytes } from '../model/vmcs12-access.js';
import { nestedCaps } from '../model/vmentry/caps.js';
import { allFailures, firstFailure } from '../model/vmentry/check.js';
import { draftInput, draftPage, type Vmcs12Draft } from '../model/vmentry/draft.js';
import { canonical, patValid } from '../model/vmentry/guest-cpu.js';
import { vmentryRules } from '../model/vmentry/rules.js';
import { ruleTableMarkdown } from '../model/vmentry/rule-table.js';

const P61 = findProfile('linux-6.1')!;
const P612 = findProfile('linux-6.12')!;
const PROFILES = [P61, P612];
const DEFAULT_CAPS = nestedCaps(undefined);

const failures = (p: Profile, d: Vmcs12Draft, mode: 'restore' | 'vmentry', o: { caps?: ReturnType<typeof nestedCaps>; maxPhyAddr?: number; runPending?: boolean; evmcs?: boolean } = {}) =>
  allFailures(vmentryRules(p), draftInput(d, o.caps ?? DEFAULT_CAPS, { maxPhyAddr: o.maxPhyAddr ?? 36, runPending: o.runPending ?? true, evmcsCheck: o.evmcs ? p.evmcs!.check : null }), mode).map((r) => r.id);

const sample = (caps = DEFAULT_CAPS) => fc.sample(validGuest(caps), { numRuns: 1, seed: 7 })[0]!;

describe('the rule table', () => {
  test.each(PROFILES)('$name: ids unique, each with a KVM function and a description', (p) => {
    const rules = vmentryRules(p);
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length);
    for (const r of rules) expect(r.fn.length * r.desc.length).toBeGreaterThan(0);
  });

  test('6.12 differs from 6.1 by the CET/WP rules, the eVMCS primary-controls step and the FREEZE_IN_SMM quirk', () => {
    const a = vmentryRules(P61).map((r) => r.id);
    const b = vmentryRules(P612).map((r) => r.id);
    expect(b.filter((x) => !a.includes(x))).toEqual(['evmcs.exec', 'host.cet-without-wp', 'guest.cet-without-wp']);
    expect(a.filter((x) => !b.includes(x))).toEqual([]);
    expect([a.length, b.length]).toEqual([110, 113]);
    // DEBUGCTL.FREEZE_IN_SMM (bit 14) with load-debug-controls: refused by 6.1, let through by 6.12's quirk
    const d = sample();
    d.fields.set('vm_entry_controls', (d.fields.get('vm_entry_controls')! | 0x4n));
    d.fields.set('guest_ia32_debugctl', 0x4000n);
    expect(failures(P61, d, 'restore')).toEqual(['guest.debugctl']);
    expect(failures(P612, d, 'restore')).toEqual([]);
  });

  test('older profiles share 6.1\'s table (without eVMCS steps where they have no eVMCS model)', () => {
    const ids = (n: string) => vmentryRules(findProfile(n)!).map((r) => r.id);
    expect(ids('linux-4.19')).toEqual(ids('linux-6.1').filter((x) => !x.startsWith('evmcs.')));
  });


  test('the README\'s rule table has a row for every rule of both profiles (tests/readme.test.ts keeps the README\'s copy fresh)', () => {
    const table = ruleTableMarkdown(vmentryRules(P61), vmentryRules(P612));
    for (const r of [...vmentryRules(P61), ...vmentryRules(P612)]) expect(table, r.id).toContain(`| \`${r.id}\` | \`${r.fn}\` |`);
  });

  test('helpers: PAT memory types, canonical addresses', () => {
    expect([patValid(0x0007040600070406n), patValid(0x0007040600070402n), patValid(0x0800000000000000n)]).toEqual([true, false, false]);
    expect([canonical(0x00007fff_ffffffffn), canonical(0xffff8000_00000000n), canonical(0x00008000_00000000n)]).toEqual([true, true, false]);
  });
});

describe('generators against the table', () => {
  test.each(PROFILES)('$name: validGuest passes every rule, on restore and on VMLAUNCH, for generated capability sets', (p) => {
    fc.assert(
      fc.property(
        fc.record({ msrs: fc.option(capabilitySet, { nil: undefined }), maxPhyAddr: fc.constantFrom(36, 40, 52), evmcs: fc.boolean() }).chain((c) =>
          validGuest(nestedCaps(c.msrs), { maxPhyAddr: c.maxPhyAddr, evmcsCheck: c.evmcs ? p.evmcs!.check : null }).map((d) => ({ ...c, d })),
        ),
        ({ msrs, maxPhyAddr, evmcs, d }) => {
          const o = { caps: nestedCaps(msrs), maxPhyAddr, evmcs };
          expect(failures(p, d, 'restore', o)).toEqual([]);
          // a capability set without the host address-space-size control forces a 32-bit host, which a 64-bit L1 cannot enter
          const host64 = (Number(d.fields.get('vm_exit_controls')) & 0x200) !== 0;
          expect(failures(p, d, 'vmentry', o)).toEqual(host64 ? [] : ['host.address-space-size']);
        },
      ),
      { numRuns: 300 },
    );
  });

  test.each(PROFILES)('$name: oneCheckBroken breaks exactly its rule, for every reachable rule and every capability set that allows it', (p) => {
    const opts = { evmcsCheck: p.evmcs!.check };
    for (const rule of vmentryRules(p).filter((r) => !r.unreachable)) {
      const caps = capsBreaking([rule], opts);
      expect(caps.length, rule.id).toBeGreaterThan(0);
      for (const c of caps)
        fc.assert(
          fc.property(oneCheckBroken(nestedCaps(BREAK_CAPS[c]), rule, opts), (b) => {
            expect(b).not.toBeNull();
            expect(failures(p, b!.draft, rule.vmentryOnly ? 'vmentry' : 'restore', { caps: nestedCaps(BREAK_CAPS[c]), evmcs: b!.evmcs })).toEqual([rule.id]);
          }),
          { numRuns: 20 },
        );
    }
  });

  test.each(PROFILES)('$name: the rules marked unreachable are exactly those no capability set lets a state break alone', (p) => {
    const opts = { evmcsCheck: p.evmcs!.check };
    const unbreakable = vmentryRules(p).filter((r) => capsBreaking([r], opts).length === 0).map((r) => r.id);
    expect(unbreakable).toEqual(vmentryRules(p).filter((r) => r.unreachable).map((r) => r.id));
    expect(unbreakable).toEqual(p === P61 ? ['evmcs.exit', 'evmcs.entry'] : ['host.cet-without-wp', 'guest.cet-without-wp']);
  });
});

describe('KVM behaviour the vCPU model takes from the table', () => {
  const vcpu = (p: Profile = P612, config: Partial<VcpuConfig> = {}) => new Vcpu({ ...p, nested: p.nested! }, { ...DEFAULT_VCPU, ...config });
  const run = (v: Vcpu, ops: readonly GuestOp[]) => ops.map((o) => applyOp(v, o));
  const launch = (v: Vcpu, d: Vmcs12Draft) => run(v, [{ op: 'init-vmcs', pa: PAGES.vmxon }, { op: 'vmxon', pa: PAGES.vmxon }, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, ...writeGuestOps(d), { op: 'vmlaunch' }]).at(-1)!;
  const restore = (v: Vcpu, d: Vmcs12Draft, flags = FLAGS.GUEST_MODE | FLAGS.RUN_PENDING) =>
    setNestedState(v, encodeBlob({ flags, vmxonPa: PAGES.vmxon, vmcs12Pa: PAGES.vmcs }, draftPage(d, P612.vmcs12)));
  const noLink = (d: Vmcs12Draft) => (d.fields.set('vmcs_link_pointer', (1n << 64n) - 1n), d);

  test('F3: VMLAUNCH of a current VMCS with the shadow bit in its header is VMfailInvalid, before the launch-state and control checks', () => {
    const v = vcpu();
    const r = run(v, [{ op: 'init-vmcs', pa: PAGES.vmxon }, { op: 'vmxon', pa: PAGES.vmxon }, { op: 'init-vmcs', pa: PAGES.vmcs, shadow: true }, { op: 'vmptrld', pa: PAGES.vmcs }, ...writeGuestOps(noLink(sample())), { op: 'vmlaunch' }]);
    expect(r.at(-1)).toMatchObject({ result: 'VMfailInvalid' });
    expect(v.guestMode).toBe(false);
  });

  test('F9: launch_state is compared with the instruction as a bool: 2 enters by VMLAUNCH and by VMRESUME', () => {
    for (const op of ['vmlaunch', 'vmresume'] as const) {
      const v = vcpu();
      const r = run(v, [{ op: 'init-vmcs', pa: PAGES.vmxon }, { op: 'vmxon', pa: PAGES.vmxon }, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'write-memory', pa: PAGES.vmcs + 8n, value: 2n }, { op: 'vmptrld', pa: PAGES.vmcs }, ...writeGuestOps(noLink(sample())), { op }]);
      expect(r.at(-1)).toMatchObject({ result: 'ok' });
    }
    const v = vcpu();
    const r = run(v, [{ op: 'init-vmcs', pa: PAGES.vmxon }, { op: 'vmxon', pa: PAGES.vmxon }, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, { op: 'vmresume' }]);
    expect(r.at(-1)).toMatchObject({ result: 'VMfailValid', error: 5 });
    // the error lands in vm_instruction_error (F7), where VMREAD sees it
    expect(applyOp(v, { op: 'vmread', field: 0x4400n })).toEqual({ result: 'ok', value: 5n });
  });

  test('a zeroed vmcs12 (the old scenarios) no longer enters L2: the pin-based controls lack their default-1 bits', () => {
    const v = vcpu();
    const r = run(v, [{ op: 'init-vmcs', pa: PAGES.vmxon }, { op: 'vmxon', pa: PAGES.vmxon }, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, { op: 'vmlaunch' }]).at(-1)!;
    expect(r).toMatchObject({ result: 'VMfailValid', error: 7, check: 'ctl.pin' });
    expect(v.guestMode).toBe(false);
  });

  test('a guest-state failure on VMLAUNCH is a VM-exit 0x80000021 with the qualification, the VMCS stays unlaunched', () => {
    const v = vcpu();
    const d = noLink(sample());
    d.fields.set('guest_activity_state', 2n);
    expect(launch(v, d)).toMatchObject({ result: 'vmexit', error: 0x8000_0021, check: 'guest.activity-state' });
    expect([v.guestMode, readBytes(v.vmcs12, 812, 4), readBytes(v.vmcs12, 408, 8), readBytes(v.vmcs12, 8, 4)]).toEqual([false, 0x8000_0021n, 0n, 0n]);
    d.fields.set('guest_activity_state', 0n);
    d.fields.set('vmcs_link_pointer', 0x5800n);
    expect(launch(vcpu(), d)).toMatchObject({ result: 'vmexit', check: 'guest.link-pointer.address' });
  });

  test('host-state failures are VMfailValid 8; the address-space-size check runs on VMLAUNCH only', () => {
    const d = noLink(sample());
    d.fields.set('host_cs_selector', 0n);
    expect(launch(vcpu(), d)).toMatchObject({ result: 'VMfailValid', error: 8, check: 'host.cs-zero' });
    expect(restore(vcpu(), d)).toMatchObject({ ret: -22, rule: 'V14', vmentryCheck: 'host.cs-zero' });
    const h = noLink(sample());
    h.fields.set('vm_exit_controls', h.fields.get('vm_exit_controls')! & ~0x200n);
    h.fields.set('vm_entry_controls', h.fields.get('vm_entry_controls')! & ~0x200n);
    h.fields.set('host_rip', 0x1000n);
    h.fields.set('host_cr4', h.fields.get('host_cr4')! & ~0x2_0000n);
    h.fields.set('guest_ia32_efer', h.fields.get('guest_ia32_efer')! & ~0x500n);
    h.fields.set('host_ia32_efer', h.fields.get('host_ia32_efer')! & ~0x500n);
    expect(launch(vcpu(), h)).toMatchObject({ result: 'VMfailValid', error: 8, check: 'host.address-space-size' });
    expect(restore(vcpu(), h)).toMatchObject({ ret: 0, rule: 'S9' });
  });

  test('restore checks the guest EFER only with RUN_PENDING; prepare_vmcs02\'s CR3 check makes SET return 2', () => {
    const d = noLink(sample());
    d.fields.set('vm_entry_controls', d.fields.get('vm_entry_controls')! | 0x8000n);
    d.fields.set('guest_ia32_efer', d.fields.get('guest_ia32_efer')! | 0x2n);
    expect(restore(vcpu(), d)).toMatchObject({ ret: -22, vmentryCheck: 'guest.efer.reserved' });
    expect(restore(vcpu(), d, FLAGS.GUEST_MODE)).toMatchObject({ ret: 0, rule: 'S9' });
    const c = noLink(sample());
    c.fields.set('guest_cr3', 1n << 40n);
    expect(restore(vcpu(), c)).toMatchObject({ ret: 2, rule: 'S8', quirks: expect.arrayContaining(['S8_POSITIVE_RETURN_2']) });
  });

  test('the capability set is the vCPU\'s: a control KVM\'s default offers fails with vmxMsrs that do not', () => {
    const d = noLink(sample());
    d.fields.set('pin_based_vm_exec_control', d.fields.get('pin_based_vm_exec_control')! | 0x40n);
    expect(restore(vcpu(), d).ret).toBe(0);
    const msrs = new Map([[0x48d, 0x0000_003f_0000_0016n]]);
    expect(restore(vcpu(P612, { vmxMsrs: msrs }), d)).toMatchObject({ ret: -22, vmentryCheck: 'ctl.pin' });
  });

  test('eVMCS in use: its control check runs after the generic control checks', () => {
    const d = noLink(sample());
    d.fields.set('pin_based_vm_exec_control', d.fields.get('pin_based_vm_exec_control')! | 0x40n);
    expect(restore(vcpu(P612, { hypervCpuid: true, evmcsEnabled: true }), d)).toMatchObject({ ret: -22, vmentryCheck: 'evmcs.pin' });
    d.fields.set('cr3_target_count', 1n);
    expect(restore(vcpu(P612, { hypervCpuid: true, evmcsEnabled: true }), d)).toMatchObject({ ret: -22, vmentryCheck: 'ctl.cr3-target-count' });
  });

  test('first failure decides: table order', () => {
    const d = noLink(sample());
    d.fields.set('guest_activity_state', 2n);
    d.fields.set('host_tr_selector', 0n);
    d.fields.set('cr3_target_count', 9n);
    const r = firstFailure(vmentryRules(P612), draftInput(d, DEFAULT_CAPS, { maxPhyAddr: 36, runPending: true, evmcsCheck: null }), 'vmentry');
    expect(r?.id).toBe('ctl.cr3-target-count');
  });
});

describe('the rule table comes from profile data, never from a profile name (issue 12 item 7)', () => {
  const ids = (p: Pick<Profile, 'vmentry' | 'evmcs'>) => vmentryRules(p).map((r) => r.id);

  test('every profile names its VM-entry revision; those whose kernel was not read say so and take 6.1\'s', () => {
    for (const p of ALL_PROFILES) {
      expect(['linux-6.1', 'linux-6.12'], p.name).toContain(p.vmentry.revision);
      if (p.name === p.vmentry.revision) expect(p.vmentry.assumed, p.name).toBeUndefined();
      else expect([p.vmentry, p.vmentry.assumed?.length]).toEqual([{ ...VMENTRY_6_1, assumed: expect.any(String) }, expect.any(Number)]);
    }
    expect([P61.vmentry, P612.vmentry]).toEqual([VMENTRY_6_1, VMENTRY_6_12]);
  });

  test('a profile named linux-6.12 with 6.1\'s data gets 6.1\'s rules, and a new profile with 6.12\'s data gets 6.12\'s', () => {
    expect(ids({ ...P612, vmentry: VMENTRY_6_1 })).toEqual(ids(P612).filter((x) => !x.endsWith('cet-without-wp')));
    const newer = { ...P61, name: 'linux-9.9', kernel: [9, 9] as const, evmcs: P612.evmcs, vmentry: VMENTRY_6_12 };
    expect(ids(newer)).toEqual(ids(P612));
    // FREEZE_IN_SMM follows the data too
    const d = sample();
    d.fields.set('vm_entry_controls', d.fields.get('vm_entry_controls')! | 0x4n);
    d.fields.set('guest_ia32_debugctl', 0x4000n);
    const check = (p: Pick<Profile, 'vmentry' | 'evmcs'>) => allFailures(vmentryRules(p), draftInput(d, DEFAULT_CAPS, { maxPhyAddr: 36, runPending: true, evmcsCheck: null }), 'restore').map((r) => r.id);
    expect([check({ ...P612, vmentry: VMENTRY_6_1 }), check(newer)]).toEqual([['guest.debugctl'], []]);
  });

  test('the canonical width of the MSR and base checks: 6.12 the host\'s paging depth, 6.1 L1\'s (fidelity-audit F13)', () => {
    expect([msrAddressBits(VMENTRY_6_12, true, 48), msrAddressBits(VMENTRY_6_12, false, 48), msrAddressBits(VMENTRY_6_1, true, 48), msrAddressBits(VMENTRY_6_1, false, 57)]).toEqual([57, 48, 48, 57]);
  });
});

describe('F13: host IA32_SYSENTER_ESP = 0x0000800000000000 (canonical with 57 bits, not with 48), VMLAUNCH and restore', () => {
  const vcpu = (p: Profile, config: Partial<VcpuConfig> = {}) => new Vcpu({ ...p, nested: p.nested! }, { ...DEFAULT_VCPU, ...config });
  const LA57_ONLY = 0x0000_8000_0000_0000n;
  const launch = (v: Vcpu, d: Vmcs12Draft) =>
    [{ op: 'init-vmcs', pa: PAGES.vmxon }, { op: 'vmxon', pa: PAGES.vmxon }, { op: 'init-vmcs', pa: PAGES.vmcs }, { op: 'vmptrld', pa: PAGES.vmcs }, ...writeGuestOps(d), { op: 'vmlaunch' }].map((o) => applyOp(v, o as GuestOp)).at(-1)!;
  const restore = (v: Vcpu, d: Vmcs12Draft) => setNestedState(v, encodeBlob({ flags: FLAGS.GUEST_MODE | FLAGS.RUN_PENDING, vmxonPa: PAGES.vmxon, vmcs12Pa: PAGES.vmcs }, draftPage(d, P612.vmcs12)));
  const guest = (member: string, value: bigint) => {
    const d = sample();
    d.fields.set('vmcs_link_pointer', (1n << 64n) - 1n);
    d.fields.set(member, value);
    return d;
  };

  test.each([
    ['host_ia32_sysenter_esp', 'host.sysenter-esp'],
    ['host_ia32_sysenter_eip', 'host.sysenter-eip'],
    ['host_gs_base', 'host.base-canonical'],
  ])('%s: 6.12 on a host with 5-level paging accepts it; 6.12 without, and 6.1 either way (L1 has no CR4.LA57), refuse it with %s', (member, rule) => {
    const d = guest(member, LA57_ONLY);
    expect(launch(vcpu(P612, { hostLa57: true }), d)).toEqual({ result: 'ok' });
    expect(restore(vcpu(P612, { hostLa57: true }), d)).toMatchObject({ ret: 0 });
    for (const v of [vcpu(P612), vcpu(P61, { hostLa57: true }), vcpu(P61)]) {
      expect(launch(v, d)).toMatchObject({ result: 'VMfailValid', error: 8, check: rule });
      expect(restore(vcpu(v.profile, v.config), d)).toMatchObject({ ret: -22, rule: 'V14', vmentryCheck: rule });
    }
  });

  test('host RIP is checked with L1\'s width on both kernels, whatever the host', () => {
    expect(launch(vcpu(P612, { hostLa57: true }), guest('host_rip', LA57_ONLY))).toMatchObject({ result: 'VMfailValid', check: 'host.rip-canonical' });
  });

  test("the MSR-load list's KERNEL_GS_BASE write and SYSENTER_ESP canonicalisation take the same width", () => {
    const d = sample();
    d.fields.set('vm_entry_msr_load_count', 2n);
    d.fields.set('vm_entry_msr_load_addr', 0x6000n);
    d.msrLoad = [{ index: 0x175, value: 0x00ff_8000_0000_1000n }, { index: 0xc000_0102, value: LA57_ONLY }];
    const walk = (bits: number) => walkEntryMsrLoad(draftInput(d, DEFAULT_CAPS, { maxPhyAddr: 36, runPending: true, evmcsCheck: null, msrAddressBits: bits }));
    expect(walk(48).failed).toEqual({ index: 1, why: 'write' });
    expect([walk(57).failed, walk(57).written.map((e) => e.index)]).toEqual([null, [0x175, 0xc000_0102]]);
    const esp = (bits: number) => msrLoadVmcs12Writes(draftInput(d, DEFAULT_CAPS, { maxPhyAddr: 36, runPending: true, evmcsCheck: null, msrAddressBits: bits }))[0];
    expect([esp(48), esp(57)]).toEqual([{ member: 'guest_sysenter_esp', value: 0xffff_8000_0000_1000n }, { member: 'guest_sysenter_esp', value: 0x00ff_8000_0000_1000n }]);
  });
});
