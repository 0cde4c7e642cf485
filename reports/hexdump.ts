// The bytes behind a field diff, in memory order. A member's value ("0x…", printed as a number)
// is stored little-endian; a run of unknown bytes ("a1b2…") is already in memory order. Diffs
// that are not about bytes (a layout class, a verdict) get no dump.
import type { FieldDiff } from '../model/codec.js';

export interface DiffBytes {
  expected: string;
  actual: string;
}

function memoryBytes(v: string): string[] | null {
  if (/^0x[0-9a-f]+$/i.test(v) && v.length % 2 === 0) return (v.slice(2).toLowerCase().match(/../g) ?? []).reverse();
  if (/^(?:[0-9a-f]{2})+$/.test(v)) return v.match(/../g)!;
  return null;
}

export function bytesOfDiff(d: FieldDiff): DiffBytes | null {
  if (d.offset < 0) return null;
  const e = memoryBytes(d.expected);
  const a = memoryBytes(d.actual);
  if (!e || !a || e.length !== a.length) return null;
  return { expected: e.join(' '), actual: a.join(' ') };
}

export function withBytes(d: FieldDiff): FieldDiff & { bytes?: DiffBytes } {
  const bytes = bytesOfDiff(d);
  return bytes ? { ...d, bytes } : { ...d };
}

/** "0x0220: 00 00 00 00 01 00 00 00" lines, 16 bytes per line, for a run of bytes at an offset. */
export function hexdumpLines(offset: number, bytes: string): string[] {
  const list = bytes ? bytes.split(' ') : [];
  const lines: string[] = [];
  for (let i = 0; i < list.length; i += 16) lines.push(`0x${(offset + i).toString(16).padStart(4, '0')}: ${list.slice(i, i + 16).join(' ')}`);
  return lines;
}
