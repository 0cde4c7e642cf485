// The target's nested state against the model of the profile it claims, step by step: the same vCPU
// configuration and guest operations run on both, then GET (with a buffer large enough, and with a
// random one), SET of a blob on a destination configured as the VMM would, and GET again. The blob
// is the target's own GET, one malformation of it, random bytes or a golden blob, so arbitrary blobs
// meet SET too. Every answer is compared field by field (suites/nested-compare.ts). This is the
// property the real kernel (kvm:) is judged by: a consistently wrong target passes nested.round-trip
// but not this.
import fc from 'fast-check';
import { readHeader } from '../model/nested/blob.js';
import { SIZE_WITH_SHADOW, VMCS12_STRUCT_SIZE } from '../model/nested/constants.js';
import type { NestedBehaviour } from '../model/nested/behaviour.js';
import type { GuestOp, VcpuConfig } from '../model/nested/vcpu.js';
import { guestOpsFor, vcpuConfigFor } from '../generators/nested.js';
import { referenceTarget } from '../targets/reference.js';
import type { GetAnswer, Target } from '../targets/target.js';
import { profileOf, withTargetMsrs } from '../harness/common.js';
import { bytesOf, loadCorpus } from './golden.js';
import { must, type PropertyDef } from '../harness/property.js';
import { asRunByL2, caseJudge, diffGet, diffOps, diffSet } from './nested-compare.js';
import { departedAtSave, destinationOf, reach } from '../harness/nested-common.js';
import { MALFORMATIONS, randomBlob } from './nested-restore.js';

/** What the destination's SET is given. */
type Restore =
  | { readonly kind: 'own' }
  /** by name (MALFORMATIONS), so the counterexample reads as data */
  | { readonly kind: 'malformed'; readonly malformation: string }
  | { readonly kind: 'bytes'; readonly blob: Uint8Array }
  | { readonly kind: 'golden'; readonly id: string };

const restoreChoice = (goldenIds: readonly string[]): fc.Arbitrary<Restore> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant<Restore>({ kind: 'own' }) },
    { weight: 2, arbitrary: fc.constantFrom(...MALFORMATIONS.map((m) => m.name)).map((malformation): Restore => ({ kind: 'malformed', malformation })) },
    { weight: 1, arbitrary: randomBlob.map((blob): Restore => ({ kind: 'bytes', blob })) },
    ...(goldenIds.length ? [{ weight: 1, arbitrary: fc.constantFrom(...goldenIds).map((id): Restore => ({ kind: 'golden', id })) }] : []),
  );

/**
 * What an L1 leaves in its VMCS regions past the 998 bytes of the struct (VMPTRLD reads the whole
 * page into KVM's cache, and GET copies it out): a few 8-byte writes after each region's set-up.
 */
const tailWrites = fc.array(fc.tuple(fc.integer({ min: Math.ceil(VMCS12_STRUCT_SIZE / 8), max: 511 }), fc.bigInt(1n, (1n << 64n) - 1n)), { maxLength: 2 });

const withTails = (ops: readonly GuestOp[], tails: readonly [number, bigint][]): GuestOp[] =>
  ops.flatMap((o) => (o.op === 'init-vmcs' && !o.shadow ? [o, ...tails.map(([slot, value]): GuestOp => ({ op: 'write-memory', pa: o.pa + BigInt(slot * 8), value }))] : [o]));

export const nestedMatchesProfile: PropertyDef = {
  id: 'nested.matches-profile',
  description:
    "Runs generated vCPU configurations and guest operations on the target and on the model of its profile, then GET, SET of a blob (the target's GET, a malformation of it, random bytes or a golden blob) on a destination, and GET again, and diffs every answer field by field (differential).",
  invariant:
    "every guest operation's result (VMfail kind and error number, exit reason and qualification, the failed VM-entry check), every GET (errno, size, bytes written, header fields and flags, every vmcs12 and shadow vmcs12 member by name) and every SET answer (errno and rule) is the profile model's; differences the profile documents are reported by name",
  groups: ['nested-state'],
  runs: 200,
  async build(ctx) {
    const profile = profileOf(ctx.target);
    const model = referenceTarget({ profile: profile.name });
    const corpus = loadCorpus();
    const goldenIds = [...corpus.entries.values()].filter((e) => e.kind === 'nested-state').map((e) => e.id);
    const withMsrs = withTargetMsrs(ctx.target);
    const input = fc.record({
      config: vcpuConfigFor(ctx.target).map(withMsrs),
      ops: fc.tuple(guestOpsFor(ctx.target), tailWrites).map(([ops, tails]) => withTails(ops, tails)),
      smallGet: fc.option(fc.nat(SIZE_WITH_SHADOW - 1), { nil: undefined }),
      restore: restoreChoice(goldenIds),
    });
    return fc.asyncProperty(input, async ({ config, ops, smallGet, restore }) => {
      const judge = caseJudge(ctx);
      const vcpus: [Target, string][] = [];
      try {
        // the target first: a case needing an operation it does not offer is skipped before the model runs
        const got = await reach(ctx, config, ops);
        const want = await reach({ target: model }, config, ops);
        vcpus.push([ctx.target, got.vcpu], [model, want.vcpu]);
        // a real L2 that ran to its first stop and exited leaves the model's (which runs no code) behind,
        // as does a real entry that left nothing pending: the operations up to there are compared,
        // then the case ends, naming the difference
        const departed = departedAtSave(got);
        judge.expect(profile.name, 'a guest operation', diffOps(departed?.atOp === undefined ? ops : ops.slice(0, departed.atOp + 1), want.results, got.results));
        if (departed) {
          judge.expect(profile.name, 'a guest operation', [{ field: departed.field, offset: -1, expected: 'the state of the model\'s guest', actual: departed.name }]);
          return judge.done();
        }
        // `ran`: the target said its L2 ran code (and stayed in guest mode): L2's execution state is its own
        const get = async (userSize: number, w: string, g: string, ran = false): Promise<GetAnswer> => {
          const [a, b] = await Promise.all([model.getNestedState(w, userSize), ctx.target.getNestedState(g, userSize)]);
          judge.expect(profile.name, `GET with a ${userSize}-byte buffer`, asRunByL2(diffGet(profile.vmcs12, must(a), must(b)), ran));
          return must(b);
        };
        const full = await get(SIZE_WITH_SHADOW, want.vcpu, got.vcpu, got.l2RanCode);
        if (smallGet !== undefined) await get(smallGet, want.vcpu, got.vcpu, got.l2RanCode);
        const blob = blobFor(restore, full.buffer.subarray(0, full.size), { behaviour: profile.nested!, config: got.destination }, corpus);
        const [dw, dg] = [await destinationOf({ target: model }, want), await destinationOf(ctx, got)];
        vcpus.push([ctx.target, dg], [model, dw]);
        const [sw, sg] = [must(await model.setNestedState(dw, blob)), must(await ctx.target.setNestedState(dg, blob))];
        judge.expect(profile.name, `SET of ${describe(restore)} (${blob.length} bytes)`, diffSet(sw, sg));
        await get(SIZE_WITH_SHADOW, dw, dg);
        judge.done();
      } finally {
        for (const [t, v] of vcpus) await t.destroyVcpu(v);
      }
    });
  },
};

const describe = (r: Restore): string => (r.kind === 'own' ? 'the blob GET gave' : r.kind === 'malformed' ? `the blob GET gave, with ${r.malformation}` : r.kind === 'bytes' ? 'random bytes' : `golden blob ${r.id}`);

function blobFor(r: Restore, own: Uint8Array, at: { behaviour: NestedBehaviour; config: VcpuConfig }, corpus: ReturnType<typeof loadCorpus>): Uint8Array {
  if (r.kind === 'bytes') return r.blob;
  if (r.kind === 'golden') return bytesOf(corpus, corpus.entries.get(r.id)!);
  if (r.kind === 'own' || own.length < 128) return own.slice();
  // a malformation that does not apply to this state leaves the blob as GET gave it
  return MALFORMATIONS.find((m) => m.name === r.malformation)!.apply(readHeader(own), own, at)?.blob ?? own.slice();
}
