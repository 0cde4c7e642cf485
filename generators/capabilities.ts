// VMX capability sets (consistent by construction: allowed-0 within allowed-1, default-1 bits on,
// TRUE MSRs as the SDM relates them), Hyper-V nested CPUID bits, and vmcs12 controls drawn inside
// a capability set or one bit outside it.
import fc from 'fast-check';
import { ALWAYSON, CONTROL_MSRS, MSR, type MsrSet } from '../model/vmx-msrs.js';
import { DEFAULT_VMX_BASIC } from '../model/vmentry/caps.js';
import type { ControlClass } from '../model/catalog/vmx-controls.js';

/** Allowed-1 words: often everything, often what a real host has (most bits), sometimes sparse. */
const allowed1 = fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 0, max: 0xffffffff }).map((x) => (x | (x >>> 3)) >>> 0), fc.integer({ min: 0, max: 0xffffffff }));

const join = (l: number, h: number) => (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);

/**
 * One consistent capability set, shaped as KVM advertises nested capabilities: allowed-1 bits vary,
 * allowed-0 holds only the default-1 bits (the TRUE MSRs may clear some of them). The filter never
 * changes allowed-0, so a set whose allowed-0 had a bit the filter hides would filter into a
 * self-contradictory MSR; KVM's own values cannot, and that is what L1 guests see.
 */
export const capabilitySet: fc.Arbitrary<MsrSet> = fc
  .record({
    pin: allowed1,
    proc: allowed1,
    exit: allowed1,
    entry: allowed1,
    proc2: allowed1,
    trueClears: fc.nat(),
    vmfunc: fc.oneof(fc.constant(0), fc.constant(1), fc.nat(0xff)),
  })
  .map((r) => {
    const m = new Map<number, bigint>();
    const classes = { pin: MSR.PINBASED_CTLS, proc: MSR.PROCBASED_CTLS, exit: MSR.EXIT_CTLS, entry: MSR.ENTRY_CTLS } as const;
    for (const [c, index] of Object.entries(classes) as [keyof typeof classes, number][]) {
      const d = ALWAYSON[c];
      const high = (r[c] | d) >>> 0; // a default-1 bit is necessarily allowed to be 1
      const trueLow = (d & ~r.trueClears) >>> 0; // TRUE may clear default-1 bits
      m.set(index, join((trueLow | d) >>> 0, high));
      m.set(CONTROL_MSRS.find((x) => x.trueOf === index)!.index, join(trueLow, high));
    }
    m.set(MSR.PROCBASED_CTLS2, join(0, r.proc2)); // secondary controls have no default-1 bits
    m.set(MSR.VMFUNC, BigInt(r.vmfunc));
    m.set(MSR.BASIC, DEFAULT_VMX_BASIC);
    m.set(MSR.VMCS_ENUM, 0x32n);
    return m;
  });

const lo32 = (v: bigint) => Number(v & 0xffffffffn) >>> 0;
const hi32 = (v: bigint) => Number(v >> 32n) >>> 0;
/** the TRUE control MSRs and the secondary controls: what a VMM restores and KVM narrows */
const RESTORABLE: readonly { index: number; defaultOnes: number; twin?: number }[] = [
  ...(['pin', 'proc', 'exit', 'entry'] as const).map((c) => {
    const twin = CONTROL_MSRS.find((x) => x.controls === c && x.defaultOnes !== undefined)!;
    return { index: CONTROL_MSRS.find((x) => x.trueOf === twin.index)!.index, defaultOnes: ALWAYSON[c], twin: twin.index };
  }),
  { index: MSR.PROCBASED_CTLS2, defaultOnes: 0 },
];

/**
 * Capability sets a target that reports its vCPU's VMX MSRs (`Target.vmxMsrs`) accepts from a VMM
 * (host-initiated KVM_SET_MSRS): each TRUE control MSR and the secondary controls keep their
 * allowed-0 bits and lose some allowed-1 bits, the non-TRUE twins are derived as KVM derives them
 * (allowed-0 | *_ALWAYSON_WITHOUT_TRUE_MSR), VMFUNC loses bits, and every other MSR is the target's.
 */
export function capabilitySetWithin(caps: MsrSet): fc.Arbitrary<MsrSet> {
  const present = RESTORABLE.filter((r) => caps.has(r.index));
  return fc.record({ keep: fc.array(allowed1, { minLength: present.length, maxLength: present.length }), vmfunc: fc.oneof(fc.constant(0xffffffff), fc.nat()) }).map(({ keep, vmfunc }) => {
    const m = new Map(caps);
    present.forEach((r, k) => {
      const v = caps.get(r.index)!;
      const low = lo32(v);
      const high = ((hi32(v) & keep[k]!) | low | (r.defaultOnes & hi32(v))) >>> 0;
      m.set(r.index, join(low, high));
      if (r.twin !== undefined && caps.has(r.twin)) m.set(r.twin, join((low | r.defaultOnes) >>> 0, high));
    });
    if (caps.has(MSR.VMFUNC)) m.set(MSR.VMFUNC, caps.get(MSR.VMFUNC)! & BigInt(vmfunc >>> 0));
    return m;
  });
}

/** VM_EXIT_HOST_ADDR_SPACE_SIZE: every 64-bit KVM offers it (nested_vmx_setup_exit_ctls, CONFIG_X86_64) */
const HOST_ADDR_SPACE = 0x200n << 32n;

/**
 * Capability sets as a 64-bit host's KVM offers them: 19 in 20 keep (or get back, where the set came
 * from `base` narrowed) the host address-space-size exit control; the rest force a 32-bit host, which
 * a 64-bit L1 cannot VMLAUNCH into.
 */
export const mostlyHost64 = (sets: fc.Arbitrary<MsrSet>, offered = true): fc.Arbitrary<MsrSet> =>
  fc.tuple(sets, fc.nat(19)).map(([m, k]) => {
    if (k === 0 || !offered) return m;
    const out = new Map(m);
    for (const i of [MSR.EXIT_CTLS, MSR.TRUE_EXIT_CTLS]) if (out.has(i)) out.set(i, out.get(i)! | HOST_ADDR_SPACE);
    return out;
  });

/** Hyper-V CPUID 0x4000000A EBX: bit 0 (PERF_GLOBAL_CTRL) is the one that matters; others ride along. */
export const hvNestedEbx = fc.oneof(fc.constant(0), fc.constant(1), fc.nat());

const CLASS_MSR: Record<Exclude<ControlClass, 'vmfunc'>, number> = {
  pin: MSR.TRUE_PINBASED_CTLS,
  proc: MSR.TRUE_PROCBASED_CTLS,
  exit: MSR.TRUE_EXIT_CTLS,
  entry: MSR.TRUE_ENTRY_CTLS,
  proc2: MSR.PROCBASED_CTLS2,
};

export interface Controls {
  pin_based_vm_exec_control: number;
  cpu_based_vm_exec_control: number;
  secondary_vm_exec_control: number;
  vm_exit_controls: number;
  vm_entry_controls: number;
  vm_function_control: bigint;
}

/** One 32-bit word per control field, drawn before the capability set it must fit is known. */
const word32 = fc.integer({ min: 0, max: 0xffffffff });
export const controlWords = fc.record({ pin: word32, proc: word32, proc2: word32, exit: word32, entry: word32, vmfunc: word32 });
export type ControlWords = typeof controlWords extends fc.Arbitrary<infer W> ? W : never;

/** vmcs12 controls within a capability set: allowed-0 bits on, and the drawn word's bits that allowed-1 permits. */
export function controlsWithin(msrs: MsrSet, w: ControlWords): Controls {
  const fit = (c: Exclude<ControlClass, 'vmfunc'>) => {
    const v = msrs.get(CLASS_MSR[c]) ?? 0n;
    return ((w[c] & Number(v >> 32n)) | Number(v & 0xffffffffn)) >>> 0;
  };
  return {
    pin_based_vm_exec_control: fit('pin'),
    cpu_based_vm_exec_control: fit('proc'),
    secondary_vm_exec_control: fit('proc2'),
    vm_exit_controls: fit('exit'),
    vm_entry_controls: fit('entry'),
    vm_function_control: BigInt(w.vmfunc) & (msrs.get(MSR.VMFUNC) ?? 0n),
  };
}
