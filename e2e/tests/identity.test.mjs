// F3 本人確認: identity verification against the insurer roster (demo roster,
// みらい健康保険組合 133033, card pattern ④ 記号 + 番号), at the phone viewport.
// One server for the file; the tests run in order and build on each other:
//   1. member A verifies as ヤマダ ハナコ (1234/5678, 1990-04-01) → 本人確認済み on the menu
//   2. member B: card with a typo (5677), 姓 in kanji → alert, values kept, then corrected
//   3. member B confirms → no roster match (the guide's case ②) with the tries left, the inquiry
//      link and no internal label (「②」, 「パターン④」) on any F3 page
//   4. member B 「入力内容を確認してやり直す」 → the confirmation with every value kept, corrects
//      only 番号 with 「修正する」 → record already linked to another account (case ①)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, newPhonePage } from '../lib/browser.mjs';
import {
  ORG_ID,
  ORG_NAME,
  Walk,
  button,
  expectAlert,
  expectMenu,
  expectVisible,
  link,
  logIn,
  registerMember,
  uniqueEmail,
} from '../lib/flows.mjs';
import { startServer } from '../lib/server.mjs';

/** The demo roster's person for 133033 (crates/server/demo/roster.csv). */
const HANAKO = { symbol: '1234', number: '5678', family: 'ヤマダ', given: 'ハナコ', birth: '1990-04-01' };
const TYPO_NUMBER = '5677';

// Screenshots are numbered across the whole file (f3-01-…, f3-02-…), though each
// test has its own Walk.
let shotCount = 0;
class F3Walk extends Walk {
  constructor(t, page) {
    super(t, page, 'f3');
  }

  snap(name, page = this.page) {
    this.n = shotCount;
    const done = super.snap(name, page);
    shotCount = this.n;
    return done;
  }
}

// axe runs once per distinct F3 page, whichever test reaches it first.
const a11yChecked = new Set();
function a11yOnce(walk, label) {
  if (a11yChecked.has(label)) return undefined;
  a11yChecked.add(label);
  return walk.a11y(label);
}

const heading = (page, name) => page.getByRole('heading', { name, exact: true });
const field = (page, name) => page.getByLabel(name, { exact: true });

async function bodyText(page) {
  return page.locator('body').innerText();
}

/** The guide's internal labels (「②」, 「パターン④」) are for its readers, never on a member's screen. */
async function expectNoInternalLabels(page, where) {
  const text = await bodyText(page);
  for (const label of ['①', '②', '③', '④', 'パターン']) assert.ok(!text.includes(label), `no 「${label}」 on ${where}`);
}

async function expectTexts(page, texts, where) {
  const text = await bodyText(page);
  for (const s of texts) assert.ok(text.includes(s), `${where} should show 「${s}」`);
}

/** Menu → 「みらい健康保険組合」 → org menu → 「本人確認」 → reminder → 「次へ」 → 保険者番号確認. */
async function openVerification(walk, { status }) {
  const { page } = walk;
  const org = link(page, ORG_NAME);
  await expectVisible(org, `link 「${ORG_NAME}」 on the menu`);
  await org.click();

  const start = link(page, '本人確認');
  await expectVisible(start, 'link 「本人確認」 (org menu)');
  await expectVisible(heading(page, ORG_NAME), `heading 「${ORG_NAME}」 (org menu)`);
  await expectVisible(page.getByText(status, { exact: true }), `status 「${status}」 on the org menu`);
  await walk.snap('org-menu');
  await a11yOnce(walk, 'org-menu');
  await start.click();

  const next = button(page, '次へ');
  await expectVisible(heading(page, '本人確認'), 'heading 「本人確認」 (reminder page)');
  await expectVisible(next, 'button 「次へ」 (reminder page)');
  await expectTexts(page, ['資格確認書', '資格情報のお知らせ'], 'the reminder page');
  await walk.snap('intro');
  await a11yOnce(walk, 'intro');
  await next.click();
}

/** 保険者番号確認: fill 133033 → 「次へ」. */
async function enterInsurer(walk) {
  const { page } = walk;
  const insurer = field(page, '保険者番号');
  await expectVisible(heading(page, '保険者番号確認'), 'heading 「保険者番号確認」');
  await expectVisible(insurer, 'field 「保険者番号」');
  assert.equal(await insurer.inputValue(), '', 'a new verification starts with an empty 保険者番号');
  await walk.snap('insurer');
  await a11yOnce(walk, 'insurer');
  await insurer.fill(ORG_ID);
  await walk.snap('insurer-filled');
  await button(page, '次へ').click();
}

/** 記号・番号確認 (pattern ④): fill 記号 and 番号, leave 枝番 empty → 「次へ」. */
async function enterCard(walk, { symbol, number }) {
  const { page } = walk;
  await expectVisible(heading(page, '記号・番号確認'), 'heading 「記号・番号確認」');
  await expectVisible(
    page.getByText('ご所属の団体では、記号と番号を入力します。', { exact: true }),
    'text 「ご所属の団体では、記号と番号を入力します。」 (pattern ④)',
  );
  // The drawn guide: where 記号・番号・枝番 are on both of today's documents.
  await expectVisible(heading(page, '記号・番号・枝番の記載位置'), 'heading 「記号・番号・枝番の記載位置」');
  for (const doc of ['資格確認書', '資格情報のお知らせ']) {
    await expectVisible(page.getByRole('img', { name: new RegExp(`^${doc}の見本`) }), `drawn guide of the ${doc}`);
  }
  await expectTexts(page, ['マイナポータル', '医療保険の資格情報'], 'the card page (electronic お知らせ)');
  await expectNoInternalLabels(page, 'the card page');
  const branch = field(page, '枝番（記載がある場合のみ）');
  await expectVisible(field(page, '記号'), 'field 「記号」');
  await expectVisible(field(page, '番号'), 'field 「番号」');
  await expectVisible(branch, 'field 「枝番（記載がある場合のみ）」');
  await walk.snap('card');
  await a11yOnce(walk, 'card');
  await field(page, '記号').fill(symbol);
  await field(page, '番号').fill(number);
  assert.equal(await branch.inputValue(), '', '枝番 should be left empty');
  await walk.snap('card-filled');
  await button(page, '次へ').click();
}

/** 基本情報登録: fill 姓, 名 and 生年月日 (input type=date) → 「次へ」. */
async function enterPerson(walk, { family, given, birth }, snapName = 'person-filled', { fresh = true } = {}) {
  const { page } = walk;
  await expectVisible(heading(page, '基本情報登録'), 'heading 「基本情報登録」');
  await expectVisible(field(page, '姓（全角カタカナ）'), 'field 「姓（全角カタカナ）」');
  await expectVisible(field(page, '名（全角カタカナ）'), 'field 「名（全角カタカナ）」');
  await expectVisible(field(page, '生年月日'), 'field 「生年月日」');
  if (fresh) {
    await walk.snap('person');
    await a11yOnce(walk, 'person');
  }
  await field(page, '姓（全角カタカナ）').fill(family);
  await field(page, '名（全角カタカナ）').fill(given);
  await field(page, '生年月日').fill(birth);
  await walk.snap(snapName);
  await button(page, '次へ').click();
}

/** 本人情報の確認: shows the entered card, name (katakana) and birth date. */
async function expectConfirm(walk, { symbol, number, family, given, birth }) {
  const { page } = walk;
  const submit = button(page, 'この内容で本人確認する');
  await expectVisible(heading(page, '本人情報の確認'), 'heading 「本人情報の確認」');
  await expectVisible(submit, 'button 「この内容で本人確認する」');
  await expectTexts(page, [ORG_ID, symbol, number, `${family} ${given}`, birth], 'the confirmation page');
  await expectNoInternalLabels(page, 'the confirmation page');
  await walk.snap('confirm');
  await a11yOnce(walk, 'confirm');
  return submit;
}

/** 本人確認ができませんでした with an alert containing `message`. */
async function expectFailure(walk, message, snapName) {
  const { page } = walk;
  await expectVisible(heading(page, '本人確認ができませんでした'), 'heading 「本人確認ができませんでした」');
  await expectAlert(page, message);
  await expectNoInternalLabels(page, 'the failure page');
  await walk.snap(snapName);
  await a11yOnce(walk, snapName);
}

describe('identity verification (f3)', () => {
  let server;
  let browser;
  let baseURL;
  const pages = [];
  // What the earlier tests achieved; later tests skip when their start is missing.
  const state = { aVerified: false, bPage: null, bOnConfirm: false, bFailed: false };

  before(async () => {
    server = await startServer('identity');
    baseURL = server.baseURL;
    browser = await launchBrowser();
  });

  after(async () => {
    for (const p of pages) await p.context().close().catch(() => {});
    await browser?.close();
    await server?.stop();
  });

  async function phonePage() {
    const page = await newPhonePage(browser);
    pages.push(page);
    return page;
  }

  /** Registers a new member (no a11y here: F1 covers those pages), then logs in. */
  async function register(walk, email) {
    await registerMember(walk, { baseURL, email });
    await walk.step('9 ログイン → メニュー (本人確認が済んでいません)', async () => {
      await logIn(walk.page, email);
      const todo = walk.page.getByText('本人確認が済んでいません', { exact: true });
      await expectVisible(todo, 'status 「本人確認が済んでいません」 on the menu');
      await walk.snap('menu-unverified');
    });
  }

  test('1 member A verifies (ヤマダ ハナコ, 1234/5678) → 本人確認済み', { timeout: 180_000 }, async (t) => {
    const page = await phonePage();
    const walk = new F3Walk(t, page);
    await register(walk, uniqueEmail('e2e-idv-a'));

    await walk.step('10 メニュー → 団体メニュー → 本人確認 → 次へ', async () => {
      await a11yOnce(walk, 'menu-unverified');
      await openVerification(walk, { status: '本人確認が済んでいません' });
    });

    await walk.step('11 保険者番号確認 (133033)', () => enterInsurer(walk));

    await walk.step('12 記号・番号確認 (1234 / 5678, no 枝番)', () => enterCard(walk, HANAKO));

    await walk.step('13 基本情報登録 (姓 in hiragana やまだ)', () => enterPerson(walk, { ...HANAKO, family: 'やまだ' }));

    await walk.step('14 本人情報の確認 (ヤマダ ハナコ, 1990-04-01) → この内容で本人確認する', async () => {
      const submit = await expectConfirm(walk, HANAKO);
      await submit.click();
    });

    await walk.step('15 本人確認が完了しました → メニュー (本人確認済み)', async () => {
      const toMenu = link(page, 'メニューへ');
      await expectVisible(heading(page, '本人確認が完了しました'), 'heading 「本人確認が完了しました」');
      await expectVisible(toMenu, 'link 「メニューへ」 (completion page)');
      await walk.snap('done');
      await a11yOnce(walk, 'done');
      await toMenu.click();

      await expectMenu(page);
      await expectVisible(page.getByText('本人確認済み', { exact: true }), 'status 「本人確認済み」 on the menu');
      await walk.snap('menu-verified');
      await a11yOnce(walk, 'menu-verified');
      state.aVerified = true;
    });

    await walk.a11yStep();
  });

  test('2 member B: kanji 姓 is refused with an alert, the typed values are kept', { timeout: 180_000 }, async (t) => {
    const page = await phonePage();
    const walk = new F3Walk(t, page);
    state.bPage = page;
    await register(walk, uniqueEmail('e2e-idv-b'));

    await walk.step('10 本人確認 → 保険者番号 → 記号・番号 (typo 5677)', async () => {
      await openVerification(walk, { status: '本人確認が済んでいません' });
      await enterInsurer(walk);
      await enterCard(walk, { ...HANAKO, number: TYPO_NUMBER });
    });

    await walk.step('11 基本情報登録: 姓 in kanji 山田 → alert 全角カタカナ', async () => {
      const typed = { ...HANAKO, family: '山田' };
      await enterPerson(walk, typed, 'person-kanji');
      await expectAlert(page, '全角カタカナ');
      await expectVisible(heading(page, '基本情報登録'), 'still on 「基本情報登録」 after the error');
      assert.equal(await field(page, '姓（全角カタカナ）').inputValue(), typed.family, '姓 should keep 山田');
      assert.equal(await field(page, '名（全角カタカナ）').inputValue(), typed.given, '名 should keep ハナコ');
      assert.equal(await field(page, '生年月日').inputValue(), typed.birth, '生年月日 should keep 1990-04-01');
      assert.equal(
        await field(page, '姓（全角カタカナ）').getAttribute('aria-invalid'),
        'true',
        '姓 should be marked aria-invalid="true"',
      );
      await walk.snap('person-error');
      await a11yOnce(walk, 'person-error');
    });

    await walk.step('12 corrected 姓 → 本人情報の確認 (番号 5677)', async () => {
      await enterPerson(walk, { ...HANAKO, family: 'やまだ' }, 'person-corrected', { fresh: false });
      await expectConfirm(walk, { ...HANAKO, number: TYPO_NUMBER });
      state.bOnConfirm = true;
    });

    await walk.a11yStep();
  });

  test('3 member B: 番号 typo → no match, with the tries left and the inquiry link', { timeout: 60_000 }, async (t) => {
    if (!state.bOnConfirm) return t.skip('test 2 did not reach 本人情報の確認');
    const page = state.bPage;
    const walk = new F3Walk(t, page);

    await walk.step('1 この内容で本人確認する → 本人確認ができませんでした (no match)', async () => {
      await expectTexts(page, ['本人確認はあと5回お試しいただけます'], 'the confirmation page');
      await button(page, 'この内容で本人確認する').click();
      await expectFailure(walk, '記号・番号などの登録情報がMimoto運営事務局に連携されていない', 'fail-no-match');
      await expectTexts(page, ['本人確認はあと4回お試しいただけます'], 'the failure page');
      const inquiry = link(page, 'カスタマーセンターへ問い合わせる');
      await expectVisible(inquiry, 'link 「カスタマーセンターへ問い合わせる」');
      assert.equal(await inquiry.getAttribute('href'), '/inquiry/new', 'inquiry link href');
      await expectVisible(button(page, '入力内容を確認してやり直す'), 'button 「入力内容を確認してやり直す」');
      state.bFailed = true;
    });

    await walk.a11yStep();
  });

  test('4 member B: やり直す keeps every value, 番号 corrected to member A’s card → already linked', { timeout: 90_000 }, async (t) => {
    if (!state.bFailed) return t.skip('test 3 did not reach the no-match page');
    if (!state.aVerified) return t.skip('member A (test 1) is not verified');
    const page = state.bPage;
    const walk = new F3Walk(t, page);

    await walk.step('1 入力内容を確認してやり直す → 本人情報の確認 with the values kept', async () => {
      await button(page, '入力内容を確認してやり直す').click();
      await expectConfirm(walk, { ...HANAKO, number: TYPO_NUMBER });
      await expectTexts(page, ['本人確認はあと4回お試しいただけます'], 'the confirmation page after 「やり直す」');
      await walk.snap('retry-confirm');
    });

    await walk.step('2 記号・番号確認: 修正する → 番号 5678 (記号 kept) → 本人情報の確認', async () => {
      await link(page, '記号・番号確認: 修正する').click();
      assert.equal(await field(page, '記号').inputValue(), HANAKO.symbol, '記号 should be kept');
      assert.equal(await field(page, '番号').inputValue(), TYPO_NUMBER, '番号 should be kept');
      await field(page, '番号').fill(HANAKO.number);
      await button(page, '次へ').click();
    });

    await walk.step('3 この内容で本人確認する → 本人確認ができませんでした (already linked)', async () => {
      const submit = await expectConfirm(walk, HANAKO);
      await submit.click();
      await expectFailure(walk, '以前、別のメールアドレスで会員登録をした可能性がございます', 'fail-already-linked');
      await expectVisible(button(page, 'ログイン画面へ'), 'button 「ログイン画面へ」');
    });

    await walk.a11yStep();
  });
});
