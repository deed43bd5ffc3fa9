// Shared user journeys: step runner with numbered screenshots, the registration
// walk, login, and reading one-time codes from the demo outbox (/dev/mail).
import assert from 'node:assert/strict';
import { checkA11y, shot } from './browser.mjs';

export const ORG_ID_WRONG = '133034';
export const ORG_ID = '133033';
export const ORG_NAME = 'みらい健康保険組合';
export const PASSWORD = 'Sakura-Mochi-2026!';
export const WEAK_PASSWORD = 'password';
export const WRONG_PASSWORD = 'Wrong-Password-0!';

const MAIL_WAIT_MS = 10_000;

/** A unique throwaway address for one test run. */
export function uniqueEmail(tag = 'e2e') {
  return `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

export const button = (page, name) => page.getByRole('button', { name, exact: true });
export const link = (page, name) => page.getByRole('link', { name, exact: true });

/**
 * Wait until the locator is visible; the error says what was expected and where.
 * `timeout` (ms) for steps slower than a click, e.g. a photo going through the face engine.
 */
export async function expectVisible(locator, what, timeout) {
  try {
    await locator.waitFor({ state: 'visible', ...(timeout ? { timeout } : {}) });
  } catch (err) {
    const page = locator.page();
    err.message = `expected ${what} on ${page.url()}\n${err.message}`;
    throw err;
  }
}

/** Wait for an element with role=alert whose text contains `text` (any non-empty text if omitted). */
export async function expectAlert(page, text) {
  const alert = page.getByRole('alert').filter({ hasText: text ?? /\S/ }).first();
  await expectVisible(alert, text ? `an alert containing 「${text}」` : 'a non-empty alert');
  const got = (await alert.innerText()).trim();
  if (text) assert.ok(got.includes(text), `alert text 「${got}」 should contain 「${text}」`);
  return got;
}

/**
 * Runs the steps of one journey as node:test subtests of `t`, in order. After a
 * failing step the remaining ones are reported as skipped, and the page at the
 * moment of failure is saved as <prefix>-FAIL-<step>.png.
 */
export class Walk {
  constructor(t, page, prefix) {
    this.t = t;
    this.page = page;
    this.prefix = prefix;
    this.n = 0;
    this.failed = false;
    this.a11yFailures = [];
  }

  /**
   * checkA11y on the current page, but a critical/serious finding is recorded
   * rather than thrown, so the journey goes on; a11yStep() reports them all.
   */
  async a11y(label) {
    try {
      await checkA11y(this.page, `${this.prefix}-${label}`);
    } catch (err) {
      if (!(err instanceof assert.AssertionError)) throw err;
      this.a11yFailures.push(err.message);
      console.log(err.message);
    }
  }

  /** Final step: fails if any a11y() check found critical/serious violations. */
  async a11yStep() {
    await this.t.test('accessibility (axe: no critical/serious violations)', () => {
      if (this.a11yFailures.length) assert.fail(this.a11yFailures.join('\n\n'));
    });
  }

  async step(name, fn) {
    if (this.failed) {
      await this.t.test(name, { skip: 'an earlier step failed' }, () => {});
      return;
    }
    await this.t.test(name, async () => {
      try {
        await fn();
      } catch (err) {
        this.failed = true;
        const slug = name.replace(/[^\p{L}\p{N}_-]+/gu, '_');
        await shot(this.page, `${this.prefix}-FAIL-${slug}`).catch(() => {});
        throw err;
      }
    });
  }

  /** Numbered full-page screenshot: <prefix>-NN-<name>.png */
  snap(name, page = this.page) {
    this.n += 1;
    return shot(page, `${this.prefix}-${String(this.n).padStart(2, '0')}-${name}`);
  }
}

/**
 * Opens /dev/mail in a second tab of the same browser context and returns the
 * 6-digit one-time code from the newest mail to `email` (optionally whose
 * <h2> subject contains `subject`). Polls briefly in case delivery lags.
 */
export async function readCodeFromOutbox(walk, baseURL, email, { subject } = {}) {
  const tab = await walk.page.context().newPage();
  try {
    const deadline = Date.now() + MAIL_WAIT_MS;
    let found = null;
    for (;;) {
      await tab.goto(`${baseURL}/dev/mail`);
      found = await tab.evaluate(
        ({ email, subject }) => {
          for (const article of document.querySelectorAll('article.mail')) {
            if (!article.textContent.includes(email)) continue;
            const subj = article.querySelector('h2')?.textContent.trim() ?? '';
            if (subject && !subj.includes(subject)) continue;
            const body = article.querySelector('pre')?.textContent ?? '';
            const m = body.match(/ワンタイムパスワード\s*[:：]\s*(\d{6})\b/);
            return { subject: subj, body, code: m ? m[1] : null };
          }
          return null;
        },
        { email, subject },
      );
      if (found || Date.now() > deadline) break;
      await tab.waitForTimeout(300);
    }
    await walk.snap('mail', tab);
    const which = `mail to ${email}${subject ? ` with subject containing 「${subject}」` : ''}`;
    assert.ok(found, `no ${which} in ${baseURL}/dev/mail (article.mail) within ${MAIL_WAIT_MS / 1000} s`);
    assert.ok(found.code, `newest ${which} has no line 「ワンタイムパスワード: NNNNNN」 in its <pre>:\n${found.body}`);
    return found.code;
  } finally {
    await tab.close();
  }
}

/**
 * Registers a new member of みらい健康保険組合 starting from the landing page,
 * through completion, the menu and logout (ends on the landing page).
 * Also walks the two error cases on the way (wrong 保険者番号, weak password).
 * With `a11y`, runs axe (via walk.a11y) on the landing, 団体ID, account, consents, code and
 * completion pages. `onLanding` runs inside step 1, once the landing page is up.
 */
export async function registerMember(walk, { baseURL, email, password = PASSWORD, a11y = false, onLanding }) {
  const { page } = walk;
  const a11yCheck = (label) => (a11y ? walk.a11y(label) : undefined);

  await walk.step('1 landing page', async () => {
    await page.goto(`${baseURL}/`);
    await expectVisible(button(page, '新規登録'), 'button 「新規登録」');
    await expectVisible(link(page, 'ログイン'), 'link 「ログイン」');
    await walk.snap('landing');
    await a11yCheck('landing');
    if (onLanding) await onLanding();
  });

  await walk.step('2 新規登録 → 団体選択', async () => {
    await button(page, '新規登録').click();
    const orgType = button(page, '健康保険・共済組合または会社');
    await expectVisible(orgType, 'button 「健康保険・共済組合または会社」 (団体選択)');
    await walk.snap('org-type');
    await orgType.click();
  });

  await walk.step('3 団体ID認証 (wrong then right 保険者番号)', async () => {
    const orgId = page.getByLabel('団体ID（保険者番号）');
    await expectVisible(orgId, 'field 「団体ID（保険者番号）」');
    await walk.snap('org-id');
    await a11yCheck('org-id');

    await orgId.fill(ORG_ID_WRONG);
    await button(page, '承認する').click();
    await expectAlert(page, '保険者番号が正しくありません');
    await walk.snap('org-id-error');

    await page.getByLabel('団体ID（保険者番号）').fill(ORG_ID);
    await walk.snap('org-id-filled');
    await button(page, '承認する').click();
  });

  await walk.step('4 団体認証成功', async () => {
    const start = link(page, 'アカウント作成をはじめる');
    await expectVisible(start, 'link 「アカウント作成をはじめる」');
    await expectVisible(page.getByText(ORG_NAME).first(), `organization name 「${ORG_NAME}」`);
    await walk.snap('org-ok');
    await start.click();
  });

  await walk.step('5 アカウント作成 (weak then good password)', async () => {
    const emailField = page.getByLabel('メールアドレス');
    await expectVisible(emailField, 'field 「メールアドレス」');
    await expectVisible(
      page.getByRole('heading', { name: 'パスワード設定の条件' }),
      'a heading 「パスワード設定の条件」',
    );
    await walk.snap('account');
    await a11yCheck('account');

    await emailField.fill(email);
    await page.getByLabel('パスワード', { exact: true }).fill(WEAK_PASSWORD);
    await button(page, '次へ').click();
    await expectAlert(page);
    assert.equal(
      await page.getByLabel('メールアドレス').inputValue(),
      email,
      'after the password error the email field should still hold the address',
    );
    await walk.snap('account-error');

    await page.getByLabel('パスワード', { exact: true }).fill(password);
    await walk.snap('account-filled');
    await button(page, '次へ').click();
  });

  await walk.step('6 同意 (three checkboxes)', async () => {
    const send = button(page, '承認メールを送信');
    await expectVisible(send, 'button 「承認メールを送信」');
    const boxes = page.getByRole('checkbox');
    assert.equal(await boxes.count(), 3, 'expected three consent checkboxes');
    for (const text of ['利用規約', ORG_NAME, 'みらいポイント']) {
      const n = await page.getByRole('checkbox', { name: text }).count();
      assert.ok(n >= 1, `no consent checkbox whose label contains 「${text}」`);
    }
    await walk.snap('consents');
    await a11yCheck('consents');
    for (const box of await boxes.all()) await box.check();
    await walk.snap('consents-checked');
    await send.click();
  });

  await walk.step('7 ワンタイムパスワード (code from /dev/mail)', async () => {
    const codeField = page.getByLabel('ワンタイムパスワード');
    await expectVisible(codeField, 'field 「ワンタイムパスワード」');
    await walk.snap('code');
    await a11yCheck('code');
    const code = await readCodeFromOutbox(walk, baseURL, email);
    await codeField.fill(code);
    await walk.snap('code-filled');
    await button(page, '承認する').click();
  });

  await walk.step('8 完了 → メニュー → ログアウト', async () => {
    const toMenu = link(page, 'メニューへ');
    await expectVisible(toMenu, 'link 「メニューへ」 (completion page)');
    await expectVisible(page.getByRole('heading', { name: '完了' }).first(), 'a heading containing 「完了」');
    const text = await page.locator('body').innerText();
    for (const s of ['本人確認', '健診・医療アクセス認証']) {
      assert.ok(text.includes(s), `completion page should mention 「${s}」`);
    }
    await walk.snap('complete');
    await a11yCheck('complete');

    await toMenu.click();
    const logout = button(page, 'ログアウト');
    await expectVisible(logout, 'button 「ログアウト」 (menu)');
    await expectVisible(page.getByText(ORG_NAME).first(), `organization name 「${ORG_NAME}」 on the menu`);
    await walk.snap('menu');

    await logout.click();
    await expectVisible(button(page, '新規登録'), 'the landing page (button 「新規登録」) after logout');
    await walk.snap('logged-out');
  });
}

/** The purpose consents (#16 point 8): the page's heading and its checkbox. */
export const PURPOSE_CONSENTS = Object.freeze({
  biometric: { heading: '顔画像の取扱いへの同意', label: '「顔画像の取扱いについて」を読み、顔画像の取扱いに同意する' },
  health_data: { heading: '健診等情報の受領への同意', label: '「健診等情報の受領について」を読み、健診等情報の受領に同意する' },
});

/**
 * On the page asking for a purpose consent (before F4: `biometric`, before F5: `health_data`):
 * check the box and press 「同意して進む」 (the page then goes where the member was going).
 */
export async function givePurposeConsent(page, kind) {
  const { heading, label } = PURPOSE_CONSENTS[kind];
  await expectVisible(page.getByRole('heading', { name: heading, exact: true }), `heading 「${heading}」`);
  await page.getByLabel(label).check();
  await button(page, '同意して進む').click();
}

/** On the login page: fill credentials and press 「ログイン」. */
export async function submitLogin(page, email, password) {
  await page.getByLabel('メールアドレス').fill(email);
  await page.getByLabel('パスワード', { exact: true }).fill(password);
  await button(page, 'ログイン').click();
}

/** Wait for the menu page (a visible 「ログアウト」 button). */
export function expectMenu(page) {
  return expectVisible(button(page, 'ログアウト'), 'the menu (button 「ログアウト」)');
}

/** From the landing page (where registerMember ends): 「ログイン」 → credentials → the menu. */
export async function logIn(page, email, password = PASSWORD) {
  await link(page, 'ログイン').click();
  await expectVisible(button(page, 'ログイン'), 'the login page (button 「ログイン」)');
  await submitLogin(page, email, password);
  await expectMenu(page);
}

/** The demo roster's person for 133033 (crates/server/demo/roster.csv); the demo health data is hers. */
export const HANAKO = Object.freeze({ symbol: '1234', number: '5678', family: 'ヤマダ', given: 'ハナコ', birth: '1990-04-01' });

/**
 * 本人確認 (F3) for the logged-in member of `page`, straight through from the org menu:
 * 保険者番号 → 記号・番号 → 氏名・生年月日 → 「この内容で本人確認する」 → 「本人確認が完了しました」.
 * (tests/identity.test.mjs walks the same pages with their checks and error cases.)
 * `onPage(label)`, if given, runs on each page before it is filled in (and on the last).
 */
export async function verifyIdentity(page, baseURL, person = HANAKO, { onPage } = {}) {
  const exact = { exact: true };
  const at = async (label) => {
    if (onPage) await onPage(label);
  };
  await page.goto(`${baseURL}/menu/org`);
  await link(page, '本人確認').click();
  await at('identity-intro');
  await button(page, '次へ').click();
  await at('identity-org');
  await page.getByLabel('保険者番号', exact).fill(ORG_ID);
  await button(page, '次へ').click();
  await at('identity-card');
  await page.getByLabel('記号', exact).fill(person.symbol);
  await page.getByLabel('番号', exact).fill(person.number);
  await button(page, '次へ').click();
  await at('identity-person');
  await page.getByLabel('姓（全角カタカナ）', exact).fill(person.family);
  await page.getByLabel('名（全角カタカナ）', exact).fill(person.given);
  await page.getByLabel('生年月日', exact).fill(person.birth);
  await button(page, '次へ').click();
  await at('identity-confirm');
  await button(page, 'この内容で本人確認する').click();
  await expectVisible(page.getByRole('heading', { name: '本人確認が完了しました', exact: true }), 'heading 「本人確認が完了しました」');
  await at('identity-done');
}
