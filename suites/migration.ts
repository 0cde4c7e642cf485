// Migration paths across kernel profiles, moved hop by hop through a fleet in which the target plays
// the hosts of the profile it claims and the reference the others (harness/fleet.ts, hop.ts): state
// preserved along every ok step, every step as the static prediction (the model's dry run) says,
// the same hops as with the model in the target's place, seed 003 reproduced, and the known
// asymmetries (5.6's MTF flag, QEMU dropping hdr.vmx.flags) found as shrunk counterexample paths.
import fc from 'fast-check';
import { describeOutcome, type Outcome } from '../model/migration/outcome.js';
import { findHost, HOSTS } from '../model/migration/hosts.js';
import { findScenario } from '../model/migration/scenarios.js';
import { saveToStream } from '../model/migration/stream.js';
import { readHeader } from '../model/nested/blob.js';
import { FLAGS } from '../model/nested/constants.js';
import { applyOp, Vcpu, type GuestOp } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import type { FieldDiff } from '../model/codec.js';
import type { MigrationPath } from '../model/migration/path.js';
import { migrationPath, type PathOptions } from '../generators/migration.js';
import { referenceTarget } from '../targets/reference.js';
import { profileOf, withTargetMsrs } from '../harness/common.js';
import { standInFleet, type Fleet } from '../harness/fleet.js';
import { migratePath } from '../harness/hop.js';
import { afterRestore, deadlineFixedBySet, diffBlobs, restoredL2Registers, ruleAgrees, withoutTimerValueAtGet } from '../harness/nested-common.js';
import { asRunByL2, caseJudge, diffStateBytes } from './nested-compare.js';
import { VMM_KNOWN_BUGS } from '../model/vmm/types.js';
import type { Layout } from '../model/layout.js';
import { expectNoDiff, TargetStop, UnexpectedViolation, Violation, type PropertyContext, type PropertyDef } from '../harness/property.js';

/**
 * A property's fleet (harness/fleet.ts: the target plays the hosts of the profile it claims, the
 * reference the others) and the paths it generates: over `hosts` (default all), each touching a host
 * the target plays, with guest activity the target offers. A target that would reload a module to
 * play a host with nested=0 (the kvm: agent) plays none. Unsupported when the target plays none of
 * `hosts`: the property would check the model alone.
 */
function fleetRun(ctx: PropertyContext, opts: PathOptions = {}) {
  const fleet = standInFleet(ctx.target, ctx.model);
  const costly = (h: string) => ctx.target.nestedParamChange !== undefined && fleet.played.includes(h) && !findHost(h)!.nested;
  const hosts = (opts.hosts ?? HOSTS.map((h) => h.name)).filter((h) => !costly(h));
  const ends = fleet.played.filter((h) => hosts.includes(h));
  if (!ends.length)
    throw new TargetStop({ status: 'unsupported', reason: `none of the property's hosts (${hosts.join(', ')}) has the profile the target claims (${profileOf(ctx.target).name}): it would check the model alone` });
  // the VM's VMX MSRs are the target's where it reports them, on every host (a VMM sets one CPU model across its fleet)
  const withMsrs = withTargetMsrs(ctx.target);
  const paths = migrationPath({ ...opts, hosts, ends, limits: ctx.target }).map((p) => ({ ...p, start: { ...p.start, vm: withMsrs(p.start.vm) } }));
  return { fleet, paths };
}

/** The profile of a host of the fleet. */
const profileOfHost = (fleet: Fleet, host: string) => findProfile(fleet.host(host).host.profile)!;

/** Between a 4.20-5.1 kernel ("eVMCS enabled") and a 5.2+ one ("eVMCS in use") the flag means different things. */
const evmcsFlagMeaningDiffers = (fleet: Fleet, from: string, to: string): boolean => profileOfHost(fleet, from).nested?.evmcsFlag !== profileOfHost(fleet, to).nested?.evmcsFlag;

function withoutEvmcsFlag(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[0] = c[0]! & ~FLAGS.EVMCS;
  return c;
}

const pathText = (p: MigrationPath) => [p.start.host, ...p.hops.map((h) => (h.sameHost ? `${h.host} (same-host hop)` : h.host))].join(' -> ') + (p.qemuDropsVmxFlags ? ' (QEMU drops hdr.vmx.flags)' : '');

export const statePreserved: PropertyDef = {
  id: 'migration.state-preserved',
  description:
    "Moves a guest along generated migration paths through a fleet where the target plays the hosts of its profile (harness/hop.ts), and diffs, for every hop that came to ok, the destination's GET against the source's GET.",
  invariant:
    'along any path, every step that comes to ok restores exactly the state the source saved (header, vmcs12 and shadow vmcs12, field by field, after the documented normalisation, L2_REGISTERS_FROM_DESTINATION included)',
  groups: ['nested-state'],
  runs: 150,
  async build(ctx) {
    const { fleet, paths } = fleetRun(ctx);
    return fc.asyncProperty(paths, async (path) => {
      const { hops } = await migratePath(fleet, path);
      // a guest that left the model's state before its first hop (a real L2 ran its code) made none
      fc.pre(hops.length > 0);
      hops.forEach((h, i) => {
        if (h.outcome.kind !== 'ok') return;
        if (!h.carried) return; // nothing nested was in the stream: nothing to compare
        if (!h.restored) throw new Violation(`hop ${i + 1} (${h.from} -> ${h.to}) is ok but nothing was restored`);
        // the hop restores no registers: an L2 that does not load them shows the fresh destination's;
        // a timer value or deadline the destination takes from its own clock is not compared (F8)
        let want = withoutTimerValueAtGet(deadlineFixedBySet(restoredL2Registers(afterRestore(h.sourceBlob)), h.restored));
        let got = withoutTimerValueAtGet(h.restored);
        if (evmcsFlagMeaningDiffers(fleet, h.from, h.to)) [want, got] = [withoutEvmcsFlag(want), withoutEvmcsFlag(got)];
        const diff = diffBlobs(want, got);
        expectNoDiff(`hop ${i + 1} of ${pathText(path)} reported ok`, diff);
      });
    });
  },
};

/**
 * The model's prediction of a path's first hop, before moving: the destination profile's own SET,
 * GET and first KVM_RUN run on a scratch vCPU from the stream the model's source would send. The
 * oracle never touches the target.
 */
function predictFirstHop(fleet: Fleet, path: MigrationPath, predict: PropertyContext['model']['predict']): Outcome {
  const host = fleet.host(path.start.host).host;
  const p = findProfile(host.profile)!;
  const v = new Vcpu({ ...p, nested: p.nested! }, { ...path.start.vm, nested: host.nested });
  for (const o of path.start.ops) applyOp(v, o);
  return predict(host, fleet.host(path.hops[0]!.host).host, saveToStream(v, host, { qemuDropsVmxFlags: path.qemuDropsVmxFlags }));
}

export const predictionHonest: PropertyDef = {
  id: 'migration.prediction-honest',
  description:
    "For generated one-hop paths with the target at one end, compares the outcome of the hop, composed through the hosts' targets (harness/hop.ts), with the model's prediction (the static compatibility check: the destination profile's SET and first KVM_RUN, dry-run from the stream the source would send).",
  invariant: "every generated hop comes to the kind of outcome the static compatibility check predicts before moving (ok, degraded, failed, refused, unknown): never ok where the check is not, never worse",
  groups: ['nested-state'],
  runs: 300,
  async build(ctx) {
    const { fleet, paths } = fleetRun(ctx, { maxHops: 1 });
    return fc.asyncProperty(paths, async (path) => {
      const { hops: [hop], departed } = await migratePath(fleet, path);
      // a source guest that left the model's state (a real L2 ran its code) is not the one predicted
      fc.pre(!departed || departed.afterHops > 0);
      if (!hop) throw new Violation('the fleet ran no hop');
      const pred = predictFirstHop(fleet, path, ctx.model.predict);
      if (pred.kind !== hop.outcome.kind) {
        const diff: FieldDiff[] = [{ field: `${hop.from} -> ${hop.to}`, offset: -1, expected: describeOutcome(pred), actual: describeOutcome(hop.outcome) }];
        throw new Violation(hop.outcome.kind === 'ok' ? 'the step is ok where the static check says it is not' : pred.kind === 'ok' ? 'the static check says ok, the step is not' : 'the step disagrees with the static check', diff);
      }
    });
  },
};

const SEED_003_SOURCES = ['linux-4.20', 'linux-5.2', 'linux-6.12'];

async function seedCase(fleet: Fleet, source: string) {
  const sc = findScenario('evmcs-enabled-unused')!;
  const { hops: [hop] } = await migratePath(fleet, { start: { host: source, vm: sc.vm, ops: sc.ops }, hops: [{ host: 'linux-4.18', opsAfter: [] }], qemuDropsVmxFlags: false });
  if (!hop) throw new Violation(`${source} -> linux-4.18: the fleet ran no hop`);
  return hop;
}

export const seed003: PropertyDef = {
  id: 'migration.seed-003',
  description: 'One fixed check: an eVMCS-enabled guest that never ran a nested hypervisor moves from 4.20, 5.2 and 6.12 hosts to a host without nested-state support.',
  invariant: 'a guest that enabled eVMCS but never ran a nested hypervisor moves to a host without nested-state support when the source has "flag when active" (no EVMCS flag in the stream), and fails to move from a "flag when enabled" source',
  groups: ['nested-state'],
  runs: 1,
  async build(ctx) {
    const { fleet } = fleetRun(ctx, { hosts: [...SEED_003_SOURCES, 'linux-4.18'] });
    return fc.asyncProperty(fc.constant(null), async () => {
      const diff: FieldDiff[] = [];
      for (const source of ['linux-5.2', 'linux-6.12']) {
        const h = await seedCase(fleet, source);
        const flag = h.carried ? (readHeader(h.carried).flags & FLAGS.EVMCS) !== 0 : false;
        if (h.outcome.kind === 'refused' || h.outcome.kind === 'failed' || flag)
          diff.push({ field: `${source} -> linux-4.18`, offset: -1, expected: 'moves, no EVMCS flag in the stream', actual: `${describeOutcome(h.outcome)}${flag ? ', EVMCS flag carried' : ''}` });
      }
      const old = await seedCase(fleet, 'linux-4.20');
      if (old.outcome.kind !== 'refused' && old.outcome.kind !== 'failed')
        diff.push({ field: 'linux-4.20 -> linux-4.18', offset: -1, expected: 'refused or failed (the EVMCS flag forces nested state into the stream)', actual: describeOutcome(old.outcome) });
      expectNoDiff('seed 003', diff);
    });
  },
};

/**
 * A known asymmetry, found as a shrunk counterexample path; `needs` is the guest operation that makes
 * the state it breaks (a target that does not offer it cannot show the asymmetry: unsupported).
 */
function asymmetry(id: string, invariant: string, description: string, reason: string, isTheQuirk: (o: Outcome) => boolean, opts: PathOptions, needs?: GuestOp['op']): PropertyDef {
  return {
    id,
    invariant,
    description,
    groups: ['nested-state'],
    runs: 200,
    expectedFailure: () => reason,
    async build(ctx) {
      const lacking = needs && ctx.target.unsupportedGuestOps?.[needs];
      if (lacking) throw new TargetStop({ status: 'unsupported', reason: `the asymmetry needs guest-op ${needs}: ${lacking}` });
      const { fleet, paths } = fleetRun(ctx, opts);
      return fc.asyncProperty(paths, async (path) => {
        const { hops } = await migratePath(fleet, path);
        const bad = hops.findIndex((h) => h.outcome.kind !== 'ok');
        if (bad < 0) return;
        const o = hops[bad]!.outcome;
        const V = isTheQuirk(o) ? Violation : UnexpectedViolation;
        throw new V(`hop ${bad + 1} of ${pathText(path)}: ${describeOutcome(o)}`, [{ field: `${hops[bad]!.from} -> ${hops[bad]!.to}`, offset: -1, expected: 'ok', actual: describeOutcome(o) }]);
      });
    },
  };
}

export const mtfAsymmetry = asymmetry(
  'migration.mtf-asymmetry',
  'nested state with a pending MTF moves between 5.6, 5.7 and 6.12 hosts without loss',
  'Generated paths over 5.6, 5.7 and 6.12 with quiet MTF-pending guests (no activity between hops that could invalidate the L2: LINK_PAGE_REREAD_ON_RESTORE); the shrunk counterexample is the shortest path the 5.6 asymmetry breaks.',
  '5.6 emits KVM_STATE_NESTED_MTF_PENDING but its own SET (like every kernel before 5.7) rejects it',
  (o) => o.kind === 'failed' && o.rule === 'W3',
  { hosts: ['linux-5.6', 'linux-5.7', 'linux-6.12'], scenarios: ['mtf-pending', 'l2-running', 'vmcs12-loaded'], qemuDropsVmxFlags: false, withoutEvmcs: true, quietGuest: true },
  'mtf',
);

export const qemuDropsFlags = asymmetry(
  'migration.qemu-drops-vmx-flags',
  'nested state with an armed preemption timer moves between 5.8+ hosts without loss when QEMU carries it',
  'Generated paths over 5.8+ hosts through a QEMU that drops hdr.vmx.flags, with the preemption timer armed; the shrunk counterexample shows the lost deadline.',
  VMM_KNOWN_BUGS['drops-vmx-flags'],
  (o) => o.kind === 'degraded' && o.lost.every((l) => l === 'preemption-timer deadline'),
  { hosts: ['linux-5.8', 'linux-6.1', 'linux-6.12'], scenarios: ['preemption-timer', 'l2-running'], qemuDropsVmxFlags: true, withoutEvmcs: true, quietGuest: true },
);

/**
 * A hop's outcome by attribute, as compared: the kind, the errno and rule of a failure, what was lost
 * (reasons are prose for people). A SET refusal whose host names no rule (a real kernel: README K21)
 * is judged by its errno, as the differential properties judge one.
 */
function diffOutcome(hop: string, want: Outcome, got: Outcome): FieldDiff[] {
  const attrs = (o: Outcome) => ({ kind: o.kind, errno: 'errno' in o ? o.errno : '-', rule: 'rule' in o ? o.rule : '-', lost: 'lost' in o ? o.lost.join('; ') : '-' });
  const [w, g] = [attrs(want), attrs(got)];
  const differs = (k: keyof typeof w) => (k === 'rule' ? !ruleAgrees(g.rule, w.rule) : w[k] !== g[k]);
  return (Object.keys(w) as (keyof typeof w)[]).filter(differs).map((k) => ({ field: `${hop} outcome.${k}`, offset: -1, expected: w[k], actual: g[k] }));
}

export const migrationMatchesProfile: PropertyDef = {
  id: 'migration.matches-profile',
  description:
    "Moves a guest along generated migration paths twice, through the same hops (harness/hop.ts): in a fleet where the target plays the hosts of its profile, and in one where the model of its profile does; diffs every hop: where it went, its outcome, and the source's, carried and restored blobs field by field (differential).",
  invariant: "along any path, every hop's outcome (kind, errno and rule, what was lost) and the blobs it saved, carried and restored are the ones the hosts' profiles give; the path stops where the model's does",
  groups: ['nested-state'],
  runs: 150,
  async build(ctx) {
    const { fleet, paths } = fleetRun(ctx);
    const model = standInFleet(referenceTarget({ profile: profileOf(ctx.target).name }), ctx.model);
    return fc.asyncProperty(paths, async (path) => {
      const { hops: got, departed, sourceL2RanCode } = await migratePath(fleet, path);
      const { hops: all } = await migratePath(model, path);
      const judge = caseJudge(ctx);
      const text = pathText(path);
      // where the target's guest left the model's state (a real L2 runs its code), the hops made until
      // then are compared, and the path no further
      const want = departed ? all.slice(0, departed.afterHops) : all;
      for (const [i, w] of want.entries()) {
        const g = got[i];
        const hop = `hop ${i + 1}`;
        if (!g) throw new Violation(`${hop} of ${text}: the target stopped after ${got.length} hop(s)`, [{ field: 'hops run', offset: -1, expected: String(want.length), actual: String(got.length) }]);
        const [src, dst] = [profileOfHost(fleet, w.from), profileOfHost(fleet, w.to)];
        if (w.from !== g.from || w.to !== g.to) throw new Violation(`${hop} of ${text} went elsewhere`, [{ field: `${hop} hosts`, offset: -1, expected: `${w.from} -> ${w.to}`, actual: `${g.from} -> ${g.to}` }]);
        // a real L2 that ran its code has its own execution state, on the source and wherever it goes
        const ran = sourceL2RanCode[i]!;
        judge.expect(src.name, `${hop} of ${text}: the source's GET`, asRunByL2(diffStateBytes(src.vmcs12, w.sourceBlob, g.sourceBlob), ran));
        judge.expect(src.name, `${hop} of ${text}: the nested state in the stream`, asRunByL2(diffOptional(src.vmcs12, w.carried, g.carried), ran));
        judge.expect(dst.name, `${hop} of ${text}: the outcome`, diffOutcome(hop, w.outcome, g.outcome));
        judge.expect(dst.name, `${hop} of ${text}: the destination's GET after SET`, asRunByL2(diffOptional(dst.vmcs12, w.restored, g.restored), ran));
      }
      if (got.length > want.length) throw new Violation(`${text}: the target ran hops the model stops before`, [{ field: 'hops run', offset: -1, expected: String(want.length), actual: String(got.length) }]);
      if (departed) judge.expect(profileOf(ctx.target).name, `${text}, after ${departed.afterHops} hop(s)`, [{ field: departed.field, offset: -1, expected: "the state of the model's guest", actual: departed.name }]);
      judge.done();
      fc.pre(want.length > 0);
    });
  },
};

/** A blob that may be absent (nothing nested in the stream, nothing restored). */
const diffOptional = (layout: Layout, want: Uint8Array | null, got: Uint8Array | null): FieldDiff[] =>
  want && got ? diffStateBytes(layout, want, got) : want === got ? [] : [{ field: 'blob', offset: -1, expected: want ? `${want.length} bytes` : 'none', actual: got ? `${got.length} bytes` : 'none' }];

export const migrationSuite: readonly PropertyDef[] = [statePreserved, predictionHonest, seed003, mtfAsymmetry, qemuDropsFlags, migrationMatchesProfile];
