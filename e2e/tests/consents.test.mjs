// 同意 (#16 point 8) at a phone viewport (390 px): the registration's consent page links each
// document (new tab, the form keeps its checks); an admin publishes a new version of the
// platform terms in the console; the member, signed in, is held on 「規約等の改定への同意」
// (help and the documents stay open) until accepting; then 「同意の確認・撤回」 from the menu:
// the health-data consent given, then withdrawn after a confirmation. axe on every page.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { launchBrowser, newDesktopPage, newPhonePage } from '../lib/browser.mjs';
import { consoleLogin, createOperator } from '../lib/console.mjs';
import { PASSWORD, Walk, button, expectMenu, expectVisible, givePurposeConsent, link, registerMember, uniqueEmail } from '../lib/flows.mjs';
import { startServer } from '../lib/server.mjs';

const heading = (page, name) => page.getByRole('heading', { name, exact: true });
const NEW_TITLE = 'Mimoto利用規約（2026年改定）';

describe('consents (#16 point 8)', () => {
  test('documents, re-consent after a new version, withdrawal', { timeout: 240_000 }, async (t) => {
    const server = await startServer('consents');
    t.after(() => server.stop());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const { baseURL } = server;
    const email = uniqueEmail('consents');
    const page = await newPhonePage(browser);
    assert.equal(page.viewportSize().width, 390, 'a 390 px wide phone');

    await registerMember(new Walk(t, page, 'consents-setup'), { baseURL, email });

    const walk = new Walk(t, page, 'consents');
    await walk.step('1 the registration page links each document, in a new tab', async () => {
      await page.goto(`${baseURL}/`);
      await button(page, '新規登録').click();
      await button(page, '健康保険・共済組合または会社').click();
      await page.getByLabel('団体ID（保険者番号）').fill('133033');
      await button(page, '承認する').click();
      await link(page, 'アカウント作成をはじめる').click();
      await page.getByLabel('メールアドレス').fill(uniqueEmail('consents-b'));
      await page.getByLabel('パスワード', { exact: true }).fill('Kitsune-Udon-2027?');
      await button(page, '次へ').click();
      await page.getByLabel('Mimoto利用規約に同意する').check();
      const terms = link(page, 'Mimoto利用規約を読む');
      await expectVisible(terms, 'link 「Mimoto利用規約を読む」');
      assert.equal(await terms.getAttribute('target'), '_blank');
      assert.equal(await terms.getAttribute('rel'), 'noopener');
      for (const name of ['みらい健康保険組合のプライバシーポリシーを読む', 'みらいポイント利用規約を読む']) {
        await expectVisible(link(page, name), `link 「${name}」`);
      }
      const [doc] = await Promise.all([page.context().waitForEvent('page'), terms.click()]);
      await expectVisible(heading(doc, 'Mimoto利用規約'), 'the terms in the new tab');
      await checkPage(walk, doc, 'document');
      await doc.close();
      assert.ok(await page.getByLabel('Mimoto利用規約に同意する').isChecked(), 'the form keeps its check');
      await walk.snap('registration-links');
    });

    await walk.step('2 an admin publishes a new version of the platform terms (console)', async () => {
      const admin = await createOperator(server, { email: 'admin-consents@example.com', name: '管理 太郎', role: 'admin' });
      const desk = await newDesktopPage(browser);
      try {
        await consoleLogin(desk, baseURL, admin);
        await link(desk, '規約等').click();
        await expectVisible(heading(desk, '規約等の版'), 'heading 「規約等の版」');
        await desk.goto(`${baseURL}/console/documents?kind=platform_terms`);
        await expectVisible(heading(desk, '新しい版を公開'), 'the form 「新しい版を公開」');
        await desk.getByLabel('タイトル', { exact: true }).fill(NEW_TITLE);
        await desk.getByLabel('本文', { exact: true }).fill('第1条 改定後の本文です。\n\n第2条 お問い合わせはヘルプから。');
        await button(desk, '新しい版を公開').click();
        await expectVisible(desk.getByRole('status').filter({ hasText: 'を公開しました' }), 'the notice 「版 … を公開しました。」');
        await shotAndCheck(walk, desk, 'console-documents');
      } finally {
        await desk.context().close();
      }
    });

    await walk.step('3 the signed-in member is held on 「規約等の改定への同意」 until accepting', async () => {
      await page.goto(`${baseURL}/login`);
      await page.getByLabel('メールアドレス').fill(email);
      await page.getByLabel('パスワード', { exact: true }).fill(PASSWORD);
      await button(page, 'ログイン').click();
      await expectVisible(heading(page, '規約等の改定への同意'), 'heading 「規約等の改定への同意」 after login');
      await expectVisible(link(page, NEW_TITLE), `link to 「${NEW_TITLE}」`);
      await walk.snap('renew');
      await walk.a11y('renew');
      await page.goto(`${baseURL}/menu/org`);
      await expectVisible(heading(page, '規約等の改定への同意'), 'other member pages lead back here');
      await page.goto(`${baseURL}/inquiry/new`);
      await expectVisible(heading(page, 'お問い合わせ'), 'help stays open');
      await page.goto(`${baseURL}/menu`);
      await button(page, '同意して次へ').click();
      await expectVisible(page.getByRole('alert'), 'an alert: the box is not checked');
      await page.getByLabel(`改定後の${NEW_TITLE}に同意する`).check();
      await button(page, '同意して次へ').click();
      await expectMenu(page);
    });

    await walk.step('4 「同意の確認・撤回」: give the health-data consent, then withdraw it', async () => {
      await link(page, '同意の確認・撤回').click();
      await expectVisible(heading(page, '同意の確認・撤回'), 'heading 「同意の確認・撤回」');
      const text = await page.locator('main').innerText();
      assert.ok(text.includes('撤回できません'), 'says the terms are withdrawn only by leaving');
      await walk.snap('consents');
      await walk.a11y('consents');
      await page.getByRole('region', { name: '健診等情報の受領について' }).getByRole('link', { name: '同意する', exact: true }).click();
      await givePurposeConsent(page, 'health_data');
      await expectVisible(heading(page, '同意の確認・撤回'), 'back on 「同意の確認・撤回」');
      const withdraw = page.getByRole('region', { name: '健診等情報の受領について' }).getByRole('link', { name: '同意を撤回する', exact: true });
      await withdraw.click();
      await expectVisible(heading(page, '同意の撤回の確認'), 'the confirmation');
      await walk.a11y('withdraw-confirm');
      await button(page, '撤回する').click();
      await expectVisible(page.getByRole('status').filter({ hasText: '同意を撤回しました。' }), 'the notice 「同意を撤回しました。」');
      const region = page.getByRole('region', { name: '健診等情報の受領について' });
      await expectVisible(region.getByText('撤回日'), 'the withdrawal date');
      await expectVisible(region.getByRole('link', { name: '同意する', exact: true }), 'the consent can be given again');
      await walk.snap('withdrawn');
      await walk.a11y('withdrawn');
    });

    await walk.a11yStep();
  });
});

/** A screenshot and axe on another page than the walk's. */
async function shotAndCheck(walk, other, label) {
  const own = walk.page;
  walk.page = other;
  try {
    await walk.snap(label);
    await walk.a11y(label);
  } finally {
    walk.page = own;
  }
}

const checkPage = (walk, other, label) => shotAndCheck(walk, other, label);
