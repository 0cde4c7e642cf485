// Golden expectations on a target that reports its vCPUs' VMX MSRs (Target.vmxMsrs; README K6). The
// manifest's results and the committed recipe bytes come from the model on its default capability
// set; a target offering less (KVM on Bochs's corei7_skylake_x lacks secondary controls and MTF that
// the golden L2s use) rightly refuses those L2s at the VM-entry checks. There the expectation is the
// model's answer *given the target's MSRs* (the model, never the target, is the oracle). Where that
// differs from the manifest's, the blob cannot show on this target what it was recorded for: it is
// `unsupported` there, naming the control bits it lacks, if the target answers as predicted, and a
// failure if not (a target accepting what its own capabilities forbid is a bug, not a gap).
import type { FieldDiff } from '../model/codec.js';
import { VMCS12 } from '../model/catalog/by-name.js';
import { CONTROL_FIELD } from '../model/catalog/vmx-controls.js';
import { hex } from '../model/encoding.js';
import { decodeBlob } from '../model/nested/blob.js';
import { BIT } from '../model/vmentry/bits.js';
import { nestedCaps, outsideAllowed } from '../model/vmentry/caps.js';
import type { Layout } from '../model/layout.js';
import { bitNames, CONTROL_MSRS, MSR_NAMES, type MsrSet } from '../model/vmx-msrs.js';
import { referenceTarget } from '../targets/reference.js';
import type { Target } from '../targets/target.js';
import { TargetStop } from '../harness/property.js';
import { describeResult, judge, observe, toExpected, type Observed } from './consume.js';
import type { ExpectedResult, GoldenEntry } from './manifest.js';
import type { Produced } from './recipe.js';
import { compareRun, rerun } from './verify.js';

/** A golden blob (or recipe) judged on a target. */
export type BlobVerdict =
  | { readonly verdict: 'pass' }
  | { readonly verdict: 'fail'; readonly reason: string; readonly diff: readonly FieldDiff[] }
  | { readonly verdict: 'unsupported'; readonly reason: string };

type Cls = keyof typeof CONTROL_FIELD;
const WORDS: Record<Cls, string> = { pin: 'pin-based controls', proc: 'primary processor-based controls', proc2: 'secondary controls', exit: 'VM-exit controls', entry: 'VM-entry controls' };

/** The MSR KVM checks a class against: the TRUE one where the set has it (nestedCaps does the same). */
function msrOf(cls: Cls, msrs: MsrSet): string {
  const c = CONTROL_MSRS.find((m) => m.controls === cls && m.trueOf !== undefined && msrs.has(m.index)) ?? CONTROL_MSRS.find((m) => m.controls === cls && m.trueOf === undefined)!;
  return MSR_NAMES[c.index]!;
}

/** The controls of a blob's vmcs12 that lie outside `msrs`, in words; '' when it has no vmcs12 or they fit. */
export function controlGap(bytes: Uint8Array, msrs: MsrSet, what: string): string {
  const d = decodeBlob(bytes);
  const page = d.ok ? d.blob.vmcs12 : null;
  if (!page || !Object.values(CONTROL_FIELD).every((f) => VMCS12.fits(page, f))) return '';
  const caps = nestedCaps(msrs);
  const unoffered: string[] = [];
  const required: string[] = [];
  for (const cls of Object.keys(CONTROL_FIELD) as Cls[]) {
    const value = Number(VMCS12.read(page, CONTROL_FIELD[cls]));
    if (cls === 'proc2' && !(Number(VMCS12.read(page, CONTROL_FIELD.proc)) & BIT.proc.secondary)) continue;
    const gap = outsideAllowed(value, caps[cls]);
    const named = (bits: number) => `${WORDS[cls]} ${hex(bits)} (${msrOf(cls, msrs)}: ${bitNames(cls, bits).join(', ')})`;
    if (gap.unoffered) unoffered.push(named(gap.unoffered));
    if (gap.required) required.push(named(gap.required));
  }
  return [
    unoffered.length ? `the target's vCPU does not offer ${unoffered.join(' and ')} that ${what} uses` : '',
    required.length ? `the target's vCPU requires ${required.join(' and ')} that ${what} clears` : '',
  ]
    .filter(Boolean)
    .join('; ');
}

/** the control gap, else (a truncated blob, a wider target, a capability outside the controls) that the capabilities differ */
const gapText = (bytes: Uint8Array, msrs: MsrSet, what: string): string =>
  controlGap(bytes, msrs, what) || `${what} depends on VMX capabilities in which the target's vCPU differs from the model's default set`;

/** The model as a host of these capabilities (the default set: none given), one per profile and MSR set. */
const defaults = new Map<string, Target>();
const narrowed = new WeakMap<MsrSet, Map<string, Target>>();
function modelHost(profile: string, msrs?: MsrSet): Target {
  let pool = msrs ? narrowed.get(msrs) : defaults;
  if (!pool) narrowed.set(msrs!, (pool = new Map()));
  let t = pool.get(profile);
  if (!t) pool.set(profile, (t = referenceTarget({ profile, ...(msrs ? { vmxMsrs: msrs } : {}) })));
  return t;
}

/** The model with the target's capabilities, for nested state on a target that reports its VMX MSRs. */
const capabilityModel = (target: Target, e: GoldenEntry): Target | undefined =>
  e.kind === 'nested-state' && target.vmxMsrs && target.identity.profile ? modelHost(target.identity.profile, target.vmxMsrs) : undefined;

const answer = (o: Observed): string => describeResult(o) + (o.result === 'invalid' && o.check ? ` at VM-entry check ${o.check}` : '');

/**
 * A blob restored (or a page read) on the target, against the manifest's result for its profile, or
 * where the target's capabilities change that result, against the model's answer given them.
 */
export async function judgeOnTarget(target: Target, e: GoldenEntry, bytes: Uint8Array, layout: Layout, expected: ExpectedResult): Promise<{ observed: Observed; verdict: BlobVerdict }> {
  const observed = await observe(target, e, bytes, layout);
  const model = capabilityModel(target, e);
  const predicted = model ? await observe(model, e, bytes, layout) : undefined;
  const plain = judge(expected, observed);
  if (!predicted || judge(expected, predicted).ok) return { observed, verdict: plain.ok ? { verdict: 'pass' } : { verdict: 'fail', reason: plain.reason, diff: plain.diff } };
  const why = `${gapText(bytes, target.vmxMsrs!, "this blob's L2")}; the model with the target's VMX MSRs answers ${answer(predicted)}`;
  const j = judge(toExpected(predicted), observed);
  return { observed, verdict: j.ok ? { verdict: 'unsupported', reason: why } : { verdict: 'fail', reason: `${why}, the target does not: ${j.reason}`, diff: j.diff } };
}

/**
 * A nested-state recipe re-run on the target, against the committed bytes, or where the target's
 * capabilities change what the recipe gives, against what the model gives with them.
 */
export async function rerunOnTarget(dir: string, e: GoldenEntry, bytes: Uint8Array, target: Target): Promise<BlobVerdict> {
  if (!e.recipe) return { verdict: 'pass' };
  let got: Produced | string;
  try {
    got = await rerun(dir, e.recipe, e.kind === 'nested-state' ? target : undefined);
  } catch (err) {
    // an operation the target does not offer, or a real L2 that left the recipe's state: this blob untested
    if (err instanceof TargetStop && err.result.status === 'unsupported') return { verdict: 'unsupported', reason: `the target cannot run the recipe: ${err.result.reason}` };
    throw err;
  }
  const model = capabilityModel(target, e);
  const predicted = model ? await rerun(dir, e.recipe, model) : undefined;
  if (!predicted || !compareRun(dir, e, bytes, predicted)) {
    const f = compareRun(dir, e, bytes, got);
    return f ? { verdict: 'fail', reason: f.reason, diff: f.diff } : { verdict: 'pass' };
  }
  const refused = typeof predicted === 'string' ? `cannot run the recipe (${predicted})` : `answers ${(await newRefusals(dir, e, predicted)).join(', ') || 'every operation as the default capabilities do'}, giving other bytes`;
  const why = `${gapText(bytes, target.vmxMsrs!, "this recipe's L2")}; the model with the target's VMX MSRs ${refused}`;
  const f = compareRun(dir, e, typeof predicted === 'string' ? predicted : predicted.bytes, got);
  return f ? { verdict: 'fail', reason: `${why}, the target does not: ${f.reason}`, diff: f.diff } : { verdict: 'unsupported', reason: why };
}

/** The guest operations the model refuses with the target's capabilities and not with its default ones. */
async function newRefusals(dir: string, e: GoldenEntry, predicted: Produced): Promise<string[]> {
  const base = await rerun(dir, e.recipe!, modelHost(e.recipe!.profile!));
  const known = typeof base === 'string' ? [] : [...base.refused];
  return predicted.refused.filter((r) => {
    const i = known.indexOf(r);
    return i < 0 || (known.splice(i, 1), false);
  });
}
