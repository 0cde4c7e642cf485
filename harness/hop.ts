// A migration hop composed through the target interface, as a VMM fleet performs it: on the source
// host GET (following E2BIG) and KVM_GET_MP_STATE; the VMM's save, then its load (a `vmm` target);
// on the destination host a vCPU configured as the VMM would, the guest memory migrated, SET,
// KVM_SET_MP_STATE, GET, the first KVM_RUN. It uses the hosts' nested-state operations only, never
// what is inside a host, so any target with that group can be a host. The outcome is judged by what a
// VMM sees (model/migration/step.ts judgeRestore); the model's prediction is what a hop is compared
// with (suites/migration.ts, cli/matrix.ts).
//
// What the target interface cannot carry, and how the judgement allows for it:
// - guest memory travels as the guest wrote it (its init-vmcs, init-evmcs, write-memory and
//   set-vp-assist operations, replayed in order): the VMCS regions and the shadow link page, the
//   eVMCS, the VP-assist page. What KVM itself wrote there (a VMCLEAR's or VMPTRLD's flush of the
//   cached vmcs12, the shadow vmcs12 flushed at a VM-exit, the eVMCS synced on KVM_RUN) is not read
//   back: there is no operation to read guest memory;
// - DR7 and EFER (a VMM restores them: sregs before SET, debug registers after) stay the fresh
//   destination vCPU's, and GET after SET is judged with the normalisation
//   L2_REGISTERS_FROM_DESTINATION (nested-common.ts restoredL2Registers).
//
// - a real L2 runs its code (README K18, K19): where the target says the guest left the model's
//   state (its L2 ran to a stop and exited to L1, or an entry it carried out at once left nothing
//   pending when the guest is saved), the path stops there and says so (PathRun.departed). The hops
//   made until then stand: what each saved, carried and restored is what the hosts did.
//
// Round trips: operations that do not wait for each other are issued together, so a process or
// machine target gets them as one batch. Per hop: the source's GET and run state with the
// destination's vCPU; the memory with SET; the run state, GET, KVM_RUN (and GET) after it; then the
// guest's next operations.
import { findProfile, type Profile } from '../model/profiles.js';
import { encodeBlob } from '../model/nested/blob.js';
import { INVALID_GPA } from '../model/nested/constants.js';
import type { GuestOp, OpResult, VcpuConfig } from '../model/nested/vcpu.js';
import { destinationConfig, destinationRefusal, judgeRestore, namesEvmcs, type RestoreSeen } from '../model/migration/step.js';
import type { Outcome } from '../model/migration/outcome.js';
import type { MigrationHop, MigrationPath } from '../model/migration/path.js';
import type { Target } from '../targets/target.js';
import type { Fleet, FleetHost } from './fleet.js';
import { departedAtSave, followL2, freshTrack, getFull, mpStateOf, refuseUnoffered, restoredL2Registers, runOps, type Departure, type GuestTrack } from './nested-common.js';
import { must } from './property.js';

/** A guest on a host of the fleet: its vCPU there, and what the VMM knows and carries of it. */
export interface Guest {
  readonly at: FleetHost;
  readonly vcpu: string;
  readonly track: GuestTrack;
}

/**
 * The vCPUs a path made. They are destroyed together when it ends, in one batch per host, rather
 * than each on its own round trip as the guest leaves it.
 */
export class Vcpus {
  private readonly made_: [Target, string][] = [];
  made(target: Target, vcpu: string): string {
    this.made_.push([target, vcpu]);
    return vcpu;
  }
  async end(): Promise<void> {
    await Promise.all(this.made_.splice(0).map(([t, v]) => t.destroyVcpu(v)));
  }
}

const OK: OpResult = { result: 'ok' };
const RUN: GuestOp = { op: 'run' };
const profileOfHost = (h: FleetHost): Profile => findProfile(h.host.profile)!;

/** The guest on a host: a vCPU as the VMM configures it there, and the guest's operations. */
export async function startGuest(fleet: Fleet, vcpus: Vcpus, name: string, vm: VcpuConfig, ops: readonly GuestOp[]): Promise<{ guest: Guest; results: readonly OpResult[] }> {
  const at = fleet.host(name);
  refuseUnoffered(at.target, ops);
  // a VMM enables the eVMCS capability only where the kernel has it
  const config = { ...vm, nested: at.host.nested, evmcsEnabled: vm.evmcsEnabled && at.host.evmcsCap };
  const vcpu = vcpus.made(at.target, must(await at.target.createVcpu(config)));
  const { results, ...track } = await runOps({ target: at.target }, vcpu, freshTrack(config), ops);
  return { guest: { at, vcpu, track }, results };
}

/** More guest operations where the guest is. */
export async function guestDoes(g: Guest, ops: readonly GuestOp[]): Promise<Guest> {
  refuseUnoffered(g.at.target, ops);
  const { results: _, ...track } = await runOps({ target: g.at.target }, g.vcpu, g.track, ops);
  return { ...g, track };
}

/** What the source's GET gave the VMM (following E2BIG to the size it reports), or the errno it could not get past. */
async function sourceState(at: FleetHost, vcpu: string): Promise<{ sourceBlob: Uint8Array; state: Uint8Array } | { errno: string }> {
  const cap = at.host.nestedStateMax;
  if (!cap) {
    // without KVM_CAP_NESTED_STATE the VMM cannot ask: it saves nothing nested
    const none = encodeBlob({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA });
    return { sourceBlob: none, state: none };
  }
  let g = must(await at.target.getNestedState(vcpu, cap));
  if (g.errno === 'E2BIG') g = must(await at.target.getNestedState(vcpu, g.size));
  if (g.errno) return { errno: g.errno };
  // what GET stores given room: `size` bytes, and the shadow vmcs12 past them (quirk GET_SHADOW_PAST_SIZE)
  return { sourceBlob: g.buffer.slice(0, g.size), state: g.buffer.slice(0, Math.max(g.size, g.written)) };
}

const configText = (c: VcpuConfig): string => JSON.stringify({ ...c, vmxMsrs: c.vmxMsrs && [...c.vmxMsrs].map(([i, v]) => [i, String(v)]) });

/**
 * One hop of the guest to host `to`: what it came to, and the guest on the destination when it runs
 * there (its track `departed` when its restored L2 ran its code at the first KVM_RUN).
 */
export async function moveGuest(fleet: Fleet, vcpus: Vcpus, g: Guest, to: string, dropsVmxFlags: boolean): Promise<{ hop: MigrationHop; guest: Guest | null }> {
  const [src, dst, vmm] = [g.at, fleet.host(to), fleet.vmm(dropsVmxFlags)];
  const saved = g.track.destination;
  let config = destinationConfig(saved, dst.host);
  // independent of each other: one round trip (a target playing both ends gets one batch)
  const [got, mp, made] = await Promise.all([sourceState(src, g.vcpu), src.target.guestOp(g.vcpu, { op: 'get-mp-state' }), dst.target.createVcpu(config)]);
  let v = vcpus.made(dst.target, must(made));
  const mpState = mpStateOf(must(mp));
  const end = (outcome: Outcome, sourceBlob: Uint8Array, carried: Uint8Array | null = null, restored: Uint8Array | null = null, run: OpResult = OK) => ({
    hop: { from: src.name, to: dst.name, outcome, sourceBlob, carried, restored },
    guest:
      outcome.kind === 'refused' || outcome.kind === 'failed'
        ? null
        : {
            at: dst,
            vcpu: v,
            track: { ...g.track, destination: config, ...followL2(g.track, RUN, run, `the first KVM_RUN on ${dst.name}`) },
          },
  });
  const header = encodeBlob({ vmxonPa: INVALID_GPA, vmcs12Pa: INVALID_GPA });
  if ('errno' in got) return end({ kind: 'refused', reason: `the VMM cannot save: KVM_GET_NESTED_STATE with ${src.host.nestedStateMax} bytes answered ${got.errno}` }, header);
  const { sourceBlob, state } = got;
  const s = must(await vmm.vmmSave({ kernel: { nestedStateCap: src.host.nestedStateMax, state }, vmxMsrs: src.host.vmxMsrs, config: saved }));
  if ('refused' in s) return end({ kind: 'refused', reason: `the VMM's save: ${s.refused}` }, sourceBlob);
  const l = must(await vmm.vmmLoad({ stream: s.stream, kernel: { nestedStateCap: dst.host.nestedStateMax } }));
  if ('refused' in l) return end({ kind: 'refused', reason: l.refused }, sourceBlob);
  const refusal = destinationRefusal(l.config, l.vmxMsrs, dst.host);
  if (refusal) return end({ kind: 'refused', reason: refusal }, sourceBlob, l.set);
  // the destination's vCPU was made from what the VMM was given; one that restores otherwise gets its own
  const restoredConfig = destinationConfig(l.config, dst.host);
  if (configText(restoredConfig) !== configText(config)) {
    config = restoredConfig;
    v = vcpus.made(dst.target, must(await dst.target.createVcpu(config)));
  }
  // the guest's memory first (SET reads the shadow vmcs12's link page from it), then SET: one batch
  const memory = [...g.track.memory, ...(g.track.vpAssist ? [g.track.vpAssist] : [])];
  const writes = memory.map((o) => dst.target.guestOp(v, o));
  const setting = l.set && dst.target.setNestedState(v, l.set);
  for (const [i, w] of (await Promise.all(writes)).entries()) {
    const r = must(w);
    if (r.result !== 'ok') throw new Error(`${dst.name}: migrating guest memory, ${memory[i]!.op} answered ${r.result}`);
  }
  const set = setting && must(await setting);
  let seen: RestoreSeen = { set, mpState: OK, restored: null, run: OK, afterRun: null };
  if (!set || set.ret === 0) {
    // in QEMU's order, issued together: the run state, GET, the first KVM_RUN, and GET after it when an eVMCS travelled
    const [mpSet, restored, run, afterRun] = await Promise.all([
      dst.target.guestOp(v, { op: 'set-mp-state', state: Number(mpState) }),
      l.set && getFull({ target: dst.target }, v),
      dst.target.guestOp(v, RUN),
      namesEvmcs(l.set) ? getFull({ target: dst.target }, v) : null,
    ]);
    seen = { set, mpState: must(mpSet), restored: restored && restored.slice(), run: must(run), afterRun };
  }
  const outcome = judgeRestore(
    { srcProfile: profileOfHost(src), dstProfile: profileOfHost(dst), sourceBlob, carried: l.set, config: l.config, vmxMsrs: l.vmxMsrs, evmcsOnDestination: config.evmcsEnabled, expected: restoredL2Registers },
    seen,
  );
  return end(outcome, sourceBlob, l.set, seen.restored, seen.run);
}

/** The hops of a path, and where the guest left the model's state if it did (the path stopped there, after `afterHops` hops). */
export interface PathRun {
  readonly hops: readonly MigrationHop[];
  /** per hop: the target had said the guest's L2 ran code when the hop saved it (its execution state is the target's own) */
  readonly sourceL2RanCode: readonly boolean[];
  readonly departed: (Departure & { readonly afterHops: number }) | null;
}

/**
 * A path through the fleet, hop by hop; it stops after a hop that is refused or failed, and where the
 * guest leaves the model's state: before a hop that would save it, or after the hop whose restored
 * L2 ran its code.
 */
export async function migratePath(fleet: Fleet, path: MigrationPath): Promise<PathRun> {
  const vcpus = new Vcpus();
  const hops: MigrationHop[] = [];
  const sourceL2RanCode: boolean[] = [];
  let departed: PathRun['departed'] = null;
  try {
    let g = (await startGuest(fleet, vcpus, path.start.host, path.start.vm, path.start.ops)).guest;
    for (const h of path.hops) {
      const before = departedAtSave(g.track);
      if (before) {
        departed = { ...before, afterHops: hops.length };
        break;
      }
      const m = await moveGuest(fleet, vcpus, g, h.host, path.qemuDropsVmxFlags);
      hops.push(m.hop);
      sourceL2RanCode.push(g.track.l2RanCode);
      if (!m.guest) break;
      if (m.guest.track.departed) {
        departed = { ...m.guest.track.departed, afterHops: hops.length };
        break;
      }
      g = await guestDoes(m.guest, h.opsAfter);
    }
  } finally {
    await vcpus.end();
  }
  return { hops, sourceL2RanCode, departed };
}
