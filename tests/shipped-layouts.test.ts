// The descriptor files shipped in layouts/ are exactly what the profiles derive from the catalog.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { toDescriptor } from '../model/layout.js';
import { PROFILES } from '../model/profiles.js';
import { rol16, widthOf } from '../model/encoding.js';

test.each(PROFILES.map((p) => p.name))('layouts/%s.vmcs12.json is current', (name) => {
  const file = JSON.parse(readFileSync(new URL(`../layouts/${name}.vmcs12.json`, import.meta.url), 'utf8'));
  expect(file).toEqual(toDescriptor(PROFILES.find((p) => p.name === name)!.vmcs12));
});

test.prop([fc.integer({ min: 0, max: 0x7fff })])('ROL16 is a rotation: six more rotations by 10 bring an encoding back', (e) => {
  let x = rol16(e);
  x = ((x << 10) | (x >>> 6)) & 0xffff;
  expect(x).toBe(e);
});

test.prop([fc.integer({ min: 0, max: 0x7fff })])('every _HIGH (odd) encoding is 32 bits wide', (e) => {
  expect(widthOf(e | 1)).toBe(32);
});
