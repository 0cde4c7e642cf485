// Layout evolutions: from a base layout, a random sequence of the changes real structures went
// through (appends, use of padding, insertions that shift, resizes, removals, renames, moves), each
// with or without a revision bump. Members keep an identity through the changes, so the true
// pairing of OLD and NEW members is known by construction.
import fc from 'fast-check';
import { TYPE_SIZE, type MemberSpec, type ScalarType } from '../model/catalog/types.js';
import type { Layout, LayoutField } from '../model/layout.js';
import type { Pairing } from '../model/layout-diff.js';
import { expectedDiff, type ExpectedDiff } from './layout-expectation.js';

interface EvoMember extends MemberSpec {
  readonly id: number;
}

interface EvoLayout {
  readonly members: readonly EvoMember[];
  readonly size: number;
  readonly revision: number;
}

export type EvolutionOp =
  | { kind: 'append'; type: ScalarType }
  | { kind: 'use-padding'; type: ScalarType; pick: number }
  | { kind: 'insert'; type: ScalarType; pick: number }
  | { kind: 'resize'; type: ScalarType; pick: number }
  | { kind: 'remove'; pick: number }
  | { kind: 'remove-to-padding'; pick: number }
  | { kind: 'rename'; pick: number }
  | { kind: 'retype-same-size'; pick: number }
  | { kind: 'move-to-padding'; pick: number };

export interface Evolution {
  readonly old: Layout;
  readonly new: Layout;
  /** the ops that applied, in words */
  readonly applied: readonly string[];
  readonly bumped: boolean;
  /** the pairing known by construction (same identity and same kind, or same place and shape) */
  readonly truth: Pairing;
  /** what layout diff must answer, from the construction (never from the classifier) */
  readonly expected: ExpectedDiff;
}

const TYPES: readonly ScalarType[] = ['u16', 'u32', 'u64', 'natural'];
const typeArb = fc.constantFrom(...TYPES);
const pickArb = fc.nat(1000);

export const evolutionOp: fc.Arbitrary<EvolutionOp> = fc.oneof(
  typeArb.map((type) => ({ kind: 'append' as const, type })),
  fc.record({ kind: fc.constant('use-padding' as const), type: typeArb, pick: pickArb }),
  fc.record({ kind: fc.constant('insert' as const), type: typeArb, pick: pickArb }),
  fc.record({ kind: fc.constant('resize' as const), type: typeArb, pick: pickArb }),
  fc.record({ kind: fc.constant('remove' as const), pick: pickArb }),
  fc.record({ kind: fc.constant('remove-to-padding' as const), pick: pickArb }),
  fc.record({ kind: fc.constant('rename' as const), pick: pickArb }),
  fc.record({ kind: fc.constant('retype-same-size' as const), pick: pickArb }),
  fc.record({ kind: fc.constant('move-to-padding' as const), pick: pickArb }),
);

const mk = (id: number, name: string, offset: number, type: ScalarType, count = 1, padding = false, ctype?: string): EvoMember => ({
  id,
  name,
  offset,
  type,
  count,
  padding,
  size: TYPE_SIZE[type] * count,
  ...(ctype !== undefined ? { ctype } : {}),
});

/** Lays members out back to back from `from`, keeping everything else. */
function repack(ms: readonly EvoMember[], from = 0): EvoMember[] {
  let at = from;
  return ms.map((m) => {
    const r = { ...m, offset: at };
    at += m.size;
    return r;
  });
}

class Evolver {
  private nextId: number;
  constructor(
    private cur: EvoLayout,
    private readonly names: () => string,
  ) {
    this.nextId = Math.max(...cur.members.map((m) => m.id)) + 1;
  }
  get layout(): EvoLayout {
    return this.cur;
  }
  private live(): EvoMember[] {
    // the first member holds the revision id: never touched
    return this.cur.members.filter((m, i) => !m.padding && i > 0);
  }
  private fits(ms: readonly EvoMember[]): boolean {
    const last = ms[ms.length - 1];
    return !last || last.offset + last.size <= this.cur.size;
  }
  private set(ms: EvoMember[]): boolean {
    if (!this.fits(ms)) return false;
    this.cur = { ...this.cur, members: ms };
    return true;
  }
  private fresh(type: ScalarType, offset = 0): EvoMember {
    return mk(this.nextId++, this.names(), offset, type);
  }

  /** Applies an op; returns its description, or null when it does not apply here. */
  apply(op: EvolutionOp): string | null {
    const ms = [...this.cur.members];
    const live = this.live();
    const pickLive = (p: number) => live[p % Math.max(1, live.length)];
    switch (op.kind) {
      case 'append': {
        const last = ms[ms.length - 1]!;
        const n = this.fresh(op.type, last.offset + last.size);
        return this.set([...ms, n]) ? `append ${n.type} ${n.name}` : null;
      }
      case 'use-padding':
        return this.carve(this.fresh(op.type), op.pick) ? `use padding for ${op.type}` : null;
      case 'insert': {
        const at = 1 + (op.pick % Math.max(1, ms.length - 1));
        const n = this.fresh(op.type);
        ms.splice(at, 0, n);
        return this.set(repack(ms)) ? `insert ${n.type} ${n.name} before ${ms[at + 1]?.name ?? 'end'} (shifts the rest)` : null;
      }
      case 'resize': {
        const m = pickLive(op.pick);
        if (!m || m.type === op.type || TYPE_SIZE[m.type] === TYPE_SIZE[op.type] || m.count !== 1) return null;
        const i = ms.indexOf(m);
        ms[i] = { ...m, type: op.type, size: TYPE_SIZE[op.type] };
        return this.set(repack(ms)) ? `resize ${m.name} ${m.type} -> ${op.type}` : null;
      }
      case 'remove': {
        const m = pickLive(op.pick);
        if (!m) return null;
        ms.splice(ms.indexOf(m), 1);
        return this.set(repack(ms)) ? `remove ${m.name} (shifts the rest)` : null;
      }
      case 'remove-to-padding': {
        const m = pickLive(op.pick);
        if (!m) return null;
        // the member's bytes become dead space, like cr3_target_value0..3 in 5.8
        ms[ms.indexOf(m)] = mk(this.nextId++, `dead_${m.name}`, m.offset, m.type, m.count, true);
        return this.set(ms) ? `turn ${m.name} into dead space` : null;
      }
      case 'rename': {
        const all = ms.slice(1);
        const m = all[op.pick % Math.max(1, all.length)];
        if (!m) return null;
        const name = this.names();
        ms[ms.indexOf(m)] = { ...m, name };
        return this.set(ms) ? `rename ${m.name} -> ${name}` : null;
      }
      case 'retype-same-size': {
        const m = ms[op.pick % ms.length]!;
        if (m.count !== 1) return null;
        const other: ScalarType | undefined = m.type === 'u64' ? 'natural' : m.type === 'natural' ? 'u64' : undefined;
        const ctype = other ? undefined : `struct ${m.name}_t`;
        if (!other && m.ctype === ctype) return null;
        ms[ms.indexOf(m)] = { ...m, type: other ?? m.type, ...(ctype ? { ctype } : {}) };
        return this.set(ms) ? `retype ${m.name} ${m.type} -> ${other ?? ctype} (same size)` : null;
      }
      case 'move-to-padding': {
        const m = pickLive(op.pick);
        if (!m) return null;
        const saved = this.cur;
        ms.splice(ms.indexOf(m), 1);
        if (!this.set(repack(ms))) return null;
        if (this.carve({ ...m }, op.pick)) return `move ${m.name} into padding (members after it return to earlier offsets)`;
        this.cur = saved;
        return null;
      }
    }
  }

  /** Places `n` at the start of a padding member large enough for it, shrinking the padding. */
  private carve(n: EvoMember, pick: number): boolean {
    const ms = [...this.cur.members];
    const pads = ms.filter((m) => m.padding && m.size >= n.size && (m.size - n.size) % TYPE_SIZE[m.type] === 0 && m.offset % TYPE_SIZE[n.type] === 0);
    const p = pads[pick % Math.max(1, pads.length)];
    if (!p) return false;
    const i = ms.indexOf(p);
    const rest = (p.size - n.size) / TYPE_SIZE[p.type];
    const placed = { ...n, offset: p.offset };
    const replacement = rest > 0 ? [placed, { ...p, offset: p.offset + n.size, count: rest, size: rest * TYPE_SIZE[p.type] }] : [placed];
    ms.splice(i, 1, ...replacement);
    return this.set(ms);
  }
}

/** The field table of a generated layout: one encoding per live scalar member, width from its type. */
function fieldsOf(ms: readonly EvoMember[]): LayoutField[] {
  const widthClass: Record<ScalarType, number> = { u16: 0, u64: 1, u32: 2, natural: 3 };
  const width: Record<ScalarType, LayoutField['width']> = { u16: 16, u64: 64, u32: 32, natural: 'natural' };
  return ms
    .filter((m, i) => i > 0 && !m.padding && m.count === 1 && m.id < 512)
    .map((m) => ({ encoding: (widthClass[m.type] << 13) | (m.id << 1), member: m.name, high: false, offset: m.offset, width: width[m.type] }));
}

const toLayout = (e: EvoLayout, name: string): Layout => ({
  structure: 'generated',
  name,
  revision: e.revision,
  size: e.size,
  members: e.members.map(({ id: _id, ...m }) => m),
  fields: fieldsOf(e.members),
});

/**
 * The pairing a diff can know: same identity and kind, where the name survived or the place and size
 * did (a member both renamed and moved is, to anyone reading two descriptors, a removal and an
 * addition); then completed by same place and size.
 */
function truthPairing(o: readonly EvoMember[], n: readonly EvoMember[]): Pairing {
  const toNew = new Map<string, MemberSpec>();
  const toOld = new Map<string, MemberSpec>();
  const strip = ({ id: _id, ...m }: EvoMember): MemberSpec => m;
  for (const a of o) {
    const b = n.find((x) => x.id === a.id && x.padding === a.padding && (x.name === a.name || (x.offset === a.offset && x.size === a.size)));
    if (b) {
      toNew.set(a.name, strip(b));
      toOld.set(b.name, strip(a));
    }
  }
  for (const a of o) {
    if (toNew.has(a.name)) continue;
    const b = n.find((x) => !toOld.has(x.name) && x.padding === a.padding && x.offset === a.offset && x.size === a.size);
    if (b) {
      toNew.set(a.name, strip(b));
      toOld.set(b.name, strip(a));
    }
  }
  return { toNew, toOld };
}

/** Small packed base layouts: a u32 header first (it carries the revision), then members and padding. */
export const baseLayout: fc.Arbitrary<EvoLayout> = fc
  .record({
    members: fc.array(fc.record({ type: typeArb, padding: fc.boolean(), count: fc.integer({ min: 1, max: 6 }) }), { minLength: 2, maxLength: 10 }),
    slack: fc.integer({ min: 0, max: 64 }),
    revision: fc.integer({ min: 1, max: 0x7fffffff }),
  })
  .map(({ members, slack, revision }) => {
    const ms = repack([
      mk(0, 'hdr', 0, 'u32'),
      ...members.map((m, i) => (m.padding ? mk(i + 1, `pad${i + 1}`, 0, m.type, m.count, true) : mk(i + 1, `f${i + 1}`, 0, m.type))),
    ]);
    const last = ms[ms.length - 1]!;
    return { members: ms, size: last.offset + last.size + slack * 2, revision };
  });

/** An existing layout as a base (e.g. the frozen vmcs12). */
export function baseFrom(layout: Layout): EvoLayout {
  return { members: layout.members.map((m, i) => ({ ...m, id: i })), size: layout.size, revision: layout.revision ?? 1 };
}

export function evolve(base: EvoLayout, steps: readonly { op: EvolutionOp; bump: boolean }[]): Evolution {
  let counter = 0;
  const ev = new Evolver(base, () => `n${++counter}`);
  const applied: string[] = [];
  let bumped = false;
  for (const s of steps) {
    const d = ev.apply(s.op);
    if (d === null) continue;
    applied.push(s.bump ? `${d}, bump revision` : d);
    bumped ||= s.bump;
  }
  const next = { ...ev.layout, revision: bumped ? (base.revision % 0x7fffffff) + 1 : base.revision };
  const [oldL, newL] = [toLayout(base, 'OLD'), toLayout(next, 'NEW')];
  const truth = truthPairing(base.members, next.members);
  return { old: oldL, new: newL, applied, bumped, truth, expected: expectedDiff(oldL, newL, truth, bumped) };
}

export function layoutEvolution(opts: { base?: fc.Arbitrary<EvoLayout>; maxSteps?: number } = {}): fc.Arbitrary<Evolution> {
  const steps = fc.array(fc.record({ op: evolutionOp, bump: fc.boolean() }), { minLength: 1, maxLength: opts.maxSteps ?? 5 });
  return fc.tuple(opts.base ?? baseLayout, steps).map(([b, s]) => evolve(b, s));
}
