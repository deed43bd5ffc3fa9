// Debian Chromium driven by playwright-core, plus screenshot and axe helpers.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS_DIR } from './server.mjs';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

export const CHROMIUM_PATH = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Default wait for any single locator action or assertion. */
export const ACTION_TIMEOUT_MS = 10_000;

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/**
 * Chromium whose camera plays `y4mFile` (see lib/fakecam.mjs). Pages still need the
 * camera permission: grant it with context.grantPermissions(['camera']), or leave it out
 * to see what a member who denied it sees.
 */
export function launchBrowserWithCamera(y4mFile) {
  const args = [...CHROMIUM_ARGS, '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${y4mFile}`];
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args, timeout: 30_000 });
}

async function pageIn(browser, options) {
  const context = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo', ...options });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`[pageerror] ${page.url()}: ${err.message}`));
  return page;
}

/** A page in a fresh phone-sized context (iPhone 14-ish). Close with page.context().close(). */
export function newPhonePage(browser) {
  return pageIn(browser, {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
}

/** A page in a fresh desktop-sized context. */
export function newDesktopPage(browser) {
  return pageIn(browser, { viewport: { width: 1280, height: 800 } });
}

/** Full-page screenshot to e2e/artifacts/<name>.png. */
export async function shot(page, name) {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

function shortURL(url) {
  return url.length > 100 ? `${url.slice(0, 100)}…` : url;
}

function describeViolation(v) {
  const targets = v.nodes.slice(0, 5).map((n) => `      ${n.target.join(' ')}`);
  if (v.nodes.length > 5) targets.push(`      … and ${v.nodes.length - 5} more`);
  return `  [${v.impact}] ${v.id}: ${v.help}\n    ${v.helpUrl}\n${targets.join('\n')}`;
}

/**
 * Run axe-core on the current page. Fails on "critical" or "serious" violations;
 * prints the others. The full result goes to artifacts/a11y-<label>.json.
 */
export async function checkA11y(page, label) {
  try {
    await page.addScriptTag({ path: AXE_PATH });
  } catch (err) {
    // A strict Content-Security-Policy blocks the inline <script> that addScriptTag
    // inserts; evaluate the source through DevTools instead (not subject to CSP).
    if (!/Content Security Policy/i.test(err.message)) throw err;
  }
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(readFileSync(AXE_PATH, 'utf8'));
  }
  const results = await page.evaluate(() => window.axe.run(document));
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const slug = label.replace(/[^\p{L}\p{N}_-]+/gu, '_');
  writeFileSync(path.join(ARTIFACTS_DIR, `a11y-${slug}.json`), JSON.stringify(results, null, 2));

  const blocking = results.violations.filter((v) => v.impact === 'critical' || v.impact === 'serious');
  const where = shortURL(page.url());
  const minor = results.violations.filter((v) => !blocking.includes(v));
  if (minor.length) {
    console.log(`a11y ${label} (${where}): ${minor.length} minor violation(s)\n${minor.map(describeViolation).join('\n')}`);
  }
  if (blocking.length) {
    assert.fail(
      `a11y ${label} (${where}): ${blocking.length} critical/serious violation(s)\n${blocking.map(describeViolation).join('\n')}`,
    );
  }
  return results;
}
