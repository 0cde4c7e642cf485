// Quirk V11_PARTIAL_COPY (README K20, seen on real 6.12 by nested.matches-profile): a buffer that ends
// inside the vmcs12 makes KVM_SET_NESTED_STATE fail with -EFAULT at V11, after current_vmptr was set;
// copy_from_user copied everything before the fault and zeroed the rest of the 998 bytes, so GET
// shows the blob's vmcs12 prefix. The expectation is the blob's own bytes (the construction).
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { VMCS12 } from '../model/catalog/by-name.js';
import { OFFSET, VMCS12_STRUCT_SIZE } from '../model/nested/constants.js';
import { getNestedState } from '../model/nested/get.js';
import { setNestedState } from '../model/nested/set.js';
import { DEFAULT_VCPU, Vcpu } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';

for (const profile of ['linux-6.1', 'linux-6.12']) {
  test(`${profile}: SET of a buffer cut inside the vmcs12 fails at V11 and leaves the copied prefix current`, () => {
    // recorded on real KVM (golden record --target kvm:debian-6.1): VMXON, a vmcs12 loaded, the buffer cut to 1000 bytes
    const blob = new Uint8Array(readFileSync(new URL('../golden/blobs/invalid-v11-truncated.kvm-debian-6.1.bin', import.meta.url)));
    const p = findProfile(profile)!;
    const v = new Vcpu({ ...p, nested: p.nested! }, DEFAULT_VCPU);
    const r = setNestedState(v, blob);
    expect(r).toMatchObject({ errno: 'EFAULT', rule: 'V11' });
    expect(r.quirks).toContain('V11_PARTIAL_COPY');
    const g = getNestedState(v, 8320);
    const vmcs12 = g.buffer.subarray(OFFSET.vmcs12, OFFSET.vmcs12 + VMCS12_STRUCT_SIZE);
    const copied = blob.length - OFFSET.vmcs12;
    expect(g.size).toBeGreaterThan(OFFSET.vmcs12);
    expect([...vmcs12.subarray(0, copied)]).toEqual([...blob.subarray(OFFSET.vmcs12)]);
    expect(vmcs12.subarray(copied).every((b) => b === 0)).toBe(true);
    // what real 6.12 showed (K20): the revision id, the link pointer, L2's CR0, RSP and RIP
    expect(VMCS12.read(vmcs12, 'guest_rip')).toBe(0x401000n);
    expect(VMCS12.read(vmcs12, 'vmcs_link_pointer')).toBe(0xffffffffffffffffn);
  });
}
