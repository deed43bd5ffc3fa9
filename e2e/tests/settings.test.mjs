// 「アカウント設定」 (#16 point 5) on a phone (390 px): from the menu, change the password
// (another browser signed in to the account is logged out), then end another browser's
// session with its 「ログアウト」 button from the session list. Accessible names only.
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
  logIn,
  registerMember,
  submitLogin,
  uniqueEmail,
} from '../lib/flows.mjs';
import { startServer } from '../lib/server.mjs';

const NEW_PASSWORD = 'Yuzu-Daifuku-2027?';

/** Another device: a desktop browser of its own, logged in from the login page. */
async function otherDeviceLogIn(browser, baseURL, email, password) {
  const other = await newDesktopPage(browser);
  await other.goto(`${baseURL}/login`);
  await submitLogin(other, email, password);
  await expectMenu(other);
  return other;
}

/** Whether `page` is still signed in: the menu answers (not the login form). */
async function stillSignedIn(page, baseURL) {
  await page.goto(`${baseURL}/menu`);
  return !new URL(page.url()).pathname.startsWith('/login');
}

describe('account settings', () => {
  test('change the password and log another device out', { timeout: 180_000 }, async (t) => {
    const server = await startServer('settings');
    t.after(() => server.stop());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const page = await newPhonePage(browser);
    const walk = new Walk(t, page, 'settings');
    const { baseURL } = server;
    const email = uniqueEmail('e2e-settings');

    await registerMember(walk, { baseURL, email, password: PASSWORD });
    let other;

    await walk.step('メニュー → アカウント設定', async () => {
      await logIn(page, email, PASSWORD);
      other = await otherDeviceLogIn(browser, baseURL, email, PASSWORD);
      const settings = link(page, 'アカウント設定');
      await expectVisible(settings, 'link 「アカウント設定」 on the menu');
      await settings.click();
      await expectVisible(page.getByRole('heading', { name: 'アカウント設定', level: 1 }), 'heading 「アカウント設定」');
      await expectVisible(button(page, 'すべての端末からログアウト'), 'button 「すべての端末からログアウト」');
      const logouts = page.getByRole('button', { name: /^ログアウト / });
      assert.equal(await logouts.count(), 2, 'two sessions listed (this phone and the other browser)');
      await walk.snap('settings');
      await walk.a11y('settings');
    });

    await walk.step('パスワードの変更', async () => {
      await page.getByLabel('現在のパスワード', { exact: true }).fill(WRONG_PASSWORD);
      await page.getByLabel('新しいパスワード', { exact: true }).fill(NEW_PASSWORD);
      await button(page, 'パスワードを変更する').click();
      await expectAlert(page, '現在のパスワードが正しくありません');
      await walk.snap('password-wrong');
      await walk.a11y('password-wrong');

      await page.getByLabel('現在のパスワード', { exact: true }).fill(PASSWORD);
      await page.getByLabel('新しいパスワード', { exact: true }).fill(NEW_PASSWORD);
      await button(page, 'パスワードを変更する').click();
      await expectVisible(page.getByRole('status').filter({ hasText: 'パスワードを変更しました' }), 'the notice 「パスワードを変更しました」');
      await walk.snap('password-changed');
      assert.equal(await page.getByRole('button', { name: /^ログアウト / }).count(), 1, 'only this phone is left');
      assert.equal(await stillSignedIn(other, baseURL), false, 'the other browser was logged out');
    });

    await walk.step('ログイン中の端末 → ログアウト', async () => {
      await other.goto(`${baseURL}/login`);
      await submitLogin(other, email, PASSWORD);
      await expectAlert(other, 'メールアドレスまたはパスワードが正しくありません');
      await submitLogin(other, email, NEW_PASSWORD);
      await expectMenu(other);

      await page.reload();
      const others = page.getByRole('button', { name: /^ログアウト (?!.*この端末)/ });
      await expectVisible(others.first(), 'a 「ログアウト」 button of the other browser');
      assert.equal(await others.count(), 1);
      await others.first().click();
      await expectVisible(page.getByRole('status').filter({ hasText: 'ログアウトしました' }), 'the notice 「ログアウトしました」');
      await walk.snap('session-ended');
      await walk.a11y('session-ended');
      assert.equal(await stillSignedIn(other, baseURL), false, 'the other browser is logged out');
      assert.equal(await stillSignedIn(page, baseURL), true, 'this phone is still signed in');
    });

    await walk.a11yStep();
  });
});
