// golden/manifest.json (reports/schema/golden-manifest.schema.json): the golden blobs, what each
// decodes to, and the answer each consumer profile gives. Reading it never throws on a bad entry:
// schema problems come back by blob id, so `golden verify` can name the blob.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Errno } from '../model/nested/constants.js';
import type { VcpuConfig } from '../model/nested/vcpu.js';
import { findProfile, PROFILES, type Profile } from '../model/profiles.js';
import { packageRoot, validate } from '../base/schemas.js';
import { UsageError } from '../base/errors.js';

export type GoldenKind = 'vmcs12' | 'evmcs' | 'nested-state';

/** reports/schema/golden-recipe.schema.json; ops as guest-ops JSON, header edits as nested-spec JSON. */
export interface Recipe {
  kind: GoldenKind;
  scenario?: string;
  comment?: string;
  profile?: string;
  layout?: string;
  vcpu?: Partial<VcpuConfig>;
  ops?: Record<string, unknown>[];
  migrate?: boolean;
  mutate?: { header?: Record<string, unknown>; patch?: { offset: number; hex: string }[]; truncate?: number };
  consumerVcpu?: Partial<VcpuConfig>;
  acceptable?: { profiles: string[]; reason: string };
  seed?: number;
  fields?: Record<string, string | number>;
}

export type ExpectedResult =
  | { result: 'valid'; after?: Record<string, string> }
  | { result: 'invalid'; errno?: Errno; ret?: number; rule: string }
  | { result: 'acceptable'; reason: string };

export interface GoldenEntry {
  id: string;
  kind: GoldenKind;
  file: string;
  sha256: string;
  size: number;
  producer: { profile: string; by: string; layout?: string };
  scenario: string;
  capabilities: Record<string, unknown>;
  recipe?: Recipe;
  expected: { content: string | Record<string, unknown> };
  consumerVcpu?: Partial<VcpuConfig>;
  consumers: Record<string, ExpectedResult>;
  comment?: string;
}

export interface Manifest {
  format: 'nvmx-golden/1';
  entries: GoldenEntry[];
}

export const MANIFEST_FILE = 'manifest.json';

export const defaultGoldenDir = (): string => join(packageRoot(), 'golden');

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Schema problems, each attributed to the entry it is in (by id, or by index when the id is unusable). */
export interface ManifestProblem {
  readonly id: string;
  readonly reason: string;
}

export interface LoadedManifest {
  readonly manifest: Manifest;
  readonly problems: readonly ManifestProblem[];
}

/** An unreadable or non-JSON manifest is bad input (exit 2); a schema problem is a verification finding. */
export function loadManifest(dir: string): LoadedManifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new UsageError(`${path}: no such file (is ${dir} a golden directory?)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`${path}: not JSON: ${(e as Error).message}`);
  }
  const entries = (json as { entries?: unknown })?.entries;
  if (!Array.isArray(entries)) throw new UsageError(`${path}: not a golden manifest (no "entries" array)`);
  const problems = validate('golden-manifest', json).map((p) => {
    const m = /^\/entries\/(\d+)(.*)$/.exec(p);
    if (!m) return { id: '(manifest)', reason: `manifest: ${p}` };
    const id = (entries[Number(m[1])] as { id?: unknown })?.id;
    return { id: typeof id === 'string' ? id : `entry #${m[1]}`, reason: `manifest: ${m[2] || '/'}${p.slice(p.indexOf(':'))}` };
  });
  return { manifest: json as Manifest, problems };
}

/** Validates, then writes through a temporary file and a rename. */
export function saveManifest(dir: string, manifest: Manifest): void {
  const problems = validate('golden-manifest', manifest);
  if (problems.length) throw new Error(`refusing to write an invalid golden manifest: ${problems[0]}`);
  const path = join(dir, MANIFEST_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, compactJson(manifest) + '\n');
  renameSync(tmp, path);
}

/** Profiles in history order; a consumer is "newer" when it comes later. */
export const profileRank = (name: string): number => PROFILES.findIndex((p) => p.name === name);

/** The profiles that can consume a kind at all: nested state from 4.19, eVMCS where the model has it. */
export function consumerProfiles(kind: GoldenKind): Profile[] {
  if (kind === 'nested-state') return PROFILES.filter((p) => p.nested);
  if (kind === 'evmcs') return PROFILES.filter((p) => p.evmcs);
  return [...PROFILES];
}

export function requireProfile(name: string): Profile {
  const p = findProfile(name);
  if (!p) throw new UsageError(`unknown profile "${name}"`);
  return p;
}

export const blobPath = (dir: string, e: Pick<GoldenEntry, 'file'>): string => join(dir, e.file);

/** JSON with every object or array that fits on one line written on one line (reviewable diffs). */
export function compactJson(value: unknown, indent = ''): string {
  const flat = JSON.stringify(value);
  if (flat === undefined || flat.length + indent.length <= 120 || value === null || typeof value !== 'object') return flat ?? 'null';
  const inner = indent + '  ';
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + compactJson(v, inner)).join(',\n')}\n${indent}]`;
  const rows = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return `{\n${rows.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${compactJson(v, inner)}`).join(',\n')}\n${indent}}`;
}
