// What the VM-entry checks see: the vmcs12 by member name, the vCPU's nested capabilities, and the
// few pieces of vCPU state KVM consults (MAXPHYADDR, nested_run_pending, guest memory).
import type { CheckRule } from '../catalog/vmx-controls.js';
import type { Layout } from '../layout.js';
import { readBytes } from '../vmcs12-access.js';
import { BIT } from './bits.js';
import type { NestedCaps } from './caps.js';

export interface CheckInput {
  /** a vmcs12 member by name (struct vmcs12 spelling), zero-extended */
  readonly f: (member: string) => bigint;
  readonly caps: NestedCaps;
  readonly maxPhyAddr: number;
  /** nested_run_pending: always on VMLAUNCH/VMRESUME, the RUN_PENDING flag on restore */
  readonly runPending: boolean;
  /** nested_evmcs_check_controls' rules when guest_cpuid_has_evmcs holds, else null */
  readonly evmcsCheck: readonly CheckRule[] | null;
  /**
   * the linear-address width of KVM's canonical checks on MSR values and descriptor bases (host
   * SYSENTER_ESP/EIP and bases, guest BNDCFGS, the MSR-load list): 48 or 57, from the profile's
   * revision and the host or L1 (model/vmentry/revision.ts msrAddressBits)
   */
  readonly msrAddressBits: number;
  /** a 4 KiB guest page (memory never written reads as zeros) */
  readonly guestPage: (gpa: bigint) => Uint8Array;
}

const readers = new WeakMap<Layout, Map<string, { offset: number; size: number }>>();

/** A member reader over a vmcs12 page, per layout (so old profiles read their own offsets). */
export function memberReader(layout: Layout, page: Uint8Array): (member: string) => bigint {
  let m = readers.get(layout);
  if (!m) {
    m = new Map(layout.members.filter((x) => !x.padding).map((x) => [x.name, { offset: x.offset, size: x.size }]));
    readers.set(layout, m);
  }
  const slots = m;
  return (name) => {
    const s = slots.get(name);
    if (!s) throw new RangeError(`vmcs12 has no member ${name}`);
    return readBytes(page, s.offset, s.size);
  };
}

/** The controls as KVM's nested_cpu_has* helpers read them: secondary controls only when activated. */
export class View {
  readonly pin: number;
  readonly proc: number;
  readonly proc2: number;
  readonly exit: number;
  readonly entry: number;
  constructor(readonly s: CheckInput) {
    this.pin = Number(s.f('pin_based_vm_exec_control'));
    this.proc = Number(s.f('cpu_based_vm_exec_control'));
    this.proc2 = this.proc & BIT.proc.secondary ? Number(s.f('secondary_vm_exec_control')) : 0;
    this.exit = Number(s.f('vm_exit_controls'));
    this.entry = Number(s.f('vm_entry_controls'));
  }
  has = (bit: number) => (this.proc & bit) !== 0;
  has2 = (bit: number) => (this.proc2 & bit) !== 0;
  pinHas = (bit: number) => (this.pin & bit) !== 0;
  exitHas = (bit: number) => (this.exit & bit) !== 0;
  entryHas = (bit: number) => (this.entry & bit) !== 0;
  get apicv(): boolean {
    return this.has2(BIT.proc2.x2apic | BIT.proc2.apicRegVirt | BIT.proc2.vid) || this.pinHas(BIT.pin.posted);
  }
  /** kvm_vcpu_is_legal_gpa: no bit at or above MAXPHYADDR */
  legal = (gpa: bigint) => gpa >> BigInt(this.s.maxPhyAddr) === 0n;
  legalAligned = (gpa: bigint, align: bigint) => gpa % align === 0n && this.legal(gpa);
  /** page_address_valid */
  page = (gpa: bigint) => this.legalAligned(gpa, 4096n);
  /** nested_vmx_check_msr_switch: 16-byte aligned, and the last entry's last byte legal */
  msrSwitchBad = (count: bigint, addr: bigint) => count !== 0n && (!this.legalAligned(addr, 16n) || !this.legal(addr + count * 16n - 1n));
  /** the host address-space size control: the host (L1) runs in 64-bit mode after the exit */
  get hostIa32e(): boolean {
    return this.exitHas(BIT.exit.hostAddrSpace);
  }
  get guestIa32e(): boolean {
    return this.entryHas(BIT.entry.ia32e);
  }
}
