// `filter show` and `filter diff`: the VMX MSRs a guest RDMSR sees with eVMCS enabled, per profile,
// and what an L1 gains or loses between two profiles, bit by bit.
import { hex } from '../model/encoding.js';
import { assumedFullCapabilities, filterDiff, type FilterDiff } from '../model/filter-diff.js';
import { findProfile, profileNames, type Profile } from '../model/profiles.js';
import { bitNames, capabilityProblems, CONTROL_MSRS, filterMsrSet, MSR, MSR_NAMES, type MsrSet } from '../model/vmx-msrs.js';
import { readJsonFile } from './json-input.js';
import { EXIT, UsageError } from '../base/errors.js';
import { dispatch, intValue, parse } from './options.js';
import { filterDiffSpec as diffSpec, filterGroup, filterShowSpec as showSpec } from './spec.js';

export async function filterCommand(argv: string[]): Promise<number> {
  return dispatch(filterGroup, argv, { show, diff });
}

function profileWithFilter(name: string): Profile {
  const p = findProfile(name);
  if (!p) throw new UsageError(`unknown profile "${name}" (known: ${profileNames().join(', ')})`);
  if (!p.evmcs) throw new UsageError(`profile ${name} has no eVMCS filter model (profiles with one: ${profileNames().filter((n) => findProfile(n)!.evmcs).join(', ')})`);
  return p;
}

export function readMsrFile(path: string): Map<number, bigint> {
  return msrSetFromJson(readJsonFile(path, 'msrs') as Record<string, string>, path);
}

/** An MSR object ({"0x481": "0x…"}, schema-checked) as a set, refused when inconsistent. */
export function msrSetFromJson(json: Record<string, string>, where: string): Map<number, bigint> {
  const msrs = new Map(Object.entries(json).map(([k, v]) => [Number.parseInt(k, 16), BigInt(v)]));
  const bad = capabilityProblems(msrs);
  if (bad.length) throw new UsageError(`${where}: not a consistent capability set: ${bad[0]}`);
  return msrs;
}

const ebxOption = (v: string | undefined) => intValue(showSpec, 'hv-nested-ebx', v) ?? 0;

function show(argv: string[]): number {
  const { values } = parse(argv, showSpec);
  const p = profileWithFilter(values.profile);
  const msrs = readMsrFile(values.msrs);
  const ebx = ebxOption(values['hv-nested-ebx']);
  const out = filterMsrSet(p.evmcs!.filter, msrs, ebx);
  const hidden = hiddenByFilter(msrs, out);
  if (values.json) {
    console.log(JSON.stringify({ msrs: Object.fromEntries([...out].map(([i, v]) => [hex(i), hex(v, 16)])), profile: p.name, hvNestedEbx: hex(ebx, 8), filterStyle: p.evmcs!.filterStyle, hidden }, null, 2));
    return EXIT.ok;
  }
  console.log(`${p.name} (${p.evmcs!.filterStyle}), Hyper-V CPUID 0x4000000A.EBX = ${hex(ebx, 8)}: what a guest RDMSR returns`);
  for (const [i, v] of out) {
    const h = hidden[hex(i)];
    console.log(`${hex(i)} ${MSR_NAMES[i]?.padEnd(30) ?? ''} ${hex(v, 16)}${h ? `   hidden: ${h.bits.join(', ')}` : ''}`);
  }
  return EXIT.ok;
}

function hiddenByFilter(raw: MsrSet, filtered: MsrSet): Record<string, { mask: string; bits: string[] }> {
  const out: Record<string, { mask: string; bits: string[] }> = {};
  for (const [i, v] of raw) {
    const f = filtered.get(i)!;
    if (v === f) continue;
    const gone = Number(i === MSR.VMFUNC ? v & ~f & 0xffffffffn : (v >> 32n) & ~(f >> 32n));
    const controls = i === MSR.VMFUNC ? 'vmfunc' : CONTROL_MSRS.find((c) => c.index === i)!.controls;
    out[hex(i)] = { mask: hex(gone >>> 0, 8), bits: bitNames(controls, gone) };
  }
  return out;
}

function diff(argv: string[]): number {
  const { values } = parse(argv, diffSpec);
  const from = profileWithFilter(values.from);
  const to = profileWithFilter(values.to);
  const ebx = ebxOption(values['hv-nested-ebx']);
  const { msrs, assumptions } = values.msrs ? { msrs: readMsrFile(values.msrs), assumptions: [] } : assumedFullCapabilities();
  const d = filterDiff(from, to, msrs, ebx, assumptions);
  if (values.json) console.log(JSON.stringify(d, null, 2));
  else printDiff(d);
  return EXIT.ok;
}

function printDiff(d: FilterDiff): void {
  console.log(`eVMCS filter ${d.from} -> ${d.to}, Hyper-V CPUID 0x4000000A.EBX = ${hex(d.hvNestedEbx, 8)}`);
  if (!d.differences.length) console.log('no difference: an L1 sees the same controls');
  for (const m of d.differences) {
    console.log(`${m.msr} ${m.name}`);
    if (m.lost.bits.length) console.log(`    usable under ${d.from}, hidden under ${d.to} (${m.lost.mask}): ${m.lost.bits.join(', ')}`);
    if (m.gained.bits.length) console.log(`    hidden under ${d.from}, usable under ${d.to} (${m.gained.mask}): ${m.gained.bits.join(', ')}`);
  }
  if (d.assumptions.length) {
    console.log('assumptions (no --msrs given):');
    for (const a of d.assumptions) console.log(`    - ${a}`);
  }
}
