// The operator console (/console): an operator created with the real CLI
// (`mimoto operator create`), its TOTP codes (RFC 6238 as an authenticator app computes
// them), the console login and the approval of a pending 健診・医療アクセス認証 (F4).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { button, expectVisible } from './flows.mjs';

export const OPERATOR_PASSWORD = 'Kanri-Sakura-Mochi-2026!';

/** RFC 4648 base32 (no padding needed) → bytes. */
export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.replace(/[=\s]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${JSON.stringify(ch)}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP: HMAC-SHA-1, 30 s steps, 6 digits, at `ms` (default now). */
export function totp(secretBase32, ms = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 1000 / 30)));
  const mac = createHmac('sha1', base32Decode(secretBase32)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, '0');
}

/**
 * `mimoto operator create` on the server's data, the password through
 * $MIMOTO_OPERATOR_PASSWORD (never argv). Returns {email, password, secret} with the TOTP
 * secret the CLI prints once.
 */
export async function createOperator(server, { email, name, role = 'reviewer', password = OPERATOR_PASSWORD }) {
  const out = await server.cli(['operator', 'create', '--email', email, '--name', name, '--role', role], {
    env: { MIMOTO_OPERATOR_PASSWORD: password },
  });
  const secret = out.match(/TOTP secret \(base32\):\s*([A-Z2-7]+=*)/)?.[1];
  assert.ok(secret, '`mimoto operator create` prints the TOTP secret (base32)');
  const uri = out.match(/otpauth URI:\s*(otpauth:\/\/\S+)/)?.[1];
  assert.ok(uri && new URL(uri).searchParams.get('secret') === secret, 'and an otpauth:// URI with the same secret');
  return { email, password, secret };
}

/** /console/login with email, password and the current TOTP code → the 審査キュー. */
export async function consoleLogin(page, baseURL, operator) {
  await page.goto(`${baseURL}/console/login`);
  await page.getByLabel('メールアドレス', { exact: true }).fill(operator.email);
  await page.getByLabel('パスワード', { exact: true }).fill(operator.password);
  await page.getByLabel('認証コード（6桁）', { exact: true }).fill(totp(operator.secret));
  await button(page, 'ログイン').click();
  await expectVisible(page.getByRole('heading', { name: '審査キュー', exact: true }), 'the console queue (heading 「審査キュー」)');
}

/**
 * On the queue: opens the only pending case, checks it is `person` (the member's roster
 * data beside the images) and approves it → back on the queue with 「承認しました」. With
 * `burst`, also checks that the angled selfie came as a camera burst (the reasons list the
 * burst's yaw angles and no `liveness_no_burst`).
 */
export async function approveOnlyCase(page, { family, given }, { burst = false } = {}) {
  const open = page.getByRole('link', { name: /^審査する/ });
  assert.equal(await open.count(), 1, 'exactly one case waits in the queue');
  await open.click();
  await expectVisible(page.getByRole('heading', { name: '申請の審査', exact: true }), 'the case page (heading 「申請の審査」)');
  const person = await page.locator('.case-person').innerText();
  assert.ok(person.includes(family) && person.includes(given), `the case is ${family} ${given}'s:\n${person}`);
  await expectVisible(page.getByRole('heading', { name: '本人確認書類の読み取り（OCR）' }), 'what OCR read beside the roster');
  if (burst) {
    const text = await page.locator('main').innerText();
    assert.match(text, /liveness_yaw:/, 'the burst turn is listed for the reviewer');
    assert.doesNotMatch(text, /liveness_no_burst/, 'the angled selfie came as a burst, not a still');
  }
  // The reviewer's checklist: approval needs every item (the server checks it too).
  for (const item of ['氏名が一致', '生年月日が一致', '顔が一致']) {
    await page.getByLabel(item, { exact: true }).check();
  }
  await button(page, '承認する').click();
  await expectVisible(page.getByRole('status').filter({ hasText: '承認しました' }), 'the notice 「承認しました」');
  await expectVisible(page.getByRole('heading', { name: '審査キュー', exact: true }), 'back on the queue');
  assert.equal(await page.getByRole('link', { name: /^審査する/ }).count(), 0, 'the queue is empty after the approval');
}

/**
 * From the console's inquiry inbox: opens the inquiry with this 受付番号 and follows its
 * attached account 「会員の概要を見る」 → the member summary (heading 「会員の概要」).
 */
export async function openInquiryMember(page, reference) {
  await page.getByRole('navigation').getByRole('link', { name: 'お問い合わせ', exact: true }).click();
  await expectVisible(page.getByRole('heading', { name: 'お問い合わせ', exact: true }), 'the inquiry inbox');
  await page.getByRole('link', { name: `開く ${reference}`, exact: true }).click();
  await expectVisible(page.getByRole('heading', { name: new RegExp(`${reference}`) }), `the inquiry ${reference}`);
  await page.getByRole('link', { name: '会員の概要を見る', exact: true }).click();
  await expectVisible(page.getByRole('heading', { name: '会員の概要', exact: true }), 'the member summary (heading 「会員の概要」)');
}

/**
 * 「会員検索」 by the exact email (`{ email }`, straight to the summary) or by an inquiry's
 * 受付番号 (`{ reference }`, then the found inquiry's 「会員の概要を見る」).
 */
export async function findMember(page, { email, reference }) {
  await page.getByRole('navigation').getByRole('link', { name: '会員検索', exact: true }).click();
  await expectVisible(page.getByRole('heading', { name: '会員検索', exact: true }), 'the member search (heading 「会員検索」)');
  if (email) {
    await page.getByLabel('メールアドレス', { exact: true }).fill(email);
    await button(page, 'メールアドレスで探す').click();
  } else {
    await page.getByLabel('受付番号', { exact: true }).fill(reference);
    await button(page, '受付番号で探す').click();
    await page.getByRole('link', { name: '会員の概要を見る', exact: true }).click();
  }
  await expectVisible(page.getByRole('heading', { name: '会員の概要', exact: true }), 'the member summary (heading 「会員の概要」)');
}
