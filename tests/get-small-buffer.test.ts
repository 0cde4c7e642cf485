// K14 (real KVM 6.12): a GET whose user size is under 8 still has its struct's whole size field
// written by KVM's put_user; the buffer shown is the first `userSize` bytes of that struct.
import { expect, test } from 'vitest';
import { DEFAULT_VCPU } from '../model/nested/vcpu.js';
import { referenceTarget } from '../targets/reference.js';
import { must } from '../harness/property.js';

test('GET with a 5-byte user size: E2BIG, and byte 4 holds the low byte of the needed size (128)', async () => {
  const t = referenceTarget();
  const v = must(await t.createVcpu(DEFAULT_VCPU));
  const g = must(await t.getNestedState(v, 5));
  expect(g.errno).toBe('E2BIG');
  expect([...g.buffer]).toEqual([0, 0, 0, 0, 0x80]);
  const g8 = must(await t.getNestedState(v, 8));
  expect([...g8.buffer]).toEqual([0, 0, 0, 0, 0x80, 0, 0, 0]);
});
