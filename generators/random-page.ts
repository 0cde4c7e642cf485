// Random bytes of a fixed size (a page of any layout): every byte drawn, or a few at random places on
// a zero page. fast-check's own fixed-length arrays shrink byte by byte, thousands of steps for a
// 4 KiB page; these zero half, a quarter, ... of the non-zero bytes at a time, then simplify single
// bytes, so a failure that needs one byte shrinks to it in a few dozen steps.
import fc from 'fast-check';

function* shrinkPage(page: Uint8Array): Generator<Uint8Array> {
  const live: number[] = [];
  page.forEach((b, i) => b && live.push(i));
  for (let chunk = live.length >> 1; chunk >= 1; chunk >>= 1) {
    for (let start = 0; start < live.length; start += chunk) {
      const c = page.slice();
      for (const i of live.slice(start, start + chunk)) c[i] = 0;
      yield c;
    }
  }
  if (live.length === 1) yield new Uint8Array(page.length);
  for (const i of live) {
    if (page[i]! <= 1) continue;
    const c = page.slice();
    c[i] = 1;
    yield c;
  }
}

class DensePage extends fc.Arbitrary<Uint8Array> {
  constructor(private readonly size: number) {
    super();
  }
  generate(mrng: fc.Random): fc.Value<Uint8Array> {
    const page = new Uint8Array(this.size);
    for (let i = 0; i < page.length; i++) page[i] = mrng.nextInt(0, 255);
    return new fc.Value(page, undefined);
  }
  canShrinkWithoutContext(v: unknown): v is Uint8Array {
    return v instanceof Uint8Array && v.length === this.size;
  }
  shrink(v: Uint8Array): fc.Stream<fc.Value<Uint8Array>> {
    return new fc.Stream(shrinkPage(v)).map((p) => new fc.Value(p, undefined));
  }
}

/** `size` random bytes: mostly a few non-zero bytes at random places, now and then every byte drawn. */
export function randomPage(size: number): fc.Arbitrary<Uint8Array> {
  const pokes = fc.array(fc.tuple(fc.nat(Math.max(0, size - 1)), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 24 }).map((ps) => {
    const page = new Uint8Array(size);
    for (const [at, v] of ps) if (at < size) page[at] = v;
    return page;
  });
  return fc.oneof({ weight: 2, arbitrary: pokes }, { weight: 1, arbitrary: new DensePage(size) });
}
