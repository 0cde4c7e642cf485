#!/usr/bin/env node
// An example nvmx-target/1 adapter that offers only the `vmm` group (targets/PROTOCOL.md, "The vmm
// group"): the shape a VMM team wraps around its own save/restore code. The "VMM" here is a tiny one
// whose stream is JSON; a real adapter calls its VMM's code where `saveVcpu` and `loadVcpu` are, and
// answers the VMM's KVM_GET_NESTED_STATE ioctl from the request (`kernelGet`), as a test double of
// its vCPU fd would.
//
//   nvmx-conformance check --target exec:"node examples/vmm-adapter.mjs" --only 'vmm.*'
//   nvmx-conformance check --target exec:"node examples/vmm-adapter.mjs --bug drop-header-only" --only 'vmm.*'
//
// `--bug drop-header-only` plants the bug of rust-vmm/kvm#385: the accessor that reads GET's answer
// takes a 128-byte, header-only state (VMXON on, no vmcs12 loaded) for "no nested state", so the
// VMM never sends vmxon_pa. vmm.carries-vmxon-state then fails with a one-step counterexample.
// No dependencies: Node 20 or later.
import { createInterface } from 'node:readline';

const args = process.argv.slice(2);
const bugAt = args.indexOf('--bug');
const BUG = bugAt >= 0 ? args[bugAt + 1] : undefined;
if (BUG !== undefined && BUG !== 'drop-header-only') {
  process.stderr.write(`vmm-adapter: unknown --bug ${BUG} (known: drop-header-only)\n`);
  process.exit(2);
}

// ---- the "VMM": its save and its load ----------------------------------------------------------

const HEADER_SIZE = 128; // sizeof(struct kvm_nested_state)
const STREAM_FORMAT = 'example-vmm-stream';
const STREAM_VERSION = 1;
const readSize = (buf) => buf.readUInt32LE(4); // kvm_nested_state.size

/** The VMM's nested-state accessor over a GET answer (kvm-ioctls' `nested_state()` has this job). */
function nestedState(buf) {
  const size = readSize(buf);
  if (BUG === 'drop-header-only' && size === HEADER_SIZE) return null; // rust-vmm/kvm#385
  return buf.subarray(0, size);
}

/** Save one vCPU: GET with a buffer of KVM_CAP_NESTED_STATE bytes, follow E2BIG, write the stream. */
function saveVcpu({ kernel, vmxMsrs, config }, ioctl) {
  let nested = null;
  if (kernel.nestedStateCap > 0) {
    let userSize = kernel.nestedStateCap;
    for (let tries = 0; ; tries++) {
      const r = ioctl.getNestedState(userSize);
      if (r.errno === 'E2BIG' && tries < 2) {
        userSize = readSize(r.buffer);
        continue;
      }
      if (r.errno) return { refused: `KVM_GET_NESTED_STATE failed: ${r.errno}` };
      nested = nestedState(r.buffer);
      break;
    }
  }
  const stream = { format: STREAM_FORMAT, version: STREAM_VERSION, cpuid: config, msrs: vmxMsrs, nested: nested && nested.toString('hex') };
  return { stream: Buffer.from(JSON.stringify(stream)) };
}

/** Load one vCPU: the stream's parts, after QEMU-like checks against the destination's capability. */
function loadVcpu(stream, kernel) {
  let s;
  try {
    s = JSON.parse(stream.toString('utf8'));
  } catch {
    return { refused: 'not a stream of this VMM' };
  }
  if (s.format !== STREAM_FORMAT || s.version !== STREAM_VERSION) return { refused: `stream ${s.format} version ${s.version}: this VMM reads ${STREAM_FORMAT} version ${STREAM_VERSION}` };
  const nested = s.nested === null ? null : Buffer.from(s.nested, 'hex');
  if (nested) {
    if (!kernel.nestedStateCap) return { refused: 'nested state in the stream, but no KVM_CAP_NESTED_STATE here' };
    const size = readSize(nested);
    if (size < HEADER_SIZE || size > kernel.nestedStateCap) return { refused: `nested state size ${size} is outside ${HEADER_SIZE}..${kernel.nestedStateCap}` };
  }
  return { set: nested, vmxMsrs: s.msrs, config: s.cpuid };
}

// ---- the adapter: KVM's side of the VMM's ioctl, and the protocol ------------------------------

/**
 * KVM_GET_NESTED_STATE as the request describes the source kernel: E2BIG (with the needed size in
 * the buffer's size field) when the buffer is smaller than `size`, EFAULT when it holds `size` but
 * not all GET writes (the shadow vmcs12 past `size`), else the state copied. Every call is recorded:
 * the runner checks the buffers the VMM offered.
 */
function kernelFor(kernel, gets) {
  const state = Buffer.from(kernel.state, 'hex');
  const size = readSize(state);
  return {
    getNestedState(userSize) {
      const buffer = Buffer.alloc(Math.max(userSize, 8));
      let errno = null;
      if (userSize < size) {
        buffer.writeUInt32LE(size, 4);
        errno = 'E2BIG';
      } else {
        state.copy(buffer, 0, 0, Math.min(state.length, userSize));
        if (userSize < state.length) errno = 'EFAULT';
      }
      gets.push({ userSize, errno });
      return { errno, buffer };
    },
  };
}

const handlers = {
  'vmm-save'(a) {
    if (a.version !== undefined && a.version !== String(STREAM_VERSION)) return { unsupported: `this adapter writes only stream version ${STREAM_VERSION}` };
    const gets = [];
    const r = saveVcpu(a, kernelFor(a.kernel, gets));
    return { ok: 'refused' in r ? { refused: r.refused, gets } : { stream: r.stream.toString('hex'), gets } };
  },
  'vmm-load'(a) {
    if (a.version !== undefined && a.version !== String(STREAM_VERSION)) return { unsupported: `this adapter loads only as stream version ${STREAM_VERSION}` };
    const r = loadVcpu(Buffer.from(a.stream, 'hex'), a.kernel);
    return { ok: 'refused' in r ? r : { set: r.set && r.set.toString('hex'), vmxMsrs: r.vmxMsrs, config: r.config } };
  },
};

function answer(req) {
  const h = handlers[req.op];
  if (!h) return { id: req.id, status: 'unsupported', reason: `unknown op "${req.op}": this adapter offers only the vmm group` };
  try {
    const r = h(req.args);
    return 'unsupported' in r ? { id: req.id, status: 'unsupported', reason: r.unsupported } : { id: req.id, status: 'ok', value: r.ok };
  } catch (e) {
    return { id: req.id, status: 'error', reason: `${req.op} threw: ${e.message}` };
  }
}

const NOT_A_KERNEL = 'this adapter is a VMM: it offers only the vmm group';
const hello = {
  type: 'hello',
  protocol: 'nvmx-target/1',
  name: `example-vmm${BUG ? ` (bug ${BUG})` : ''}`,
  version: '0.1.0',
  groups: ['vmm'],
  unsupported: Object.fromEntries(['layout', 'vmcs12-access', 'layout-revisions', 'evmcs-sync', 'msr-filter', 'nested-state'].map((g) => [g, NOT_A_KERNEL])),
  // one stream version: vmm.old-stream-loads is unsupported, with that as the reason
  vmm: { streamVersions: [String(STREAM_VERSION)] },
};
process.stdout.write(JSON.stringify(hello) + '\n');
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const msg = JSON.parse(line);
  const out = msg.batch ? { batch: msg.batch.map(answer) } : answer(msg);
  process.stdout.write(JSON.stringify(out) + '\n');
}
