// Check agrees with filter: a vmcs12 whose controls lie within the filtered MSRs passes
// nested_evmcs_check_controls, and one that uses a control the filter hid is rejected, except
// where the kernel is known to disagree with itself (named, and listed in the report by id).
import fc from 'fast-check';
import { codecFor, encode, recordFrom } from '../model/codec.js';
import { hex } from '../model/encoding.js';
import { MSR, type MsrSet } from '../model/vmx-msrs.js';
import { capabilitySet, controlsWithin, controlWords, hvNestedEbx, type Controls } from '../generators/capabilities.js';
import { profileOf } from '../harness/common.js';
import { must, Violation, type PropertyDef } from '../harness/property.js';

/**
 * Known exception EVMCS_CHECK_IGNORES_PERF_CPUID (kernel-facts §6.1): the filter hides the
 * PERF_GLOBAL_CTRL load controls unless Hyper-V CPUID 0x4000000A.EBX bit 0 is set, but the check
 * ignores that bit, so a vmcs12 using them passes anyway.
 */
export const PERF_GLOBAL_CTRL_LOADS = { vm_exit_controls: 0x1000, vm_entry_controls: 0x2000 } as const;

const TRUE_OF = {
  pin_based_vm_exec_control: MSR.TRUE_PINBASED_CTLS,
  cpu_based_vm_exec_control: MSR.TRUE_PROCBASED_CTLS,
  secondary_vm_exec_control: MSR.PROCBASED_CTLS2,
  vm_exit_controls: MSR.TRUE_EXIT_CTLS,
  vm_entry_controls: MSR.TRUE_ENTRY_CTLS,
} as const;

const FIELDS = [...(Object.keys(TRUE_OF) as (keyof typeof TRUE_OF)[]), 'vmfunc' as const];

/** The control bits the filter removed from what the host offers, per vmcs12 field. */
function hiddenBits(raw: MsrSet, filtered: MsrSet): Record<keyof typeof TRUE_OF, number> & { vmfunc: number } {
  const h = (i: number) => Number((raw.get(i)! >> 32n) & ~(filtered.get(i)! >> 32n));
  return {
    pin_based_vm_exec_control: h(MSR.TRUE_PINBASED_CTLS),
    cpu_based_vm_exec_control: h(MSR.TRUE_PROCBASED_CTLS),
    secondary_vm_exec_control: h(MSR.PROCBASED_CTLS2),
    vm_exit_controls: h(MSR.TRUE_EXIT_CTLS),
    vm_entry_controls: h(MSR.TRUE_ENTRY_CTLS),
    vmfunc: Number(raw.get(MSR.VMFUNC)! & ~filtered.get(MSR.VMFUNC)! & 0xffffffffn),
  };
}

export const checkAgreesWithFilter: PropertyDef = {
  id: 'evmcs.check.agrees-with-filter',
  description: 'Draws vmcs12 controls inside the filtered MSRs (must pass the eVMCS check) and with one hidden control set (must fail it, except the PERF_GLOBAL_CTRL loads).',
  invariant: 'a vmcs12 whose controls lie within the filtered MSRs passes the eVMCS check; one that sets a control the filter hid fails it, except the PERF_GLOBAL_CTRL loads the check lets through whatever the CPUID bit says',
  groups: ['msr-filter'],
  runs: 300,
  async build(ctx) {
    const v = profileOf(ctx.target).vmcs12;
    const c = codecFor(v);
    const page = (ctl: Controls) => encode(c, recordFrom(c, { ...ctl }));
    // the controls are drawn as raw words and fitted to the filtered MSRs the target answers with,
    // so they shrink with the rest of the case
    const cases = fc.record({ caps: capabilitySet, ebx: hvNestedEbx, words: controlWords, pick: fc.nat(31), fieldPick: fc.nat(FIELDS.length - 1) });
    return fc.asyncProperty(cases, async ({ caps, ebx, words, pick, fieldPick }) => {
      const list = [...caps].map(([index, value]) => ({ index, value }));
      const out = must(await ctx.target.filterVmxMsrs(list, ebx));
      const filtered = new Map(list.map((m, i) => [m.index, out[i]!]));
      // inside: must pass
      const inside = controlsWithin(filtered, words);
      const r = must(await ctx.target.evmcsCheckControls(page(inside)));
      if (!r.ok) throw new Violation(`controls within the filtered MSRs were rejected by rule "${r.rule}"`, Object.entries(inside).map(([k, x]) => ({ field: k, offset: -1, expected: 'accepted', actual: hex(x) })));
      // one hidden bit set, in a field the filter hid bits of: must fail, unless it is a named
      // exception; a case counts only when both halves are checked (a filter that hid nothing does not)
      const hidden = hiddenBits(caps, filtered);
      const withHidden = FIELDS.filter((f) => hidden[f] !== 0);
      fc.pre(withHidden.length > 0);
      const field = withHidden[fieldPick % withHidden.length]!;
      const bits = hidden[field];
      let bit = 0;
      for (let k = pick % 32, n = 0; n < 32; n++, k = (k + 1) % 32) if ((bits >>> k) & 1) { bit = 1 << k; break; }
      const outside: Controls = field === 'vmfunc' ? { ...inside, vm_function_control: inside.vm_function_control | BigInt(bit >>> 0) } : { ...inside, [field]: (inside[field] | bit) >>> 0 };
      const exception = field in PERF_GLOBAL_CTRL_LOADS && PERF_GLOBAL_CTRL_LOADS[field as keyof typeof PERF_GLOBAL_CTRL_LOADS] === bit && !(ebx & 1);
      const r2 = must(await ctx.target.evmcsCheckControls(page(outside)));
      if (r2.ok && !exception)
        throw new Violation(`${field} bit ${hex(bit >>> 0, 8)} is hidden by the filter but the eVMCS check accepts it`, [{ field, offset: -1, expected: 'EINVAL', actual: 'accepted' }]);
    });
  },
};

export const evmcsCheckSuite: readonly PropertyDef[] = [checkAgreesWithFilter];
