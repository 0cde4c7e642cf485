// vmcs12 round trip: a record survives encode and decode unchanged, and every field reads back
// what was written to it, truncated to its width, through the target's VMREAD/VMWRITE.
import fc from 'fast-check';
import { codecFor, diffBytes, slotValue, type FieldDiff } from '../model/codec.js';
import { hex, widthOf } from '../model/encoding.js';
import { accessTableFor, truncateTo, vmwriteInstructionMask, VMXERR_UNSUPPORTED_VMCS_COMPONENT } from '../model/vmcs12-access.js';
import type { Vmcs12Op } from '../targets/target.js';
import { anyStructRecord } from '../generators/struct-record.js';
import { profileOf, requestSent, targetVmcs12Layout } from '../harness/common.js';
import { expectNoDiff, must, Violation, type PropertyDef } from '../harness/property.js';
import { accessMatchesProfile } from './vmcs12-differential.js';

export const codecRoundTrip: PropertyDef = {
  id: 'vmcs12.codec.round-trip',
  invariant: 'decode(encode(r)) = r for every vmcs12 record, unknown bytes included',
  description: "Generates dense and sparse vmcs12 records for the target's layout (unknown bytes included), encodes each to a page and decodes it back; any differing member or byte range is the counterexample.",
  groups: ['layout'],
  runs: 200,
  async build(ctx) {
    const codec = codecFor(await targetVmcs12Layout(ctx));
    const { encode, decode } = ctx.model;
    return fc.asyncProperty(anyStructRecord(codec), async (r) => {
      const back = decode(codec, encode(codec, r));
      const diff: FieldDiff[] = [];
      codec.slots.forEach((s, i) => {
        if (back.lo[i] !== r.lo[i] || back.hi[i] !== r.hi[i])
          diff.push({ field: s.name, offset: s.offset, expected: hex(slotValue(r, i), s.bytes * 2), actual: hex(slotValue(back, i), s.bytes * 2) });
      });
      diff.push(...diffBytes(r.rest, back.rest, 'unknown bytes'));
      expectNoDiff('decode(encode(r)) differs from r', diff);
    });
  },
};

/** Encodings no table maps: a hole in the index range, bit 15, and bits above 31 of the operand. */
const strayEncoding = fc.oneof(fc.constantFrom(0x6008n, 0x0008n, 0x2034n, 0x8000n, 0x1_0000_2000n, 0xffff_ffff_ffff_ffffn), fc.bigInt(0n, (1n << 64n) - 1n));

export const fieldAccess: PropertyDef = {
  id: 'vmcs12.access.write-read',
  invariant: 'VMWRITE then VMREAD returns the value truncated to the field width (through the VMWRITE instruction, guest AR bytes masked with 0x1f0ff), _HIGH touches only bits 63:32, and unknown encodings (holes, bit 15, bits above 31) fail as an unsupported VMCS component (VMfail 12)',
  description: "Writes a random 64-bit value to every known encoding through the target, reads each back, adds full/_HIGH write pairs and stray encodings, and compares every result with KVM's width and VMfail rules.",
  groups: ['vmcs12-access'],
  runs: 100,
  async build(ctx) {
    const layout = profileOf(ctx.target).vmcs12;
    const table = accessTableFor(layout);
    const codec = codecFor(layout);
    // a target that runs L1's VMWRITE stores what handle_vmwrite keeps (guest AR bytes masked)
    const kept = (e: number, v: bigint) => (ctx.target.vmcs12AccessPath === 'instruction' ? v & vmwriteInstructionMask(e) : v);
    const wide = layout.fields.filter((f) => !f.high && layout.fields.some((h) => h.encoding === (f.encoding | 1)));
    const value64 = fc.bigInt(0n, (1n << 64n) - 1n);
    return fc.asyncProperty(
      fc.array(value64, { minLength: table.encodings.length, maxLength: table.encodings.length }),
      fc.array(fc.tuple(fc.constantFrom(...wide), value64, fc.nat(0xffffffff)), { maxLength: 4 }),
      fc.array(strayEncoding, { maxLength: 3 }),
      async (values, highs, strays) => {
        const unknown = strays.filter((e) => !(e >> 15n === 0n && table.slots.has(Number(e))));
        const ops: Vmcs12Op[] = [];
        table.encodings.forEach((e, i) => ops.push({ op: 'write', encoding: BigInt(e), value: values[i]! }));
        table.encodings.forEach((e) => ops.push({ op: 'read', encoding: BigInt(e) }));
        for (const [f, full, high] of highs) {
          ops.push({ op: 'write', encoding: BigInt(f.encoding), value: full }, { op: 'write', encoding: BigInt(f.encoding | 1), value: BigInt(high) });
          ops.push({ op: 'read', encoding: BigInt(f.encoding) });
        }
        for (const e of unknown) ops.push({ op: 'write', encoding: e, value: 1n }, { op: 'read', encoding: e });
        const zero = new Uint8Array(layout.size);
        const answer = ctx.target.vmcs12Access(zero, ops);
        // what the answer must be depends on the inputs alone: it is worked out while a process
        // target works on the request (sent once the call's microtasks have run)
        await requestSent();
        const n = table.encodings.length;
        // the last write to each encoding decides what a read returns; _HIGH and full share a member
        const wants = table.encodings.map((e) => {
          const f = layout.fields.find((x) => x.encoding === e)!;
          const full = layout.fields.find((x) => x.member === f.member && !x.high)!;
          const hiF = layout.fields.find((x) => x.member === f.member && x.high);
          let member = truncateTo(widthOf(full.encoding), kept(full.encoding, values[table.encodings.indexOf(full.encoding)]!));
          if (hiF) member = (member & 0xffffffffn) | (truncateTo(32, values[table.encodings.indexOf(hiF.encoding)]!) << 32n);
          return f.high ? member >> 32n : member;
        });
        // every write lands where the profile's layout puts the member, and nowhere else
        const expected = zero.slice();
        const view = new DataView(expected.buffer);
        codec.slots.forEach((s) => {
          const f = layout.fields.find((x) => x.member === s.member && !x.high);
          if (!f) return;
          let v = wants[table.encodings.indexOf(f.encoding)]!;
          const hiF = layout.fields.find((x) => x.member === s.member && x.high);
          if (hiF) v = (v & 0xffffffffn) | (wants[table.encodings.indexOf(hiF.encoding)]! << 32n);
          for (let b = 0; b < s.bytes; b++) view.setUint8(s.offset + b, Number((v >> BigInt(8 * b)) & 0xffn));
        });
        // through the instruction, each unknown encoding's VMfailValid leaves its error in vm_instruction_error
        const errorSlot = codec.slots.find((s) => s.member === 'vm_instruction_error');
        if (ctx.target.vmcs12AccessPath === 'instruction' && unknown.length > 0 && errorSlot) view.setUint32(errorSlot.offset, VMXERR_UNSUPPORTED_VMCS_COMPONENT, true);
        const { results, page } = must(await answer);
        if (results.length !== ops.length) throw new Violation(`target answered ${results.length} of ${ops.length} accesses`);
        const diff: FieldDiff[] = [];
        table.encodings.forEach((e, i) => {
          const r = results[n + i]!;
          const want = wants[i]!;
          if (!r.ok || r.value !== want) {
            const f = layout.fields.find((x) => x.encoding === e)!;
            diff.push({ field: f.name ?? hex(e, 4), offset: f.offset, expected: hex(want), actual: r.ok ? hex(r.value) : `VMfail ${r.error}` });
          }
        });
        let k = 2 * n;
        for (const [f, full, high] of highs) {
          const r = results[k + 2]!;
          const want = (full & 0xffffffffn) | (BigInt(high) << 32n);
          if (!r.ok || r.value !== want) diff.push({ field: `${f.name} after its _HIGH write`, offset: f.offset, expected: hex(want), actual: r.ok ? hex(r.value) : `VMfail ${r.error}` });
          k += 3;
        }
        for (const e of unknown) {
          for (const r of [results[k]!, results[k + 1]!])
            if (r.ok || r.error !== VMXERR_UNSUPPORTED_VMCS_COMPONENT)
              diff.push({ field: `encoding ${hex(e)}`, offset: -1, expected: `VMfail ${VMXERR_UNSUPPORTED_VMCS_COMPONENT}`, actual: r.ok ? `ok ${hex(r.value)}` : `VMfail ${r.error}` });
          k += 2;
        }
        expectNoDiff('VMREAD after VMWRITE', diff);
        // the reads matched wants, so this is the page the reads describe
        if (highs.length === 0) expectNoDiff('page after VMWRITEs', diffBytes(expected, page, 'page bytes'));
      },
    );
  },
};

export const vmcs12RoundTrip: readonly PropertyDef[] = [codecRoundTrip, fieldAccess, accessMatchesProfile];
