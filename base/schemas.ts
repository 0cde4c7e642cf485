// The published JSON Schemas (reports/schema/*.schema.json) and their ajv validators. Every
// descriptor and report is validated when read and when written.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

export type SchemaName = 'report' | 'layout' | 'layout-diff' | 'waivers' | 'msrs' | 'vcpu' | 'guest-ops' | 'nested-spec' | 'matrix' | 'target-protocol' | 'golden-manifest' | 'golden-recipe';
// every schema is registered with the one ajv instance, so one can $ref another by its $id
const SCHEMA_NAMES: readonly SchemaName[] = ['report', 'layout', 'layout-diff', 'waivers', 'msrs', 'vcpu', 'guest-ops', 'nested-spec', 'matrix', 'target-protocol', 'golden-manifest', 'golden-recipe'];

/** The package root: where package.json is, from source (tests) or from dist/ (the bin). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the nvmx-conformance package root');
    dir = up;
  }
  return dir;
}

export const schemaPath = (name: SchemaName): string => join(packageRoot(), 'reports', 'schema', `${name}.schema.json`);

const ajv = new Ajv2020.default({ allErrors: true, strict: true, strictRequired: false });
// protocol messages are checked on every request: a validator that stops at the first error
// answers the common (valid) case several times faster; the thorough one explains a failure
const fastAjv = new Ajv2020.default({ allErrors: false, strict: true, strictRequired: false });
const validators = new Map<SchemaName, ValidateFunction>();
const fastValidators = new Map<string, ValidateFunction>();

/** Schemas another one refers to by $id, loaded first. */
const DEPENDS: Partial<Record<SchemaName, SchemaName[]>> = { 'target-protocol': ['layout', 'vcpu', 'guest-ops', 'msrs'] };

const schemaText = (name: SchemaName): { $id: string } => JSON.parse(readFileSync(schemaPath(name), 'utf8'));

let ids: Map<SchemaName, string> | undefined;

/** A schema's $id; the first call registers every schema (cheap: compiling waits for first use). */
function idOf(name: SchemaName): string {
  if (!ids) {
    ids = new Map();
    for (const n of SCHEMA_NAMES) {
      const s = schemaText(n);
      ajv.addSchema(s);
      ids.set(n, s.$id);
    }
  }
  return ids.get(name)!;
}

/** A schema's validator, compiled when first asked for: compiling all of them cost every process over a second. */
function validator(name: SchemaName): ValidateFunction {
  let v = validators.get(name);
  if (!v) validators.set(name, (v = ajv.getSchema(idOf(name))!));
  return v;
}

const fastAdded = new Set<SchemaName>();

function defValidator(instance: typeof ajv, name: SchemaName, def: string): ValidateFunction {
  const id = idOf(name);
  if (instance === fastAjv)
    for (const n of [...(DEPENDS[name] ?? []), name])
      if (!fastAdded.has(n)) {
        fastAjv.addSchema(schemaText(n));
        fastAdded.add(n);
      }
  const v = instance.getSchema(`${id}#/$defs/${def}`);
  if (!v) throw new Error(`schema ${name} has no $defs/${def}`);
  return v;
}

/** Like validate, against one of the schema's $defs (e.g. the protocol's "hello"). */
export function validateDef(name: SchemaName, def: string, data: unknown): string[] {
  const key = `${name}#${def}`;
  let fast = fastValidators.get(key);
  if (!fast) fastValidators.set(key, (fast = defValidator(fastAjv, name, def)));
  if (fast(data)) return [];
  const v = defValidator(ajv, name, def);
  if (v(data)) return [];
  return describe(v.errors ?? []);
}

/** Validates against a definition inside a schema, e.g. ("nested-spec", "/$defs/page"). */
export function validateAt(name: SchemaName, pointer: string, data: unknown): string[] {
  const v = ajv.getSchema(`${idOf(name)}#${pointer}`);
  if (!v) throw new Error(`no schema at ${idOf(name)}#${pointer}`);
  return v(data) ? [] : describe(v.errors ?? []);
}

/** Problems as "JSON pointer: message", most specific first; [] when valid. */
export function validate(name: SchemaName, data: unknown): string[] {
  const v = validator(name);
  if (v(data)) return [];
  return describe(v.errors ?? []);
}

function describe(errors: readonly ErrorObject[]): string[] {
  // oneOf/anyOf/if wrappers repeat what their branches say; keep the leaf messages
  const leaves = errors.filter((e) => !['oneOf', 'anyOf', 'if', 'allOf'].includes(e.keyword));
  const list = leaves.length ? leaves : errors;
  return list.map((e) => {
    const where = e.instancePath || '/';
    if (e.keyword === 'additionalProperties') return `${where}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    if (e.keyword === 'const') return `${where}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    if (e.keyword === 'enum') return `${where}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}`;
    return `${where}: ${e.message ?? e.keyword}`;
  });
}
