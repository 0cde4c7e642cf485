// Every property must be able to fail. Each gets a deliberately broken model function (a mutant);
// the property catches it, and the failure names the seed, the path and a shrunk counterexample.
import { describe, expect, test } from 'vitest';
import { codecFor, decode as realDecode } from '../model/codec.js';
import { diffLayouts } from '../model/layout-diff.js';
import { layoutFromCatalog } from '../model/layout.js';
import { VMCS12_FIELDS, VMCS12_MEMBERS } from '../model/catalog/vmcs12.js';
import { member } from '../model/catalog/types.js';
import { readBytes, vmwrite } from '../model/vmcs12-access.js';
import { failedControlRule, filterFactsFor, filterMsr } from '../model/evmcs-filter.js';
import { ok, type Group, type Target } from '../targets/target.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { runProperty, type PropertyOutcome } from '../suites/harness.js';
import { MODEL_DEPS, type ModelDeps } from '../suites/model-deps.js';
import { referenceTarget, type ReferenceModel } from '../targets/reference.js';
import { formatOutcome } from '../reports/format.js';

interface Mutant {
  property: string;
  what: string;
  model?: Partial<ReferenceModel>;
  deps?: Partial<ModelDeps>;
  /** operations the reference does not offer (yet), given to the mutant target with this group */
  offers?: { group: Group; ops: Partial<Target> };
}

/** The profile's eVMCS filter facts, served as a target would; `bug` breaks one answer. */
function filterTarget(bug: { ebx?: number; rule?: (r: string | null) => string | null }): Mutant['offers'] {
  const facts = filterFactsFor('linux-6.12')!;
  return {
    group: 'msr-filter',
    ops: {
      filterVmxMsrs: async (msrs, ebx) => ok(msrs.map((m) => filterMsr(facts, m.index, m.value, bug.ebx ?? ebx))),
      evmcsCheckControls: async (page) => {
        const fields = new Map(facts.checks.map((c) => { const m = VMCS12_MEMBERS.find((x) => x.name === c.field)!; return [c.field, readBytes(page, m.offset, m.size)]; }));
        const rule = (bug.rule ?? ((r) => r))(failedControlRule(facts, fields));
        return ok(rule === null ? { ok: true } : { ok: false, errno: 'EINVAL', rule });
      },
    },
  };
}

const MUTANTS: Mutant[] = [
  {
    property: 'vmcs12.codec.round-trip',
    what: 'decode drops the high word of 64-bit members',
    deps: {
      decode: (c, p) => {
        const r = realDecode(c, p);
        c.slots.forEach((s, i) => s.member === 'guest_rip' && (r.hi[i] = 0));
        return r;
      },
    },
  },
  {
    property: 'vmcs12.access.write-read',
    what: 'a _HIGH write stores a full 64-bit value',
    model: { vmwrite: (t, p, e, v) => vmwrite(t, p, e & 1n ? e & ~1n : e, e & 1n ? v << 32n : v) },
  },
  {
    property: 'layout.diff.matches-construction',
    what: 'the diff calls a shifted member unchanged',
    deps: { diffLayouts: (o, n) => { const d = diffLayouts(o, n); return { ...d, members: d.members.map((m) => (m.class === 'shifted' ? { ...m, class: 'unchanged' } : m)) }; } },
  },
  {
    property: 'layout.diff.never-misses-corruption',
    what: 'the diff only looks at member names, not offsets',
    deps: { diffLayouts: (o, n) => { const d = diffLayouts(o, n); return { ...d, newReadsOld: { ...d.newReadsOld, corrupted: d.newReadsOld.corrupted.filter((c) => !c.reason.includes('wrote it at')) } }; } },
  },
  {
    property: 'layout.target-matches-profile',
    what: 'the target moved guest_rip into padding',
    model: {
      vmcs12Layout: () =>
        layoutFromCatalog(
          { structure: 'vmcs12', name: 'moved', revision: 0x11e57ed0, size: 4096 },
          VMCS12_MEMBERS.map((m) => (m.name === 'guest_rip' ? member('guest_rip', 936, 'natural') : m.name === 'padding32' ? member('padding32', 944, 'u32', { count: 4, padding: true }) : m)),
          VMCS12_FIELDS,
        ),
    },
  },
  {
    property: 'vmcs12.access.matches-profile',
    what: 'a 16-bit VMWRITE lands in the 32-bit field of the same index',
    model: { vmwrite: (t, p, e, v) => (e >> 13n === 0n && !(e & 1n) && t.slots.has(Number(e)) ? vmwrite(t, p, e | 0x4000n, v) : vmwrite(t, p, e, v)) },
  },
  {
    property: 'msr-filter.filter.matches-profile',
    what: 'the filter ignores the Hyper-V PERF_GLOBAL_CTRL CPUID bit',
    offers: filterTarget({ ebx: 1 }),
  },
  {
    property: 'msr-filter.check-controls.matches-profile',
    what: 'the control check never looks at the secondary controls',
    offers: filterTarget({ rule: (r) => (r === 'secondary_vm_exec_control' ? null : r) }),
  },
  {
    property: 'vmcs12.revisions.old-readable',
    what: 'the consumer memcpys an old-revision page instead of translating it',
    model: { readPage: (set, page) => ({ ok: true, revision: 0, translatedFrom: null, record: realDecode(codecFor(set.current), page) }) },
  },
];

describe('each property catches its mutant', () => {
  test('every property has a mutant', () => {
    expect(ALL_PROPERTIES.map((p) => p.id).filter((id) => !MUTANTS.some((m) => m.property === id))).toEqual([]);
  });

  test.each(MUTANTS)('$property: $what', async (m) => {
    const def = ALL_PROPERTIES.find((p) => p.id === m.property)!;
    const base = referenceTarget({ model: m.model ?? {}, name: 'mutant' });
    const target: Target = m.offers ? { ...base, ...m.offers.ops, groups: new Set([...base.groups, m.offers.group]) } : base;
    let outcome: PropertyOutcome = await runProperty(def, target, { seed: 1, runs: 300 }, { ...MODEL_DEPS, ...m.deps });
    for (const seed of [2, 3]) if (outcome.verdict !== 'fail') outcome = await runProperty(def, target, { seed, runs: 300 }, { ...MODEL_DEPS, ...m.deps });
    expect(outcome.verdict).toBe('fail');
    if (outcome.verdict !== 'fail') return;
    expect(outcome.path).toMatch(/^\d+(:\d+)*$/);
    expect(outcome.counterexample.summary.length).toBeGreaterThan(0);
    expect(outcome.counterexample.input.length).toBeGreaterThan(0);
    const text = formatOutcome(outcome, { target: 'reference', profile: 'linux-6.12' }).join('\n');
    expect(text).toContain(`seed ${outcome.seed}`);
    expect(text).toContain(`path ${outcome.path}`);
    expect(text).toContain(`replay: nvmx-conformance replay ${m.property} --seed ${outcome.seed} --path ${outcome.path}`);
    // replaying the path reproduces the same shrunk counterexample in one run
    const again = await runProperty(def, target, { seed: outcome.seed, path: outcome.path }, { ...MODEL_DEPS, ...m.deps });
    expect(again.verdict).toBe('fail');
    if (again.verdict === 'fail') expect(again.counterexample.diff).toEqual(outcome.counterexample.diff);
  });
});

test('a shrunk vmcs12 counterexample is a short field diff, not a dump of every field', async () => {
  const def = ALL_PROPERTIES.find((p) => p.id === 'vmcs12.codec.round-trip')!;
  const o = await runProperty(def, referenceTarget(), { seed: 5, runs: 300 }, { ...MODEL_DEPS, ...MUTANTS[0]!.deps });
  expect(o.verdict).toBe('fail');
  if (o.verdict === 'fail') {
    expect(o.counterexample.diff).toEqual([{ field: 'guest_rip', offset: 544, expected: '0x0000000100000000', actual: '0x0000000000000000' }]);
  }
});
