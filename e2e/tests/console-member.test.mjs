// Operators see the member (#16 point 4): a member (本人確認 done) sends an inquiry with the
// account attached; an administrator opens it in the console and follows the attached account
// to 「会員の概要」 (email, 本人確認, locks, the inquiry), finds the member again by email and
// by 受付番号, and looks at 「審査済み一覧」. axe on every console page.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { launchBrowser, newDesktopPage, newPhonePage } from '../lib/browser.mjs';
import { consoleLogin, createOperator, findMember, openInquiryMember } from '../lib/console.mjs';
import { Walk, button, expectVisible, logIn, registerMember, uniqueEmail, verifyIdentity } from '../lib/flows.mjs';
import { startServer } from '../lib/server.mjs';

describe('console: the member summary', () => {
  test('from an inquiry to 「会員の概要」, and by search', { timeout: 240_000 }, async (t) => {
    const server = await startServer('console-member');
    t.after(() => server.stop());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const { baseURL } = server;
    const email = uniqueEmail('console-member');
    let reference = '';

    const member = await newPhonePage(browser);
    const mwalk = new Walk(t, member, 'console-member-member');
    await registerMember(mwalk, { baseURL, email });
    await mwalk.step('1 a member with 本人確認 done sends an inquiry with the account', async () => {
      await logIn(member, email);
      await verifyIdentity(member, baseURL);
      await member.goto(`${baseURL}/inquiry/new`);
      await member.getByLabel('お問い合わせの種類', { exact: true }).selectOption('ekyc');
      await member.getByLabel('お問い合わせ内容', { exact: true }).fill('健診・医療アクセス認証が進みません。');
      assert.ok(await member.getByLabel('アカウント情報を添付する', { exact: true }).isChecked(), 'the account is attached');
      await button(member, '送信する').click();
      await expectVisible(member.getByRole('heading', { name: 'お問い合わせを受け付けました', exact: true }), 'the inquiry is sent');
      reference = (await member.locator('.inquiry-ref').innerText()).trim();
      assert.match(reference, /^[0-9A-F]{8}$/);
    });

    const page = await newDesktopPage(browser);
    const walk = new Walk(t, page, 'console-member');
    await walk.step('2 the inquiry\'s attached account → 「会員の概要」', async () => {
      assert.ok(reference, 'the member step sent an inquiry');
      const admin = await createOperator(server, { email: 'admin-member@mimoto.example.jp', name: '管理E2E', role: 'admin' });
      await consoleLogin(page, baseURL, admin);
      await openInquiryMember(page, reference);
      const text = await page.locator('main').innerText();
      assert.ok(text.includes(email), 'the member\'s email');
      assert.match(text, /本人確認\s*完了/, '本人確認 is done');
      assert.ok(text.includes('ロックなし'), 'no lock');
      await expectVisible(page.getByRole('link', { name: reference, exact: true }), 'the member\'s inquiry');
      await walk.snap('summary');
      await walk.a11y('summary');
    });

    await walk.step('3 found by email and by 受付番号', async () => {
      await findMember(page, { email });
      assert.ok((await page.locator('main').innerText()).includes(email));
      await findMember(page, { reference: reference.toLowerCase() });
      assert.ok((await page.locator('main').innerText()).includes(email));
      await page.getByRole('link', { name: '会員検索へ戻る', exact: true }).click();
      await walk.a11y('search');
      await page.getByLabel('メールアドレス', { exact: true }).fill(email.replace(/@.*/, '@'));
      await button(page, 'メールアドレスで探す').click();
      await expectVisible(page.getByRole('status').filter({ hasText: '見つかりませんでした' }), 'part of an address finds nobody');
      await walk.a11y('search-none');
    });

    await walk.step('4 「審査済み一覧」', async () => {
      await page.getByRole('navigation').getByRole('link', { name: '審査済み一覧', exact: true }).click();
      await expectVisible(page.getByRole('heading', { name: '審査済み一覧', exact: true }), 'the decided cases');
      await page.getByLabel('判定', { exact: true }).selectOption('rejected');
      await button(page, '絞り込む').click();
      await expectVisible(page.getByText('該当する申請はありません。'), 'no rejected case');
      await walk.snap('decided');
      await walk.a11y('decided');
    });

    await walk.a11yStep();
  });
});
