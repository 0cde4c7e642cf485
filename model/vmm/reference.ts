// The reference VMM behind the `vmm` target group: QEMU's rules (qemu.ts) around the reference
// stream format (stream-format.ts). Save asks GET with a buffer of KVM_CAP_NESTED_STATE bytes, as
// QEMU does (kvm_max_nested_state_length), follows E2BIG to the size it reports, and carries what
// QEMU's subsections carry; load reads any stream version up to its own and makes QEMU's post_load
// checks. Two of them: `qemu` (stream version 2, which carries hdr.vmx.flags, and writes version 1
// when asked, as its previous release did) and `qemu-drops-vmx-flags` (version 1 only: a QEMU that
// does not carry hdr.vmx.flags, VMM_KNOWN_BUGS).
import { readHeader } from '../nested/blob.js';
import { OFFSET } from '../nested/constants.js';
import { postLoadProblem, qemuCarried } from './qemu.js';
import { readStream, writeStream, type StreamVersion } from './stream-format.js';

/** The stream format's two ends; a parameter so that a test can plant a bug inside them. */
export interface StreamCodec {
  readonly writeStream: typeof writeStream;
  readonly readStream: typeof readStream;
}
const STREAM_CODEC: StreamCodec = { writeStream, readStream };
import type { VmmGetCall, VmmInfo, VmmLoaded, VmmLoadInput, VmmSaved, VmmSaveInput } from './types.js';

export const REFERENCE_VMMS = {
  qemu: { version: 2, info: { streamVersions: ['1', '2'] } },
  'qemu-drops-vmx-flags': { version: 1, info: { streamVersions: ['1'], knownBugs: ['drops-vmx-flags'] } },
} as const satisfies Record<string, { version: StreamVersion; info: VmmInfo }>;
export type ReferenceVmmName = keyof typeof REFERENCE_VMMS;
export const REFERENCE_VMM_NAMES = Object.keys(REFERENCE_VMMS) as ReferenceVmmName[];

/** How often save follows E2BIG before it gives up (a kernel whose needed size keeps growing). */
const GET_TRIES = 3;

/**
 * KVM_GET_NESTED_STATE into a buffer of `userSize` bytes, answered from what GET stores (kernel-facts
 * §8): E2BIG with the needed size in the header's size field when the buffer is smaller than `size`;
 * EFAULT when it holds `size` but not all GET writes (GET_SHADOW_PAST_SIZE); else the state. An
 * adapter around a real VMM answers its VMM's ioctl the same way (targets/PROTOCOL.md).
 */
export function answerGet(state: Uint8Array, userSize: number): { errno: 'E2BIG' | 'EFAULT' | null; buffer: Uint8Array } {
  const size = readHeader(state).size;
  const buffer = new Uint8Array(Math.max(userSize, OFFSET.size + 4));
  if (userSize < size) {
    new DataView(buffer.buffer).setUint32(OFFSET.size, size, true);
    return { errno: 'E2BIG', buffer };
  }
  buffer.set(state.subarray(0, Math.min(state.length, userSize)));
  return { errno: userSize < state.length ? 'EFAULT' : null, buffer };
}

/** The stream version a request names, if this VMM has it. */
export function vmmVersion(vmm: ReferenceVmmName, version: string | undefined): StreamVersion | null {
  const own = REFERENCE_VMMS[vmm];
  if (version === undefined) return own.version;
  return (own.info.streamVersions as readonly string[]).includes(version) ? (Number(version) as StreamVersion) : null;
}

export function vmmSave(input: VmmSaveInput, vmm: ReferenceVmmName = 'qemu', codec: StreamCodec = STREAM_CODEC): VmmSaved {
  const version = vmmVersion(vmm, input.version);
  if (version === null) throw new RangeError(`the reference VMM ${vmm} writes no stream version ${input.version}`);
  const gets: VmmGetCall[] = [];
  let nested: Uint8Array | null = null;
  // without KVM_CAP_NESTED_STATE there is no GET to ask: nothing nested is saved
  for (let userSize = input.kernel.nestedStateCap; userSize > 0; ) {
    const g = answerGet(input.kernel.state, userSize);
    gets.push({ userSize, errno: g.errno });
    const size = readHeader(g.buffer).size;
    if (g.errno === 'E2BIG' && gets.length < GET_TRIES) {
      userSize = size;
      continue;
    }
    if (g.errno) return { refused: `KVM_GET_NESTED_STATE with a ${userSize}-byte buffer failed: ${g.errno}`, gets };
    nested = qemuCarried(g.buffer.subarray(0, size), { dropsVmxFlags: false });
    break;
  }
  return { stream: codec.writeStream({ version, config: input.config, vmxMsrs: input.vmxMsrs, nested }), gets };
}

export function vmmLoad(input: VmmLoadInput, vmm: ReferenceVmmName = 'qemu', codec: StreamCodec = STREAM_CODEC): VmmLoaded {
  const version = vmmVersion(vmm, input.version);
  if (version === null) throw new RangeError(`the reference VMM ${vmm} has no version ${input.version}`);
  const r = codec.readStream(input.stream, version);
  if (!r.ok) return { refused: r.problem };
  const { nested, config, vmxMsrs } = r.content;
  const problem = nested && postLoadProblem(readHeader(nested), input.kernel.nestedStateCap);
  if (problem) return { refused: problem };
  return { set: nested, vmxMsrs, config };
}
