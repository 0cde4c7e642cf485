// report.html in a real browser: Debian's headless Chromium through playwright-core. The page
// must load with no request leaving the file and no console error (the CSP would report any
// fetch), and show the summary, the properties, collapsible counterexamples with hex dumps, the
// matrix as a coloured grid, layout diffs as side-by-side member maps and the waivers.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { renderHtml } from '../reports/render-html.js';
import { validate } from '../reports/schemas.js';
import { ALL_PROPERTIES } from '../suites/registry.js';
import { cli, tmp } from './cli-helpers.js';
import { sampleReport } from './fixtures/sample-report.js';
import { CHROMIUM, missingLine } from './setup/system-packages.js';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let browser: Browser;
beforeAll(async () => {
  // no silent skip: without the browser (which the test setup installs where apt-get can) this fails and says how to get it
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: ${missingLine(['chromium'])}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
});
afterAll(async () => browser?.close());

async function open(file: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('request', (r) => r.url().startsWith('file:') || problems.push(`request ${r.url()}`));
  page.on('requestfailed', (r) => problems.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const response = await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  expect(response?.ok() ?? true).toBe(true);
  return { page, problems };
}

test('every section of a full report renders, self-contained', async () => {
  const report = sampleReport();
  expect(validate('report', report)).toEqual([]);
  const file = join(tmp(), 'report.html');
  writeFileSync(file, renderHtml(report));
  const { page, problems } = await open(file);

  await expect(page.locator('#verdict').getAttribute('data-verdict')).resolves.toBe('incompatible');
  await expect(page.locator('#summary').innerText()).resolves.toContain('waived failure(s)');
  expect(await page.locator('#properties tr.property').count()).toBe(ALL_PROPERTIES.length);
  expect(await page.locator('#properties tr.p-waived').count()).toBe(1);

  // counterexamples are collapsed until opened, then show the diff and the hex dump
  const cx = page.locator('details.counterexample').first();
  await expect(cx.locator('pre').first().isVisible()).resolves.toBe(false);
  await cx.locator('summary').click();
  await expect(cx.innerText()).resolves.toContain('expected 0x0220: 00 00 00 00 01 00 00 00');
  await expect(cx.innerText()).resolves.toContain('replay: nvmx-conformance replay');

  // the matrix is a grid whose cells are coloured by verdict
  expect(await page.locator('#matrix table.matrix tbody tr').count()).toBe(2);
  const colour = (sel: string) => page.locator(sel).first().evaluate((el) => getComputedStyle(el).backgroundColor);
  await expect(colour('#matrix td.v-pass')).resolves.toBe('rgb(46, 125, 50)');
  await expect(colour('#matrix td.v-waived')).resolves.toBe('rgb(239, 108, 0)');
  await expect(colour('#matrix td.v-unsupported')).resolves.toBe('rgb(117, 117, 117)');

  // layout diffs: old and new member maps side by side, with offsets
  const diffs = page.locator('#layout-diffs details.layout-diff');
  expect(await diffs.count()).toBe(2);
  const heads = await diffs.first().locator('thead th').allInnerTexts();
  expect(heads).toEqual(['linux-4.18 offset', 'size', 'member', 'type', 'class', 'linux-6.12 offset', 'size', 'member', 'type']);
  const shifted = diffs.first().locator('tr.c-inserted, tr.c-shifted, tr.c-removed');
  expect(await shifted.count()).toBeGreaterThan(0);
  const row = await diffs.first().locator('tbody tr.c-unchanged').first().locator('td').allInnerTexts();
  expect(row[0]).toMatch(/^\d+$/);
  expect(row[5]).toMatch(/^\d+$/);

  expect(await page.locator('#filter-differences tbody tr').count()).toBe(1);
  expect(await page.locator('#golden tbody tr').count()).toBe(1);
  await expect(page.locator('#waivers').innerText()).resolves.toContain('matched nothing');
  expect(problems).toEqual([]);
});

test('the report.html a fresh check writes renders too', async () => {
  const dir = tmp();
  expect(cli(['check', '--runs', '5', '--seed', '2', '--report', dir]).code).toBe(0);
  const { page, problems } = await open(join(dir, 'report.html'));
  await expect(page.locator('#verdict').getAttribute('data-verdict')).resolves.toBe('compatible');
  // three properties show their profile's known bug as expected (expected-fail), the rest pass
  expect(await page.locator('#properties tr.p-pass').count()).toBe(ALL_PROPERTIES.length - 3);
  expect(problems).toEqual([]);
});

test('the load check itself notices a page that reaches for the network', async () => {
  const file = join(tmp(), 'leaky.html');
  writeFileSync(file, renderHtml(sampleReport()).replace('</body>', '<img src="http://192.0.2.1/x.png"></body>'));
  const { problems } = await open(file);
  expect(problems.length).toBeGreaterThan(0);
  expect(problems.join('\n')).toContain('192.0.2.1');
});
