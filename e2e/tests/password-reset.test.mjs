// F2: register a member, log out, reset the password via 「ログインでお困りの場合」,
// then log in with the new password.
import { describe, test } from 'node:test';
import { launchBrowser, newPhonePage } from '../lib/browser.mjs';
import {
  PASSWORD,
  Walk,
  button,
  expectAlert,
  expectMenu,
  expectVisible,
  link,
  readCodeFromOutbox,
  registerMember,
  submitLogin,
  uniqueEmail,
} from '../lib/flows.mjs';
import { startServer } from '../lib/server.mjs';

const NEW_PASSWORD = 'Kitsune-Udon-2027?';

describe('password reset (f2)', () => {
  test('reset a forgotten password and log in with the new one', { timeout: 180_000 }, async (t) => {
    const server = await startServer('password-reset');
    t.after(() => server.stop());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const page = await newPhonePage(browser);
    const walk = new Walk(t, page, 'f2');
    const { baseURL } = server;
    const email = uniqueEmail('e2e-reset');

    await registerMember(walk, { baseURL, email, password: PASSWORD });

    await walk.step('9 ログイン → ログインでお困りの場合', async () => {
      await link(page, 'ログイン').click();
      const help = link(page, 'ログインでお困りの場合');
      await expectVisible(help, 'link 「ログインでお困りの場合」 on the login page');
      await walk.snap('login');
      await help.click();

      const emailField = page.getByLabel('メールアドレス');
      await expectVisible(emailField, 'field 「メールアドレス」 (password reset request)');
      await walk.snap('reset-request');
      await walk.a11y('reset-request');
      await emailField.fill(email);
      await button(page, '送信する').click();
    });

    await walk.step('10 再設定コード → 新しいパスワード', async () => {
      const codeField = page.getByLabel('ワンタイムパスワード');
      await expectVisible(codeField, 'field 「ワンタイムパスワード」 (password reset)');
      await walk.snap('reset-code');
      await walk.a11y('reset-code');
      const code = await readCodeFromOutbox(walk, baseURL, email, { subject: 'パスワード再設定' });
      await codeField.fill(code);
      await page.getByLabel('新しいパスワード', { exact: true }).fill(NEW_PASSWORD);
      await walk.snap('reset-filled');
      await button(page, 'パスワードを再設定する').click();

      const toLogin = link(page, 'ログイン');
      await expectVisible(toLogin, 'link 「ログイン」 after the reset');
      await walk.snap('reset-done');
      await toLogin.click();
    });

    await walk.step('11 ログイン with the new password', async () => {
      await expectVisible(button(page, 'ログイン'), 'the login page (button 「ログイン」)');
      // The old password must no longer work.
      await submitLogin(page, email, PASSWORD);
      await expectAlert(page, 'メールアドレスまたはパスワードが正しくありません');
      await walk.snap('login-old-password');

      await submitLogin(page, email, NEW_PASSWORD);
      await expectMenu(page);
      await walk.snap('login-menu');
    });

    await walk.a11yStep();
  });
});
