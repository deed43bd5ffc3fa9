//! Re-keying an organization's roster family under a new MAC key: the roster, links, 特定健診
//! results and health entries made under `m0` are found under `m1` alone afterwards, imports
//! still de-duplicate, a second run changes nothing, and an organization created in a
//! deployment whose only MAC key is not `m0` works.

use std::sync::Arc;

use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::crypto::CryptoError;
use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::rekey_roster::{self, NAME};
use app::services::roster::{self, Encoding};
use app::services::{checkups, health_imports, identity};
use app::{App, AppState};
use domain::identity::IdentityState;
use records::testing::{csv, hanako_zip, MEDICATION_HEADER, MEDICATION_ROWS};

/// The MAC key of the first deployment, given bare (so it is `m0`).
const M0: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const M0_NAMED: &str = "m0:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const M1: &str = "m1:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
const K9: &str = "k9:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
const DATA: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const IP: &str = "127.0.0.1";

/// An app on the same store, data dir and clock as `t`, with other MAC keys.
fn app_with_mac_keys(t: &TestApp, secret: &str, active: Option<&str>) -> AppState {
    let mut config = t.app.config.clone();
    config.secret_key = Some(secret.to_string());
    config.active_secret_key = active.map(str::to_string);
    App::with_store(config, t.app.store.clone(), Arc::new(t.clock.clone())).expect("app")
}

async fn start(backend: Backend, config: fn(&mut app::config::Config)) -> TestApp {
    TestApp::start(Opts { backend, config, ..Opts::default() }).await
}

/// F3 through the services on `app` for `member` (registered on any app of the store).
async fn verify_as(
    app: &App,
    member: &Member,
    card: (&str, &str, &str),
    person: (&str, &str, &str),
) -> Result<IdentityState, ServiceError> {
    let view = identity::start(app, member).await?;
    let id = view.flow.id;
    identity::confirm_insurer(app, member, &id, "133033").await?;
    identity::enter_card(app, member, &id, card.0, card.1, card.2).await?;
    identity::enter_person(app, member, &id, person.0, person.1, person.2).await?;
    Ok(identity::confirm(app, member, &id).await?.flow.state)
}

async fn member(t: &TestApp, email: &str) -> Member {
    let token = t.register(email, PASSWORD).await;
    authenticate(&t.app, &token).await.expect("auth").expect("member")
}

async fn org_id(app: &App) -> String {
    app.store.find_org_by_insurer_number("133033").await.expect("org").expect("demo org").id
}

/// The demo roster's rows of 133033 as a file.
fn demo_roster_133033() -> String {
    let mut lines = app::demo::DEMO_ROSTER.lines();
    let header = lines.next().expect("header");
    let rows: Vec<&str> = lines.filter(|l| l.starts_with("133033,")).collect();
    format!("{header}\n{}\n", rows.join("\n"))
}

async fn rekeyed_family_is_found_under_the_new_key_alone(backend: Backend) {
    let t = start(backend, |c| {
        c.secret_key = Some(M0.into());
        c.data_keys = Some(DATA.into());
    })
    .await;
    // Under m0 (bare): the demo roster, ヤマダ ハナコ linked by F3, her checkups and medications.
    let hanako = member(&t, "hanako@example.com").await;
    let state = verify_as(&t.app, &hanako, ("1234", "5678", ""), ("ヤマダ", "ハナコ", "1990-04-01")).await;
    assert_eq!(state.expect("F3 under m0"), IdentityState::Completed);
    checkups::import_zip(&t.app, "133033", "results.zip", hanako_zip(), &mut ()).await.expect("checkups");
    let medications = csv(MEDICATION_HEADER, &MEDICATION_ROWS).into_bytes();
    health_imports::import_medications(&t.app, "133033", "m.csv", medications.clone(), &mut ()).await.expect("meds");
    let org = org_id(&t.app).await;
    assert_eq!(t.app.store.roster_mac_key(&org).await.expect("key").as_deref(), Some("m0"));
    let link_before = t.app.store.roster_link_of_user(&hanako.user.id).await.expect("link").expect("linked");

    // m1 added and made active: the roster families move to it, one organization at a time.
    let both = app_with_mac_keys(&t, &format!("{M0_NAMED},{M1}"), Some("m1"));
    let mut seen = Vec::new();
    let report = rekey_roster::rekey_rosters(&both, &mut |name: &str, done, changed| {
        seen.push((name.to_string(), done, changed))
    })
    .await
    .expect("rekey");
    let orgs = t.app.store.list_orgs().await.expect("orgs").len() as u64;
    assert_eq!(report.name, NAME);
    assert_eq!((report.seen, report.changed, report.skipped, report.failed), (orgs, orgs, 0, 0), "{report:?}");
    assert_eq!(seen.len() as u64, orgs, "progress after each organization: {seen:?}");
    assert_eq!(seen.last(), Some(&(NAME.to_string(), orgs, orgs)));
    assert_eq!(t.app.store.roster_mac_key(&org).await.expect("key").as_deref(), Some("m1"));
    let link_after = t.app.store.roster_link_of_user(&hanako.user.id).await.expect("link").expect("linked");
    assert_ne!(link_after.record, link_before.record, "the link moved to the record's new keys");
    assert_eq!(link_after.linked_at, link_before.linked_at);

    // An app with only m1: the linked member still sees her data ...
    let only_m1 = app_with_mac_keys(&t, M1, None);
    let results = checkups::results_for_member(&only_m1, &hanako, IP).await.expect("checkups under m1");
    assert_eq!(results.len(), 2);
    let meds = health_imports::medications_for_member(&only_m1, &hanako, IP).await.expect("meds under m1");
    assert_eq!(meds.len(), 3);
    assert_eq!(
        identity::roster_entry_of(&only_m1, &hanako.user.id).await.expect("entry").expect("linked").family_name,
        "ヤマダ"
    );
    // ... a new member's F3 finds her roster record ...
    let taro = member(&t, "taro@example.com").await;
    let state = verify_as(&only_m1, &taro, ("1234", "5679", "01"), ("サトウ", "タロウ", "1985-12-24")).await;
    assert_eq!(state.expect("F3 under m1 alone"), IdentityState::Completed);
    // ... and re-importing the same files adds nothing.
    let org_record = only_m1.store.get_org(&org).await.expect("org").expect("org");
    let (stats, _) =
        roster::import_bytes(&only_m1, &org_record, demo_roster_133033().as_bytes(), Encoding::Utf8, &mut ())
            .await
            .expect("roster re-import");
    assert_eq!((stats.inserted, stats.updated, stats.ended), (0, 0, 0), "{stats:?}");
    assert_eq!(only_m1.store.roster_count(&org).await.expect("count"), 3);
    let again = checkups::import_zip(&only_m1, "133033", "results.zip", hanako_zip(), &mut ()).await.expect("checkups");
    assert_eq!((again.inserted, again.replaced), (0, 2));
    let again =
        health_imports::import_medications(&only_m1, "133033", "m.csv", medications, &mut ()).await.expect("meds");
    assert_eq!((again.inserted, again.existing), (0, 4));
    assert_eq!(checkups::results_for_member(&only_m1, &hanako, IP).await.expect("checkups").len(), 2);
    assert_eq!(health_imports::medications_for_member(&only_m1, &hanako, IP).await.expect("meds").len(), 3);

    // The old key alone no longer finds the roster: a configuration error, not "no match".
    let kenta = member(&t, "kenta@example.com").await;
    let old = verify_as(&t.app, &kenta, ("1234", "5680", ""), ("タナカ", "イチロウ", "1970-01-15")).await;
    assert!(matches!(old, Err(ServiceError::Crypto(CryptoError::UnknownKey(ref k))) if k == "m1"), "{old:?}");

    // A second run changes nothing.
    let second = rekey_roster::rekey_rosters(&both, &mut |_: &str, _, _| {}).await.expect("rekey again");
    assert_eq!((second.seen, second.changed, second.skipped, second.failed), (orgs, 0, 0, 0), "{second:?}");
    let only_m1_again = rekey_roster::rekey_rosters(&only_m1, &mut |_: &str, _, _| {}).await.expect("rekey again");
    assert_eq!((only_m1_again.changed, only_m1_again.failed), (0, 0));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekeyed_roster_family_is_found_under_the_new_key_alone_sqlite() {
    rekeyed_family_is_found_under_the_new_key_alone(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekeyed_roster_family_is_found_under_the_new_key_alone_postgres() {
    rekeyed_family_is_found_under_the_new_key_alone(Backend::Postgres).await;
}

/// A deployment that never had `m0`: its organizations are keyed by its own MAC key.
async fn org_created_without_m0_works(backend: Backend) {
    let t = start(backend, |c| {
        c.secret_key = Some(K9.into());
        c.data_keys = Some(DATA.into());
    })
    .await;
    let org = org_id(&t.app).await;
    assert_eq!(t.app.store.roster_mac_key(&org).await.expect("key").as_deref(), Some("k9"));
    assert!(t.app.store.roster_count(&org).await.expect("count") > 0, "demo roster imported");
    let token = t.register("hanako@example.com", PASSWORD).await;
    t.verify_identity(&token).await;
    checkups::import_zip(&t.app, "133033", "results.zip", hanako_zip(), &mut ()).await.expect("checkups");
    let hanako = authenticate(&t.app, &token).await.expect("auth").expect("member");
    assert_eq!(checkups::results_for_member(&t.app, &hanako, IP).await.expect("results").len(), 2);
    let report = rekey_roster::rekey_rosters(&t.app, &mut |_: &str, _, _| {}).await.expect("rekey");
    assert_eq!((report.changed, report.skipped, report.failed), (0, 0, 0), "already under the active key");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_created_without_m0_runs_f3_sqlite() {
    org_created_without_m0_works(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_created_without_m0_runs_f3_postgres() {
    org_created_without_m0_works(Backend::Postgres).await;
}
