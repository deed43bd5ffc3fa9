// 健診・医療アクセス認証 (F4) straight through the member pages with Chromium's fake camera,
// for tests that need a member past F4 (tests/ekyc.test.mjs walks the same pages with their
// checks and error cases). The camera scenes come from lib/fakecam.mjs; the fake camera is a
// launch flag, so each scene gets its own browser and the member logs in again in each.
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchBrowser, launchBrowserWithCamera, newPhonePage } from './browser.mjs';
import { waitForLoopStart, writeScene, writeTurnScene } from './fakecam.mjs';
import { PASSWORD, PURPOSE_CONSENTS, button, expectMenu, expectVisible, givePurposeConsent, link, submitLogin } from './flows.mjs';
import { ARTIFACTS_DIR } from './server.mjs';

/** A photo going through the face engine takes longer than a click. */
export const CAPTURE_TIMEOUT_MS = 30_000;

const heading = (page, name) => page.getByRole('heading', { name, exact: true });

/**
 * The development set's leonard as a licence (leonard1), frontal (leonard2) and turned right
 * with the mouth closed (leonard3: the instruction the server draws with
 * MIMOTO_EKYC_INSTRUCTION_SEED=3). Written under artifacts/fakecam/.
 */
export async function writeLeonardScenes() {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    const dir = path.join(ARTIFACTS_DIR, 'fakecam');
    return {
      card: await writeScene(page, dir, 'licence-leonard', { kind: 'card', face: 'leonard/leonard1.png' }),
      frontal: await writeScene(page, dir, 'selfie-leonard-front', { kind: 'selfie', face: 'leonard/leonard2.png' }),
      angled: await writeTurnScene(page, dir, 'selfie-leonard-turning-right', { front: 'leonard/leonard2.png', turned: 'leonard/leonard3.png' }),
    };
  } finally {
    await browser.close();
  }
}

/**
 * 「撮影をはじめる」 → the fake camera's picture → 「撮影する」. For a turn video (the angled
 * burst), the shutter is pressed at the start of its loop, facing the camera.
 */
export async function shoot(page, scene) {
  await button(page, '撮影をはじめる').click();
  const shutter = button(page, '撮影する');
  await expectVisible(shutter, 'button 「撮影する」 once the camera is on');
  if (scene?.turn) await waitForLoopStart(page);
  await shutter.click();
}

/**
 * Runs `fn(page)` as a step of `walk` on a phone page of a browser whose camera shows
 * `scene`, logged in as `email` and on /ekyc. The browser stays open until the step is over
 * (so a failure screenshot shows the page), then closes.
 */
async function cameraStep(walk, name, { baseURL, email, password }, scene, fn) {
  if (walk.failed) return walk.step(name, () => {});
  const browser = await launchBrowserWithCamera(scene.y4m);
  try {
    await walk.step(name, async () => {
      const page = await newPhonePage(browser);
      walk.page = page;
      await page.context().grantPermissions(['camera'], { origin: baseURL });
      await page.goto(`${baseURL}/login`);
      await submitLogin(page, email, password);
      await expectMenu(page);
      await page.goto(`${baseURL}/ekyc`);
      // The first visit asks for the consent to the handling of face images first.
      if (await heading(page, PURPOSE_CONSENTS.biometric.heading).count()) {
        await givePurposeConsent(page, 'biometric');
      }
      await fn(page);
    });
  } finally {
    await browser.close();
  }
}

/**
 * F4 for a member who has done 本人確認 (F3): 運転免許証 (備考欄 「記載なし」, so オモテ面 only),
 * the frontal face, the face at the server's instruction (右向きで口を閉じる: start the server
 * with MIMOTO_EKYC_INSTRUCTION_SEED=3), 「自分で質問を設定する」 with `question` / `answer`, and
 * 「この内容で認証する」. Four steps of `walk`; afterwards walk.page is closed (each step had its
 * own browser). Resolves with 'done' (「完了しました」) or 'pending' (「申請を受け付けました」,
 * waiting for an operator), or undefined when a step failed.
 */
export async function completeEkyc(walk, { baseURL, email, password = PASSWORD, scenes, question, answer }) {
  const who = { baseURL, email, password };
  let outcome;

  await cameraStep(walk, 'F4 運転免許証 オモテ面 → 備考欄 「記載なし」 → 撮影した書類の確認', who, scenes.card, async (page) => {
    await expectVisible(heading(page, '健診・医療アクセス認証'), 'heading 「健診・医療アクセス認証」 (F4 intro)');
    await walk.snap('f4-intro');
    await button(page, '次へ').click();
    await expectVisible(heading(page, '本人確認書類の選択'), 'heading 「本人確認書類の選択」');
    await walk.snap('f4-documents');
    await page.getByRole('listitem').filter({ has: heading(page, '運転免許証') }).getByRole('button', { name: '選択' }).click();
    await expectVisible(heading(page, '本人確認書類の撮影（運転免許証・オモテ面）'), 'the front capture page');
    await walk.snap('f4-document-capture');
    await shoot(page);
    await expectVisible(heading(page, '備考欄の確認'), 'the remarks question (a face was found on the card)', CAPTURE_TIMEOUT_MS);
    await button(page, '記載なし').click();
    await expectVisible(heading(page, '撮影した書類の確認'), 'the confirmation of the captured document');
    await walk.snap('f4-document-check');
    await button(page, '次へ').click();
    await expectVisible(heading(page, '顔写真の撮影（正面）'), 'the frontal face page');
  });

  await cameraStep(walk, 'F4 顔写真（正面） → 「写真判定OK」', who, scenes.frontal, async (page) => {
    await expectVisible(heading(page, '顔写真の撮影（正面）'), 'resumed at the frontal face page');
    await walk.snap('f4-face-front');
    await shoot(page);
    await expectVisible(page.getByText('写真判定OK'), '「写真判定OK」', CAPTURE_TIMEOUT_MS);
    await expectVisible(heading(page, '顔写真の撮影（別アングル）'), 'the other-angle page');
    await expectVisible(page.getByText('右向きで口を閉じる', { exact: true }), 'the instruction 「右向きで口を閉じる」 (seed 3)');
  });

  await cameraStep(walk, 'F4 顔写真（別アングル） → 秘密の質問設定 → 「この内容で認証する」', who, scenes.angled, async (page) => {
    await expectVisible(page.getByText('右向きで口を閉じる', { exact: true }), 'the instruction after logging in again');
    await walk.snap('f4-face-angle');
    await shoot(page, scenes.angled);
    const start = link(page, '秘密の質問設定をはじめる');
    await expectVisible(start, 'link 「秘密の質問設定をはじめる」', CAPTURE_TIMEOUT_MS);
    await start.click();
    await page.getByLabel('自分で質問を設定する').check();
    await page.getByLabel('質問（自分で設定する場合）').fill(question);
    await page.getByLabel('答え', { exact: true }).fill(answer);
    await walk.snap('f4-secret');
    await button(page, '次へ').click();
    await expectVisible(heading(page, '本人情報の確認'), 'heading 「本人情報の確認」');
    await walk.snap('f4-confirm');
    const text = await page.locator('main').innerText();
    assert.ok(text.includes(question), `the confirmation shows the question 「${question}」`);
    await button(page, 'この内容で認証する').click();
    const done = heading(page, '完了しました');
    const pending = heading(page, '申請を受け付けました');
    await expectVisible(done.or(pending), 'the completion or the application screen');
    outcome = (await pending.isVisible()) ? 'pending' : 'done';
    await walk.snap(`f4-${outcome}`);
  });

  return outcome;
}
