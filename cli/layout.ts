// `layout show` and `layout diff`.
import { hex } from '../model/encoding.js';
import { toDescriptor, type Layout } from '../model/layout.js';
import { diffLayouts, type Direction, type LayoutDiff } from '../model/layout-diff.js';
import { FINDING_TEXT, layoutDiffDocument } from '../reports/sections.js';
import { EXIT, UsageError } from '../base/errors.js';
import { loadLayout } from './load-layout.js';
import { dispatch, parse } from './options.js';
import { layoutDiffSpec as diffSpec, layoutGroup, layoutShowSpec as showSpec } from './spec.js';

export async function layoutCommand(argv: string[]): Promise<number> {
  return dispatch(layoutGroup, argv, { show, diff });
}

async function show(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, showSpec);
  if (!positionals[0]) throw new UsageError('layout show needs a profile or a descriptor file');
  const layout = await loadLayout(positionals[0], values.structure);
  if (values.json) {
    console.log(JSON.stringify(toDescriptor(layout), null, 2));
    return EXIT.ok;
  }
  console.log(`${layout.structure} layout ${layout.name}: revision ${layout.revision === null ? '-' : hex(layout.revision, 8)}, ${layout.size} bytes, ${layout.members.length} members, ${layout.fields.length} encodings`);
  const enc = new Map<string, string[]>();
  for (const f of layout.fields) enc.set(f.member, [...(enc.get(f.member) ?? []), hex(f.encoding, 4)]);
  console.log('offset  size  type           member                              encodings');
  for (const m of layout.members) {
    const type = (m.count > 1 ? `${m.type}[${m.count}]` : m.type) + (m.padding ? ' pad' : '');
    console.log(`${String(m.offset).padStart(6)}  ${String(m.size).padStart(4)}  ${type.padEnd(13)}  ${m.name.padEnd(34)}  ${(enc.get(m.name) ?? []).join(' ')}`);
  }
  return EXIT.ok;
}

async function diff(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, diffSpec);
  if (positionals.length !== 2) throw new UsageError('layout diff needs OLD and NEW (profiles or descriptor files)');
  const d = diffLayouts(await loadLayout(positionals[0]!, values.structure), await loadLayout(positionals[1]!, values.structure));
  if (values.json) {
    console.log(JSON.stringify(layoutDiffDocument(d), null, 2));
  } else printDiff(d, values.all);
  return d.compatible ? EXIT.ok : EXIT.failure;
}

function printDiff(d: LayoutDiff, all: boolean): void {
  console.log(`${d.structure} ${d.old.name} (${d.old.revision ?? '-'}) -> ${d.new.name} (${d.new.revision ?? '-'})`);
  const shown = d.members.filter((m) => all || m.class !== 'unchanged');
  const unchanged = d.members.length - shown.length;
  if (shown.length) console.log('class               old                                   new');
  for (const m of shown) {
    const side = (r?: { name: string; offset: number; type: string }) => (r ? `${r.name} @${r.offset} ${r.type}` : '-');
    console.log(`${(m.class + (m.padding ? '*' : '')).padEnd(18)}  ${side(m.old).padEnd(36)}  ${side(m.new)}`);
  }
  if (unchanged) console.log(`(${unchanged} members unchanged${shown.some((m) => m.padding) ? '; * marks padding' : ''})`);
  if (d.fields.added.length) console.log(`encodings added: ${d.fields.added.join(', ')}`);
  if (d.fields.removed.length) console.log(`encodings removed: ${d.fields.removed.join(', ')}`);
  for (const r of d.fields.remapped) console.log(`encoding ${r.encoding} remapped: ${r.from} -> ${r.to}`);
  const dir = (label: string, x: Direction) => {
    console.log(`${label}: ${x.verdict}`);
    for (const c of x.corrupted) console.log(`    corrupted ${c.member}: ${c.reason}`);
    if (x.lost.length) console.log(`    lost (the reader drops them): ${x.lost.join(', ')}`);
    if (x.readAsZero.length) console.log(`    read as zero (the writer does not know them): ${x.readAsZero.join(', ')}`);
  };
  dir(`can ${d.new.name} read what ${d.old.name} wrote`, d.newReadsOld);
  dir(`can ${d.old.name} read what ${d.new.name} wrote`, d.oldReadsNew);
  console.log(`finding: ${FINDING_TEXT[d.finding]}`);
}
