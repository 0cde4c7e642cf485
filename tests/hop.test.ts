// A migration hop composed through the target interface (harness/hop.ts): on reference hosts it comes
// to what the model's own migration step gives, cell for cell of the matrix; it asks each host few
// round trips; the fleet of a property puts the target under test at the ends; and nothing of the
// old one-call `migrate` is left on the wire.
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findHost, HOSTS } from '../model/migration/hosts.js';
import { SCENARIOS } from '../model/migration/scenarios.js';
import { restoreFromStream } from '../model/migration/step.js';
import { saveToStream } from '../model/migration/stream.js';
import { describeOutcome } from '../model/migration/outcome.js';
import { applyOp, Vcpu, type GuestOp } from '../model/nested/vcpu.js';
import { findProfile } from '../model/profiles.js';
import { readHeader } from '../model/nested/blob.js';
import { VMX_HDR_FLAGS } from '../model/nested/constants.js';
import { fleetOf, standInFleet } from '../harness/fleet.js';
import { migratePath } from '../harness/hop.js';
import { measureMatrix } from '../harness/matrix.js';
import { runProperty } from '../harness/runner.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { referenceTarget } from '../targets/reference.js';
import { answer } from '../targets/protocol/serve.js';
import type { Target } from '../targets/target.js';
import { cli, tmp } from './cli-helpers.js';

/** The model's own migration step for a cell, as the matrix gave it before hops were composed. */
function modelCell(scenario: (typeof SCENARIOS)[number], source: string, destination: string, drops: boolean) {
  const host = findHost(source)!;
  const p = findProfile(host.profile)!;
  const v = new Vcpu({ ...p, nested: p.nested! }, { ...scenario.vm, nested: host.nested });
  for (const o of scenario.ops) applyOp(v, o);
  return restoreFromStream(saveToStream(v, host, { qemuDropsVmxFlags: drops }), p, findHost(destination)!).outcome;
}

describe('on reference hosts a composed hop comes to the outcome of the model\'s own step', () => {
  const hosts = HOSTS.map((host) => ({ name: host.name, host, target: referenceTarget({ profile: host.profile }) }));
  test.each([false, true])('every cell of the matrix, QEMU dropping hdr.vmx.flags: %s', async (drops) => {
    const tables = await measureMatrix(fleetOf(hosts), { hosts, scenarios: SCENARIOS, qemuDropsVmxFlags: drops, variants: [] });
    const cells = tables.flatMap((t) => t.cells.map((c) => ({ scenario: t.scenario, ...c })));
    expect(cells.length).toBeGreaterThan(900);
    const differ = cells.filter((c) => describeOutcome(c.outcome) !== describeOutcome(modelCell(SCENARIOS.find((s) => s.name === c.scenario)!, c.source, c.destination, drops)));
    expect(differ).toEqual([]);
    // and the kinds the static check predicts
    expect(cells.filter((c) => c.outcome.kind !== c.predicted)).toEqual([]);
    // every kind of outcome shows somewhere
    expect([...new Set(cells.map((c) => c.outcome.kind))]).toEqual(expect.arrayContaining(['ok', 'degraded', 'failed', 'refused']));
  });
});

test("a deadline the VMM did not carry is lost on a composed hop as on the model's step, though the destination's SET fixes the same one again", async () => {
  const scenario = SCENARIOS.find((s) => s.name === 'preemption-timer')!;
  const fleet = fleetOf(['linux-6.1', 'linux-6.12'].map((name) => ({ name, host: findHost(name)!, target: referenceTarget({ profile: findHost(name)!.profile }) })));
  const { hops: [hop] } = await migratePath(fleet, { start: { host: 'linux-6.1', vm: scenario.vm, ops: scenario.ops }, hops: [{ host: 'linux-6.12', opsAfter: [] }], qemuDropsVmxFlags: true });
  const deadline = (b: Uint8Array) => readHeader(b).preemptionTimerDeadline;
  // the carried blob has no deadline; GET after SET shows the source's (SET fixed it from the same timer value and TSC)
  expect(readHeader(hop!.carried!).vmxFlags & VMX_HDR_FLAGS.PREEMPTION_TIMER_DEADLINE).toBe(0);
  expect(deadline(hop!.restored!)).toBe(deadline(hop!.sourceBlob));
  expect(hop!.outcome).toEqual({ kind: 'degraded', lost: ['preemption-timer deadline'] });
  expect(modelCell(scenario, 'linux-6.1', 'linux-6.12', true)).toEqual(hop!.outcome);
});

test('matrix --hosts reference:linux-5.8,reference:linux-6.12 gives the cells of --profiles linux-5.8,linux-6.12, named by the specs', () => {
  const [a, b] = [tmp(), tmp()];
  const args = ['--scenarios', 'l2-running,preemption-timer,mtf-pending,evmcs-active', '--paths', '2'];
  const r1 = cli(['matrix', '--hosts', 'reference:linux-5.8,reference:linux-6.12', ...args, '--report', a]);
  const r2 = cli(['matrix', '--profiles', 'linux-5.8,linux-6.12', ...args, '--report', b]);
  expect([r1.code, r2.code, r1.err, r2.err]).toEqual([0, 0, '', '']);
  const tables = (dir: string) => JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')).tables;
  expect(JSON.parse(JSON.stringify(tables(a)).replaceAll('reference:linux-', 'linux-'))).toEqual(tables(b));
  expect(r1.out).toContain('| reference:linux-6.12 | ok | ok |');
});

test('matrix --hosts takes an exec: target as a host (a served model claiming linux-5.8), with the cells of the model', () => {
  const [a, b] = [tmp(), tmp()];
  const args = ['--scenarios', 'l2-running,shadow-vmcs,evmcs-vp-assist-off', '--paths', '1'];
  const served = `exec:${process.execPath} bin/nvmx-conformance.js serve --profile linux-5.8`;
  const r1 = cli(['matrix', '--hosts', `${served},reference:linux-6.1`, ...args, '--report', a]);
  const r2 = cli(['matrix', '--profiles', 'linux-5.8,linux-6.1', ...args, '--report', b]);
  expect([r1.code, r2.code]).toEqual([0, 0]);
  const tables = (dir: string) => JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')).tables;
  expect(JSON.parse(JSON.stringify(tables(a)).replaceAll(served, 'linux-5.8').replaceAll('reference:linux-', 'linux-'))).toEqual(tables(b));
});

test('matrix refuses a host spec it cannot open or that claims no profile, in one line (exit 2)', () => {
  const r = cli(['matrix', '--hosts', 'reference:linux-9.9', '--paths', '0', '--report', tmp()]);
  expect([r.code, r.err.trim()]).toEqual([2, expect.stringMatching(/^nvmx-conformance: unknown profile or host in "reference:linux-9.9"/)]);
  expect(cli(['matrix', '--hosts', 'reference:linux-6.1', '--profiles', 'linux-6.1', '--report', tmp()]).code).toBe(2);
});

/** A target that counts its batches: requests issued in the same tick, as the exec transport sends them. */
function counting(t: Target): Target & { rounds: () => number } {
  let rounds = 0;
  let open = false;
  const count = <A extends unknown[], R>(f: (...a: A) => R) => (...a: A): R => {
    if (!open) {
      open = true;
      queueMicrotask(() => ((open = false), rounds++));
    }
    return f(...a);
  };
  return {
    ...t,
    createVcpu: count(t.createVcpu),
    guestOp: count(t.guestOp),
    getNestedState: count(t.getNestedState),
    setNestedState: count(t.setNestedState),
    destroyVcpu: count(t.destroyVcpu),
    rounds: () => rounds,
  };
}

test('a hop asks its hosts at most four round trips: the GET with the new vCPU, memory with SET, the run state with GET and KVM_RUN, the next operations', async () => {
  const scenario = SCENARIOS.find((s) => s.name === 'evmcs-active')!; // eVMCS: GET after the first KVM_RUN too
  const t = counting(referenceTarget());
  const fleet = standInFleet(t);
  const more: GuestOp[] = [{ op: 'run' }];
  const { hops } = await migratePath(fleet, { start: { host: 'linux-6.12', vm: scenario.vm, ops: scenario.ops }, hops: [1, 2, 3].map(() => ({ host: 'linux-6.12', opsAfter: more, sameHost: true as const })), qemuDropsVmxFlags: false });
  expect(hops.map((h) => h.outcome.kind)).toEqual(['ok', 'ok', 'ok']);
  // the start (a vCPU, its operations) and the end (every vCPU destroyed in one batch)
  expect(t.rounds()).toBe(2 + 3 * 4 + 1);
});

describe('the fleet of a property', () => {
  test('the target plays the hosts of the profile it claims, with their facts; the model plays the others', () => {
    const t = referenceTarget({ profile: 'linux-6.12', name: 'under test' });
    const fleet = standInFleet(t);
    expect(fleet.played).toEqual(['linux-6.12', 'linux-6.12-nonested']);
    expect(fleet.host('linux-6.12-nonested')).toMatchObject({ target: t, host: { nested: false, profile: 'linux-6.12' } });
    expect(fleet.host('linux-5.8').target.identity).toMatchObject({ name: 'reference', profile: 'linux-5.8' });
    expect(() => fleet.host('linux-9.9')).toThrow(/no host linux-9.9/);
  });

  test('a property whose fixed hosts have none of the profile the target claims is unsupported, saying why', async () => {
    const seed = ALL_PROPERTIES.find((p) => p.id === 'migration.seed-003')!;
    const o = await runProperty(seed, referenceTarget({ profile: 'linux-6.1' }), { seed: 1 });
    expect(o).toMatchObject({ verdict: 'unsupported', reason: expect.stringMatching(/^none of the property's hosts \(linux-4\.20, linux-5\.2, linux-6\.12, linux-4\.18\) has the profile the target claims \(linux-6\.1\): it would check the model alone$/) });
  });

  test("every case of a generated-path property moves the guest to or from the target's host", async () => {
    const seen: string[] = [];
    const base = referenceTarget({ profile: 'linux-5.6' });
    const t: Target = { ...base, createVcpu: (c) => (seen.push('create'), base.createVcpu(c)) };
    const o = await runProperty(ALL_PROPERTIES.find((p) => p.id === 'migration.prediction-honest')!, t, { seed: 3, runs: 100 });
    expect(o).toMatchObject({ verdict: 'pass', cases: 100 });
    // each case starts the guest on the target or moves it there (tests/migration-paths.test.ts): a vCPU on it
    expect(seen.length).toBeGreaterThanOrEqual(100);
  });

  test('a host without KVM_CAP_NESTED_STATE (4.18) runs vCPUs as a destination, without GET or SET', async () => {
    const t = referenceTarget({ profile: 'linux-4.18' });
    expect(t.groups.has('nested-state')).toBe(false);
    const v = await t.createVcpu({ nested: true, vmxInCpuid: true, evmcsEnabled: false, hypervCpuid: false, inSmm: false, maxPhyAddr: 36 });
    expect(v.status).toBe('ok');
    if (v.status !== 'ok') return;
    expect(await t.guestOp(v.value, { op: 'run' })).toEqual({ status: 'ok', value: { result: 'ok' } });
    expect((await t.getNestedState(v.value, 8320)).status).toBe('unsupported');
  });
});

test('there is no migrate operation any more: a target answers it as an unknown op', async () => {
  expect(await answer(referenceTarget(), { id: 1, op: 'migrate', args: {} })).toEqual({ id: 1, status: 'unsupported', reason: 'unknown op "migrate"' });
  expect('migrate' in referenceTarget()).toBe(false);
});
