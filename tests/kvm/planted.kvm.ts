// A planted bug caught on the real kernel, as a KVM developer iterates: kvm.ko and kvm-intel.ko
// built out of tree from linux-source-6.12 with vmx_set_nested_state's vmcs12 revision check
// removed (planted-kvm.ts, cached), loaded into Debian's own 6.12 kernel (kvm:debian-6.12,modules=DIR).
// `nested.restore.rejects-malformed` must fail with its seed, path and a shrunk counterexample
// naming the malformation, and the printed replay command must reproduce it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { buildPlantedKvm } from './planted-kvm.js';

const BIN = new URL('../../bin/nvmx-conformance.js', import.meta.url).pathname;
const PROPERTY = 'nested.restore.rejects-malformed';

test('a restore check removed from kvm-intel.ko fails nested.restore.rejects-malformed on the real kernel, shrunk, and the replay reproduces it', async () => {
  const modules = await buildPlantedKvm({ log: (l) => console.log(l) });
  // VM-entries off: the planted check is SET's, and the shrinking (up to the target's budget of attempts) stays minutes, not tens
  const target = `kvm:debian-6.12,modules=${modules},entries=off`;
  const dir = mkdtempSync(join(tmpdir(), 'nvmx-planted-'));
  const check = spawnSync(process.execPath, [BIN, 'check', '--target', target, '--only', PROPERTY, '--runs', '150', '--seed', '7', '--report', dir], { encoding: 'utf8' });
  expect(check.status, check.stdout + check.stderr).toBe(1);
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  const p = report.properties.find((x: { id: string }) => x.id === PROPERTY);
  expect(p).toMatchObject({ verdict: 'fail', seed: 7 });
  expect(p.shrinks).toBeGreaterThan(0);
  expect(p.counterexample.summary).toMatch(/^bad vmcs12 revision id: SET answered 0 \(ok\)/);
  expect(p.counterexample.diff).toEqual([expect.objectContaining({ field: 'bad vmcs12 revision id', expected: 'EINVAL at V12' })]);
  expect(report.target.package).toContain(modules);
  // the replay command the report prints, run as printed
  const replay = spawnSync(process.execPath, [BIN, ...p.replay.replace(/^nvmx-conformance /, '').split(' ').map((a: string) => a.replace(/^'(.*)'$/, '$1')), '--report', join(dir, 'replay')], { encoding: 'utf8' });
  expect(replay.status, replay.stdout + replay.stderr).toBe(1);
  expect(replay.stdout).toContain('bad vmcs12 revision id: SET answered 0 (ok)');
});
