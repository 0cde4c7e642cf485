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
const DEPENDS: Partial<Record<SchemaName, SchemaName[]>> = { 'target-protocol': ['layout', 'vcpu', 'guest-ops'] };

const schemaText = (name: SchemaName): object => JSON.parse(readFileSync(schemaPath(name), 'utf8'));

let loaded = false;

/** Every schema file is added once, so that one schema can $ref another by its $id. */
function loadAll(): void {
  if (loaded) return;
  const dir = dirname(schemaPath('report'));
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.schema.json'))) ajv.addSchema(JSON.parse(readFileSync(join(dir, f), 'utf8')));
  loaded = true;
}

function validator(name: SchemaName): ValidateFunction {
  if (!validators.size) {
    const schemas = SCHEMA_NAMES.map((n) => [n, JSON.parse(readFileSync(schemaPath(n), 'utf8')) as { $id: string }] as const);
    for (const [, s] of schemas) ajv.addSchema(s);
    for (const [n, s] of schemas) validators.set(n, ajv.getSchema(s.$id)!);
  }
  return validators.get(name)!;
}

function defValidator(instance: typeof ajv, name: SchemaName, def: string): ValidateFunction {
  if (!instance.getSchema((validator(name).schema as { $id: string }).$id)) for (const n of [...(DEPENDS[name] ?? []), name]) instance.addSchema(schemaText(n));
  const v = instance.getSchema(`${(validator(name).schema as { $id: string }).$id}#/$defs/${def}`);
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
  const id = (validator(name).schema as { $id: string }).$id;
  const v = ajv.getSchema(`${id}#${pointer}`);
  if (!v) throw new Error(`no schema at ${id}#${pointer}`);
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
