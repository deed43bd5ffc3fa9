// F4 健診・医療アクセス認証 at the phone viewport, with Chromium's fake camera fed from
// Y4M files this test makes out of the development face set (lib/fakecam.mjs):
//   1. a member registers and does 本人確認 (F3); the org menu then offers F4
//   2. 運転免許証: the rear camera is denied first (the page says how to allow it), then
//      allowed; オモテ面 through the camera, 備考欄 「記載あり」, ウラ面, 「次へ」
//   3. face, frontal: without a camera API the file input takes a photo of someone else
//      (「顔写真が一致しません」), then the camera takes the member (「写真判定OK」)
//   4. face, other angle (the server's instruction; the server runs with a test seed so it
//      is 「右向きで口を閉じる」, the pose the development set has), 秘密の質問設定,
//      本人情報の確認 → 「この内容で認証する」 → 完了 or 申請
// Each camera scene needs its own browser (the fake camera is a launch flag), so the member
// logs in again each time, which also shows that the application resumes where it was.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, launchBrowserWithCamera, newPhonePage } from '../lib/browser.mjs';
import { waitForLoopStart, writeScene, writeTurnScene } from '../lib/fakecam.mjs';
import { ORG_ID, ORG_NAME, PASSWORD, Walk, button, expectMenu, expectVisible, givePurposeConsent, link, registerMember, submitLogin, uniqueEmail } from '../lib/flows.mjs';
import { ARTIFACTS_DIR, startServer } from '../lib/server.mjs';

const HANAKO = { symbol: '1234', number: '5678', family: 'ヤマダ', given: 'ハナコ', birth: '1990-04-01' };
const heading = (page, name) => page.getByRole('heading', { name, exact: true });
const CAPTURE_TIMEOUT_MS = 30_000;

describe('F4 健診・医療アクセス認証 (fake camera)', () => {
  let server;
  let scenes;
  const email = uniqueEmail('f4');

  before(async () => {
    // Seed 3 draws 「右向きで口を閉じる」 first (tests only; refused with https).
    server = await startServer('ekyc', { env: { MIMOTO_EKYC_INSTRUCTION_SEED: '3' } });
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const dir = path.join(ARTIFACTS_DIR, 'fakecam');
      scenes = {
        card: await writeScene(page, dir, 'licence-leonard', { kind: 'card', face: 'leonard/leonard1.png' }),
        frontal: await writeScene(page, dir, 'selfie-leonard-front', { kind: 'selfie', face: 'leonard/leonard2.png' }),
        angled: await writeTurnScene(page, dir, 'selfie-leonard-turning-right', { front: 'leonard/leonard2.png', turned: 'leonard/leonard3.png' }),
        stranger: await writeScene(page, dir, 'selfie-sheldon', { kind: 'selfie', face: 'sheldon/sheldon2.png' }),
      };
    } finally {
      await browser.close();
    }
  });

  after(async () => {
    await server?.stop();
  });

  /** A phone page in a browser whose camera shows `scene`, logged in, on the org menu. */
  async function phoneWithCamera(scene, { camera = true } = {}) {
    const browser = await launchBrowserWithCamera(scene.y4m);
    const page = await newPhonePage(browser);
    if (camera) await page.context().grantPermissions(['camera'], { origin: server.baseURL });
    await page.goto(`${server.baseURL}/login`);
    await submitLogin(page, email, PASSWORD);
    await expectMenu(page);
    await link(page, ORG_NAME).click();
    return { browser, page };
  }

  /** 「撮影をはじめる」 → the camera's picture → 「撮影する」. */
  /** 「撮影をはじめる」 → 「撮影する」; for the turn video (angled burst) at the start of its loop. */
  async function shoot(page, scene) {
    await button(page, '撮影をはじめる').click();
    const shutter = button(page, '撮影する');
    await expectVisible(shutter, 'button 「撮影する」 once the camera is on');
    const playing = await page.locator('video').evaluate((v) => v.videoWidth > 0 && !v.paused);
    assert.ok(playing, 'the camera preview is playing');
    if (scene?.turn) await waitForLoopStart(page);
    await shutter.click();
  }

  test('1 registration and 本人確認 open 健診・医療アクセス認証 on the menu', async (t) => {
    const browser = await launchBrowser();
    const page = await newPhonePage(browser);
    const walk = new Walk(t, page, 'f4');
    try {
      await registerMember(walk, { baseURL: server.baseURL, email });
      await walk.step('本人確認 (F3) as ヤマダ ハナコ', async () => {
        await page.goto(`${server.baseURL}/login`);
        await submitLogin(page, email, PASSWORD);
        await expectMenu(page);
        await link(page, ORG_NAME).click();
        assert.equal(await link(page, '健診・医療アクセス認証').count(), 0, 'no F4 entry before 本人確認');
        await link(page, '本人確認').click();
        await button(page, '次へ').click();
        await page.getByLabel('保険者番号', { exact: true }).fill(ORG_ID);
        await button(page, '次へ').click();
        await page.getByLabel('記号', { exact: true }).fill(HANAKO.symbol);
        await page.getByLabel('番号', { exact: true }).fill(HANAKO.number);
        await button(page, '次へ').click();
        await page.getByLabel('姓（全角カタカナ）', { exact: true }).fill(HANAKO.family);
        await page.getByLabel('名（全角カタカナ）', { exact: true }).fill(HANAKO.given);
        await page.getByLabel('生年月日', { exact: true }).fill(HANAKO.birth);
        await button(page, '次へ').click();
        await button(page, 'この内容で本人確認する').click();
        await page.goto(`${server.baseURL}/menu/org`);
        await expectVisible(link(page, '健診・医療アクセス認証'), 'link 「健診・医療アクセス認証」 on the org menu');
        await walk.snap('org-menu');
        await walk.a11y('org-menu');
      });
      await walk.a11yStep();
    } finally {
      await browser.close();
    }
  });

  test('2 運転免許証: camera denied, then allowed; front, 備考欄, back', async (t) => {
    const { browser, page } = await phoneWithCamera(scenes.card, { camera: false });
    const walk = new Walk(t, page, 'f4-doc');
    try {
      await walk.step('「次へ」 → 本人確認書類の選択 → 運転免許証 「選択」', async () => {
        await link(page, '健診・医療アクセス認証').click();
        // First the separate consent to the handling of face images (#16 point 8).
        await expectVisible(link(page, '顔画像の取扱いについて'), 'the link to the document 「顔画像の取扱いについて」');
        await walk.a11y('biometric-consent');
        await givePurposeConsent(page, 'biometric');
        await expectVisible(heading(page, '健診・医療アクセス認証'), 'heading 「健診・医療アクセス認証」');
        await walk.a11y('intro');
        await button(page, '次へ').click();
        await expectVisible(heading(page, '本人確認書類の選択'), 'heading 「本人確認書類の選択」');
        for (const doc of ['運転免許証', 'マイナンバーカード', '運転経歴証明書', '在留カード']) {
          await expectVisible(heading(page, doc), `document 「${doc}」`);
        }
        await walk.snap('documents');
        await walk.a11y('documents');
        await page.getByRole('listitem').filter({ has: heading(page, '運転免許証') }).getByRole('button', { name: '選択' }).click();
      });

      await walk.step('camera permission denied → how to allow it, and the file input', async () => {
        await expectVisible(heading(page, '本人確認書類の撮影（運転免許証・オモテ面）'), 'the front capture page');
        assert.equal(await page.getByLabel('写真を撮る・選ぶ').isVisible(), false, 'with a camera API the file input waits behind the camera');
        await button(page, '撮影をはじめる').click();
        const help = page.getByRole('alert').filter({ hasText: '許可する' });
        await expectVisible(help, 'the permission help (「許可する」)');
        assert.match(await help.innerText(), /設定画面/);
        await expectVisible(page.getByLabel('写真を撮る・選ぶ'), 'the file input after a denial');
        await walk.snap('camera-denied');
      });

      await walk.step('allowed: オモテ面 with the rear camera inside the white frame', async () => {
        await page.context().grantPermissions(['camera'], { origin: server.baseURL });
        await page.reload();
        await expectVisible(page.locator('.viewfinder.card .frame'), 'the white frame');
        await button(page, '撮影をはじめる').click();
        await expectVisible(button(page, '撮影する'), 'button 「撮影する」');
        await walk.snap('camera-front');
        await walk.a11y('capture');
        await button(page, '撮影する').click();
        await expectVisible(heading(page, '備考欄の確認'), 'the remarks question (a face was found on the card)', CAPTURE_TIMEOUT_MS);
      });

      await walk.step('備考欄 「記載あり」 → ウラ面 → the captured images with 「撮り直す」 and 「次へ」', async () => {
        await walk.snap('remarks');
        await button(page, '記載あり').click();
        await expectVisible(heading(page, '本人確認書類の撮影（運転免許証・ウラ面）'), 'the back capture page');
        await shoot(page);
        await expectVisible(heading(page, '撮影した書類の確認'), 'the confirmation of the captured images', CAPTURE_TIMEOUT_MS);
        await expectVisible(page.getByRole('img', { name: 'オモテ面' }), 'the front image');
        await expectVisible(page.getByRole('img', { name: 'ウラ面' }), 'the back image');
        const loaded = await page.getByRole('img', { name: 'オモテ面' }).evaluate((img) => img.complete && img.naturalWidth);
        assert.ok(loaded >= 640, `the front image is shown (${loaded} px wide)`);
        await expectVisible(button(page, '撮り直す'), 'button 「撮り直す」');
        await walk.snap('document-check');
        await walk.a11y('document-check');
        await button(page, '次へ').click();
        await expectVisible(heading(page, '顔写真の撮影（正面）'), 'the frontal face page');
      });
      await walk.a11yStep();
    } finally {
      await browser.close();
    }
  });

  test('3 face, frontal: someone else through the file input, then the member through the camera', async (t) => {
    const { browser, page } = await phoneWithCamera(scenes.frontal);
    const walk = new Walk(t, page, 'f4-face');
    try {
      await walk.step('no camera API: the file input with capture="user"', async () => {
        await page.addInitScript(() => {
          Object.defineProperty(navigator, 'mediaDevices', { value: undefined });
        });
        await link(page, '健診・医療アクセス認証').click();
        await expectVisible(heading(page, '顔写真の撮影（正面）'), 'resumed at the frontal face page');
        const input = page.getByLabel('写真を撮る・選ぶ');
        await expectVisible(input, 'the file input');
        assert.equal(await input.getAttribute('capture'), 'user');
        assert.equal(await button(page, '撮影をはじめる').isVisible(), false);
        await input.setInputFiles(scenes.stranger.png);
        await button(page, 'この写真を送信する').click();
        const alert = page.getByRole('alert');
        await expectVisible(alert, 'the mismatch message', CAPTURE_TIMEOUT_MS);
        assert.match(await alert.innerText(), /顔写真が一致しません/);
        assert.match(await alert.innerText(), /あと4回/);
        await walk.snap('face-mismatch');
      });

      await walk.step('the camera: 「撮影する」 → 「写真判定OK」 and the instruction', async () => {
        await page.context().close();
        const again = await newPhonePage(browser);
        await again.context().grantPermissions(['camera'], { origin: server.baseURL });
        await again.goto(`${server.baseURL}/login`);
        await submitLogin(again, email, PASSWORD);
        await expectMenu(again);
        await again.goto(`${server.baseURL}/ekyc`);
        walk.page = again;
        await expectVisible(heading(again, '顔写真の撮影（正面）'), 'the frontal face page');
        await expectVisible(again.locator('.viewfinder.face .frame'), 'the face frame');
        await shoot(again);
        await expectVisible(again.getByText('写真判定OK'), '「写真判定OK」', CAPTURE_TIMEOUT_MS);
        await expectVisible(heading(again, '顔写真の撮影（別アングル）'), 'the other-angle page');
        await expectVisible(again.getByText('右向きで口を閉じる', { exact: true }), 'the instruction');
        await expectVisible(again.getByRole('img', { name: '右向きで口を閉じる' }), 'the pose guide');
        await walk.snap('angled-instruction');
        await walk.a11y('angled');
      });
      await walk.a11yStep();
    } finally {
      await browser.close();
    }
  });

  test('4 face, other angle → 秘密の質問設定 → 「この内容で認証する」', async (t) => {
    const { browser, page } = await phoneWithCamera(scenes.angled);
    const walk = new Walk(t, page, 'f4-finish');
    try {
      await walk.step('右向きで口を閉じる through the camera', async () => {
        await link(page, '健診・医療アクセス認証').click();
        await expectVisible(page.getByText('右向きで口を閉じる', { exact: true }), 'the same instruction after logging in again');
        await shoot(page, scenes.angled);
        await expectVisible(link(page, '秘密の質問設定をはじめる'), 'link 「秘密の質問設定をはじめる」', CAPTURE_TIMEOUT_MS);
        await walk.snap('secret-intro');
      });

      await walk.step('秘密の質問設定: 「自分で質問を設定する」 (推奨), answer, 「次へ」', async () => {
        await link(page, '秘密の質問設定をはじめる').click();
        const own = page.getByLabel('自分で質問を設定する');
        await expectVisible(own, 'the option 「自分で質問を設定する」');
        assert.equal(await own.isChecked(), true, 'the recommended option is preselected');
        await walk.a11y('secret');
        await button(page, '次へ').click();
        await expectVisible(page.getByRole('alert'), 'an error for the missing question');
        await page.getByLabel('質問（自分で設定する場合）').fill('好きな駅は？');
        await page.getByLabel('答え', { exact: true }).fill('ｼﾌﾞﾔｴｷﾏｴ');
        await walk.snap('secret-filled');
        await button(page, '次へ').click();
      });

      await walk.step('本人情報の確認 → 「この内容で認証する」 → 完了しました or 申請', async () => {
        await expectVisible(heading(page, '本人情報の確認'), 'heading 「本人情報の確認」');
        const text = await page.locator('main').innerText();
        assert.ok(text.includes('運転免許証') && text.includes('好きな駅は？'), text);
        assert.ok(!text.includes('ｼﾌﾞﾔｴｷﾏｴ'), 'the answer is not shown');
        await walk.snap('confirm');
        await walk.a11y('confirm');
        await button(page, 'この内容で認証する').click();
        const done = heading(page, '完了しました');
        const pending = heading(page, '申請を受け付けました');
        await expectVisible(done.or(pending), 'the completion or the application screen');
        if (await pending.isVisible()) {
          assert.match(await page.locator('main').innerText(), /完了メールをお待ちくださいませ/);
        }
        await walk.snap('result');
        await walk.a11y('result');
      });
      await walk.a11yStep();
    } finally {
      await browser.close();
    }
  });
});
