// F6 customer center: an error screen that links the customer center (registration with an
// email that already has an account) → 「カスタマーセンターへ問い合わせる」 → the form (a mistake
// first: the typed text is kept) → 「送信する」 → 「お問い合わせを受け付けました」, and the
// confirmation mail in the demo outbox. axe on the form and the completion page.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { launchBrowser, newPhonePage } from '../lib/browser.mjs';
import { ORG_ID, Walk, button, expectAlert, expectVisible, link, registerMember, uniqueEmail } from '../lib/flows.mjs';
import { startServer } from '../lib/server.mjs';

const MESSAGE = 'このメールアドレスで登録しようとすると「既に登録されています」と表示されます。';

describe('customer center (f6)', () => {
  test('from an error screen to 「お問い合わせを受け付けました」', { timeout: 180_000 }, async (t) => {
    const server = await startServer('inquiry');
    t.after(() => server.stop());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const { baseURL } = server;
    const email = uniqueEmail('f6');

    // A member with this email exists already.
    const first = await newPhonePage(browser);
    await registerMember(new Walk(t, first, 'f6-setup'), { baseURL, email });
    await first.context().close();

    const page = await newPhonePage(browser);
    const walk = new Walk(t, page, 'f6');

    await walk.step('1 registration with a taken email → error with the inquiry link', async () => {
      await page.goto(`${baseURL}/`);
      await button(page, '新規登録').click();
      await button(page, '健康保険・共済組合または会社').click();
      await page.getByLabel('団体ID（保険者番号）').fill(ORG_ID);
      await button(page, '承認する').click();
      await link(page, 'アカウント作成をはじめる').click();
      await page.getByLabel('メールアドレス').fill(email);
      await page.getByLabel('パスワード', { exact: true }).fill('Kitsune-Udon-2027?');
      await button(page, '次へ').click();
      await expectAlert(page, '既に登録されています');
      const inquiry = link(page, 'カスタマーセンターへ問い合わせる');
      await expectVisible(inquiry, 'link 「カスタマーセンターへ問い合わせる」');
      await walk.snap('error');
      await inquiry.click();
    });

    await walk.step('2 お問い合わせ form: a mistake keeps the input', async () => {
      await expectVisible(page.getByRole('heading', { name: 'お問い合わせ', exact: true }), 'heading 「お問い合わせ」');
      const category = page.getByLabel('お問い合わせの種類', { exact: true });
      const message = page.getByLabel('お問い合わせ内容', { exact: true });
      const contact = page.getByLabel('連絡先メールアドレス', { exact: true });
      for (const [l, what] of [[category, '種類'], [message, '内容'], [contact, 'メールアドレス']]) {
        await expectVisible(l, `field 「${what}」 with a visible label`);
      }
      await walk.snap('form');
      await walk.a11y('form');
      await category.selectOption('registration');
      await message.fill(MESSAGE);
      await contact.fill('not-an-address');
      await button(page, '送信する').click();
      await expectAlert(page);
      assert.equal(await page.getByLabel('お問い合わせ内容', { exact: true }).inputValue(), MESSAGE, 'the message is kept');
      assert.equal(await page.getByLabel('お問い合わせの種類', { exact: true }).inputValue(), 'registration', 'the category is kept');
      await walk.snap('form-error');
      await walk.a11y('form-error');
      await page.getByLabel('連絡先メールアドレス', { exact: true }).fill(email);
      await button(page, '送信する').click();
    });

    await walk.step('3 「お問い合わせを受け付けました」 and the confirmation mail', async () => {
      await expectVisible(page.getByRole('heading', { name: 'お問い合わせを受け付けました', exact: true }), 'heading 「お問い合わせを受け付けました」');
      const reference = (await page.locator('.inquiry-ref').innerText()).trim();
      assert.match(reference, /^[0-9A-F]{8}$/, 'a reference number');
      await expectVisible(link(page, 'トップへ'), 'a link back');
      await walk.snap('done');
      await walk.a11y('done');

      const tab = await page.context().newPage();
      try {
        const deadline = Date.now() + 15_000;
        let text = '';
        while (Date.now() < deadline) {
          await tab.goto(`${baseURL}/dev/mail`);
          text = await tab.locator('body').innerText();
          if (text.includes(reference)) break;
          await tab.waitForTimeout(250);
        }
        assert.ok(text.includes('お問い合わせを受け付けました') && text.includes(reference), 'confirmation mail in the outbox');
      } finally {
        await tab.close();
      }
    });

    await walk.a11yStep();
  });
});
