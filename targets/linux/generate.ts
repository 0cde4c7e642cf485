// Generates nvmx-kernel.h for harness.c from a kernel tree: our user-space shims, then the kernel
// definitions extracted unchanged (extract.ts), then tables of member names and encodings for the
// harness to feed to offsetof. The result lives only in the build cache, never in this repository
// and never in the user's tree.
import { profileForKernel } from '../../model/profiles.js';
import { KERNEL_HAS_NO_VMM, type Group } from '../target.js';
import { PROTOCOL, type HelloMessage } from '../protocol/wire.js';
import { extractBraced, extractDefine, extractDefines, extractFunction, extractLine, matchAll, PieceSet, TreeReader, type Piece } from './extract.js';

export const VMX_DIR = 'arch/x86/kvm/vmx';
const VMCS_H = `${VMX_DIR}/vmcs.h`;
const VMCS12_H = `${VMX_DIR}/vmcs12.h`;
const VMCS12_C = `${VMX_DIR}/vmcs12.c`;
const ASM_VMX_H = 'arch/x86/include/asm/vmx.h';
const UAPI_KVM_H = 'arch/x86/include/uapi/asm/kvm.h';
const VMXFEATURES_H = 'arch/x86/include/asm/vmxfeatures.h';
const MSR_INDEX_H = 'arch/x86/include/asm/msr-index.h';
const HV_TLFS_H = 'arch/x86/include/asm/hyperv-tlfs.h';

export interface Generated {
  readonly header: string;
  readonly hello: HelloMessage;
  readonly kernelVersion: string;
}

/** Thrown when the directory is not a kernel tree at all (bad input, not an unsupported group). */
export class NotAKernelTree extends Error {}

const SHIMS = `/* user-space shims for the kernel types and macros the extracted definitions use (ours) */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <errno.h>
typedef uint8_t u8; typedef uint16_t u16; typedef uint32_t u32; typedef uint64_t u64;
typedef int8_t s8; typedef int16_t s16; typedef int32_t s32; typedef int64_t s64;
#define __packed __attribute__((packed))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define array_index_nospec(index, size) (index)
/* a failed consistency check (CC) or warning is remembered: it names the rule that failed */
static const char *nvmx_failed_check;
static inline bool nvmx_check(bool failed, const char *what) { if (failed) nvmx_failed_check = what; return failed; }
#define WARN_ON_ONCE(cond) nvmx_check(!!(cond), #cond)
#define CC(cond) nvmx_check((cond), #cond)
#define BIT(n) (1UL << (n))
#define BIT_ULL(n) (1ULL << (n))
#define GENMASK(h, l) (((~0UL) << (l)) & (~0UL >> (63 - (h))))
#define likely(x) (x)
#define unlikely(x) (x)
`;

/** The tree's version from its top-level Makefile. */
export function kernelVersion(r: TreeReader): { major: number; minor: number; text: string } {
  const mk = r.read('Makefile');
  const v = (k: string) => (mk ? new RegExp(`^${k}[ \\t]*=[ \\t]*(\\S*)`, 'm').exec(mk)?.[1] : undefined);
  const major = v('VERSION');
  const minor = v('PATCHLEVEL');
  if (!major || !minor) throw new NotAKernelTree(`${r.root}: not a kernel tree (no VERSION/PATCHLEVEL in its Makefile)`);
  const sub = v('SUBLEVEL');
  return { major: Number(major), minor: Number(minor), text: `${major}.${minor}${sub ? `.${sub}` : ''}${v('EXTRAVERSION') ?? ''}` };
}

/** The profile of the same version, or the newest older one (the vmcs12 layout is frozen since 5.8). */
export const profileFor = (major: number, minor: number): string => profileForKernel(major, minor).name;

const C_TYPES: Record<string, { type: string; ctype?: string }> = {
  u16: { type: 'u16' },
  u32: { type: 'u32' },
  u64: { type: 'u64' },
  natural_width: { type: 'natural' },
  'struct vmcs_hdr': { type: 'u32', ctype: 'struct vmcs_hdr' },
};

interface Member {
  name: string;
  ctype: string;
  array: boolean;
}

/** Member declarations of an extracted struct body (names and types only; gcc computes offsets). */
function membersOf(struct: Piece): { members: Member[] } | { missing: string } {
  const body = struct.text.slice(struct.text.indexOf('{') + 1, struct.text.lastIndexOf('}'));
  const clean = body.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
  const members: Member[] = [];
  for (const decl of clean.split(';').map((d) => d.trim()).filter(Boolean)) {
    const m = /^((?:struct\s+)?\w+)\s+(\w+)\s*(\[[^\]]+\])?$/.exec(decl.replace(/\s+/g, ' '));
    if (!m) return { missing: `${struct.file}: struct vmcs12 declaration "${decl}" is not a plain member` };
    if (!C_TYPES[m[1]!]) return { missing: `${struct.file}: struct vmcs12 member ${m[2]} has type ${m[1]}, which nvmx-layout/1 cannot describe` };
    members.push({ name: m[2]!, ctype: m[1]!, array: m[3] !== undefined });
  }
  return { members };
}

const cString = (s: string): string => '"' + s.replace(/[\\"]/g, (c) => '\\' + c).replace(/[^\x20-\x7e]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`) + '"';

const MSR_FILTER_SHIMS = `/* the Hyper-V vCPU state the filter reads: only the guest's CPUID 0x4000000A.EBX (ours) */
struct kvm_vcpu_hv { struct { u32 nested_ebx; } cpuid_cache; };
struct kvm_vcpu { struct kvm_vcpu_hv *hv; };
static inline struct kvm_vcpu_hv *to_hv_vcpu(struct kvm_vcpu *vcpu) { return vcpu->hv; }
`;

/**
 * Group msr-filter: nested_evmcs_filter_control_msr and nested_evmcs_check_controls over the
 * EVMCS1_* masks. 6.1 keeps them in evmcs.c/evmcs.h (a deny-list), 6.12 in hyperv.c and
 * hyperv_evmcs.h (an allow-list); the helper names say which.
 */
function msrFilterPieces(r: TreeReader): PieceSet {
  const set = new PieceSet();
  const file = [`${VMX_DIR}/hyperv.c`, `${VMX_DIR}/evmcs.c`].find((f) => r.read(f)?.includes('nested_evmcs_filter_control_msr('));
  const masks = r.firstOf([`${VMX_DIR}/hyperv_evmcs.h`, `${VMX_DIR}/evmcs.h`]);
  if (!file) return set.add({ ok: false, missing: `neither ${VMX_DIR}/hyperv.c nor ${VMX_DIR}/evmcs.c defines nested_evmcs_filter_control_msr` });
  if (!masks) return set.add({ ok: false, missing: `neither ${VMX_DIR}/hyperv_evmcs.h nor ${VMX_DIR}/evmcs.h exists (EVMCS1_* masks)` });
  const kind = /\bevmcs_get_supported_ctls\s*\(/.test(r.read(file)!) ? 'supported' : 'unsupported';
  return set
    .add(extractDefines(r, VMXFEATURES_H, /^(VMX_FEATURE_\w+|NVMXINTS)$/, 'VMX_FEATURE_* bits'))
    .add(extractDefines(r, ASM_VMX_H, /^(VMCS_CONTROL_BIT|VMFUNC_CONTROL_BIT|PIN_BASED_|CPU_BASED_|SECONDARY_EXEC_|TERTIARY_EXEC_|VM_EXIT_|VM_ENTRY_|VMX_VMFUNC_)/, 'VMX control bit #defines'))
    .add(extractDefines(r, MSR_INDEX_H, /^MSR_IA32_VMX_/, 'MSR_IA32_VMX_* indexes'))
    .add(extractDefine(r, HV_TLFS_H, 'HV_X64_NESTED_EVMCS1_PERF_GLOBAL_CTRL'))
    .add(extractDefines(r, masks, /^EVMCS1_/, 'EVMCS1_* masks'))
    .add({ ok: true, value: { file: '(shims)', text: MSR_FILTER_SHIMS } })
    .add(extractBraced(r, file, /^enum\s+evmcs_revision\s*\{/m, 'enum evmcs_revision'))
    .add(extractBraced(r, file, /^enum\s+evmcs_ctrl_type\s*\{/m, 'enum evmcs_ctrl_type'))
    .add(extractBraced(r, file, new RegExp(`^static\\s+const\\s+u32\\s+evmcs_${kind}_ctrls\\b[^=]*=\\s*\\{`, 'm'), `evmcs_${kind}_ctrls[][] table`))
    .add(extractFunction(r, file, `evmcs_get_${kind}_ctls`))
    .add(extractFunction(r, file, 'evmcs_has_perf_global_ctrl'))
    .add(extractFunction(r, file, 'nested_evmcs_filter_control_msr'))
    .add(extractFunction(r, file, 'nested_evmcs_is_valid_controls'))
    .add(extractFunction(r, file, 'nested_evmcs_check_controls'));
}

export interface GenerateOptions {
  /** groups to leave out, with the reason (e.g. what gcc said about their extracted code) */
  readonly drop?: Partial<Record<Group, string>>;
}

export function generate(root: string, opts: GenerateOptions = {}): Generated {
  const r = new TreeReader(root);
  const version = kernelVersion(r);
  const profile = profileFor(version.major, version.minor);

  // group layout: the structs, the revision, the size, the field table and the enum naming it
  const layout = new PieceSet()
    .add(extractDefine(r, VMCS_H, 'ROL16'))
    .add(extractBraced(r, VMCS_H, /^struct\s+vmcs_hdr\s*\{/m, 'struct vmcs_hdr'))
    .add(extractLine(r, VMCS12_H, /^typedef\s+u64\s+natural_width\s*;/m, 'typedef u64 natural_width'))
    .add(extractBraced(r, VMCS12_H, /^struct\s+(?:__packed\s+)?vmcs12\s*(?:__packed\s*)?\{/m, 'struct vmcs12'))
    .add(extractDefine(r, VMCS12_H, 'VMCS12_REVISION'))
    .add(extractDefine(r, VMCS12_H, 'VMCS12_SIZE'))
    .add(extractBraced(r, ASM_VMX_H, /^enum\s+vmcs_field\s*\{/m, 'enum vmcs_field'))
    .add(extractDefine(r, VMCS12_C, 'VMCS12_OFFSET'))
    .add(extractDefine(r, VMCS12_C, 'FIELD'))
    .add(extractDefine(r, VMCS12_C, 'FIELD64'))
    .add(extractBraced(r, VMCS12_C, /^const\s+unsigned\s+short\s+vmcs12_field_offsets\s*\[\s*\]\s*=\s*\{/m, 'vmcs12_field_offsets[] initializer'))
    .add(extractLine(r, VMCS12_C, /^const\s+unsigned\s+int\s+nr_vmcs12_fields\s*=[^;]*;/m, 'nr_vmcs12_fields'));
  const sizeDef = layout.pieces.find((p) => p.text.includes('VMCS12_SIZE'));
  if (sizeDef?.text.includes('KVM_STATE_NESTED_VMX_VMCS_SIZE')) layout.add(extractDefine(r, UAPI_KVM_H, 'KVM_STATE_NESTED_VMX_VMCS_SIZE'));
  const structPiece = layout.pieces.find((p) => /struct\s+(?:__packed\s+)?vmcs12\s*(?:__packed\s*)?\{/.test(p.text));
  let members: Member[] = [];
  if (structPiece) {
    const m = membersOf(structPiece);
    if ('missing' in m) layout.missing ??= m.missing;
    else members = m.members;
  }
  const enumPiece = layout.pieces.find((p) => /^enum\s+vmcs_field\s*\{/.test(p.text));
  const fieldNames = enumPiece ? [...enumPiece.text.replace(/\/\*[\s\S]*?\*\//g, '').matchAll(/^\s*([A-Z][A-Z0-9_]*)\s*=/gm)].map((m) => m[1]!) : [];
  const checks = [...matchAll(r, VMCS12_H, /CHECK_OFFSET\(\s*(\w+)\s*,\s*(\d+)\s*\)/g).map((c) => ({ file: VMCS12_H, c })), ...matchAll(r, VMCS12_C, /CHECK_OFFSET\(\s*(\w+)\s*,\s*(\d+)\s*\)/g).map((c) => ({ file: VMCS12_C, c }))];

  // group vmcs12-access: the kernel's own lookup and width-switched read/write
  const access = new PieceSet()
    .add(extractBraced(r, VMCS_H, /^enum\s+vmcs_field_width\s*\{/m, 'enum vmcs_field_width'))
    .add(extractFunction(r, VMCS_H, 'vmcs_field_width'))
    .add(extractFunction(r, VMCS12_H, 'get_vmcs12_field_offset'))
    .add(extractFunction(r, VMCS12_H, 'vmcs12_read_any'))
    .add(extractFunction(r, VMCS12_H, 'vmcs12_write_any'));
  if (layout.missing) access.missing ??= `needs the layout group: ${layout.missing}`;
  const filter = msrFilterPieces(r);
  if (layout.missing) filter.missing ??= `needs struct vmcs12: ${layout.missing}`;
  for (const [g, set] of [['layout', layout], ['vmcs12-access', access], ['msr-filter', filter]] as const) if (opts.drop?.[g]) set.missing ??= opts.drop[g]!;

  const groups: Group[] = [];
  const unsupported: Partial<Record<Group, string>> = {
    'layout-revisions': `the kernel reads one vmcs12 revision only (VMCS12_REVISION in ${VMCS12_H})`,
    'evmcs-sync': `copy_enlightened_to_vmcs12/copy_vmcs12_to_enlightened in ${VMX_DIR}/nested.c are not extracted: they work on struct vcpu_vmx (cached vmcs12, mapped eVMCS, Hyper-V vCPU state; 6.12 also CONFIG_KVM_HYPERV and force_msr_bitmap_recalc), which shims could only imitate, not reproduce`,
    'nested-state': 'KVM_GET/SET_NESTED_STATE needs a live KVM, not user-space code',
    vmm: KERNEL_HAS_NO_VMM('a kernel tree holds the kernel side of KVM_GET/SET_NESTED_STATE'),
  };
  if (layout.missing) unsupported.layout = layout.missing;
  else groups.push('layout');
  if (access.missing) unsupported['vmcs12-access'] = access.missing;
  else groups.push('vmcs12-access');
  if (filter.missing) unsupported['msr-filter'] = filter.missing;
  else groups.push('msr-filter');

  const hello: HelloMessage = { type: 'hello', protocol: PROTOCOL, name: `linux ${version.text}`, version: version.text, profile, groups, unsupported: unsupported as Record<string, string> };
  const out: string[] = [SHIMS];
  const emit = (p: Piece) => out.push(`/* extracted from ${p.file} */`, p.text, '');
  if (!layout.missing) {
    for (const p of layout.pieces) emit(p); // macros expand at use, so definition order is the file order
    out.push('/* the tree\'s CHECK_OFFSET assertions, as _Static_asserts (ours) */');
    for (const { file, c } of checks)
      out.push(`_Static_assert(offsetof(struct vmcs12, ${c[0]}) == ${c[1]}, ${cString(`CHECK_OFFSET(${c[0]}, ${c[1]}) in ${file}: struct vmcs12 puts ${c[0]} elsewhere`)});`);
    out.push('#define NVMX_VMCS12_SIZE VMCS12_SIZE');
    out.push(`#define NVMX_LAYOUT_NAME ${cString(`linux-${version.text}`)}`);
    const mem = (m: Member) => {
      const t = C_TYPES[m.ctype]!;
      const elem = m.array ? `sizeof(((struct vmcs12 *)0)->${m.name}[0])` : `sizeof(((struct vmcs12 *)0)->${m.name})`;
      return `{ ${cString(m.name)}, ${cString(t.type)}, ${t.ctype ? cString(t.ctype) : 'NULL'}, offsetof(struct vmcs12, ${m.name}), sizeof(((struct vmcs12 *)0)->${m.name}), ${elem}, ${m.array ? 1 : 0} }`;
    };
    out.push(`#define NVMX_VMCS12_MEMBERS \\\n\t${members.map(mem).join(', \\\n\t')}`);
    out.push(`#define NVMX_VMCS_FIELD_NAMES \\\n\t${fieldNames.map((n) => `{ ${cString(n)}, ${n} }`).join(', \\\n\t')}`);
  }
  if (!access.missing) for (const p of access.pieces) emit(p);
  if (!filter.missing) for (const p of filter.pieces) emit(p);
  out.push(`#define NVMX_HAVE_LAYOUT ${layout.missing ? 0 : 1}`, `#define NVMX_HAVE_ACCESS ${access.missing ? 0 : 1}`, `#define NVMX_HAVE_MSR_FILTER ${filter.missing ? 0 : 1}`);
  for (const [g, macro] of [['layout', 'LAYOUT'], ['vmcs12-access', 'ACCESS'], ['evmcs-sync', 'EVMCS_SYNC'], ['msr-filter', 'MSR_FILTER']] as const)
    out.push(`#define NVMX_UNSUPPORTED_${macro} ${cString(unsupported[g] ?? '')}`);
  out.push(`#define NVMX_HELLO ${cString(JSON.stringify(hello))}`);
  return { header: out.join('\n') + '\n', hello, kernelVersion: version.text };
}
