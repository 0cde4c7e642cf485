// Every property must be able to fail. Each gets a deliberately broken model function (a mutant):
// a realistic one-line bug, planted in the model source where it can be, else a wrapper around the
// function's answer. The property catches it with a shrunk, non-empty counterexample whose replay
// reproduces it (tests/expect-caught.ts states that rule once for every test that plants a bug).
import { describe, expect, test } from 'vitest';
import { codecFor, decode as realDecode } from '../model/codec.js';
import { diffLayouts } from '../model/layout-diff.js';
import { layoutFromCatalog } from '../model/layout.js';
import { VMCS12_FIELDS, VMCS12_MEMBERS } from '../model/catalog/vmcs12.js';
import { member } from '../model/catalog/types.js';
import { readBytes, vmwrite, writeBytes } from '../model/vmcs12-access.js';
import { failedControlRule, filterFactsFor, filterMsr } from '../model/evmcs-filter.js';
import { ok } from '../targets/target.js';
import { copyEnlightenedToVmcs12, copyVmcs12ToEnlightened } from '../model/evmcs.js';
import { EVMCS_MEMBERS } from '../model/catalog/evmcs.js';
import { evmcsCheckControls, filterVmxMsr } from '../model/vmx-msrs.js';
import { getNestedState } from '../model/nested/get.js';
import { OFFSET, VMCS12_STRUCT_SIZE } from '../model/nested/constants.js';
import { setNestedState } from '../model/nested/set.js';
import { vmmLoad, vmmSave, type StreamCodec } from '../model/vmm/reference.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { applyOp, DEFAULT_HOOKS } from '../model/nested/vcpu.js';
import { checkInput, vmentryChecksWith } from '../model/nested/vmentry-hook.js';
import { View } from '../model/vmentry/input.js';
import { allFailures } from '../model/vmentry/check.js';
import { vmentryRules } from '../model/vmentry/rules.js';
import { runProperty } from '../harness/runner.js';
import { MODEL_DEPS, type ModelDeps } from '../harness/model-deps.js';
import { referenceTarget, type ReferenceModel } from '../targets/reference.js';
import { DIFFERENTIAL_MUTANTS, mutantTarget, withPlanted, type Mutant } from './mutant-targets.js';
import { expectCaught, expectMissingBugCaught } from './expect-caught.js';

/** The profile's eVMCS filter facts, served as a target would; `bug` breaks one answer. */
function filterTarget(bug: { ebx?: number; rule?: (r: string | null) => string | null }): Mutant['offers'] {
  const facts = filterFactsFor('linux-6.12')!;
  return {
    group: 'msr-filter',
    ops: {
      filterVmxMsrs: async (msrs, ebx) => ok(msrs.map((m) => filterMsr(facts, m.index, m.value, bug.ebx ?? ebx))),
      evmcsCheckControls: async (page) => {
        const fields = new Map(facts.checks.map((c) => { const m = VMCS12_MEMBERS.find((x) => x.name === c.field)!; return [c.field, readBytes(page, m.offset, m.size)]; }));
        const rule = (bug.rule ?? ((r) => r))(failedControlRule(facts, fields));
        return ok(rule === null ? { ok: true } : { ok: false, errno: 'EINVAL', rule });
      },
    },
  };
}

/** A one-line bug in vcpu.ts where applyOp reaches it (its switch or a function it calls; not a Vcpu method: a vCPU keeps the real class's). */
const inApplyOp = (line: string, bug: string): NonNullable<Mutant['planted']> => ({ file: 'nested/vcpu.ts', line, bug, use: (m) => ({ model: { applyOp: m.applyOp as ReferenceModel['applyOp'] } }) });

/** A nested VM-exit that leaves vm_entry_intr_info_field as it was (the VALID bit included). */
const exitKeepsInjection: ReferenceModel['applyOp'] = (v, o) => {
  const at = VMCS12_MEMBERS.find((x) => x.name === 'vm_entry_intr_info_field')!.offset;
  const info = readBytes(v.vmcs12, at, 4);
  const r = applyOp(v, o);
  if (o.op === 'vmexit' && r.result === 'ok') writeBytes(v.vmcs12, at, 4, info);
  return r;
};

/** A consumer that takes any revision's page as its own layout's: no translation. */
const memcpyReadPage: ReferenceModel['readPage'] = (set, page) => ({ ok: true, revision: 0, translatedFrom: null, record: realDecode(codecFor(set.current), page) });

const MUTANTS: Mutant[] = [
  {
    property: 'vmcs12.codec.round-trip',
    what: 'decode drops the high word of 64-bit members',
    deps: {
      decode: (c, p) => {
        const r = realDecode(c, p);
        c.slots.forEach((s, i) => s.member === 'guest_rip' && (r.hi[i] = 0));
        return r;
      },
    },
  },
  {
    property: 'vmcs12.access.write-read',
    what: 'a _HIGH write stores a full 64-bit value',
    model: { vmwrite: (t, p, e, v) => vmwrite(t, p, e & 1n ? e & ~1n : e, e & 1n ? v << 32n : v) },
  },
  {
    property: 'layout.diff.matches-construction',
    what: 'the reader check compares offsets only: a resized member reads as intact',
    planted: { file: 'layout-diff.ts', line: 'if (w.offset !== r.offset || w.size !== r.size)', bug: 'if (w.offset !== r.offset)', use: (m) => ({ deps: { diffLayouts: m.diffLayouts as ModelDeps['diffLayouts'] } }) },
  },
  {
    property: 'layout.diff.never-misses-corruption',
    what: 'the diff only looks at member names, not offsets',
    deps: { diffLayouts: (o, n) => { const d = diffLayouts(o, n); return { ...d, newReadsOld: { ...d.newReadsOld, corrupted: d.newReadsOld.corrupted.filter((c) => !c.reason.includes('wrote it at')) } }; } },
  },
  {
    property: 'layout.matches-profile',
    what: 'the target moved guest_rip into padding',
    model: {
      vmcs12Layout: () =>
        layoutFromCatalog(
          { structure: 'vmcs12', name: 'moved', revision: 0x11e57ed0, size: 4096 },
          VMCS12_MEMBERS.map((m) => (m.name === 'guest_rip' ? member('guest_rip', 936, 'natural') : m.name === 'padding32' ? member('padding32', 944, 'u32', { count: 4, padding: true }) : m)),
          VMCS12_FIELDS,
        ),
    },
  },
  {
    property: 'vmcs12.access.matches-profile',
    what: 'a 16-bit VMWRITE lands in the 32-bit field of the same index',
    model: { vmwrite: (t, p, e, v) => (e >> 13n === 0n && !(e & 1n) && t.slots.has(Number(e)) ? vmwrite(t, p, e | 0x4000n, v) : vmwrite(t, p, e, v)) },
  },
  {
    property: 'msr-filter.filter.matches-profile',
    what: 'the filter ignores the Hyper-V PERF_GLOBAL_CTRL CPUID bit',
    offers: filterTarget({ ebx: 1 }),
  },
  {
    property: 'msr-filter.check-controls.matches-profile',
    what: 'the control check never looks at the secondary controls',
    offers: filterTarget({ rule: (r) => (r === 'secondary_vm_exec_control' ? null : r) }),
  },
  {
    property: 'vmcs12.revisions.old-readable',
    what: 'the consumer memcpys an old-revision page instead of translating it',
    model: { readPage: memcpyReadPage },
  },
  {
    property: 'evmcs.sync.round-trip',
    what: 'vmcs12 -> eVMCS forgets guest_rflags',
    model: {
      copyVmcs12ToEnlightened: (v, e) => {
        const out = copyVmcs12ToEnlightened(v, e);
        writeBytes(out, EVMCS_MEMBERS.find((m) => m.name === 'guest_rflags')!.offset, 8, 0n);
        return out;
      },
    },
  },
  {
    property: 'evmcs.sync.clean-groups-kept',
    what: 'eVMCS -> vmcs12 ignores the clean-fields mask',
    model: { copyEnlightenedToVmcs12: (e, v, _mask, o) => copyEnlightenedToVmcs12(e, v, 0, o) },
  },
  {
    property: 'msr.filter.only-narrows',
    what: 'the filter advertises the preemption timer it should hide',
    model: { filterVmxMsr: (rules, i, v, ebx) => (i === 0x481 ? filterVmxMsr(rules, i, v, ebx) | (1n << 38n) : filterVmxMsr(rules, i, v, ebx)) },
  },
  {
    property: 'msr.filter.monotone-in-cpuid',
    what: 'the PERF_GLOBAL_CTRL CPUID bit is read upside down',
    model: { filterVmxMsr: (rules, i, v, ebx) => filterVmxMsr(rules, i, v, ebx ^ 1) },
  },
  {
    property: 'msr.filter.distributes-over-meet',
    what: 'the filter hides EPT only when VPID is offered too',
    model: {
      filterVmxMsr: (rules, i, v, ebx) => {
        const f = filterVmxMsr(rules, i, v, ebx);
        return i === 0x48b && f & (1n << 37n) ? f & ~(1n << 33n) : f;
      },
    },
  },
  {
    property: 'nested.round-trip',
    what: 'SET forgets RUN_PENDING',
    model: {
      setNestedState: (v, b) => {
        const r = setNestedState(v, b);
        v.nestedRunPending = false;
        return r;
      },
    },
  },
  {
    property: 'nested.evmcs-flag-when-active',
    what: 'GET sets the EVMCS flag whenever the capability is enabled (the 4.20 meaning on a 6.12 kernel)',
    model: {
      getNestedState: (v, n) => {
        const r = getNestedState(v, n);
        if (v.evmcsEnabled && v.nestedAllowed() && r.buffer.length >= 2) r.buffer[0] = r.buffer[0]! | 4;
        return r;
      },
    },
  },
  {
    property: 'nested.restore.rejects-malformed',
    what: 'SET ignores unknown SMM flags (rule V4 missing)',
    model: {
      setNestedState: (v, b) => {
        if (b && b.length > 25) {
          b = b.slice();
          b[24] = b[24]! & 0x3;
        }
        return setNestedState(v, b);
      },
    },
  },
  {
    property: 'nested.restore.random-bytes',
    what: "SET answers a buffer shorter than the header with GET's E2BIG instead of EFAULT",
    planted: {
      file: 'nested/set.ts',
      line: "if (!blob || blob.length < HEADER_SIZE) return done('EFAULT', 'W1', 'the 128-byte header cannot be read');",
      bug: "if (!blob || blob.length < HEADER_SIZE) return done('E2BIG', 'W1', 'the 128-byte header cannot be read');",
      use: (m) => ({ model: { setNestedState: m.setNestedState as ReferenceModel['setNestedState'] } }),
    },
  },
  {
    property: 'nested.get.size-protocol',
    what: 'GET copies what fits instead of answering E2BIG',
    model: {
      getNestedState: (v, n) => {
        const r = getNestedState(v, 8320);
        return { ...r, errno: null, buffer: r.buffer.slice(0, Math.max(0, n)) };
      },
    },
  },
  {
    property: 'migration.state-preserved',
    what: "SET reads KVM_STATE_NESTED_MTF_PENDING from the GUEST_MODE bit: a restored L2 gains a pending MTF VM-exit the source never had, which a hop's judgement (it counts what was lost) reports ok",
    planted: {
      file: 'nested/set.ts',
      line: '  v.mtfPending = (h.flags & FLAGS.MTF_PENDING) !== 0;',
      bug: '  v.mtfPending = (h.flags & FLAGS.GUEST_MODE) !== 0;',
      use: (m) => ({ model: { setNestedState: m.setNestedState as ReferenceModel['setNestedState'] } }),
    },
  },
  {
    // state-preserved no longer sees this one: a hop's judgement counts a deadline that differs as lost (F8), so the hop is degraded, not ok
    property: 'migration.prediction-honest',
    what: 'SET takes the preemption-timer deadline flag (S7) but not the deadline: the restored timer reads 0, a hop degraded where the static check predicts ok',
    planted: {
      file: 'nested/set.ts',
      line: '    if (v.hasPreemptionTimerDeadline) v.preemptionTimerDeadline = h.preemptionTimerDeadline;\n',
      bug: '',
      use: (m) => ({ model: { setNestedState: m.setNestedState as ReferenceModel['setNestedState'] } }),
    },
  },
  {
    property: 'migration.prediction-honest',
    what: 'SET makes no KVM_REQ_GET_NESTED_STATE_PAGES for a map-pending eVMCS: the first KVM_RUN after a migration leaves it unmapped (F4)',
    planted: {
      file: 'nested/set.ts',
      line: "v.evmptr = 'map-pending'; // looked up on the next KVM_RUN, when the VP-assist page is restored (vcpu.ts run)\n    v.statePagesRequested = true;",
      bug: "v.evmptr = 'map-pending';",
      use: (m) => ({ model: { setNestedState: m.setNestedState as ReferenceModel['setNestedState'] } }),
    },
  },
  {
    property: 'migration.seed-003',
    unshrinkable: 'one fixed case over fc.constant(null): there is no smaller input',
    what: "the 4.20-5.1 flag meaning come back: the target's GET sets EVMCS when eVMCS is merely enabled",
    planted: {
      file: 'nested/get.ts',
      line: "if (b.evmcsFlag === 'when-enabled' && v.nestedAllowed() && v.evmcsEnabled) h.flags |= FLAGS.EVMCS;",
      bug: "if (b.evmcsFlag !== 'none' && v.nestedAllowed() && v.evmcsEnabled) h.flags |= FLAGS.EVMCS;",
      use: (m) => ({ model: { getNestedState: m.getNestedState as ReferenceModel['getNestedState'] } }),
    },
  },
  {
    property: 'golden.pages.old-readable',
    what: 'the consumer memcpys an old-revision golden page instead of translating it',
    model: { readPage: memcpyReadPage },
  },
  {
    property: 'nested.matches-profile',
    what: 'F7: a VMfailValid with an eVMCS in use schedules no vmcs12 -> eVMCS sync, so L1 reads a stale VM-instruction error from its eVMCS',
    planted: inApplyOp("  if (v.evmptr !== 'invalid') v.needVmcs12ToShadowSync = true;\n", ''),
  },
  {
    property: 'nested.matches-profile',
    what: "F11: VMPTRLD while an eVMCS is in use answers VMfailInvalid (the model's old assumption), where KVM does not retire it",
    planted: inApplyOp("if (v.evmcsMapped()) return { result: 'not-retired', reason: 'VMPTRLD while an eVMCS is in use: KVM returns to L1 without completing the instruction; L1 executes it again' };", "if (v.evmcsMapped()) return fail('VMfailInvalid', 'VMPTRLD while an eVMCS is in use');"),
  },
  {
    property: 'nested.matches-profile',
    what: 'F8: a nested VM-exit keeps the injected event\'s VALID bit (prepare_vmcs12 does not clear it), so a VMRESUME would inject it again',
    model: { applyOp: exitKeepsInjection },
  },
  {
    property: 'golden.recipes.stable',
    what: 'F8: a nested VM-exit keeps the injected event\'s VALID bit',
    model: { applyOp: exitKeepsInjection },
  },
  {
    property: 'golden.recipes.stable',
    what: 'VMCLEAR takes its operand for an eVMCS only while one is in use, not whenever the VP-assist page names one (handle_vmclear), so it clears a current VMCS KVM keeps',
    planted: inApplyOp('if (v.guestCpuidHasEvmcs() && namedEvmcs(v) !== null) {', 'if (v.evmcsMapped()) {'),
  },
  {
    property: 'golden.recipes.stable',
    what: 'VMCLEAR of the eVMCS in use leaves it mapped (nested_release_evmcs forgotten)',
    planted: inApplyOp("        if (v.evmcsMapped() && o.pa === v.evmptr) v.evmptr = 'invalid';\n", ''),
  },
  {
    property: 'golden.recipes.stable',
    what: 'F10.5: an enlightened VMLAUNCH clears all 4096 bytes of the vmcs12 cache, not the 998 of the struct',
    model: {
      applyOp: (v, o) => {
        const r = applyOp(v, o);
        if (o.op === 'evmcs-entry' && o.launch && v.evmcsMapped()) v.vmcs12.fill(0, VMCS12_STRUCT_SIZE);
        return r;
      },
    },
  },
  {
    property: 'golden.recipes.stable',
    what: 'F8: GET in guest mode leaves the timer value L1 wrote where the save control asks for the remaining time',
    model: {
      getNestedState: (v, n) => {
        const timer = VMCS12_MEMBERS.find((x) => x.name === 'vmx_preemption_timer_value')!.offset;
        const kept = readBytes(v.vmcs12, timer, 4);
        const r = getNestedState(v, n);
        if (v.guestMode && r.buffer.length >= OFFSET.vmcs12 + timer + 4) writeBytes(r.buffer.subarray(OFFSET.vmcs12), timer, 4, kept);
        return r;
      },
    },
  },
  {
    property: 'golden.nested-state.old-readable',
    what: 'the consumer ignores the shadow vmcs12 of a restored blob',
    model: {
      setNestedState: (v, b) => {
        const r = setNestedState(v, b);
        v.shadowVmcs12 = new Uint8Array(4096);
        return r;
      },
    },
  },
  {
    property: 'golden.recipes.stable',
    what: 'GET forgets MTF_PENDING',
    model: {
      getNestedState: (v, n) => {
        const r = getNestedState(v, n);
        if (r.buffer.length) r.buffer[0] = r.buffer[0]! & ~8;
        return r;
      },
    },
  },
  {
    property: 'golden.recipes.stable',
    what: 'VMLAUNCH marks the VMCS launched at VM-entry, not on the exit to L1 (F5)',
    model: {
      applyOp: (v, o) => {
        const r = applyOp(v, o);
        if ((o.op === 'vmlaunch' || o.op === 'vmresume') && r.result === 'ok') writeBytes(v.vmcs12, 8, 4, 1n);
        return r;
      },
    },
  },
  {
    property: 'golden.recipes.stable',
    what: 'a nested VM-exit keeps a pending MTF trap (F6)',
    model: {
      applyOp: (v, o) => {
        const mtf = v.mtfPending;
        const r = applyOp(v, o);
        if (o.op === 'vmexit') v.mtfPending = mtf;
        return r;
      },
    },
  },
  {
    property: 'vmentry.valid-guest-enters',
    what: 'the guest-state check forgets that HLT is a valid activity state',
    model: {
      hooks: {
        ...DEFAULT_HOOKS,
        vmentryChecks: (v, p, e) => (readBytes(p, 916, 4) === 1n ? { rule: 'guest.activity-state', stage: 'guest' } : DEFAULT_HOOKS.vmentryChecks(v, p, e)),
      },
    },
  },
  {
    property: 'vmentry.one-broken-fails-with-its-rule',
    what: 'SET skips nested_vmx_check_guest_state (restore checks controls and host state only)',
    model: {
      hooks: {
        ...DEFAULT_HOOKS,
        vmentryChecks: (v, p, e) => {
          const bad = DEFAULT_HOOKS.vmentryChecks(v, p, e);
          return !e && bad?.stage === 'guest' ? null : bad;
        },
      },
    },
  },
  {
    property: 'vmentry.one-broken-fails-with-its-rule',
    what: 'VMLAUNCH forgets cs_ss_rpl_check (CS and SS may differ in RPL)',
    model: { hooks: { ...DEFAULT_HOOKS, vmentryChecks: vmentryChecksWith((p) => vmentryRules(p).filter((r) => r.id !== 'prepare.cs-ss-rpl')) } },
  },
  {
    property: 'vmentry.valid-guest-enters',
    what: 'the segment checks ignore vmcs12\'s unrestricted-guest control (L0\'s is_unrestricted_guest read for L2)',
    model: {
      hooks: {
        ...DEFAULT_HOOKS,
        vmentryChecks: vmentryChecksWith((p) =>
          vmentryRules(p).map((r) => (r.fn.endsWith('segment_valid') || ['cs_ss_rpl_check', 'tr_valid', 'ldtr_valid'].includes(r.fn) ? { ...r, fails: (v: View) => r.fails(new View({ ...v.s, f: (m) => (m === 'secondary_vm_exec_control' ? v.s.f(m) & ~0x80n : v.s.f(m)) })) } : r)),
        ),
      },
    },
  },
  {
    property: 'vmentry.one-broken-fails-with-its-rule',
    what: 'the MSR-load failure reports the failing entry\'s index as exit qualification, not index + 1',
    model: {
      hooks: {
        ...DEFAULT_HOOKS,
        vmentryChecks: (v, p, e) => {
          const bad = DEFAULT_HOOKS.vmentryChecks(v, p, e);
          return bad?.stage === 'msr-load' ? { ...bad, qualification: (bad.qualification ?? 1) - 1 } : bad;
        },
      },
    },
  },
  {
    property: 'vmentry.check-order',
    what: 'host-state checks run before the control checks',
    model: {
      hooks: {
        ...DEFAULT_HOOKS,
        vmentryChecks: (v, p, e) => {
          const fails = allFailures(vmentryRules(v.profile), checkInput(v, p, e), e ? 'vmentry' : 'restore');
          const r = fails.find((x) => x.stage === 'host') ?? fails[0];
          return r ? { rule: r.id, stage: r.stage, qualification: r.qualification ?? 0 } : null;
        },
      },
    },
  },
  {
    property: 'vmentry.restore-round-trip',
    what: 'SET reads the VMCS link-pointer page before the VMM has restored guest memory',
    model: {
      setNestedState: (v, b) => {
        const memory = v.memory;
        v.memory = new Map();
        const r = setNestedState(v, b);
        v.memory = memory;
        return r;
      },
    },
  },
  {
    property: 'evmcs.check.agrees-with-filter',
    what: 'the check forgets the VM-exit controls',
    model: { evmcsCheckControls: (rules, c) => evmcsCheckControls(rules.filter((r) => r.rule !== 'exit'), c) },
  },
  {
    property: 'vmm.carries-vmxon-state',
    what: "the VMM takes GET's 128-byte header-only answer (VMXON on, no vmcs12) for no nested state (rust-vmm/kvm#385)",
    planted: { file: 'vmm/reference.ts', line: 'nested = qemuCarried(g.buffer.subarray(0, size), { dropsVmxFlags: false });', bug: 'nested = size > 128 ? qemuCarried(g.buffer.subarray(0, size), { dropsVmxFlags: false }) : null;', use: (m) => ({ model: { vmmSave: m.vmmSave as ReferenceModel['vmmSave'] } }) },
  },
  {
    property: 'vmm.keeps-vmx-header-flags',
    what: "the VMM's loader restores hdr.vmx.flags but leaves the preemption-timer deadline zero",
    planted: {
      file: 'vmm/stream-format.ts',
      line: 'preemptionTimerDeadline: hf ? readLe(hf, 4, 8) : 0n,',
      bug: 'preemptionTimerDeadline: 0n,',
      use: (m) => ({ model: { vmmLoad: (i, v) => vmmLoad(i, v, m as unknown as StreamCodec) } }),
    },
  },
  {
    property: 'vmm.carries-whole-state',
    what: "the VMM copies GET's answer into a struct sized for one vmcs12 (4224 bytes): the shadow vmcs12 is cut off and the size field still says 8320",
    planted: { file: 'vmm/reference.ts', line: 'nested = qemuCarried(g.buffer.subarray(0, size), { dropsVmxFlags: false });', bug: 'nested = qemuCarried(g.buffer.subarray(0, Math.min(size, 4224)), { dropsVmxFlags: false });', use: (m) => ({ model: { vmmSave: m.vmmSave as ReferenceModel['vmmSave'] } }) },
  },
  {
    property: 'vmm.get-buffer',
    what: 'the VMM offers GET a buffer for one vmcs12 (4224 bytes, as before the shadow vmcs12) instead of what KVM_CAP_NESTED_STATE reports',
    planted: { file: 'vmm/reference.ts', line: 'for (let userSize = input.kernel.nestedStateCap; userSize > 0; ) {', bug: 'for (let userSize = 4224; userSize > 0; ) {', use: (m) => ({ model: { vmmSave: m.vmmSave as ReferenceModel['vmmSave'] } }) },
  },
  {
    property: 'vmm.old-stream-loads',
    what: 'a version bump that left the loader reading only its own stream version',
    planted: { file: 'vmm/stream-format.ts', line: 'if (version < 1 || version > reader)', bug: 'if (version !== reader)', use: (m) => ({ model: { vmmLoad: (i, v) => vmmLoad(i, v, m as unknown as StreamCodec) } }) },
  },
  // the differential properties' consistently wrong targets (tests/matches-profile.test.ts shows the rest of their group misses them)
  ...DIFFERENTIAL_MUTANTS,
];

describe('each property catches its mutant', () => {
  test('every property has a mutant', () => {
    const covered = [...MUTANTS.map((m) => m.property), 'nested.get.writes-within-size', 'migration.mtf-asymmetry', 'migration.qemu-drops-vmx-flags'];
    expect(ALL_PROPERTIES.map((p) => p.id).filter((id) => !covered.includes(id))).toEqual([]);
  });

  test.each(MUTANTS)('$property: $what', async (mutant) => {
    const m = await withPlanted(mutant);
    await expectCaught(ALL_PROPERTIES.find((p) => p.id === m.property)!, mutantTarget(m), { deps: m.deps, runs: 300, unshrinkable: m.unshrinkable });
  });
});

test('a shrunk vmcs12 counterexample is a short field diff, not a dump of every field', async () => {
  const def = ALL_PROPERTIES.find((p) => p.id === 'vmcs12.codec.round-trip')!;
  const o = await runProperty(def, referenceTarget(), { seed: 5, runs: 300 }, { ...MODEL_DEPS, ...MUTANTS[0]!.deps });
  expect(o.verdict).toBe('fail');
  if (o.verdict === 'fail') {
    expect(o.counterexample.diff).toEqual([{ field: 'guest_rip', offset: 544, expected: '0x0000000100000000', actual: '0x0000000000000000' }]);
  }
});

describe('expected failures: the known bug or quirk must show, and a kernel without it fails the property', () => {
  test('nested.evmcs-flag-when-active on linux-4.20 shows the seed-003 counterexample as its expected verdict', async () => {
    const def = ALL_PROPERTIES.find((p) => p.id === 'nested.evmcs-flag-when-active')!;
    const o = await runProperty(def, referenceTarget({ profile: 'linux-4.20' }), { seed: 1, runs: 150 });
    expect(o.verdict).toBe('expected-fail');
    if (o.verdict === 'expected-fail') {
      expect(o.counterexample.input).toContain('enable-evmcs');
      expect(o.counterexample.diff).toEqual([{ field: 'flags.EVMCS', offset: 0, expected: 'false', actual: 'true' }]);
    }
  });

  test('nested.get.writes-within-size: a GET without quirk GET_SHADOW_PAST_SIZE fails the property', async () => {
    const def = ALL_PROPERTIES.find((p) => p.id === 'nested.get.writes-within-size')!;
    const mutant = referenceTarget({
      model: {
        getNestedState: (v, n) => {
          const r = getNestedState(v, n);
          return { ...r, written: Math.min(r.written, r.size) };
        },
      },
    });
    await expectMissingBugCaught(def, mutant, { runs: 300 });
    const real = await runProperty(def, referenceTarget(), { seed: 1, runs: 300 });
    expect(real.verdict).toBe('expected-fail');
  });

  test('nested.get.size-protocol: a GET that drops the shadow copy when the buffer lacks room (no EFAULT, as real KVM gives) fails with a shrunk shadow state', async () => {
    const def = ALL_PROPERTIES.find((p) => p.id === 'nested.get.size-protocol')!;
    const mutant = referenceTarget({
      model: {
        getNestedState: (v, n) => {
          const r = getNestedState(v, n);
          return r.errno === 'EFAULT' ? { ...r, errno: null, written: r.size } : r;
        },
      },
    });
    const o = await expectCaught(def, mutant, { seeds: [1], runs: 400 });
    expect(o.counterexample.summary).toMatch(/^GET with exactly 4224 bytes answered ok/);
    expect(o.counterexample.diff).toEqual([{ field: 'GET', offset: -1, expected: 'EFAULT (quirk GET_SHADOW_PAST_SIZE: the shadow vmcs12 is copied past the size)', actual: 'ok' }]);
    expect((await runProperty(def, referenceTarget(), { seed: 1, runs: 400 })).verdict).toBe('pass');
  });
});

describe('the migration asymmetries are found, and a fleet without them fails the properties', () => {
  const prop = (id: string) => ALL_PROPERTIES.find((p) => p.id === id)!;
  const run = async (id: string) => runProperty(prop(id), referenceTarget(), { seed: 1, runs: 200 });

  test('migration.mtf-asymmetry: shown as a shrunk one-hop path through 5.6; a 5.6 host with 5.7\'s fix fails the property', async () => {
    const o = await run('migration.mtf-asymmetry');
    expect(o.verdict).toBe('expected-fail');
    if (o.verdict === 'expected-fail') {
      expect(o.counterexample.summary).toMatch(/-> linux-5\.6.*W3/);
      expect(o.counterexample.summary).toMatch(/^hop 1 of/);
      expect(o.shrinks).toBeGreaterThan(0);
    }
    // the target plays the 5.6 hosts: one that claims 5.6 and takes MTF_PENDING back, as 5.7 does
    const fixed = referenceTarget({ profile: 'linux-5.7' });
    await expectMissingBugCaught(prop('migration.mtf-asymmetry'), { ...fixed, identity: { ...fixed.identity, profile: 'linux-5.6' } }, { runs: 200 });
  });

  test('migration.qemu-drops-vmx-flags: shown as a shrunk one-hop path; a QEMU that carries the flags fails the property', async () => {
    const o = await run('migration.qemu-drops-vmx-flags');
    expect(o.verdict).toBe('expected-fail');
    if (o.verdict === 'expected-fail') {
      expect(o.counterexample.summary).toContain('preemption-timer deadline');
      expect(o.shrinks).toBeGreaterThan(0);
    }
    // the fleet's VMM: whichever variant a path asks for, the one that carries hdr.vmx.flags
    const carries = { vmmSave: (i: Parameters<typeof vmmSave>[0]) => vmmSave(i, 'qemu'), vmmLoad: (i: Parameters<typeof vmmLoad>[0]) => vmmLoad(i, 'qemu') };
    await expectMissingBugCaught(prop('migration.qemu-drops-vmx-flags'), referenceTarget(), { runs: 200, deps: carries });
  });
});
