-- Versioned consent documents (#16 point 8): each kind (platform_terms, org_privacy,
-- point_terms, biometric, health_data) has versions; an organization may publish its own
-- (organization = its id), otherwise the platform-wide one (organization NULL) applies. The
-- current version of a kind is the one published last. Members' consents keep the version
-- they accepted and, for the purpose consents, when they withdrew it.
CREATE TABLE documents (
    kind         TEXT NOT NULL,
    organization TEXT REFERENCES organizations(id),
    version      TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    title_en     TEXT NOT NULL,
    body_en      TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL
);
CREATE UNIQUE INDEX documents_version ON documents (kind, COALESCE(organization, ''), version);

ALTER TABLE user_consents ADD COLUMN withdrawn_at INTEGER;

-- The versions in force since 2026-04-01, platform-wide. {org} and {points} are replaced by
-- the member's organization and its point name when shown.
INSERT INTO documents (kind, organization, version, title, body, title_en, body_en, published_at, published_by) VALUES
('platform_terms', NULL, '2026-04-01', 'Mimoto利用規約',
'1. このサービス
Mimoto（以下「本サービス」）は、健康保険組合・自治体（以下「団体」）の加入者が、団体からのお知らせ、健診結果等を受け取るための会員サービスです。

2. 登録
登録には、団体の保険者番号、メールアドレスとパスワードが必要です。本人確認では保険証の記号・番号等を団体の名簿と照合します。本サービスは、記号・番号等を保険者である団体の委託先としてのみ取り扱い、団体の定める目的以外には利用しません。

3. アカウントの管理
パスワード、秘密の質問の答えおよびパスキーは他人に知らせないでください。

4. 禁止事項
他人になりすますこと、本サービスの運営を妨げることを禁止します。

5. 規約の改定
改定するときは新しい版を公開し、次回ログイン時に改めて同意をお願いします。同意いただけない場合は退会できます。

6. お問い合わせ
ヘルプ・お問い合わせのページからご連絡ください。',
'Mimoto Terms of Use',
'1. The service
Mimoto (the "Service") lets members of health insurance societies and municipalities (the "organization") receive notices and checkup results from their organization.

2. Registration
You need your organization''s insurer number, an email address and a password. Identity verification compares your card''s symbol and number with the organization''s roster. The Service handles symbols and numbers only as a contractor of the insurer and for the purposes the insurer sets.

3. Your account
Do not share your password, your secret answer or your passkeys.

4. Prohibited
Impersonating others and disturbing the Service are prohibited.

5. Changes
A changed version is published and you are asked to accept it at your next login. If you do not accept it, you may leave the Service.

6. Contact
Use the Help and inquiries page.',
1774969200, 'system'),
('org_privacy', NULL, '2026-04-01', '{org} プライバシーポリシー',
'1. 取り扱う情報
メールアドレス、保険証の記号・番号・枝番、氏名（カナ）、生年月日、団体から提供される健診結果・お薬の履歴・医療費通知。

2. 利用目的
加入者の本人確認、お知らせの送付、健診結果等の提供、お問い合わせへの対応のため。

3. 取扱いの委託
{org}は本サービスの運営者に取扱いを委託しています。運営者はこの目的の範囲でのみ取り扱います。

4. 第三者提供
法令に基づく場合を除き、本人の同意なく第三者に提供しません。

5. 保存期間
アカウントがある間保存し、退会後は法令・団体の規程に定める期間の経過後に削除します。

6. 開示・訂正・利用停止
お問い合わせのページからお申し出ください。',
'{org} Privacy Policy',
'1. What we handle
Your email address, the symbol, number and branch number of your insurance card, your name (kana), date of birth, and the checkup results, medication history and medical expense notices your organization provides.

2. Why
To verify that you are a member, send notices, show your checkup results and answer your inquiries.

3. Contractor
{org} entrusts the handling to the operator of this service, who handles it for these purposes only.

4. Third parties
Nothing is given to third parties without your consent, except where the law requires it.

5. Retention
Kept while you have an account; deleted after leaving, once the period set by law and by the organization has passed.

6. Your rights
Ask for disclosure, correction or suspension of use on the inquiry page.',
1774969200, 'system'),
('point_terms', NULL, '2026-04-01', '{points}利用規約',
'1. {points}
{points}は、{org}が加入者の健康づくりのために付与するポイントです。

2. 付与と有効期限
付与の条件と有効期限は{org}が定め、本サービスでお知らせします。

3. 譲渡の禁止
{points}は他人に譲渡できず、現金に換えることはできません。

4. 終了
退会または{org}の加入資格を失ったときは、{points}は失効します。',
'{points} Terms',
'1. {points}
{points} are points that {org} gives its members to support their health.

2. Earning and expiry
{org} sets the conditions and the expiry and announces them in this service.

3. No transfer
{points} cannot be transferred or exchanged for cash.

4. End
{points} expire when you leave the service or lose your membership of {org}.',
1774969200, 'system'),
('biometric', NULL, '2026-04-01', '顔画像の取扱いについて',
'健康・医療情報閲覧認証（オンライン本人確認）では、本人確認書類の画像と、その場で撮影する顔画像（生体情報）をお預かりします。

1. 利用目的
書類の顔写真とご本人の顔が一致するか、その場で撮影されたか（なりすましの防止）を確かめるためだけに使います。

2. 取り扱う者
本サービスの運営者が{org}の委託を受けて取り扱います。自動判定で確認できないときは、運営者の審査担当者が画像を確認します。

3. 保存期間
画像は判定の確定後、定められた期間の経過後に削除します。判定結果（承認・否認）は記録として残ります。

4. 個人識別符号
顔画像から作る顔の特徴データは、個人情報保護法の「個人識別符号」にあたります。健康・医療情報（要配慮個人情報）の閲覧を可能にするものとして、要配慮個人情報と同等に慎重に取り扱い、目的外には利用しません。

5. 同意の撤回
「同意の確認・撤回」のページでいつでも撤回できます。撤回すると、提出前の申請は続けられません。提出済みの申請の審査と、確定した判定結果はそのまま残ります。',
'Handling of face images',
'Health and medical access authentication (online identity verification) takes an image of your identity document and face images taken on the spot (biometric data).

1. Purpose
Only to check that the face on the document is yours and that the photos were taken live (to prevent impersonation).

2. Who
The operator of this service, on behalf of {org}. When the automatic checks cannot decide, a reviewer of the operator looks at the images.

3. Retention
Images are deleted after a set period once the decision is final. The decision (approved or rejected) is kept as a record.

4. Individual identification code
The facial feature data made from the images is an individual identification code under the Act on the Protection of Personal Information. As the key to your health data (special care-required personal information) it is handled with the same care and used for no other purpose.

5. Withdrawal
You can withdraw this consent at any time on the Consents page. An application not yet submitted then cannot continue; a submitted application is still reviewed, and decisions keep their result.',
1774969200, 'system'),
('health_data', NULL, '2026-04-01', '健診等情報の受領について',
'本サービスでは、{org}から提供される特定健診の結果、お薬の履歴、医療費通知（以下「健診等情報」）を受け取り、ご本人に表示します。

1. 要配慮個人情報
健診等情報は、個人情報保護法の要配慮個人情報（病歴、健康診断の結果等）にあたります。ご本人の同意を得て取り扱います。

2. 利用目的
ご本人に表示するためだけに使います。団体が保険者として行う保健事業の範囲を超えて利用せず、第三者に提供しません。

3. 取り扱う者
{org}が保険者として保有する情報を、本サービスの運営者が委託を受けて暗号化して保管します。

4. 保存期間
{org}の規程の期間保存し、その後削除します。

5. 同意の撤回
「同意の確認・撤回」のページでいつでも撤回できます。撤回すると、健診等情報は表示されなくなります（再び同意すると表示されます）。',
'Receiving checkup and health data',
'This service receives the specific health checkup results, medication history and medical expense notices (the "health data") that {org} provides and shows them to you.

1. Sensitive personal information
Health data is special care-required personal information under the Act on the Protection of Personal Information (medical history, checkup results). It is handled with your consent.

2. Purpose
Only to show it to you. It is not used beyond the health services of your insurer and not given to third parties.

3. Who
The operator of this service stores the data {org} holds as insurer, encrypted, on its behalf.

4. Retention
Kept for the period {org} sets, then deleted.

5. Withdrawal
You can withdraw this consent at any time on the Consents page. Your health data is then no longer shown (it is shown again when you consent again).',
1774969200, 'system');
