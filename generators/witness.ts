// A witness page: every live member of a layout filled from a byte sequence in which no two-byte
// window repeats (a de Bruijn sequence over bytes), padding left zero. A reader that looks at the
// wrong offset, or reads a shifted member, sees different bytes: corruption cannot hide.
import type { Layout } from '../model/layout.js';

let sequence: Uint8Array | undefined;

/** The first 64 KiB of the de Bruijn sequence B(256, 2) (Fredricksen-Kessler-Maiorana). */
function deBruijn(): Uint8Array {
  if (sequence) return sequence;
  const out: number[] = [];
  const a = [0, 0, 0];
  const step = (t: number, p: number): void => {
    if (t > 2) {
      if (2 % p === 0) for (let j = 1; j <= p; j++) out.push(a[j]!);
      return;
    }
    a[t] = a[t - p]!;
    step(t + 1, p);
    for (let j = a[t - p]! + 1; j < 256; j++) {
      a[t] = j;
      step(t + 1, t);
    }
  };
  step(1, 1);
  return (sequence = Uint8Array.from(out));
}

export function witnessPage(layout: Layout): Uint8Array {
  const seq = deBruijn();
  const page = new Uint8Array(layout.size);
  for (const m of layout.members) if (!m.padding) page.set(seq.subarray(m.offset + 1, m.offset + 1 + m.size), m.offset);
  return page;
}
