// The VMM step of a migration (the `vmm` group): a VMM saves what the source's GET answered into its
// stream and loads the stream into the blob it passes to SET on the destination. Whatever the
// stream's format, the blob must be the state GET gave: carried when VMXON is on (the 128-byte
// header-only state too, rust-vmm/kvm#385), with hdr.vmx.flags and the deadline, whole and with a
// size field that says how much; GET offered the KVM_CAP_NESTED_STATE size and E2BIG followed; and
// a stream an older release of the VMM wrote still loads. The expectation comes from the model's
// GET on the source (kernel-facts §8), never from the VMM under test.
import fc from 'fast-check';
import type { FieldDiff } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import { findHost } from '../model/migration/hosts.js';
import { findScenario } from '../model/migration/scenarios.js';
import { readHeader, type NestedHeader } from '../model/nested/blob.js';
import { HEADER_SIZE, INVALID_GPA, OFFSET } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { applyOp, Vcpu, type VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { VMM_KNOWN_BUGS } from '../model/vmm/types.js';
import type { MsrSet } from '../model/vmx-msrs.js';
import { vmmCase, type VmmCase } from '../generators/vmm.js';
import type { VmmLoaded, VmmSaved } from '../targets/target.js';
import { expectNoDiff, must, TargetStop, UnexpectedViolation, Violation, type PropertyContext, type PropertyDef } from '../harness/property.js';
import { diffStateBytes } from './nested-compare.js';

/** The source side of a case, from the model: the vCPU, what GET stores, its header, what the VMM is given. */
function source(c: VmmCase) {
  const host = findHost(c.host)!;
  const p = findProfile(host.profile)!;
  const sc = findScenario(c.scenario)!;
  const config: VcpuConfig = { ...sc.vm, nested: host.nested };
  const vcpu = new Vcpu({ ...p, nested: p.nested! }, config);
  for (const o of [...sc.ops, ...c.extra]) applyOp(vcpu, o);
  const g = getNestedState(vcpu, host.nestedStateMax);
  // what GET stores given room: `size` bytes, and past them the shadow vmcs12 of quirk GET_SHADOW_PAST_SIZE
  const state = g.buffer.slice(0, Math.max(g.size, g.written));
  return { host, profile: p, vcpu, config, state, size: g.size, header: readHeader(state), cap: host.nestedStateMax };
}
type Source = ReturnType<typeof source>;

const caseText = (c: VmmCase, s: Source) =>
  `${c.scenario}${c.extra.length ? ` + ${c.extra.map((o) => o.op).join(', ')}` : ''} on ${c.host} (GET: ${s.size} bytes, vmxon_pa ${hex(s.header.vmxonPa)}, flags ${hex(s.header.flags)})`;

/** The VMM's save of what the source's GET answers (as `version` of the VMM wrote it, when given). */
async function save(ctx: PropertyContext, s: Source, version?: string): Promise<VmmSaved> {
  return must(await ctx.target.vmmSave({ kernel: { nestedStateCap: s.cap, state: s.state }, vmxMsrs: s.host.vmxMsrs, config: s.config, ...(version !== undefined ? { version } : {}) }));
}

/** Its load on a destination with the same KVM_CAP_NESTED_STATE (as `version` of the VMM loads, when given). */
async function load(ctx: PropertyContext, s: Source, stream: Uint8Array, version?: string): Promise<VmmLoaded> {
  return must(await ctx.target.vmmLoad({ stream, kernel: { nestedStateCap: s.cap }, ...(version !== undefined ? { version } : {}) }));
}

/** One VMM step: save, then load the stream. */
async function vmmStep(ctx: PropertyContext, s: Source): Promise<{ saved: VmmSaved; loaded: VmmLoaded | null }> {
  const saved = await save(ctx, s);
  return { saved, loaded: 'refused' in saved ? null : await load(ctx, s, saved.stream) };
}

/** A property of the VMM step over generated cases: the body gets each case and its source side. */
function stepProperty(
  def: Omit<PropertyDef, 'groups' | 'runs' | 'build'>,
  body: (ctx: PropertyContext, c: VmmCase, s: Source) => Promise<void>,
  cases: fc.Arbitrary<VmmCase> = vmmCase(),
): PropertyDef {
  return {
    ...def,
    groups: ['vmm'],
    runs: 150,
    async build(ctx) {
      return fc.asyncProperty(cases, async (c) => body(ctx, c, source(c)));
    },
  };
}

/** What the VMM passes to SET, or why there is nothing: the step's outcome in words. */
function setOf(saved: VmmSaved, loaded: VmmLoaded | null): { set: Uint8Array } | { none: string } {
  if ('refused' in saved) return { none: `save refused: ${saved.refused}` };
  if (!loaded || 'refused' in loaded) return { none: `load refused: ${loaded && 'refused' in loaded ? loaded.refused : ''}` };
  return loaded.set ? { set: loaded.set } : { none: 'nothing sent (no SET)' };
}

const VMXON_HEADER = ['flags', 'format', 'vmxonPa', 'vmcs12Pa', 'smmFlags'] as const satisfies readonly (keyof NestedHeader)[];
const HDR_NAMES: Record<keyof NestedHeader, string> = {
  flags: 'flags',
  format: 'format',
  size: 'size',
  vmxonPa: 'hdr.vmx.vmxon_pa',
  vmcs12Pa: 'hdr.vmx.vmcs12_pa',
  smmFlags: 'hdr.vmx.smm.flags',
  pad: 'hdr.vmx.pad',
  vmxFlags: 'hdr.vmx.flags',
  preemptionTimerDeadline: 'hdr.vmx.preemption_timer_deadline',
};
const OFFSETS: Record<keyof NestedHeader, number> = OFFSET;

function diffHeaderFields(want: NestedHeader, got: NestedHeader, fields: readonly (keyof NestedHeader)[]): FieldDiff[] {
  return fields.filter((k) => want[k] !== got[k]).map((k) => ({ field: HDR_NAMES[k], offset: OFFSETS[k], expected: hex(want[k]), actual: hex(got[k]) }));
}

const msrText = (m: MsrSet, i: number) => (m.has(i) ? hex(m.get(i)!, 16) : 'absent');
function diffMsrs(want: MsrSet, got: MsrSet): FieldDiff[] {
  const ids = [...new Set([...want.keys(), ...got.keys()])].sort((a, b) => a - b);
  return ids.filter((i) => want.get(i) !== got.get(i)).map((i) => ({ field: `VMX MSR ${hex(i)}`, offset: -1, expected: msrText(want, i), actual: msrText(got, i) }));
}

const configValue = (v: unknown): string => (v instanceof Map ? JSON.stringify(Object.fromEntries([...v].map(([i, x]) => [hex(i), hex(x)]))) : JSON.stringify(v) ?? 'absent');
function diffConfig(want: VcpuConfig, got: VcpuConfig): FieldDiff[] {
  const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])] as (keyof VcpuConfig)[];
  return keys.filter((k) => configValue(want[k]) !== configValue(got[k])).map((k) => ({ field: `config.${k}`, offset: -1, expected: configValue(want[k]), actual: configValue(got[k]) }));
}

export const carriesVmxonState = stepProperty(
  {
    id: 'vmm.carries-vmxon-state',
    description:
      "Reaches a state on a source host of any profile (the migration scenarios, then more guest activity), hands the VMM what the source's GET answers, the VMX MSRs and the CPUID, loads its stream on a destination, and compares the blob it passes to SET with the GET answer's header, and its MSRs and configuration with what it saved.",
    invariant:
      'every GET result with VMXON set (vmxon_pa valid) is carried: the VMM passes SET a blob with its flags, format, vmxon_pa, vmcs12_pa and smm.flags, the 128-byte header-only state (VMXON, no vmcs12) included (rust-vmm/kvm#385), and restores the VMX MSRs and the CPUID it saved',
  },
  async (ctx, c, s) => {
    fc.pre(s.header.vmxonPa !== INVALID_GPA);
    const { saved, loaded } = await vmmStep(ctx, s);
    const r = setOf(saved, loaded);
    if ('none' in r) throw new Violation(`${caseText(c, s)}: not carried, ${r.none}`, [{ field: 'SET', offset: -1, expected: `${s.size} bytes, vmxon_pa ${hex(s.header.vmxonPa)}`, actual: r.none }]);
    const l = loaded as Extract<VmmLoaded, { set: unknown }>;
    const diff = [
      ...(r.set.length >= HEADER_SIZE ? diffHeaderFields(s.header, readHeader(r.set), VMXON_HEADER) : [{ field: 'SET blob', offset: -1, expected: `${s.size} bytes`, actual: `${r.set.length} bytes, less than the header` }]),
      ...diffMsrs(s.host.vmxMsrs, l.vmxMsrs),
      ...diffConfig(s.config, l.config),
    ];
    expectNoDiff(`${caseText(c, s)}: the VMM's SET`, diff);
  },
);

export const keepsVmxHeaderFlags = stepProperty(
  {
    id: 'vmm.keeps-vmx-header-flags',
    description: 'States on 5.8+ hosts with and without an armed preemption timer through one VMM step; compares hdr.vmx.flags and the deadline of the blob the VMM passes to SET with the source GET answer.',
    invariant:
      "hdr.vmx.flags and hdr.vmx.preemption_timer_deadline reach the destination's SET as the source's GET gave them; a VMM that declares the known bug drops-vmx-flags (a QEMU that does not carry them) must show it",
    expectedFailure: (ctx) => (ctx.target.vmm?.knownBugs?.includes('drops-vmx-flags') ? VMM_KNOWN_BUGS['drops-vmx-flags'] : null),
  },
  async (ctx, c, s) => {
    const { saved, loaded } = await vmmStep(ctx, s);
    const r = setOf(saved, loaded);
    const want = s.header;
    if ('none' in r) {
      // the whole state missing is vmm.carries-vmxon-state's failure, not the flags' bug
      if (want.vmxFlags || want.preemptionTimerDeadline)
        throw new UnexpectedViolation(`${caseText(c, s)}: nothing carried (${r.none})`, [{ field: HDR_NAMES.vmxFlags, offset: OFFSET.vmxFlags, expected: hex(want.vmxFlags), actual: r.none }]);
      return;
    }
    const got = readHeader(r.set);
    const diff = diffHeaderFields(want, got, ['vmxFlags', 'preemptionTimerDeadline']);
    if (!diff.length) return;
    // the known bug drops them: they arrive zero
    const V = got.vmxFlags === 0 && got.preemptionTimerDeadline === 0n ? Violation : UnexpectedViolation;
    throw new V(`${caseText(c, s)}: the VMM's SET: ${diff.length} field(s) differ`, diff);
  },
  vmmCase({ hosts: ['linux-5.8', 'linux-6.1', 'linux-6.12'], scenarios: ['preemption-timer', 'l2-running', 'l2-run-pending'] }),
);

export const carriesWholeState = stepProperty(
  {
    id: 'vmm.carries-whole-state',
    description: "One VMM step for states with VMXON on; compares the length and the size field of the blob the VMM passes to SET with the size the source's GET reported, and every byte past the header with GET's.",
    invariant: 'nothing is truncated: the blob the VMM passes to SET is as long as the size the source GET reported, its size field says that length, and its vmcs12 and shadow vmcs12 are byte for byte the ones GET gave',
  },
  async (ctx, c, s) => {
    fc.pre(s.header.vmxonPa !== INVALID_GPA);
    const { saved, loaded } = await vmmStep(ctx, s);
    const r = setOf(saved, loaded);
    if ('none' in r) throw new Violation(`${caseText(c, s)}: nothing carried, ${r.none}`, [{ field: 'carried length', offset: -1, expected: String(s.size), actual: r.none }]);
    const want = s.state.subarray(0, s.size);
    const size = r.set.length >= OFFSET.size + 4 ? readHeader(r.set).size : -1;
    const diff: FieldDiff[] = [];
    if (r.set.length !== s.size) diff.push({ field: 'carried length', offset: -1, expected: String(s.size), actual: String(r.set.length) });
    if (size !== r.set.length) diff.push({ field: 'size field', offset: OFFSET.size, expected: `${r.set.length} (the carried length)`, actual: String(size) });
    // the pages, by name: the header's own fields are the other properties' (a copy of GET's header)
    const got = new Uint8Array(r.set.length);
    got.set(r.set);
    if (got.length >= HEADER_SIZE) got.set(want.subarray(0, HEADER_SIZE));
    diff.push(...diffStateBytes(s.profile.vmcs12, want, got).filter((d) => d.field !== 'buffer length'));
    expectNoDiff(`${caseText(c, s)}: the VMM's SET`, diff);
  },
);

export const getBuffer = stepProperty(
  {
    id: 'vmm.get-buffer',
    description: "One VMM save per generated state; checks every KVM_GET_NESTED_STATE the VMM reports: the buffer it offered, the answer (against the model's GET for that buffer), and that an E2BIG was followed by a GET with the size it reported.",
    invariant:
      'the VMM offers KVM_GET_NESTED_STATE a buffer of at least what KVM_CAP_NESTED_STATE reports (8320; a buffer of only the reported size faults under quirk GET_SHADOW_PAST_SIZE), an E2BIG is followed by a GET with at least the size it reported, and a stream is written from a GET that succeeded',
  },
  async (ctx, c, s) => {
    const saved = await save(ctx, s);
    const diff: FieldDiff[] = [];
    if (!saved.gets.length && s.config.vmxInCpuid) diff.push({ field: 'GETs', offset: -1, expected: `at least one (KVM_CAP_NESTED_STATE is ${s.cap})`, actual: 'none' });
    saved.gets.forEach((g, i) => {
      const want = getNestedState(s.vcpu, Math.min(g.userSize, s.cap));
      if (g.userSize < s.cap) diff.push({ field: `GET ${i + 1} buffer`, offset: -1, expected: `>= ${s.cap} (KVM_CAP_NESTED_STATE)`, actual: String(g.userSize) });
      if (g.errno !== want.errno) diff.push({ field: `GET ${i + 1} answer`, offset: -1, expected: want.errno ?? '0', actual: g.errno ?? '0' });
      const next = saved.gets[i + 1];
      if (want.errno === 'E2BIG' && !(next && next.userSize >= want.size))
        diff.push({ field: `GET ${i + 1} E2BIG`, offset: -1, expected: `a GET with >= ${want.size} bytes next`, actual: next ? `a GET with ${next.userSize}` : 'no other GET' });
    });
    const last = saved.gets.at(-1);
    if ('stream' in saved && last && last.errno !== null) diff.push({ field: 'stream', offset: -1, expected: 'written after a GET that succeeded', actual: `written after GET ${saved.gets.length} answered ${last.errno}` });
    expectNoDiff(`${caseText(c, s)}: the VMM's GETs`, diff);
  },
);

export const oldStreamLoads: PropertyDef = {
  id: 'vmm.old-stream-loads',
  description:
    'For each older stream version the VMM declares (hello vmm.streamVersions), saves a generated state as that version and loads the stream with the current version and with that older one; diffs what each restores.',
  invariant:
    'a stream an older version of the VMM wrote loads in the current one: not refused where the older one loads it, and giving the same SET blob, VMX MSRs and CPUID as the older version itself restores',
  groups: ['vmm'],
  runs: 150,
  async build(ctx) {
    const older = (ctx.target.vmm?.streamVersions ?? []).slice(0, -1);
    if (!older.length)
      throw new TargetStop({
        status: 'unsupported',
        reason: `the target declares no older stream version (hello vmm.streamVersions: ${JSON.stringify(ctx.target.vmm?.streamVersions ?? [])}): it cannot write the stream an older release wrote`,
      });
    return fc.asyncProperty(vmmCase(), fc.constantFrom(...older), async (c, version) => {
      const s = source(c);
      const saved = await save(ctx, s, version);
      if ('refused' in saved) return; // the older release saved nothing: there is no stream to load
      const [now, then] = [await load(ctx, s, saved.stream), await load(ctx, s, saved.stream, version)];
      const what = `${caseText(c, s)}: a version ${version} stream`;
      if ('refused' in then) return; // the older release does not load it either: nothing to keep
      if ('refused' in now) throw new Violation(`${what} is refused by the current VMM: ${now.refused}`, [{ field: 'load', offset: -1, expected: `loads (as version ${version} loads it)`, actual: `refused: ${now.refused}` }]);
      const blob = (b: Uint8Array | null) => (b ? `${b.length} bytes` : 'nothing sent');
      const diff: FieldDiff[] = [];
      if (!then.set || !now.set) {
        if (then.set !== now.set) diff.push({ field: 'SET', offset: -1, expected: blob(then.set), actual: blob(now.set) });
      } else diff.push(...diffStateBytes(s.profile.vmcs12, then.set, now.set));
      diff.push(...diffMsrs(then.vmxMsrs, now.vmxMsrs), ...diffConfig(then.config, now.config));
      expectNoDiff(`${what}: the current VMM restores other than version ${version} does`, diff);
    });
  },
};

export const vmmSuite: readonly PropertyDef[] = [carriesVmxonState, keepsVmxHeaderFlags, carriesWholeState, getBuffer, oldStreamLoads];
