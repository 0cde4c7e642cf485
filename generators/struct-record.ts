// Records (vmcs12 and friends) for any layout. One custom arbitrary instead of an fc.record of 180
// fields: generation draws straight from fast-check's PRNG (cheap), and shrinking zeroes fields half
// at a time and then simplifies values, so dense failures shrink to a short, readable field list.
import fc from 'fast-check';
import { emptyRecord, type Codec, type StructRecord } from '../model/codec.js';

export type RecordMode = 'dense' | 'sparse';

/** The codec each generated (or shrunk) record was made for, so a counterexample can name its fields. */
const recordCodecs = new WeakMap<StructRecord, Codec>();
export const codecOfRecord = (r: StructRecord): Codec | undefined => recordCodecs.get(r);
const tag = (r: StructRecord, c: Codec): StructRecord => (recordCodecs.set(r, c), r);

/** Boundary-biased 32-bit words: 0, all ones, small, single high bit, or uniform. */
function word(mrng: fc.Random): number {
  const r = mrng.nextInt() >>> 0;
  switch (r & 7) {
    case 0:
      return 0;
    case 1:
      return 0xffffffff;
    case 2:
      return (r >>> 3) & 0xf;
    case 3:
      return 0x80000000;
    default:
      return mrng.nextInt() >>> 0;
  }
}

class StructRecordArbitrary extends fc.Arbitrary<StructRecord> {
  private readonly unknownOffsets: number[];
  constructor(
    private readonly codec: Codec,
    private readonly mode: RecordMode,
  ) {
    super();
    const covered = new Uint8Array(codec.layout.size);
    for (const s of codec.slots) covered.fill(1, s.offset, s.offset + s.bytes);
    this.unknownOffsets = [];
    covered.forEach((c, i) => c || this.unknownOffsets.push(i));
  }

  private fillSlot(rec: StructRecord, i: number, mrng: fc.Random): void {
    const bytes = this.codec.slots[i]!.bytes;
    const lo = word(mrng);
    rec.lo[i] = bytes === 2 ? lo & 0xffff : lo;
    rec.hi[i] = bytes === 8 ? word(mrng) : 0;
  }

  generate(mrng: fc.Random): fc.Value<StructRecord> {
    const rec = emptyRecord(this.codec);
    const n = this.codec.slots.length;
    if (this.mode === 'dense') for (let i = 0; i < n; i++) this.fillSlot(rec, i, mrng);
    else for (let k = mrng.nextInt(1, 6); k > 0; k--) this.fillSlot(rec, mrng.nextInt(0, n - 1), mrng);
    // now and then, bytes the layout gives no meaning: they must survive untouched
    if (this.unknownOffsets.length && (mrng.nextInt() & 7) === 0)
      for (let k = mrng.nextInt(1, 4); k > 0; k--) rec.rest[this.unknownOffsets[mrng.nextInt(0, this.unknownOffsets.length - 1)]!] = mrng.nextInt(1, 255);
    return new fc.Value(tag(rec, this.codec), undefined);
  }

  canShrinkWithoutContext(value: unknown): value is StructRecord {
    const v = value as StructRecord;
    return v?.lo instanceof Uint32Array && v.lo.length === this.codec.slots.length && v.rest?.length === this.codec.layout.size;
  }

  shrink(value: StructRecord): fc.Stream<fc.Value<StructRecord>> {
    return new fc.Stream(shrinkRecord(value)).map((r) => new fc.Value(tag(r, this.codec), undefined));
  }
}

const copy = (r: StructRecord): StructRecord => ({ lo: r.lo.slice(), hi: r.hi.slice(), rest: r.rest.slice() });

function* shrinkRecord(r: StructRecord): Generator<StructRecord> {
  if (r.rest.some((b) => b !== 0)) {
    const c = copy(r);
    c.rest.fill(0);
    yield c;
  }
  const live: number[] = [];
  for (let i = 0; i < r.lo.length; i++) if (r.lo[i] || r.hi[i]) live.push(i);
  // zero half, then a quarter, ... of the non-zero fields
  for (let chunk = live.length >> 1; chunk >= 1; chunk >>= 1) {
    for (let start = 0; start < live.length; start += chunk) {
      const c = copy(r);
      for (const i of live.slice(start, start + chunk)) c.lo[i] = c.hi[i] = 0;
      yield c;
    }
  }
  if (live.length === 1) {
    const c = copy(r);
    c.lo[live[0]!] = c.hi[live[0]!] = 0;
    yield c;
  }
  // simpler values: drop a word, then halve each word towards 1
  for (const i of live) {
    if (r.hi[i] && r.lo[i]) {
      const c = copy(r);
      c.hi[i] = 0;
      yield c;
      const d = copy(r);
      d.lo[i] = 0;
      yield d;
    }
    if (r.hi[i]! > 1) {
      const c = copy(r);
      c.hi[i] = 1;
      yield c;
      const d = copy(r);
      d.hi[i] = r.hi[i]! >>> 1;
      yield d;
    }
    if (r.lo[i]! > 1) {
      const c = copy(r);
      c.lo[i] = 1;
      yield c;
      const d = copy(r);
      d.lo[i] = r.lo[i]! >>> 1;
      yield d;
    }
  }
}

export const structRecord = (codec: Codec, mode: RecordMode = 'dense'): fc.Arbitrary<StructRecord> => new StructRecordArbitrary(codec, mode);

/** Dense and sparse records mixed: dense finds bugs, sparse ones read well. */
export const anyStructRecord = (codec: Codec): fc.Arbitrary<StructRecord> => fc.oneof(structRecord(codec, 'dense'), structRecord(codec, 'sparse'));
