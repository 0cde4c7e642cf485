// The reference target: the model, in process, behind the target interface. Mutant tests build it
// with one model function replaced, so every property is shown to catch a broken implementation.
import { codecFor, encode } from '../model/codec.js';
import { compileLayout, toDescriptor, type Layout, type LayoutDescriptor } from '../model/layout.js';
import { DEFAULT_PROFILE, findProfile, type Profile } from '../model/profiles.js';
import { readPage, type RevisionSet } from '../model/revisions.js';
import { accessTableFor, vmread, vmwrite } from '../model/vmcs12-access.js';
import { copyEnlightenedToVmcs12, copyVmcs12ToEnlightened } from '../model/evmcs.js';
import { evmcsCheckControls, filterVmxMsr, type MsrSet } from '../model/vmx-msrs.js';
import { applyOp, DEFAULT_HOOKS, Vcpu, type VcpuHooks } from '../model/nested/vcpu.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { vcpuProfile } from '../model/migration/step.js';
import { REFERENCE_VMMS, vmmLoad, vmmSave, vmmVersion, type ReferenceVmmName } from '../model/vmm/reference.js';
import { ok, unsupported, type Group, type RevisionRead, type RevisionSetDescriptor, type Target, type Vmcs12Op } from './target.js';

/** The model functions a reference target answers with; mutants replace one of them. */
export interface ReferenceModel {
  vmread: typeof vmread;
  vmwrite: typeof vmwrite;
  readPage: typeof readPage;
  vmcs12Layout: (profile: Profile) => Layout;
  /** the eVMCS layout the target describes (its copies go by the catalog) */
  evmcsLayout: (profile: Profile) => Layout | undefined;
  copyEnlightenedToVmcs12: typeof copyEnlightenedToVmcs12;
  copyVmcs12ToEnlightened: typeof copyVmcs12ToEnlightened;
  filterVmxMsr: typeof filterVmxMsr;
  evmcsCheckControls: typeof evmcsCheckControls;
  getNestedState: typeof getNestedState;
  setNestedState: typeof setNestedState;
  applyOp: typeof applyOp;
  hooks: VcpuHooks;
  /** the reference VMM's save and load (model/vmm/reference.ts) */
  vmmSave: typeof vmmSave;
  vmmLoad: typeof vmmLoad;
}

export const REFERENCE_MODEL: ReferenceModel = {
  vmread,
  vmwrite,
  readPage,
  vmcs12Layout: (p) => p.vmcs12,
  evmcsLayout: (p) => p.evmcs?.layout,
  copyEnlightenedToVmcs12,
  copyVmcs12ToEnlightened,
  filterVmxMsr,
  evmcsCheckControls,
  getNestedState,
  setNestedState,
  applyOp,
  hooks: DEFAULT_HOOKS,
  vmmSave,
  vmmLoad,
};

export const TOOL_VERSION = '0.1.0';

/**
 * The model in process. `vmm` picks the reference VMM behind the `vmm` group (model/vmm/reference.ts):
 * `qemu` (default) or `qemu-drops-vmx-flags`; the VMM step does not depend on the kernel profile.
 * `vmxMsrs` makes it a host offering those capabilities (a Bochs-like CPU, say): a vCPU a VMM gives
 * none starts with them, and the target reports them as the kvm: agent's hello does (Target.vmxMsrs).
 */
export function referenceTarget(opts: { profile?: string; model?: Partial<ReferenceModel>; name?: string; vmm?: ReferenceVmmName; vmxMsrs?: MsrSet } = {}): Target {
  const profile = findProfile(opts.profile ?? DEFAULT_PROFILE);
  if (!profile) throw new RangeError(`unknown profile ${opts.profile}`);
  const model = { ...REFERENCE_MODEL, ...opts.model };
  const layout = model.vmcs12Layout(profile);
  const table = accessTableFor(layout);
  const compiled = new WeakMap<LayoutDescriptor, Layout>();
  const compile = (d: LayoutDescriptor): Layout => {
    let l = compiled.get(d);
    if (!l) {
      const c = compileLayout(d);
      if (!c.ok) throw new RangeError(`bad layout ${d.name}: ${c.problems[0]?.path} ${c.problems[0]?.message}`);
      compiled.set(d, (l = c.value));
    }
    return l;
  };
  const ev = profile.evmcs;
  const noEvmcs = <T>() => unsupported<T>(`profile ${profile.name} has no eVMCS model (the spec gives no facts for it)`);
  const groups: ReadonlySet<Group> = new Set<Group>([
    'layout',
    'vmcs12-access',
    'layout-revisions',
    ...(ev ? (['evmcs-sync', 'msr-filter'] as const) : []),
    ...(profile.nested ? (['nested-state'] as const) : []),
    'vmm',
  ]);
  const vmm = opts.vmm ?? 'qemu';
  const noVersion = <T>(version: string | undefined) =>
    unsupported<T>(`the reference VMM ${vmm} has no stream version ${version} (it has ${REFERENCE_VMMS[vmm].info.streamVersions.join(', ')})`);
  const nested = profile.nested;
  // vCPUs exist on a kernel without the nested-state ioctls too (a migration's destination): they
  // behave as 4.19's, and GET and SET stay unsupported
  const vcpuBehaviour = vcpuProfile(profile);
  const vcpus = new Map<string, Vcpu>();
  let nextVcpu = 0;
  const noNested = <T>() => unsupported<T>(`profile ${profile.name} has no KVM_GET/SET_NESTED_STATE (KVM_CAP_NESTED_STATE came in 4.19)`);
  const vcpuOf = (id: string): Vcpu => {
    const v = vcpus.get(id);
    if (!v) throw new RangeError(`no vCPU ${id}`);
    return v;
  };
  return {
    identity: { name: opts.name ?? 'reference', version: TOOL_VERSION, profile: profile.name },
    groups,
    vmm: REFERENCE_VMMS[vmm].info,
    ...(opts.vmxMsrs ? { vmxMsrs: opts.vmxMsrs } : {}),
    async layout(structure) {
      if (structure === 'vmcs12') return ok(toDescriptor(layout));
      const evLayout = model.evmcsLayout(profile);
      return evLayout ? ok(toDescriptor(evLayout)) : noEvmcs();
    },
    async vmcs12Access(page: Uint8Array, ops: readonly Vmcs12Op[]) {
      const p = page.slice();
      const results = ops.map((o) => (o.op === 'read' ? model.vmread(table, p, o.encoding) : model.vmwrite(table, p, o.encoding, o.value)));
      return ok({ page: p, results });
    },
    async readRevisions(setDesc: RevisionSetDescriptor, page: Uint8Array) {
      const set: RevisionSet = { current: compile(setDesc.current), known: setDesc.known.map(compile) };
      const r = model.readPage(set, page);
      const out: RevisionRead = r.ok
        ? { accepted: true, translatedFrom: r.translatedFrom, page: encode(codecFor(set.current), r.record) }
        : { accepted: false, reason: r.reason };
      return ok(out);
    },
    async evmcsToVmcs12(evmcs, vmcs12, cleanFields) {
      if (!ev) return noEvmcs();
      return ok(model.copyEnlightenedToVmcs12(evmcs, vmcs12, cleanFields, { enlightenmentsGroup: ev.enlightenmentsGroup }).vmcs12);
    },
    async vmcs12ToEvmcs(vmcs12, evmcs) {
      return ev ? ok(model.copyVmcs12ToEnlightened(vmcs12, evmcs)) : noEvmcs();
    },
    async filterVmxMsrs(msrs, hvNestedEbx) {
      return ev ? ok(msrs.map((m) => model.filterVmxMsr(ev.filter, m.index, m.value, hvNestedEbx))) : noEvmcs();
    },
    async evmcsCheckControls(page) {
      if (!ev) return noEvmcs();
      const read = (name: string) => {
        const f = layout.fields.find((x) => x.member === name && !x.high)!;
        const r = vmread(table, page, BigInt(f.encoding));
        return r.ok ? r.value : 0n;
      };
      return ok(
        model.evmcsCheckControls(ev.check, {
          pin_based_vm_exec_control: Number(read('pin_based_vm_exec_control')),
          cpu_based_vm_exec_control: Number(read('cpu_based_vm_exec_control')),
          secondary_vm_exec_control: Number(read('secondary_vm_exec_control')),
          vm_exit_controls: Number(read('vm_exit_controls')),
          vm_entry_controls: Number(read('vm_entry_controls')),
          vm_function_control: read('vm_function_control'),
        }),
      );
    },
    async createVcpu(config) {
      const id = `vcpu${nextVcpu++}`;
      const host = opts.vmxMsrs && !config.vmxMsrs ? { vmxMsrs: opts.vmxMsrs } : {};
      vcpus.set(id, new Vcpu(vcpuBehaviour, { ...config, ...host }, model.hooks));
      return ok(id);
    },
    async guestOp(id, op) {
      return ok(model.applyOp(vcpuOf(id), op));
    },
    async getNestedState(id, userSize) {
      if (!nested) return noNested();
      const r = model.getNestedState(vcpuOf(id), userSize);
      return ok({ errno: r.errno, size: r.size, buffer: r.buffer, written: r.written });
    },
    async setNestedState(id, blob) {
      if (!nested) return noNested();
      const r = model.setNestedState(vcpuOf(id), blob);
      return ok({ ret: r.ret, errno: r.errno, rule: r.rule, ...(r.vmentryCheck !== undefined ? { vmentryCheck: r.vmentryCheck } : {}), reason: r.why });
    },
    async vmmSave(input) {
      return vmmVersion(vmm, input.version) === null ? noVersion(input.version) : ok(model.vmmSave(input, vmm));
    },
    async vmmLoad(input) {
      return vmmVersion(vmm, input.version) === null ? noVersion(input.version) : ok(model.vmmLoad(input, vmm));
    },
    async destroyVcpu(id) {
      vcpus.delete(id);
      return ok(null);
    },
    async close() {
      vcpus.clear();
    },
  };
}
