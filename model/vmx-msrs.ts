// VMX capability MSRs (0x480..0x491): what a consistent capability set is, the eVMCS filter a guest
// RDMSR sees, and nested_evmcs_check_controls (kernel-facts §6), per profile.
import { CONTROL_BIT_NAMES, type CheckRule, type ControlClass, type FilterRule } from './catalog/vmx-controls.js';
import { hex } from './encoding.js';

export const MSR = {
  BASIC: 0x480,
  PINBASED_CTLS: 0x481,
  PROCBASED_CTLS: 0x482,
  EXIT_CTLS: 0x483,
  ENTRY_CTLS: 0x484,
  MISC: 0x485,
  CR0_FIXED0: 0x486,
  CR0_FIXED1: 0x487,
  CR4_FIXED0: 0x488,
  CR4_FIXED1: 0x489,
  VMCS_ENUM: 0x48a,
  PROCBASED_CTLS2: 0x48b,
  EPT_VPID_CAP: 0x48c,
  TRUE_PINBASED_CTLS: 0x48d,
  TRUE_PROCBASED_CTLS: 0x48e,
  TRUE_EXIT_CTLS: 0x48f,
  TRUE_ENTRY_CTLS: 0x490,
  VMFUNC: 0x491,
} as const;

export const MSR_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(MSR).map(([k, v]) => [v, `IA32_VMX_${k}`]));

/** A control MSR: allowed-0 settings (must be 1) in bits 31:0, allowed-1 settings (may be 1) in 63:32. */
export interface ControlMsr {
  readonly index: number;
  readonly controls: ControlClass;
  /** the non-TRUE MSR's *_ALWAYSON_WITHOUT_TRUE_MSR default-1 bits, for TRUE MSRs the non-TRUE twin */
  readonly defaultOnes?: number;
  readonly trueOf?: number;
}

/** *_ALWAYSON_WITHOUT_TRUE_MSR (kernel-facts §6.1) */
export const ALWAYSON = { pin: 0x16, proc: 0x0401e172, exit: 0x00036dff, entry: 0x000011ff } as const;

export const CONTROL_MSRS: readonly ControlMsr[] = [
  { index: MSR.PINBASED_CTLS, controls: 'pin', defaultOnes: ALWAYSON.pin },
  { index: MSR.PROCBASED_CTLS, controls: 'proc', defaultOnes: ALWAYSON.proc },
  { index: MSR.EXIT_CTLS, controls: 'exit', defaultOnes: ALWAYSON.exit },
  { index: MSR.ENTRY_CTLS, controls: 'entry', defaultOnes: ALWAYSON.entry },
  { index: MSR.PROCBASED_CTLS2, controls: 'proc2' },
  { index: MSR.TRUE_PINBASED_CTLS, controls: 'pin', trueOf: MSR.PINBASED_CTLS },
  { index: MSR.TRUE_PROCBASED_CTLS, controls: 'proc', trueOf: MSR.PROCBASED_CTLS },
  { index: MSR.TRUE_EXIT_CTLS, controls: 'exit', trueOf: MSR.EXIT_CTLS },
  { index: MSR.TRUE_ENTRY_CTLS, controls: 'entry', trueOf: MSR.ENTRY_CTLS },
];

export type MsrSet = ReadonlyMap<number, bigint>;

const lo = (v: bigint) => Number(v & 0xffffffffn);
const hi = (v: bigint) => Number(v >> 32n);
const join = (l: number, h: number) => (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);

/** The rules a valid capability set obeys; each problem is one line naming the MSR. */
export function capabilityProblems(msrs: MsrSet): string[] {
  const out: string[] = [];
  for (const c of CONTROL_MSRS) {
    const v = msrs.get(c.index);
    if (v === undefined) continue;
    const name = MSR_NAMES[c.index];
    if ((lo(v) & ~hi(v)) >>> 0) out.push(`${name}: allowed-0 bits ${hex((lo(v) & ~hi(v)) >>> 0, 8)} are not allowed-1`);
    if (c.defaultOnes !== undefined && ((c.defaultOnes & ~lo(v)) >>> 0))
      out.push(`${name}: default-1 bits ${hex((c.defaultOnes & ~lo(v)) >>> 0, 8)} must be set in the allowed-0 half`);
    if (c.trueOf !== undefined) {
      const twin = msrs.get(c.trueOf);
      if (twin === undefined) continue;
      const d = CONTROL_MSRS.find((x) => x.index === c.trueOf)!.defaultOnes!;
      if (hi(twin) !== hi(v)) out.push(`${name}: allowed-1 half differs from ${MSR_NAMES[c.trueOf]}`);
      if ((lo(v) | d) >>> 0 !== lo(twin)) out.push(`${name}: allowed-0 half plus the default-1 bits must equal ${MSR_NAMES[c.trueOf]}'s`);
    }
  }
  return out;
}

/**
 * nested_evmcs_filter_control_msr: a guest RDMSR of a VMX MSR with eVMCS enabled. Exactly one half
 * changes; the PERF_GLOBAL_CTRL load controls go unless Hyper-V CPUID 0x4000000A.EBX bit 0 is set.
 */
export function filterVmxMsr(rules: readonly FilterRule[], index: number, value: bigint, hvNestedEbx: number): bigint {
  const r = rules.find((x) => x.msr === index);
  if (!r) return value;
  const mask = hvNestedEbx & 1 ? r.mask : r.maskWithoutPerfGlobalCtrl;
  const apply = (half: number) => (r.op === 'keep' ? half & mask : half & ~mask) >>> 0;
  return r.half === 'high' ? join(lo(value), apply(hi(value))) : join(apply(lo(value)), hi(value));
}

export function filterMsrSet(rules: readonly FilterRule[], msrs: MsrSet, hvNestedEbx: number): Map<number, bigint> {
  return new Map([...msrs].map(([i, v]) => [i, filterVmxMsr(rules, i, v, hvNestedEbx)]));
}

/** The controls of a vmcs12 that nested_evmcs_check_controls looks at. */
export interface EvmcsControls {
  readonly pin_based_vm_exec_control: number;
  readonly cpu_based_vm_exec_control: number;
  readonly secondary_vm_exec_control: number;
  readonly vm_exit_controls: number;
  readonly vm_entry_controls: number;
  readonly vm_function_control: bigint;
}

export type ControlCheckResult = { ok: true } | { ok: false; errno: 'EINVAL'; rule: string };

/**
 * nested_evmcs_check_controls: first failing rule gives -EINVAL. The raw secondary field is checked
 * even when ACTIVATE_SECONDARY_CONTROLS is clear, and the PERF_GLOBAL_CTRL CPUID bit is ignored.
 */
export function evmcsCheckControls(rules: readonly CheckRule[], c: EvmcsControls): ControlCheckResult {
  for (const r of rules) {
    const v = c[r.field];
    let bad: boolean;
    if (r.kind === 'high-bits') bad = BigInt(v) >> 32n !== 0n;
    else {
      const low = Number(BigInt(v) & 0xffffffffn);
      bad = (r.kind === 'deny' ? low & r.mask : low & ~r.mask) >>> 0 !== 0;
    }
    if (bad) return { ok: false, errno: 'EINVAL', rule: r.rule };
  }
  return { ok: true };
}

export function bitNames(controls: ControlClass, bits: number): string[] {
  const out: string[] = [];
  for (let b = 0; b < 32; b++) if ((bits >>> b) & 1) out.push(CONTROL_BIT_NAMES[controls][b] ?? `bit ${b}`);
  return out;
}

/** The meet of two capability sets, what a pool of hosts can all offer: allowed-1 AND, allowed-0 OR; VMFUNC AND. */
export function meet(a: MsrSet, b: MsrSet): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const [i, va] of a) {
    const vb = b.get(i);
    if (vb === undefined) continue;
    if (CONTROL_MSRS.some((c) => c.index === i)) out.set(i, join((lo(va) | lo(vb)) >>> 0, (hi(va) & hi(vb)) >>> 0));
    else if (i === MSR.VMFUNC) out.set(i, va & vb);
    else out.set(i, va === vb ? va : va & vb);
  }
  return out;
}
