// Restore validation: each class of malformed blob, made from a valid blob of a reachable state by
// one change, gets the errno and the rule kernel-facts §9 gives; random bytes of any length never
// make the target throw, and every answer is one KVM can give. The size protocol: GET with a buffer
// too small answers E2BIG with the size it needs, never more than 8320. And quirk GET_SHADOW_PAST_SIZE:
// outside guest mode KVM writes the shadow vmcs12 past the `size` it reports, so a buffer of exactly
// `size` bytes faults (EFAULT).
import fc from 'fast-check';
import { makeHdr, SHADOW_VMCS_BIT, VMCS12 } from '../model/catalog/by-name.js';
import { readHeader, writeHeader, type NestedHeader } from '../model/nested/blob.js';
import { FLAGS, HEADER_SIZE, INVALID_GPA, MIN_SIZE_FOR_VMCS12, OFFSET, SIZE_WITH_SHADOW, VMCS12_BLOB_SIZE } from '../model/nested/constants.js';
import { BIT } from '../model/vmentry/bits.js';
import { memberReader } from '../model/vmentry/input.js';
import type { NestedBehaviour } from '../model/nested/behaviour.js';
import type { Errno } from '../model/nested/constants.js';
import type { RestoreRule } from '../model/nested/rules.js';
import type { VcpuConfig } from '../model/nested/vcpu.js';
import { guestOpsFor, guestOpsOftenShadowFor, vcpuConfigFor } from '../generators/nested.js';
import { profileOf } from '../harness/common.js';
import { must, Violation, type PropertyContext, type PropertyDef } from '../harness/property.js';
import { destinationOf, getFull, reach } from '../harness/nested-common.js';

/** One malformation of a valid blob, and the rule that must reject it (null: not applicable here). */
interface Malformation {
  readonly name: string;
  apply(h: NestedHeader, blob: Uint8Array, ctx: { behaviour: NestedBehaviour; config: VcpuConfig }): { blob: Uint8Array; rule: RestoreRule; errno: Errno } | null;
}

const withHeader = (blob: Uint8Array, h: NestedHeader): Uint8Array => {
  const b = blob.slice();
  writeHeader(b, h);
  return b;
};
const einval = (blob: Uint8Array, rule: RestoreRule) => ({ blob, rule, errno: 'EINVAL' as const });

const named = (ms: Malformation[]): readonly Malformation[] => ms.map((m) => Object.assign(m, { toString: () => m.name }));

export const MALFORMATIONS: readonly Malformation[] = named([
  { name: 'size below the header', apply: (h, b) => einval(withHeader(b, { ...h, size: h.size & 1 ? 0 : 127 }), 'W2') },
  {
    name: 'unknown flag bit',
    apply: (h, b, { behaviour }) => {
      const bit = [0x10, 0x20, 0x40, 0x80, 0x200, 0x8000, FLAGS.MTF_PENDING, FLAGS.GIF_SET, FLAGS.EVMCS].find((x) => !(behaviour.setFlagsMask & x))!;
      return einval(withHeader(b, { ...h, flags: h.flags | bit }), 'W3');
    },
  },
  { name: 'RUN_PENDING without GUEST_MODE', apply: (h, b) => einval(withHeader(b, { ...h, flags: (h.flags & ~FLAGS.GUEST_MODE) | FLAGS.RUN_PENDING }), 'W4') },
  { name: 'format SVM', apply: (h, b) => einval(withHeader(b, { ...h, format: 1 }), 'V1') },
  {
    name: 'misaligned vmxon_pa',
    apply: (h, b, { config }) => (h.vmxonPa === INVALID_GPA || !config.nested || !config.vmxInCpuid ? null : einval(withHeader(b, { ...h, vmxonPa: h.vmxonPa | 0x800n }), 'V2e')),
  },
  {
    name: 'vmxon_pa beyond MAXPHYADDR',
    apply: (h, b, { config }) => (h.vmxonPa === INVALID_GPA || !config.nested || !config.vmxInCpuid ? null : einval(withHeader(b, { ...h, vmxonPa: 1n << BigInt(config.maxPhyAddr) }), 'V2e')),
  },
  { name: 'SMM flags without VMXON', apply: (h, b) => (h.vmxonPa !== INVALID_GPA ? null : einval(withHeader(b, { ...h, smmFlags: 2 }), 'V2a')) },
  {
    name: 'unknown SMM flag',
    apply: (h, b, { config }) => (h.vmxonPa === INVALID_GPA || !config.nested || !config.vmxInCpuid ? null : einval(withHeader(b, { ...h, smmFlags: h.smmFlags | 0x4 }), 'V4')),
  },
  {
    name: 'unknown hdr.vmx.flags bit',
    apply: (h, b, { behaviour, config }) => {
      if (!behaviour.headerFlags) return null;
      if (h.vmxonPa !== INVALID_GPA && (!config.nested || !config.vmxInCpuid)) return null;
      return einval(withHeader(b, { ...h, vmxFlags: h.vmxFlags | 0x2 }), 'V5');
    },
  },
  {
    name: 'vmcs12_pa equal to vmxon_pa',
    apply: (h, b) => (h.vmxonPa === INVALID_GPA || h.vmcs12Pa === INVALID_GPA ? null : einval(withHeader(b, { ...h, vmcs12Pa: h.vmxonPa }), 'V10')),
  },
  {
    name: 'bad vmcs12 revision id',
    apply: (h, b) => {
      if (h.vmxonPa === INVALID_GPA || h.vmcs12Pa === INVALID_GPA || h.size < MIN_SIZE_FOR_VMCS12 || h.smmFlags) return null;
      const x = b.slice();
      const vmcs12 = x.subarray(OFFSET.vmcs12);
      VMCS12.write(vmcs12, 'hdr', VMCS12.read(vmcs12, 'hdr') ^ 1n);
      return einval(x, 'V12');
    },
  },
  {
    name: 'shadow vmcs12 with its shadow bit off',
    apply: (h, b) => {
      if (!(h.flags & FLAGS.GUEST_MODE) || h.size < SIZE_WITH_SHADOW) return null;
      const x = b.slice();
      const shadow = x.subarray(OFFSET.shadowVmcs12);
      VMCS12.write(shadow, 'hdr', VMCS12.read(shadow, 'hdr') & ~SHADOW_VMCS_BIT);
      return einval(x, 'V13c');
    },
  },
  {
    name: 'size 5221 with a shadow vmcs12 in guest mode',
    apply: (h, b) => (!(h.flags & FLAGS.GUEST_MODE) || h.size < SIZE_WITH_SHADOW ? null : einval(withHeader(b, { ...h, size: 5221 }), 'V13a')),
  },
  {
    name: 'size 1125 with a vmcs12',
    apply: (h, b) => (h.vmxonPa === INVALID_GPA || h.vmcs12Pa === INVALID_GPA || h.smmFlags ? null : einval(withHeader(b, { ...h, size: 1125 }), 'V9')),
  },
  {
    name: 'vmcs12 cut off in the buffer',
    apply: (h, b) => (h.vmxonPa === INVALID_GPA || h.vmcs12Pa === INVALID_GPA || h.smmFlags ? null : { blob: b.slice(0, OFFSET.vmcs12 + 500), rule: 'V11', errno: 'EFAULT' }),
  },
  { name: 'header cut off', apply: (_h, b) => ({ blob: b.slice(0, 100), rule: 'W1', errno: 'EFAULT' }) },
]);

export const restoreValidation: PropertyDef = {
  id: 'nested.restore.rejects-malformed',
  description: 'Takes the blob of a reachable state, applies one of 16 malformations and checks that SET answers the errno and rule kernel-facts §9 gives for it.',
  invariant: 'a valid blob with one malformation is rejected with the errno and at the rule kernel-facts §9 gives for it',
  groups: ['nested-state'],
  runs: 300,
  async build(ctx) {
    const behaviour = profileOf(ctx.target).nested!;
    return fc.asyncProperty(vcpuConfigFor(ctx.target), guestOpsFor(ctx.target), fc.constantFrom(...MALFORMATIONS), async (config, ops, mal) => {
      const src = await reach(ctx, config, ops);
      const b = await getFull(ctx, src.vcpu);
      fc.pre((readHeader(b).flags & ~behaviour.setFlagsMask) === 0); // 5.6: the base blob is already refused at W3: not a case of this property
      const m = mal.apply(readHeader(b), b, { behaviour, config: src.destination });
      fc.pre(m !== null && m !== undefined); // this malformation does not apply to this state: not counted as a case
      if (!m) return;
      const dst = await destinationOf(ctx, src);
      const s = must(await ctx.target.setNestedState(dst, m.blob));
      if (s.errno !== m.errno || (s.rule !== '' && s.rule !== m.rule))
        throw new Violation(`${mal.name}: SET answered ${s.ret} (${s.errno ?? 'ok'}) at ${s.rule || '?'}`, [{ field: mal.name, offset: -1, expected: `${m.errno} at ${m.rule}`, actual: `${s.errno ?? s.ret} at ${s.rule || '?'}` }]);
    });
  },
};

const ANSWERS = new Set<Errno | null>(['EINVAL', 'EFAULT', 'ENOMEM', null]);
const BOUNDARY_LENGTHS = [0, 1, 8, 127, 128, 1125, 1126, 4223, 4224, 5221, 5222, 8319, 8320, 8321];
const SIZE_FIELDS = [0, 127, 128, 1125, 1126, 4224, 5221, 5222, 8320, 0xffffffff];

/** Random bytes, with the header's size at a boundary and the flags and PAs often plausible. */
export const randomBlob = fc.oneof(
  fc.uint8Array({ maxLength: 9000 }),
  fc.tuple(fc.constantFrom(...BOUNDARY_LENGTHS), fc.nat(), fc.constantFrom(...SIZE_FIELDS), fc.nat(0x1ff), fc.boolean()).map(([len, seed, size, flags, vmxon]) => {
    const b = new Uint8Array(len);
    let x = seed | 1;
    for (let i = 0; i < len; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    const v = new DataView(b.buffer);
    if (len >= OFFSET.size + 4) v.setUint32(OFFSET.size, size, true);
    if (len >= OFFSET.flags + 2) v.setUint16(OFFSET.flags, flags, true);
    if (len >= OFFSET.vmxonPa + 8) v.setBigUint64(OFFSET.vmxonPa, vmxon ? 0x1000n : INVALID_GPA, true);
    if (VMCS12.fits(b.subarray(OFFSET.vmcs12), 'hdr')) VMCS12.write(b.subarray(OFFSET.vmcs12), 'hdr', makeHdr(false));
    return b;
  }),
);

export const restoreRandomBytes: PropertyDef = {
  id: 'nested.restore.random-bytes',
  description: 'SETs random bytes of any length (sizes at every boundary) on random vCPUs and checks that the target answers, without throwing, only what KVM can answer.',
  invariant: 'SET of random bytes of any length never throws and answers 0, -EINVAL, -EFAULT or -ENOMEM (or 2 from S8)',
  groups: ['nested-state'],
  runs: 1000,
  async build(ctx) {
    return fc.asyncProperty(vcpuConfigFor(ctx.target), randomBlob, async (config, blob) => {
      const v = must(await ctx.target.createVcpu(config));
      const expected = '0, 2, -EINVAL, -EFAULT or -ENOMEM';
      let answer: Awaited<ReturnType<typeof ctx.target.setNestedState>>;
      try {
        answer = await ctx.target.setNestedState(v, blob);
      } catch (e) {
        // an in-process target that throws has no answer at all (a process target's crash is a target error)
        const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        throw new Violation(`SET of ${blob.length} random bytes threw ${what}`, [{ field: 'SET', offset: -1, expected, actual: `threw ${what}` }]);
      }
      const s = must(answer);
      if (!ANSWERS.has(s.errno) || (s.errno === null && s.ret !== 0 && s.ret !== 2))
        throw new Violation(`SET of ${blob.length} random bytes answered ${s.ret} (${s.errno})`, [{ field: 'SET', offset: -1, expected, actual: `${s.ret} (${s.errno ?? 'no errno'})${s.rule ? ` at ${s.rule}` : ''}` }]);
      await ctx.target.destroyVcpu(v);
    });
  },
};

/**
 * Quirk GET_SHADOW_PAST_SIZE applies to a state (kernel-facts §8, read from the blob by member
 * name): outside guest mode, a vmcs12 that enables VMCS shadowing with a valid link pointer.
 */
function shadowPastSize(ctx: PropertyContext, blob: Uint8Array): boolean {
  const h = readHeader(blob);
  if (h.flags & FLAGS.GUEST_MODE || h.size < OFFSET.vmcs12 + VMCS12_BLOB_SIZE) return false;
  const read = memberReader(profileOf(ctx.target).vmcs12, blob.subarray(OFFSET.vmcs12, OFFSET.vmcs12 + VMCS12_BLOB_SIZE));
  const secondary = (read('cpu_based_vm_exec_control') & BigInt(BIT.proc.secondary)) !== 0n;
  return secondary && (read('secondary_vm_exec_control') & BigInt(BIT.proc2.shadowVmcs)) !== 0n && read('vmcs_link_pointer') !== INVALID_GPA;
}

export const sizeProtocol: PropertyDef = {
  id: 'nested.get.size-protocol',
  description: 'GETs a reachable state with a buffer one byte too small up to exactly right: E2BIG with the needed size and nothing else written, then success (EFAULT where quirk GET_SHADOW_PAST_SIZE writes past the size).',
  invariant: 'GET with a buffer smaller than the state answers E2BIG with the size it needs and writes nothing else; the needed size is never more than 8320, and GET with that size succeeds, except under quirk GET_SHADOW_PAST_SIZE, where KVM copies the shadow vmcs12 past it and a buffer of exactly that size faults (EFAULT)',
  groups: ['nested-state'],
  runs: 200,
  async build(ctx) {
    return fc.asyncProperty(vcpuConfigFor(ctx.target), guestOpsFor(ctx.target), fc.nat(), async (config, ops, pick) => {
      const src = await reach(ctx, config, ops);
      const full = must(await ctx.target.getNestedState(src.vcpu, SIZE_WITH_SHADOW));
      if (full.errno || full.size > SIZE_WITH_SHADOW || full.size < HEADER_SIZE) throw new Violation(`GET needs ${full.size} bytes (${full.errno ?? 'ok'})`);
      const small = pick % full.size;
      const g = must(await ctx.target.getNestedState(src.vcpu, small));
      if (g.errno !== 'E2BIG' || g.size !== full.size)
        throw new Violation(`GET with ${small} bytes for a ${full.size}-byte state answered ${g.errno ?? 'ok'} with size ${g.size}`, [{ field: 'GET', offset: -1, expected: `E2BIG ${full.size}`, actual: `${g.errno} ${g.size}` }]);
      if (g.buffer.some((x, i) => x !== 0 && !(i >= 4 && i < 8))) throw new Violation('E2BIG wrote bytes other than the size field');
      const exact = must(await ctx.target.getNestedState(src.vcpu, full.size));
      const want = shadowPastSize(ctx, full.buffer) ? 'EFAULT' : null;
      if (exact.errno !== want)
        throw new Violation(`GET with exactly ${full.size} bytes answered ${exact.errno ?? 'ok'}`, [{ field: 'GET', offset: -1, expected: `${want ?? 'ok'}${want ? ' (quirk GET_SHADOW_PAST_SIZE: the shadow vmcs12 is copied past the size)' : ''}`, actual: exact.errno ?? 'ok' }]);
    });
  },
};

export const writesWithinSize: PropertyDef = {
  id: 'nested.get.writes-within-size',
  description: 'Looks for a GET that writes past the size it reports; the quirk GET_SHADOW_PAST_SIZE makes this the expected verdict.',
  invariant: 'GET writes nothing past the size it reports',
  groups: ['nested-state'],
  runs: 300,
  expectedFailure: () => 'quirk GET_SHADOW_PAST_SIZE: outside guest mode KVM copies the shadow vmcs12 (vmcs12 enables shadow VMCS, link pointer valid) past the size it counts',
  async build(ctx) {
    const config = vcpuConfigFor(ctx.target).map((c) => ({ ...c, nested: true, vmxInCpuid: true }));
    return fc.asyncProperty(config, guestOpsOftenShadowFor(ctx.target), async (config, ops) => {
      const src = await reach(ctx, config, ops);
      const g = must(await ctx.target.getNestedState(src.vcpu, SIZE_WITH_SHADOW));
      if (g.written > g.size)
        throw new Violation(`GET reported size ${g.size} but wrote ${g.written} bytes`, [{ field: 'bytes written', offset: g.size, expected: `<= ${g.size}`, actual: String(g.written) }]);
    });
  },
};

export const nestedRestoreSuite: readonly PropertyDef[] = [restoreValidation, restoreRandomBytes, sizeProtocol, writesWithinSize];
