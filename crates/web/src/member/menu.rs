//! The signed-in member's menus: the main menu and the organization's menu (本人確認,
//! 健診・医療アクセス認証 and the health items, as far as the member has got).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use app::services::{auth, identity};
use app::AppState;

use super::{ok, see_other, Chrome, Cx, OrPage, PageError};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/menu", get(menu)).route("/menu/org", get(org_menu))
}

#[derive(Template)]
#[template(path = "menu.html")]
struct MenuPage {
    c: Chrome,
    email: String,
    org_name: String,
    point_name: Option<String>,
    verified: bool,
}

async fn menu(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let profile = auth::profile(&app, member).await.or_page(&ctx)?;
    let verified = identity::verified_at(&app, &member.user.id).await.or_page(&ctx)?.is_some();
    Ok(ok(&MenuPage {
        c: Chrome::from(&ctx),
        email: profile.email,
        org_name: profile.org.name,
        point_name: profile.org.point_name,
        verified,
    }))
}

#[derive(Template)]
#[template(path = "org_menu.html")]
struct OrgMenuPage {
    c: Chrome,
    org_name: String,
    verified: bool,
    /// 「健診・医療アクセス認証」 and its status key: only for organizations with checkup
    /// results linked, and only after 本人確認.
    ekyc_status: Option<String>,
    /// 「健診結果」「お薬履歴」「医療費通知」: after 健診・医療アクセス認証 is done.
    health: bool,
    /// 「パスキーの設定」: with health, where passkeys are available.
    passkeys: bool,
}

async fn org_menu(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let profile = auth::profile(&app, member).await.or_page(&ctx)?;
    let verified = identity::verified_at(&app, &member.user.id).await.or_page(&ctx)?.is_some();
    let (ekyc_status, health) = if verified && profile.org.checkup_linked {
        let current = app::services::ekyc::current(&app, member).await.or_page(&ctx)?;
        // The health items: F4 done (the secret question is asked on the way in).
        let health = current.as_ref().is_some_and(|l| l.data.app.is_authenticated());
        (Some(super::ekyc::menu_status(&ctx, current.as_ref())), health)
    } else {
        (None, false)
    };
    let passkeys = health && app.webauthn().is_some();
    Ok(ok(&OrgMenuPage { c: Chrome::from(&ctx), org_name: profile.org.name, verified, ekyc_status, health, passkeys }))
}
