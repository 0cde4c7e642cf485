// Migration scenarios launch a valid L2: every VMLAUNCH in a recipe passes the VM-entry checks on
// every nested host, and the scenario reaches the state its name promises.
import { describe, expect, it } from 'vitest';
import { HOSTS } from '../model/migration/hosts.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { FLAGS } from '../model/nested/constants.js';
import { readHeader } from '../model/nested/blob.js';
import { getNestedState } from '../model/nested/get.js';
import { applyOp, Vcpu } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';

const nestedHosts = HOSTS.filter((h) => h.nested && findProfile(h.profile)?.nested && h.nestedStateMax);
const launching = SCENARIOS.filter((s) => s.ops.some((o) => o.op === 'vmlaunch'));

describe('migration scenarios carry valid L2 guests', () => {
  it('there are launching scenarios and nested hosts to run them on', () => {
    expect(launching.map((s) => s.name)).toEqual(expect.arrayContaining(['l2-running', 'l2-run-pending', 'shadow-vmcs', 'preemption-timer', 'mtf-pending']));
    expect(nestedHosts.length).toBeGreaterThan(3);
  });
  for (const sc of launching)
    for (const host of nestedHosts)
      it(`${sc.name} enters L2 on ${host.name}`, () => {
        const p = findProfile(host.profile)!;
        const v = new Vcpu({ ...p, nested: p.nested! }, { ...sc.vm, nested: host.nested });
        const failures = sc.ops.map((o) => ({ op: o.op, r: applyOp(v, o) })).filter(({ op, r }) => op.startsWith('vm') && r.result !== 'ok');
        expect(failures).toEqual([]);
        const h = readHeader(getNestedState(v, 8320).buffer);
        expect(h.flags & FLAGS.GUEST_MODE).toBe(FLAGS.GUEST_MODE);
      });
});
