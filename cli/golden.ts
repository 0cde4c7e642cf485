// `golden verify | record | add`: the golden corpus (golden/manifest.json and its blobs). verify exits
// 1 on any finding, printing the blob id, the consumer profile, the reason (with the rule) and a field
// diff; record and add never replace an existing id without --update.
import { resolve } from 'node:path';
import type { FieldDiff } from '../model/codec.js';
import type { VcpuConfig } from '../model/nested/vcpu.js';
import { defaultGoldenDir, loadManifest, type GoldenKind, type Recipe } from '../golden/manifest.js';
import { buildEntry, commitEntry, draftFromRecipe, type Draft } from '../golden/record.js';
import { plausibilityWarnings } from '../golden/plausible.js';
import { RecipeError } from '../golden/recipe.js';
import { referencePool, verifyGolden } from '../golden/verify.js';
import { findProfile, profileNames } from '../model/profiles.js';
import { EXIT, TargetError, UsageError } from '../base/errors.js';
import { openCommandTarget } from './open-target.js';
import { readInputFile, readJsonFile } from './json-input.js';
import { dispatch, durationMs, parse } from './options.js';
import { goldenAddSpec as addSpec, goldenGroup, goldenRecordSpec as recordSpec, goldenVerifySpec as verifySpec } from './spec.js';

export async function goldenCommand(argv: string[]): Promise<number> {
  try {
    return await dispatch(goldenGroup, argv, { verify, record, add });
  } catch (e) {
    if (e instanceof RecipeError) throw new UsageError(e.message);
    throw e;
  }
}

const goldenDir = (v: string | undefined) => (v ? resolve(v) : defaultGoldenDir());

const MAX_DIFF_LINES = 24;

export function diffLines(diff: readonly FieldDiff[]): string[] {
  if (!diff.length) return [];
  const width = Math.max(5, ...diff.map((d) => d.field.length));
  const lines = [`    ${'field'.padEnd(width)}  expected  ->  actual`, ...diff.slice(0, MAX_DIFF_LINES).map((d) => `    ${d.field.padEnd(width)}  ${d.expected}  ->  ${d.actual}`)];
  if (diff.length > MAX_DIFF_LINES) lines.push(`    … ${diff.length - MAX_DIFF_LINES} more`);
  return lines;
}

async function verify(argv: string[]): Promise<number> {
  const { values } = parse(argv, verifySpec);
  const verdicts = await verifyGolden(goldenDir(values.golden));
  const findings = verdicts.flatMap((v) => v.findings);
  const results = verdicts.reduce((n, v) => n + Object.keys(v.consumers).length, 0);
  if (values.json) console.log(JSON.stringify({ blobs: verdicts.length, consumerResults: results, failures: findings.length, verdicts }, null, 2));
  else {
    for (const f of findings) {
      console.log(`FAIL  ${f.id}${f.profile ? ` on ${f.profile}` : ''}: ${f.reason}`);
      for (const l of diffLines(f.diff)) console.log(l);
    }
    console.log(`golden: ${verdicts.length} blobs, ${results} consumer results checked, ${findings.length} failure(s)`);
  }
  return findings.length ? EXIT.failure : EXIT.ok;
}

const ID = /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/;

function checkId(id: string | undefined): string {
  if (!id) throw new UsageError('needs --id ID (lower case letters, digits, dots and dashes)');
  if (!ID.test(id)) throw new UsageError(`--id "${id}": use lower case letters, digits, dots and dashes`);
  return id;
}

async function commit(dir: string, draft: Draft, update: boolean): Promise<number> {
  const { entry, content } = await buildEntry(dir, draft, referencePool());
  for (const line of commitEntry(dir, entry, content, draft.bytes, update)) console.log(line);
  return EXIT.ok;
}

async function record(argv: string[]): Promise<number> {
  const { values } = parse(argv, recordSpec);
  if (values.from?.length) return recordFrom(values.from, values);
  if (values.target) throw new UsageError('golden record --target records existing entries again: give them with --from ID');
  if (!values.recipe) throw new UsageError('golden record needs --recipe FILE (reports/schema/golden-recipe.schema.json)');
  const id = checkId(values.id);
  const recipe = readJsonFile(values.recipe, 'golden-recipe') as Recipe;
  if (recipe.profile !== undefined && !findProfile(recipe.profile)) throw new UsageError(`${values.recipe}: unknown profile "${recipe.profile}" (known: ${profileNames().join(', ')})`);
  const dir = goldenDir(values.golden);
  const draft = await draftFromRecipe(dir, id, recipe, referencePool());
  return commit(dir, draft, values.update);
}

/**
 * `golden record --from ID… --target T`: each entry's stored recipe again, on another producer (a
 * real kernel: `kvm:debian-6.12`), re-profiled to the profile the target claims, as a new entry
 * `<ID without its .linux-x.y>.<target>`. One target (one boot) for all of them.
 */
async function recordFrom(ids: string[], values: { golden?: string | undefined; target?: string | undefined; 'target-timeout'?: string | undefined; update?: boolean | undefined }): Promise<number> {
  if (!values.target) throw new UsageError('golden record --from needs --target T (the producer, e.g. kvm:debian-6.12)');
  const dir = goldenDir(values.golden);
  const { manifest, problems } = loadManifest(dir);
  if (problems.length) throw new UsageError(`${dir}/manifest.json: ${problems[0]!.id}: ${problems[0]!.reason}`);
  const entries = ids.map((id) => {
    const e = manifest.entries.find((x) => x.id === id);
    if (!e) throw new UsageError(`--from ${id}: no such golden entry`);
    if (!e.recipe || e.kind !== 'nested-state') throw new UsageError(`--from ${id}: only nested-state entries with a recipe can be recorded on a target`);
    return e;
  });
  const timeout = durationMs(values['target-timeout']);
  const params = { target: values.target, profile: 'linux-6.12', ...(timeout !== undefined ? { targetTimeoutMs: timeout } : {}) };
  const target = await openCommandTarget(params);
  try {
    const profile = target.identity.profile;
    if (!profile || !findProfile(profile)) throw new TargetError(`${values.target} claims no known profile (${profile ?? 'none'}): its blobs cannot be read as any profile's`);
    const slug = values.target.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-|-$/g, '');
    const by = `${values.target}: ${target.identity.name} ${target.identity.version}`;
    for (const e of entries) {
      const id = `${e.id.replace(/\.linux-[0-9.]+$/, '')}.${slug}`;
      const recipe: Recipe = { ...e.recipe!, profile, scenario: `${e.scenario} (recorded on ${values.target})` };
      try {
        await commit(dir, await draftFromRecipe(dir, id, recipe, () => target, by), values.update ?? false);
      } catch (err) {
        if (err instanceof RecipeError || err instanceof UsageError) console.log(`SKIP  ${id}: ${err.message}`);
        else throw err;
      }
    }
    return EXIT.ok;
  } finally {
    await target.close();
  }
}

const KINDS: readonly GoldenKind[] = ['nested-state', 'vmcs12', 'evmcs'];

async function add(argv: string[]): Promise<number> {
  const { values } = parse(argv, addSpec);
  const kind = values.kind as GoldenKind;
  if (!KINDS.includes(kind)) throw new UsageError(`--kind must be one of ${KINDS.join(', ')}, got "${values.kind}"`);
  const id = checkId(values.id);
  if (!findProfile(values.profile)) throw new UsageError(`unknown profile "${values.profile}" (known: ${profileNames().join(', ')})`);
  const bytes = new Uint8Array(readInputFile(values.file));
  if (bytes.length > 8320) throw new UsageError(`${values.file}: ${bytes.length} bytes; golden blobs are at most 8320 bytes`);
  for (const w of plausibilityWarnings(kind, findProfile(values.profile)!, bytes)) console.error(`nvmx-conformance: warning: ${values.file}: ${w}`);
  const consumerVcpu = values.vcpu ? (readJsonFile(values.vcpu, 'vcpu') as Partial<VcpuConfig>) : undefined;
  const draft: Draft = {
    id,
    kind,
    bytes,
    producer: { profile: values.profile, by: values.producer },
    scenario: values.scenario ?? `captured blob ${values.file}`,
    ...(values.comment ? { comment: values.comment } : {}),
    ...(kind === 'nested-state' ? { consumerVcpu: consumerVcpu ?? {} } : {}),
  };
  console.log(`review before committing: the expected content and every consumer's result below come from the model`);
  return commit(goldenDir(values.golden), draft, values.update);
}
