// The golden properties' input: the whole corpus in one case (deterministic: every blob is checked
// on every run), shrinking to each single blob, so a failure's counterexample is the blob id.
import fc from 'fast-check';

class BlobSet extends fc.Arbitrary<string[]> {
  constructor(private readonly ids: readonly string[]) {
    super();
  }
  generate(): fc.Value<string[]> {
    return new fc.Value([...this.ids], undefined);
  }
  canShrinkWithoutContext(v: unknown): v is string[] {
    return Array.isArray(v) && v.every((x) => this.ids.includes(x));
  }
  shrink(v: string[]): fc.Stream<fc.Value<string[]>> {
    return v.length > 1 ? fc.Stream.of(...v.map((id) => new fc.Value([id], undefined))) : fc.Stream.nil();
  }
}

export const blobSet = (ids: readonly string[]): fc.Arbitrary<string[]> => new BlobSet(ids);
