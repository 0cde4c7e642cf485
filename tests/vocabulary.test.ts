// One errno and rule vocabulary (issue 15 item 6): the JSON schemas that list errnos or restore rules
// list exactly the model's (model/nested/constants.ts ERRNO, model/nested/rules.ts RESTORE_RULES),
// so a rule added to the model cannot be refused by the manifest's schema, nor a stale one accepted.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { ERRNO } from '../model/nested/constants.js';
import { RESTORE_RULES } from '../model/nested/rules.js';
import { UNKNOWN_REVISION } from '../golden/consume.js';
import { OP_RESULTS } from '../model/nested/vcpu.js';

const schema = (name: string) => JSON.parse(readFileSync(new URL(`../reports/schema/${name}.schema.json`, import.meta.url), 'utf8'));

/** Every object node of a schema that `pred` accepts, however deep. */
function find(node: unknown, pred: (n: Record<string, unknown>) => boolean): Record<string, unknown>[] {
  if (!node || typeof node !== 'object') return [];
  const n = node as Record<string, unknown>;
  return [...(pred(n) ? [n] : []), ...Object.values(n).flatMap((v) => find(v, pred))];
}

/** What one list has that the other lacks, both ways: empty when they agree. */
const disagreement = (schemaList: readonly string[], model: readonly string[]) => ({
  onlyInSchema: schemaList.filter((x) => !model.includes(x)),
  onlyInModel: model.filter((x) => !schemaList.includes(x)),
});
const AGREE = { onlyInSchema: [], onlyInModel: [] };

type Props = Record<string, { const?: string; enum?: string[] }>;
/** The manifest's schema of an `invalid` consumer result. */
const manifestResult = (): Props => (find(schema('golden-manifest'), (n) => (n.properties as Props | undefined)?.result?.const === 'invalid')[0]!.properties as Props);

test("the golden manifest's errno enum is the model's errnos", () => {
  expect(disagreement(manifestResult().errno!.enum ?? [], Object.keys(ERRNO))).toEqual(AGREE);
});

test("the golden manifest's rule enum is the model's restore rules and the page answer", () => {
  expect(disagreement(manifestResult().rule!.enum ?? [], [...RESTORE_RULES, UNKNOWN_REVISION])).toEqual(AGREE);
});

test("the protocol schema's errno description names the model's errnos", () => {
  const d = (schema('target-protocol').$defs.errno as { description: string }).description;
  const named = /The model answers ([^;]+);/.exec(d)?.[1]?.match(/E[A-Z0-9]+/g) ?? [];
  expect(disagreement(named, Object.keys(ERRNO))).toEqual(AGREE);
});

test("the protocol schema's guest-operation results are the model's (OP_RESULTS, not-retired included)", () => {
  const results = (schema('target-protocol').$defs['value-guest-op'] as { properties: Props }).properties.result!.enum ?? [];
  expect(disagreement(results, OP_RESULTS)).toEqual(AGREE);
});

test('a schema that drifts is caught both ways', () => {
  expect(disagreement(['EINVAL', 'EFAULT', 'E2BIG', 'ENOMEM', 'ENOTTY', 'EPERM'], Object.keys(ERRNO))).toEqual({ onlyInSchema: ['EPERM'], onlyInModel: [] });
  expect(disagreement(RESTORE_RULES.filter((r) => r !== 'V13b'), RESTORE_RULES)).toEqual({ onlyInSchema: [], onlyInModel: ['V13b'] });
});
