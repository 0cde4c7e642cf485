// What a mutant is (a reference target with one model function replaced, a one-line bug planted in
// a model source file, or one operation offered differently), and the consistently wrong targets of the differential `*.matches-profile`
// properties: each a one-field or one-bit bug applied everywhere, so that every self-consistency
// property of its group still passes (tests/matches-profile.test.ts shows both).
import { EVMCS_MEMBERS } from '../model/catalog/evmcs.js';
import { copyVmcs12ToEnlightened } from '../model/evmcs.js';
import { runPath } from '../model/migration/path.js';
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

/** A differential property's mutant, with the group whose self-consistency properties it passes. */
export interface DifferentialMutant extends Mutant {
  readonly group: Group;
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
    group: 'migration',
    what: "the VMM reads errno after logging a failed restore: every failed hop reports ENOTTY (stdio's isatty check), not the ioctl's errno",
    field: /^hop \d+ outcome\.errno$/,
    model: { runPath: (p, h) => runPath(p, h).map((x) => (x.outcome.kind === 'failed' ? { ...x, outcome: { ...x.outcome, errno: 'ENOTTY' as const } } : x)) },
  },
];
