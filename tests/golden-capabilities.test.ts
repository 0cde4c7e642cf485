// README K6: golden expectations follow the target's capabilities. A target that reports VMX MSRs
// narrower than the model's default set (Bochs's corei7_skylake_x) rightly refuses the golden L2s
// that use controls it lacks: those blobs and recipes are `unsupported` there, naming the bits, when
// the target answers as the model given its MSRs does, and a failure when it does not (a target that
// reports narrow MSRs but accepts the blob lies about itself). A target reporting no MSRs: unchanged.
import { describe, expect, test } from 'vitest';
import { goldenSection, type GoldenSection } from '../golden/report-section.js';
import { runProperty } from '../harness/runner.js';
import { TargetStop, type PropertyContext } from '../harness/property.js';
import { MODEL_DEPS } from '../harness/model-deps.js';
import { goldenNestedReadable, goldenRecipesStable, judgeEach } from '../suites/golden.js';
import { referenceTarget } from '../targets/reference.js';
import type { Target } from '../targets/target.js';
import { BOCHS_612 } from './fixtures/bochs-msrs.js';
import { expectCaught } from './expect-caught.js';

/** The golden nested-state blobs real KVM on Bochs refused at V14 in the kvm: CI runs of 2026-12-05 (README K6). */
const L2_BLOBS = [
  'evmcs-l2.linux-6.12',
  ...['4.19', '4.20', '5.2', '5.6', '5.7', '5.8', '6.1', '6.12'].map((v) => `l2-run-pending.linux-${v}`),
  'l2-running.linux-6.12',
  ...['5.6', '5.7', '6.12'].map((v) => `mtf-pending.linux-${v}`),
  'preemption-deadline.linux-5.8',
  'preemption-deadline.linux-6.12',
  'qemu-zeroed-deadline.linux-6.12',
  'shadow-l2.linux-4.19',
  'shadow-l2.linux-6.12',
  'mtf-discarded-on-exit.linux-6.12',
  'preemption-value-at-get.linux-6.1',
  'preemption-value-at-get.linux-6.12',
].sort();

const bochsLike = (profile: string): Target => referenceTarget({ profile, vmxMsrs: BOCHS_612, name: 'bochs-like' });
/** reports Bochs's MSRs, but its vCPUs check against the full default set: it accepts L2s its own capabilities forbid */
const lying = (profile: string): Target => ({ ...referenceTarget({ profile, name: 'lying' }), vmxMsrs: BOCHS_612 });
const verdicts = (g: GoldenSection) => Object.fromEntries(g.blobs.map((b) => [b.blob, b.verdict]));

describe.each(['linux-6.12', 'linux-6.1'])('golden section on %s', (profile) => {
  test('a target reporting Bochs-like VMX MSRs: the L2 blobs are unsupported, naming the missing bits and the check; every other blob as on the plain reference', async () => {
    const plain = verdicts((await goldenSection(referenceTarget({ profile })))!);
    const g = (await goldenSection(bochsLike(profile)))!;
    const unsupported = g.blobs.filter((b) => b.verdict === 'unsupported');
    expect(unsupported.map((b) => b.blob).sort()).toEqual(L2_BLOBS);
    expect(verdicts(g)).toEqual({ ...plain, ...Object.fromEntries(L2_BLOBS.map((id) => [id, 'unsupported'])) });
    expect(new Set(Object.values(plain))).toEqual(new Set(['pass']));
    for (const b of unsupported) {
      expect(b).toMatchObject({ expected: 'valid', observed: 'invalid(EINVAL, V14)' });
      expect(b.detail).toMatch(/^the target's vCPU does not offer .*secondary controls 0x100000 \(IA32_VMX_PROCBASED_CTLS2: SECONDARY_EXEC_ENABLE_XSAVES\).* that this blob's L2 uses; the model with the target's VMX MSRs answers invalid\(EINVAL, V14\) at VM-entry check ctl\.(proc2|proc)$/);
    }
    expect(g.blobs.find((b) => b.blob === 'mtf-pending.linux-6.12')!.detail).toContain('primary processor-based controls 0x8000000 (IA32_VMX_TRUE_PROCBASED_CTLS: CPU_BASED_MONITOR_TRAP_FLAG)');
  });

  test('a target that reports those MSRs but accepts the L2 blobs fails each of them; one that refuses with another errno fails too', async () => {
    const g = (await goldenSection(lying(profile)))!;
    const failed = g.blobs.filter((b) => b.verdict === 'fail');
    expect(failed.map((b) => b.blob).sort()).toEqual(L2_BLOBS);
    expect(failed[0]!.detail).toMatch(/the model with the target's VMX MSRs answers invalid\(EINVAL, V14\).*, the target does not: expected invalid\(EINVAL, V14\), got valid/);
    const t = bochsLike(profile);
    const otherErrno: Target = { ...t, setNestedState: async (v, b) => { const r = await t.setNestedState(v, b); return r.status === 'ok' && r.value.ret === -22 ? { status: 'ok', value: { ret: -12, errno: 'ENOMEM', rule: '' } } : r; } };
    const h = (await goldenSection(otherErrno))!;
    expect(h.blobs.filter((b) => b.verdict === 'fail').map((b) => b.blob)).toEqual(expect.arrayContaining(L2_BLOBS));
    expect(h.blobs.filter((b) => b.verdict === 'unsupported')).toEqual([]);
  });
});

describe('the golden properties', () => {
  test('on a Bochs-like target they pass with the L2 blobs and recipes counted apart as skipped, naming why; on the plain reference nothing is skipped', async () => {
    const t = bochsLike('linux-6.12');
    const readable = await runProperty(goldenNestedReadable, t, { seed: 1 });
    expect(readable).toMatchObject({ verdict: 'pass', cases: 1, unsupportedCases: { count: L2_BLOBS.length } });
    expect(readable.verdict === 'pass' && readable.unsupportedCases!.reason).toMatch(/^golden blob \S+ \(linux-[\d.]+\) on linux-6\.12: the target's vCPU does not offer .*IA32_VMX_PROCBASED_CTLS2.*V14/);
    const recipes = await runProperty(goldenRecipesStable, t, { seed: 1 });
    expect(recipes).toMatchObject({ verdict: 'pass', cases: 1, unsupportedCases: { count: expect.any(Number) } });
    expect(recipes.verdict === 'pass' && recipes.unsupportedCases!.reason).toMatch(/that this recipe's L2 uses; the model with the target's VMX MSRs answers (vmlaunch|evmcs-entry): VMfailValid \(VM-entry check ctl\.proc2?\)/);
    for (const def of [goldenNestedReadable, goldenRecipesStable]) expect(await runProperty(def, referenceTarget(), { seed: 1 })).toEqual({ id: def.id, verdict: 'pass', cases: 1, seed: 1 });
  });

  // the mutant: a host whose nested checks ignore the capabilities it reports
  test.each([goldenNestedReadable, goldenRecipesStable])('$id catches a target that reports narrow MSRs but accepts what they forbid: shrunk to one blob, replayed', async (def) => {
    const f = await expectCaught(def, lying('linux-6.12'));
    expect(f.counterexample.summary).toMatch(/^golden blob \S+.*: the target's vCPU does not offer .*, the target does not: /);
    expect(f.counterexample.input).toMatch(/^\[\["[^"]+"\]\]$/);
  });

  test('a corpus whose every blob the target cannot be judged on is a skipped case, not a pass', async () => {
    const ctx: PropertyContext = { target: referenceTarget(), model: MODEL_DEPS };
    const none = async () => ({ label: 'golden blob x', verdict: { verdict: 'unsupported' as const, reason: 'lacks XSAVES' } });
    await expect(judgeEach(ctx, ['a', 'b'], ['a', 'b'], none)).rejects.toThrow(TargetStop);
    await expect(judgeEach(ctx, ['a', 'b'], ['a'], none)).resolves.toBeUndefined(); // a shrunk case of one such blob is no failure
  });
});

test('golden.recipes.stable on a target that does not offer an operation some recipes need: those recipes are skipped and counted, the others checked', async () => {
  const noExit: Target = { ...referenceTarget({ profile: 'linux-6.12' }), unsupportedGuestOps: { vmexit: 'no chosen VM-exits here' } };
  const o = await runProperty(goldenRecipesStable, noExit, { seed: 1 });
  expect(o.verdict).toBe('pass');
  if (o.verdict !== 'pass') return;
  expect(o.unsupportedCases?.count).toBeGreaterThan(0);
  expect(o.unsupportedCases?.reason).toMatch(/cannot run the recipe: guest-op vmexit: no chosen VM-exits here/);
});
