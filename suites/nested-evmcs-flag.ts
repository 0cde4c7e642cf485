// EVMCS only when active: on "flag when active" kernels (5.2+), GET sets KVM_STATE_NESTED_EVMCS iff
// an eVMCS is active or map-pending, never because the capability is merely enabled, and the flag
// survives back-to-back GET/SET cycles before KVM_RUN. Model-based: an abstract model of when an
// eVMCS is in use runs beside the target. On 4.20-5.1 the property fails: that failure is the
// historical bug (seed 003), reported as the expected verdict for those profiles.
import fc from 'fast-check';
import { readHeader } from '../model/nested/blob.js';
import { hdrRevision, VMCS12 } from '../model/catalog/by-name.js';
import { EVMCS_ACCEPTED_REVISIONS, KVM_EVMCS_VERSION } from '../model/catalog/evmcs.js';
import { VMCS12_REVISION } from '../model/catalog/vmcs12.js';
import { FLAGS, HEADER_SIZE, OFFSET, SIZE_WITH_SHADOW } from '../model/nested/constants.js';
import type { GuestOp, VcpuConfig } from '../model/nested/vcpu.js';
import { PAGES, vcpuConfig } from '../generators/nested.js';
import { profileOf } from '../harness/common.js';
import { must, Violation, type PropertyContext, type PropertyDef } from '../harness/property.js';
import { refusedAt } from '../harness/nested-common.js';

/** What the abstract model tracks: only what decides whether an eVMCS is in use. */
interface Model {
  config: VcpuConfig;
  evmcsEnabled: boolean;
  vmxon: boolean;
  guestMode: boolean;
  inSmm: boolean;
  /** the eVMCS page holds an accepted revision */
  evmcsPageValid: boolean;
  vpAssistEnlightened: boolean;
  /** an eVMCS is mapped or map-pending */
  active: boolean;
  /** restored map-pending: the next KVM_RUN (or nested VM-exit) looks it up in the VP-assist page */
  pending: boolean;
}

interface Real {
  ctx: PropertyContext;
  vcpu: string;
}

const nestedAllowed = (m: Model) => m.config.nested && m.config.vmxInCpuid;
const hasEvmcs = (m: Model) => m.config.hypervCpuid !== false && m.evmcsEnabled;

/**
 * KVM's eVMCS lookup (nested_vmx_handle_enlightened_vmptrld, kernel-facts §9, fidelity-audit F4/F10):
 * the VP-assist page naming no eVMCS releases it; a new GPA (or a pending one) is checked for its
 * revision, a wrong one releases it; the eVMCS in use is not checked again.
 */
function lookUp(m: Model): void {
  if (!hasEvmcs(m)) return;
  const changed = !m.active || m.pending;
  if (!m.vpAssistEnlightened) m.active = false;
  else if (changed) m.active = m.evmcsPageValid;
  m.pending = false;
}

/** A pending eVMCS is looked up by the first KVM_RUN or nested VM-exit after the restore. */
const servePending = (m: Model) => m.pending && lookUp(m);

class Op implements fc.AsyncCommand<Model, Real> {
  /** `before`: guest-memory set-up the operation needs (the VMXON region's revision id) */
  constructor(
    readonly op: GuestOp,
    readonly before: readonly GuestOp[] = [],
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    for (const b of this.before) must(await r.ctx.target.guestOp(r.vcpu, b));
    const res = must(await r.ctx.target.guestOp(r.vcpu, this.op));
    const okd = res.result === 'ok';
    switch (this.op.op) {
      case 'enable-evmcs':
        if (okd) m.evmcsEnabled = true;
        break;
      case 'vmxon':
        if (okd) m.vmxon = true;
        break;
      case 'vmxoff':
        if (okd) Object.assign(m, { vmxon: false, active: false, pending: false });
        break;
      case 'init-evmcs':
        m.evmcsPageValid = EVMCS_ACCEPTED_REVISIONS.includes(this.op.revision ?? KVM_EVMCS_VERSION);
        break;
      case 'set-vp-assist':
        m.vpAssistEnlightened = this.op.enlightenVmentry;
        break;
      case 'evmcs-entry':
        // in SMM VMX is parked (m.vmxon keeps what RSM restores): the VMRESUME is #UD
        if (m.vmxon && !m.inSmm && !m.guestMode) lookUp(m);
        if (okd) m.guestMode = true;
        break;
      case 'vmexit':
        if (okd) servePending(m);
        if (okd) m.guestMode = false;
        break;
      case 'smm-entry':
        if (okd && m.guestMode) servePending(m);
        if (okd) Object.assign(m, { inSmm: true, guestMode: false });
        break;
      case 'rsm':
        if (okd) m.inSmm = false;
        break;
    }
  }
  toString = () => JSON.stringify(this.op, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
}

/** GET, check the flag, SET the same blob back (no KVM_RUN between), GET again. */
class GetSetCycle implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    for (const round of [1, 2]) {
      const g = must(await r.ctx.target.getNestedState(r.vcpu, SIZE_WITH_SHADOW));
      const flag = (readHeader(g.buffer).flags & FLAGS.EVMCS) !== 0;
      const expected = nestedAllowed(m) && (m.vmxon || m.inSmm) && m.active;
      if (flag !== expected)
        throw new Violation(`GET #${round}: KVM_STATE_NESTED_EVMCS is ${flag ? 'set' : 'clear'} but an eVMCS is ${m.active ? 'in use' : 'not in use'} (capability ${m.evmcsEnabled ? 'enabled' : 'not enabled'})`, [
          { field: 'flags.EVMCS', offset: 0, expected: String(expected), actual: String(flag) },
        ]);
      const s = must(await r.ctx.target.setNestedState(r.vcpu, g.buffer.subarray(0, g.size)));
      // SET restores an eVMCS map-pending (even when it then fails at V12: no rollback, quirk Q2)
      m.pending = flag;
      // quirk EVMCS_RESUME_BEFORE_LAUNCH (see nested.round-trip): a first enlightened VMRESUME leaves
      // the vmcs12 without its revision id, and SET refuses the blob at V12
      const unrevised = flag && g.size > HEADER_SIZE && hdrRevision(VMCS12.read(g.buffer.subarray(OFFSET.vmcs12), 'hdr')) !== VMCS12_REVISION;
      if (refusedAt(s, 'V12') && unrevised) {
        m.guestMode = false; // V12 comes before guest mode is entered
        return;
      }
      if (s.ret !== 0) throw new Violation(`SET of the blob GET just produced failed: ${s.ret} at ${s.rule}`);
    }
  }
  toString = () => 'get-set-get-set';
}

class Run implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.ctx.target.guestOp(r.vcpu, { op: 'run' });
    servePending(m);
  }
  toString = () => 'run';
}

/** The commands, each by the guest operation it needs (null: none), so a target is given only what it offers. */
const COMMANDS: readonly (readonly [string | null, fc.Arbitrary<fc.AsyncCommand<Model, Real>>])[] = [
  ['enable-evmcs', fc.constant(new Op({ op: 'enable-evmcs' }))],
  ['vmxon', fc.constant(new Op({ op: 'vmxon', pa: PAGES.vmxon }, [{ op: 'init-vmcs', pa: PAGES.vmxon }]))],
  ['vmxoff', fc.constant(new Op({ op: 'vmxoff' }))],
  ['init-evmcs', fc.constantFrom(...EVMCS_ACCEPTED_REVISIONS, 7).map((revision) => new Op({ op: 'init-evmcs', pa: PAGES.evmcs, revision }))],
  ['set-vp-assist', fc.boolean().map((e) => new Op({ op: 'set-vp-assist', currentNestedVmcs: PAGES.evmcs, enlightenVmentry: e }))],
  ['evmcs-entry', fc.boolean().map((launch) => new Op({ op: 'evmcs-entry', launch }))],
  ['vmexit', fc.constant(new Op({ op: 'vmexit', reason: 1n }))],
  ['smm-entry', fc.constant(new Op({ op: 'smm-entry' }))],
  ['rsm', fc.constant(new Op({ op: 'rsm' }))],
  ['run', fc.constant(new Run())],
  [null, fc.constant(new GetSetCycle())],
];

/** A target's commands: the ones whose operation it carries out (the rest would be skipped cases, not checks). */
const commandsFor = (t: { readonly unsupportedGuestOps?: Readonly<Record<string, string>> | undefined }) =>
  COMMANDS.filter(([op]) => op === null || t.unsupportedGuestOps?.[op] === undefined).map(([, c]) => c);

export const evmcsFlagWhenActive: PropertyDef = {
  id: 'nested.evmcs-flag-when-active',
  description: 'Model-based: random guest and VMM operations interleaved with GET/SET cycles before KVM_RUN; an abstract model of eVMCS use decides what the EVMCS flag must be.',
  invariant: 'GET sets KVM_STATE_NESTED_EVMCS iff an eVMCS is active or map-pending, never merely because the capability is enabled, and the flag survives back-to-back GET/SET cycles before KVM_RUN',
  groups: ['nested-state'],
  runs: 150,
  modelBased: true,
  expectedFailure(ctx) {
    return profileOf(ctx.target).nested?.evmcsFlag === 'when-enabled'
      ? 'the 4.20-5.1 meaning: the flag is set whenever eVMCS is enabled, which forces nested state into the stream (seed 003)'
      : null;
  },
  async build(ctx) {
    return fc.asyncProperty(
      vcpuConfig.map((c) => ({ ...c, nested: true, vmxInCpuid: true, evmcsEnabled: false })),
      fc.commands(commandsFor(ctx.target), { maxCommands: 25, ...(ctx.replayPath !== undefined ? { replayPath: ctx.replayPath } : {}) }),
      async (config, cmds) => {
        const vcpu = must(await ctx.target.createVcpu(config));
        const model: Model = { config, evmcsEnabled: false, vmxon: false, guestMode: false, inSmm: false, evmcsPageValid: false, vpAssistEnlightened: false, active: false, pending: false };
        await fc.asyncModelRun(() => ({ model, real: { ctx, vcpu } }), [...cmds, new GetSetCycle()]);
      },
    );
  },
};
