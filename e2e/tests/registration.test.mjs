// F1: new member registration at a phone viewport, then logout and login.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { launchBrowser, newDesktopPage, newPhonePage } from '../lib/browser.mjs';
import {
  PASSWORD,
  WRONG_PASSWORD,
  Walk,
  button,
  expectAlert,
  expectMenu,
  expectVisible,
  link,
  registerMember,
  submitLogin,
  uniqueEmail,
} from '../lib/flows.mjs';
import { startServer } from '../lib/server.mjs';

describe('registration (f1)', () => {
  test('register a member of みらい健康保険組合, log out, log in', { timeout: 180_000 }, async (t) => {
    const server = await startServer('registration');
    t.after(() => server.stop());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const page = await newPhonePage(browser);
    const walk = new Walk(t, page, 'f1');
    const { baseURL } = server;
    const email = uniqueEmail('e2e');

    await registerMember(walk, {
      baseURL,
      email,
      a11y: true,
      // Step 1 also: the QR code (to open the app on a phone) shows on desktop only.
      onLanding: async () => {
        assert.ok(await page.locator('figure.qr svg').isHidden(), 'QR code (figure.qr svg) should be hidden at the phone viewport');
        const desktop = await newDesktopPage(browser);
        try {
          await desktop.goto(`${baseURL}/`);
          await expectVisible(desktop.locator('figure.qr svg'), 'a QR code (figure.qr svg) at 1280×800');
          await walk.snap('landing-desktop', desktop);
        } finally {
          await desktop.context().close();
        }
      },
    });

    await walk.step('9 ログイン (wrong then right password)', async () => {
      await link(page, 'ログイン').click();
      await expectVisible(button(page, 'ログイン'), 'the login page (button 「ログイン」)');
      await walk.snap('login');
      await walk.a11y('login');

      await submitLogin(page, email, WRONG_PASSWORD);
      await expectAlert(page, 'メールアドレスまたはパスワードが正しくありません');
      await expectVisible(link(page, 'ログインでお困りの場合'), 'link 「ログインでお困りの場合」');
      await walk.snap('login-error');

      await submitLogin(page, email, PASSWORD);
      await expectMenu(page);
      await walk.snap('login-menu');
    });

    await walk.a11yStep();
  });
});
