// The reference target: the model, in process, behind the target interface. Mutant tests build it
// with one model function replaced, so every property is shown to catch a broken implementation.
import { codecFor, encode } from '../model/codec.js';
import { compileLayout, toDescriptor, type Layout, type LayoutDescriptor } from '../model/layout.js';
import { DEFAULT_PROFILE, findProfile, type Profile } from '../model/profiles.js';
import { readPage, type RevisionSet } from '../model/revisions.js';
import { accessTableFor, vmread, vmwrite } from '../model/vmcs12-access.js';
import { ok, unsupported, type Group, type RevisionRead, type RevisionSetDescriptor, type Target, type Vmcs12Op } from './target.js';

/** The model functions a reference target answers with; mutants replace one of them. */
export interface ReferenceModel {
  vmread: typeof vmread;
  vmwrite: typeof vmwrite;
  readPage: typeof readPage;
  vmcs12Layout: (profile: Profile) => Layout;
}

export const REFERENCE_MODEL: ReferenceModel = { vmread, vmwrite, readPage, vmcs12Layout: (p) => p.vmcs12 };

export const TOOL_VERSION = '0.1.0';

export function referenceTarget(opts: { profile?: string; model?: Partial<ReferenceModel>; name?: string } = {}): Target {
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
  const groups: ReadonlySet<Group> = new Set<Group>(['layout', 'vmcs12-access', 'layout-revisions']);
  return {
    identity: { name: opts.name ?? 'reference', version: TOOL_VERSION, profile: profile.name },
    groups,
    async layout(structure) {
      if (structure !== 'vmcs12') return { status: 'unsupported', reason: `the ${structure} layout is not modelled yet` };
      return ok(toDescriptor(layout));
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
    evmcsToVmcs12: async () => unsupported('the eVMCS model is not built yet'),
    vmcs12ToEvmcs: async () => unsupported('the eVMCS model is not built yet'),
    filterVmxMsrs: async () => unsupported('the MSR filter model is not built yet'),
    evmcsCheckControls: async () => unsupported('the eVMCS control check is not built yet'),
    async close() {},
  };
}
