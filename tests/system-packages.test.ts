// The test setup's choice: install what is missing with apt-get (as root, or through sudo -n), or say
// in one line what to install. It never decides to skip.
import { expect, test } from 'vitest';
import { installPlan, missingLine, SYSTEM_NEEDS } from './setup/system-packages.js';

test('nothing missing: nothing to do', () => {
  expect(installPlan([], { aptGet: false, root: false, sudo: false })).toEqual({ kind: 'nothing' });
});

test('root with apt-get: update, then install exactly what is missing', () => {
  expect(installPlan(['chromium', 'gcc'], { aptGet: true, root: true, sudo: false })).toEqual({
    kind: 'install',
    argv: [
      ['apt-get', 'update', '-qq'],
      ['apt-get', 'install', '-y', '-qq', 'chromium', 'gcc'],
    ],
  });
});

test('not root: through sudo -n (never a password prompt)', () => {
  const p = installPlan(['chromium'], { aptGet: true, root: false, sudo: true });
  expect(p.kind === 'install' && p.argv.every((a) => a[0] === 'sudo' && a[1] === '-n')).toBe(true);
});

test('no apt-get, or no way to be root: one line naming the packages and the command', () => {
  for (const host of [{ aptGet: false, root: true, sudo: false }, { aptGet: true, root: false, sudo: false }]) {
    const p = installPlan(['chromium'], host);
    expect(p.kind).toBe('cannot');
    if (p.kind !== 'cannot') continue;
    expect(p.line).not.toContain('\n');
    expect(p.line).toContain('apt-get install -y chromium');
  }
  expect(missingLine(['gcc', 'zlib1g-dev'])).toContain('`apt-get install -y gcc zlib1g-dev`');
});

test('every need names a Debian package and the tests that need it', () => {
  expect(SYSTEM_NEEDS.map((n) => n.pkg)).toEqual(['chromium', 'gcc', 'libc6-dev', 'zlib1g-dev']);
  for (const n of SYSTEM_NEEDS) expect(n.for).toMatch(/^tests\/.*\.test\.ts$/);
});
