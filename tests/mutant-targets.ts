// What a mutant is (a reference target with one model function replaced, a one-line bug planted in
// a model source file, or one operation offered differently), and the consistently wrong targets of the differential `*.matches-profile`
// properties: each a one-field or one-bit bug applied everywhere, so that every self-consistency
// property of its group still passes (tests/matches-profile.test.ts shows both).
import { EVMCS_MEMBERS } from '../model/catalog/evmcs.js';
import { copyVmcs12ToEnlightened } from '../model/evmcs.js';
import { codecFor, decode } from '../model/codec.js';
import { diffLayouts } from '../model/layout-diff.js';
import { setNestedState } from '../model/nested/set.js';
import { readPage } from '../model/revisions.js';
import { getNestedState } from '../model/nested/get.js';
import { FLAGS } from '../model/nested/constants.js';
import { readBytes, writeBytes } from '../model/vmcs12-access.js';
import type { ModelDeps } from '../harness/model-deps.js';
import { referenceTarget, type ReferenceModel } from '../targets/reference.js';
import type { Group, Target } from '../targets/target.js';
import { plantBug } from './plant.js';

export interface Mutant {
  property: string;
  what: string;
  model?: Partial<ReferenceModel>;
  deps?: Partial<ModelDeps>;
  /** operations the reference does not offer (yet), given to the mutant target with this group */
  offers?: { group: Group; ops: Partial<Target> };
  /**
   * A one-line bug inside a model source file (tests/plant.ts), and which of the planted module's
   * functions replace the model's; loaded when the mutant's test runs, so a line that a refactor
   * removed fails that test alone, naming the line
   */
  planted?: { file: string; line: string; bug: string; use: (planted: Record<string, unknown>) => Pick<Mutant, 'model' | 'deps'> };
  /** why the property's failure cannot shrink (tests/expect-caught.ts then asserts it did not) */
  unshrinkable?: string;
}

/** The mutant with its planted bug loaded into its model functions. */
export async function withPlanted(m: Mutant): Promise<Mutant> {
  if (!m.planted) return m;
  const { model, deps } = m.planted.use(await plantBug<Record<string, unknown>>(m.planted.file, m.planted.line, m.planted.bug));
  return { ...m, model: { ...m.model, ...model }, deps: { ...m.deps, ...deps } };
}

/** The mutant's target: the reference with the mutant's model functions and operations. */
export function mutantTarget(m: Mutant): Target {
  const base = referenceTarget({ model: m.model ?? {}, name: 'mutant' });
  return m.offers ? { ...base, ...m.offers.ops, groups: new Set([...base.groups, m.offers.group]) } : base;
}

const EVMCS_INSTRUCTION_ERROR = EVMCS_MEMBERS.find((x) => x.name === 'vm_instruction_error')!.offset;

/**
 * A revision reader that starts from the page and fixes up only what the old revision had: a member
 * the old revision had no field under (appended, or carved out of its padding) keeps the page's
 * bytes instead of reading zero. Old writers leave padding zero, so a page they wrote hides it.
 */
const readPageKeepingNewFields: typeof readPage = (set, page) => {
  const r = readPage(set, page);
  if (!r.ok || r.translatedFrom === null) return r;
  const from = [...set.known].reverse().find((l) => l.revision === r.revision)!; // a later entry wins
  const fresh = new Set(diffLayouts(from, set.current).members.flatMap((m) => (m.class === 'appended' || m.class === 'used-padding') && !m.padding ? [m.new!.name] : []));
  const codec = codecFor(set.current);
  const onPage = decode(codec, page);
  const record = { lo: r.record.lo.slice(), hi: r.record.hi.slice(), rest: r.record.rest };
  codec.slots.forEach((slot, i) => {
    if (!fresh.has(slot.member)) return;
    record.lo[i] = onPage.lo[i]!;
    record.hi[i] = onPage.hi[i]!;
  });
  return { ...r, record };
};

/** A differential property's mutant, with the group whose self-consistency properties it passes. */
export interface DifferentialMutant extends Mutant {
  readonly group: Group;
  /** the properties that must miss it, where not all of the group's (by id) */
  readonly peers?: RegExp;
  /** the one diff field the shrunk counterexample names */
  readonly field: RegExp;
}

export const DIFFERENTIAL_MUTANTS: readonly DifferentialMutant[] = [
  {
    property: 'layout.evmcs.matches-profile',
    group: 'layout',
    what: 'the eVMCS descriptor puts SECONDARY_VM_EXEC_CONTROL in CONTROL_PROC (with the primary controls) instead of CONTROL_GRP1',
    field: /^field 0x401e SECONDARY_VM_EXEC_CONTROL: cleanGroup$/,
    model: {
      evmcsLayout: (p) => {
        const l = p.evmcs!.layout;
        return { ...l, fields: l.fields.map((f) => (f.member === 'secondary_vm_exec_control' ? { ...f, cleanGroup: 'CONTROL_PROC' } : f)) };
      },
    },
  },
  {
    property: 'evmcs.sync.matches-profile',
    group: 'evmcs-sync',
    what: 'vmcs12 -> eVMCS never writes vm_instruction_error (a field only copy-out writes)',
    field: /^vm_instruction_error \(NONE, out\)$/,
    model: {
      copyVmcs12ToEnlightened: (v, e) => {
        const out = copyVmcs12ToEnlightened(v, e);
        writeBytes(out, EVMCS_INSTRUCTION_ERROR, 4, readBytes(e, EVMCS_INSTRUCTION_ERROR, 4));
        return out;
      },
    },
  },
  {
    property: 'nested.matches-profile',
    group: 'nested-state',
    // not the migration properties: they move a guest between the target and the model of other
    // kernels, so each hop through the target compares it with them (mtf-asymmetry sees the lost flag)
    peers: /^(?!migration\.)/,
    what: 'GET drops MTF_PENDING (on the source and, restored, on the destination alike)',
    field: /^flags\.MTF_PENDING$/,
    model: {
      getNestedState: (v, n) => {
        const r = getNestedState(v, n);
        if (r.buffer.length) r.buffer[0] = r.buffer[0]! & ~FLAGS.MTF_PENDING;
        return r;
      },
    },
  },
  {
    property: 'migration.matches-profile',
    group: 'nested-state',
    // nested.matches-profile sees it too (it compares SET's errno): the migration properties are the ones that must not
    peers: /^migration\./,
    what: "an exec: adapter reads errno after logging a failed KVM_SET_NESTED_STATE: every failed SET on the target reports ENOTTY (stdio's isatty check), not the ioctl's errno",
    field: /^hop \d+ outcome\.errno$/,
    model: { setNestedState: (v, b) => { const r = setNestedState(v, b); return r.errno ? { ...r, errno: 'ENOTTY' as const } : r; } },
  },
  {
    property: 'vmcs12.revisions.matches-profile',
    group: 'layout-revisions',
    what: 'the revision reader labels every translation with the layout it translated to (the current one), not the revision it read',
    field: /^translatedFrom$/,
    model: {
      readPage: (set, page) => {
        const r = readPage(set, page);
        return r.ok && r.translatedFrom !== null ? { ...r, translatedFrom: set.current.name } : r;
      },
    },
  },
  {
    property: 'vmcs12.revisions.matches-profile',
    group: 'layout-revisions',
    what: 'translating an older revision, a member it had no field under (appended or carved out of padding) keeps the page bytes instead of reading zero',
    field: /^n\d+$/,
    model: { readPage: readPageKeepingNewFields },
  },
];
