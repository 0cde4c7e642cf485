// report.html in a real browser: Debian's headless Chromium through playwright-core. The page
// must load with no request leaving the file and no console error (the CSP would report any
// fetch), and show the summary, the properties, failures with their replay command first and their
// input as fields and hex, golden blobs as rows with coloured verdicts, layout diffs as side-by-side member maps
// and the waivers. A person reading it at a fixed window size is checked with screenshots (saved
// under the test's temp dir, never compared pixel by pixel) and with what the page measures:
// colours against backgrounds, and where the replay command is after following a failure link.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { renderHtml } from '../reports/render-html.js';
import { validate } from '../base/schemas.js';
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
  expect(await page.locator('#properties tr.p-expected-fail').count()).toBe(1);

  // failures (waived ones too) are open, replay command first, then the diff with its hex dump
  const failures = page.locator('#failures article.failure');
  expect(await failures.count()).toBe(2);
  const text = await failures.first().innerText();
  expect(text.indexOf('replay:')).toBeLessThan(text.indexOf('guest_rip'));
  expect(text).toContain('expected 0x0220: 00 00 00 00 01 00 00 00');
  expect(text).toMatch(/replay:\s*nvmx-conformance replay/);
  // an expected failure's counterexample is collapsed until opened
  const cx = page.locator('#properties tr.p-expected-fail details.counterexample');
  await expect(cx.locator('.replay pre').isVisible()).resolves.toBe(false);
  await cx.locator(':scope > summary').click();
  await expect(cx.locator('.replay pre').isVisible()).resolves.toBe(true);

  // golden blobs: a row each with a coloured verdict badge, the waived one with its reason; a failing
  // blob is linked from the summary to its row; blobs with no expected result are listed, folded
  const colour = (sel: string) => page.locator(sel).first().evaluate((el) => getComputedStyle(el).backgroundColor);
  expect(await page.locator('#golden tbody tr.golden').count()).toBe(3);
  await expect(colour('#golden tr.g-pass .v-pass')).resolves.toBe('rgb(46, 125, 50)');
  await expect(colour('#golden tr.g-fail .v-fail')).resolves.toBe('rgb(198, 40, 40)');
  await expect(colour('#golden tr.g-waived .v-waived')).resolves.toBe('rgb(239, 108, 0)');
  await expect(page.locator('#golden tr.g-waived td.detail').innerText()).resolves.toContain('waived: the L2 uses controls this host lacks');
  await page.locator('#summary a[href="#golden-blob.shadow-l2.linux-4.19"]').click();
  await expect(page.locator('[id="golden-blob.shadow-l2.linux-4.19"]').isVisible()).resolves.toBe(true);
  await expect(page.locator('#golden details summary').innerText()).resolves.toBe('1 blob(s) with no expected result on linux-6.12: not judged');

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

  await expect(page.locator('#waivers').innerText()).resolves.toContain('matched nothing');
  expect(problems).toEqual([]);
});

test('the report.html a fresh check writes renders too', async () => {
  const dir = tmp();
  // the three properties that show their profile's known bug as expected (expected-fail), and one that passes
  const run = ['vmcs12.codec.round-trip', 'nested.get.writes-within-size', 'migration.mtf-asymmetry', 'migration.qemu-drops-vmx-flags'];
  expect(cli(['check', '--runs', '5', '--seed', '2', '--report', dir, ...run.flatMap((id) => ['--only', id])]).code).toBe(0);
  const { page, problems } = await open(join(dir, 'report.html'));
  await expect(page.locator('#verdict').getAttribute('data-verdict')).resolves.toBe('compatible');
  expect(await page.locator('#properties tr.p-pass').count()).toBe(1);
  expect(await page.locator('#properties tr.p-expected-fail').count()).toBe(3);
  await expect(page.locator('#summary td[data-verdict="expected-fail"]').innerText()).resolves.toBe('3');
  expect(await unreadableBadges(page)).toEqual([]);
  // a real counterexample's input is fields, not fast-check's literal
  const cx = page.locator('#properties tr.p-expected-fail details.counterexample').first();
  await cx.locator(':scope > summary').click();
  const input = cx.locator('details.input');
  if ((await input.getAttribute('open')) === null) await input.locator(':scope > summary').click();
  await expect(cx.locator('.input-part').first().isVisible()).resolves.toBe(true);
  await expect(cx.locator('.input-part').first().innerText()).resolves.toMatch(/nested|#1/);
  await expect(cx.locator('details.raw-input pre').isVisible()).resolves.toBe(false);
  expect(problems).toEqual([]);
});

/** Every verdict badge and verdict cell whose text does not stand out: same colour as its background, or no background. */
async function unreadableBadges(page: Page): Promise<string[]> {
  return page.locator('.v').evaluateAll((els) =>
    els
      .map((el) => {
        const s = getComputedStyle(el);
        const bad = s.color === s.backgroundColor || s.backgroundColor === 'rgba(0, 0, 0, 0)' || s.backgroundColor === 'rgb(255, 255, 255)' || !(el as HTMLElement).innerText.trim();
        return bad ? `${el.className}: "${(el as HTMLElement).innerText}" ${s.color} on ${s.backgroundColor}` : '';
      })
      .filter(Boolean),
  );
}

test('a person can read it at 1280x800: every verdict visible, a failure one click from the summary with its replay command on screen', async () => {
  const dir = tmp();
  const file = join(dir, 'report.html');
  writeFileSync(file, renderHtml(sampleReport()));
  const { page, problems } = await open(file);
  await page.setViewportSize({ width: 1280, height: 800 });
  const inView = async (sel: ReturnType<Page['locator']>) => {
    const b = await sel.boundingBox();
    return b !== null && b.y >= 0 && b.y + b.height <= 800 && b.x >= 0 && b.x + b.width <= 1280;
  };

  // the summary counts every verdict, expected-fail included, each in its colour
  const heads = await page.locator('#summary table.counts th').allInnerTexts();
  expect(heads).toEqual(['pass', 'expected-fail', 'fail', 'waived', 'unsupported', 'error']);
  await expect(page.locator('#summary td[data-verdict="expected-fail"]').innerText()).resolves.toBe('1');
  expect(await unreadableBadges(page)).toEqual([]);
  const colours = await page.locator('#summary table.counts th .v').evaluateAll((els) => els.map((el) => getComputedStyle(el).backgroundColor));
  expect(new Set(colours).size).toBe(6);
  await page.screenshot({ path: join(dir, 'summary.png') });

  // an expected-fail row: on screen when scrolled to, its verdict readable
  const xfail = page.locator('#properties tr.p-expected-fail');
  await xfail.scrollIntoViewIfNeeded();
  expect(await inView(xfail.locator('.v'))).toBe(true);
  await page.screenshot({ path: join(dir, 'expected-fail.png') });

  // the failure link in the summary brings the failure up with its replay command on screen
  const link = page.locator('#summary ol.failure-links a').first();
  const target = (await link.getAttribute('href'))!.slice(1);
  await link.click();
  await page.waitForFunction((id) => location.hash === `#${id}`, target);
  const article = page.locator(`[id="${target}"]`);
  const replay = article.locator('.replay pre');
  await expect(replay.innerText()).resolves.toMatch(/^nvmx-conformance replay \S+ --seed 5 --path 0:1:0/);
  expect(await inView(replay)).toBe(true);
  // long inputs are folded: the whole failure fits in about a screen and a half
  const box = (await article.boundingBox())!;
  expect(box.height).toBeLessThan(1200);
  // the input reads as fields and hex; fast-check's literal is folded away
  const input = article.locator('details.input');
  await input.locator(':scope > summary').click();
  await expect(input.innerText()).resolves.toContain('guest_rip');
  await expect(input.innerText()).resolves.toContain('0x0010: a1 b2 c3');
  await expect(article.locator('details.raw-input pre').isVisible()).resolves.toBe(false);
  await expect(input.locator('details').last().isVisible()).resolves.toBe(true);
  await page.screenshot({ path: join(dir, 'failure.png') });
  for (const png of ['summary.png', 'expected-fail.png', 'failure.png']) expect(statSync(join(dir, png)).size).toBeGreaterThan(10_000);
  console.log(`report.html screenshots: ${dir}`);
  expect(problems).toEqual([]);
});

test('the load check itself notices a page that reaches for the network', async () => {
  const file = join(tmp(), 'leaky.html');
  writeFileSync(file, renderHtml(sampleReport()).replace('</body>', '<img src="http://192.0.2.1/x.png"></body>'));
  const { problems } = await open(file);
  expect(problems.length).toBeGreaterThan(0);
  expect(problems.join('\n')).toContain('192.0.2.1');
});
