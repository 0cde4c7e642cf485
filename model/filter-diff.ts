// What an L1 can use under one profile's eVMCS filter but not under another's, bit by bit with names:
// the answer a fleet needs before migrating a Windows/Hyper-V L1 across kernels.
import type { ControlClass } from './catalog/vmx-controls.js';
import { hex } from './encoding.js';
import type { Profile } from './profiles.js';
import { ALWAYSON, bitNames, CONTROL_MSRS, filterMsrSet, MSR, MSR_NAMES, type MsrSet } from './vmx-msrs.js';

export interface MsrDifference {
  readonly msr: string;
  readonly name: string;
  /** usable under `from`, hidden under `to` */
  readonly lost: { mask: string; bits: string[] };
  /** hidden under `from`, usable under `to` */
  readonly gained: { mask: string; bits: string[] };
}

export interface FilterDiff {
  readonly from: string;
  readonly to: string;
  readonly hvNestedEbx: number;
  readonly differences: readonly MsrDifference[];
  /** what the comparison had to assume (empty when the user gave the MSRs) */
  readonly assumptions: readonly string[];
}

/**
 * KVM's nested capability set depends on the host CPU and module parameters, which the spec does
 * not fix (kernel-facts §13). Without user MSRs we assume a host that offers every control: the
 * diff then shows every bit either filter can hide. The default-1 bits are set as KVM sets them.
 */
export function assumedFullCapabilities(): { msrs: Map<number, bigint>; assumptions: string[] } {
  const msrs = new Map<number, bigint>();
  for (const c of CONTROL_MSRS) {
    const d = c.defaultOnes ?? 0;
    msrs.set(c.index, (0xffffffffn << 32n) | BigInt(d));
  }
  msrs.set(MSR.VMFUNC, 0xffffffffn);
  return {
    msrs,
    assumptions: [
      'allowed-1 of every control MSR is all ones (a host offering every control); real hosts offer less, so real differences are a subset',
      `allowed-0 holds only the default-1 bits (pin ${hex(ALWAYSON.pin)}, proc ${hex(ALWAYSON.proc)}, exit ${hex(ALWAYSON.exit)}, entry ${hex(ALWAYSON.entry)}); TRUE MSRs none`,
      'IA32_VMX_VMFUNC offers VM functions 0..31',
    ],
  };
}

const controlsOf = (i: number): ControlClass => (i === MSR.VMFUNC ? 'vmfunc' : CONTROL_MSRS.find((c) => c.index === i)!.controls);

export function filterDiff(from: Profile, to: Profile, msrs: MsrSet, hvNestedEbx: number, assumptions: readonly string[] = []): FilterDiff {
  if (!from.evmcs || !to.evmcs) throw new RangeError(`profile ${!from.evmcs ? from.name : to.name} has no eVMCS filter model`);
  const a = filterMsrSet(from.evmcs.filter, msrs, hvNestedEbx);
  const b = filterMsrSet(to.evmcs.filter, msrs, hvNestedEbx);
  const differences: MsrDifference[] = [];
  for (const [i] of msrs) {
    if (i !== MSR.VMFUNC && !CONTROL_MSRS.some((c) => c.index === i)) continue;
    // what may be set: allowed-1 half, or VMFUNC's low half
    const usable = (v: bigint) => Number(i === MSR.VMFUNC ? v & 0xffffffffn : v >> 32n);
    const ua = usable(a.get(i)!);
    const ub = usable(b.get(i)!);
    const lost = (ua & ~ub) >>> 0;
    const gained = (ub & ~ua) >>> 0;
    if (!lost && !gained) continue;
    differences.push({
      msr: hex(i),
      name: MSR_NAMES[i]!,
      lost: { mask: hex(lost, 8), bits: bitNames(controlsOf(i), lost) },
      gained: { mask: hex(gained, 8), bits: bitNames(controlsOf(i), gained) },
    });
  }
  return { from: from.name, to: to.name, hvNestedEbx, differences, assumptions };
}
