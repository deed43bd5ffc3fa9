//! Demo organizations for `mimoto demo-data` (run by `make demo`): both consent variants
//! (with and without own points) and more than one card pattern.

use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, NewOrganization, OrgType, Organization};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::new_id;

pub struct DemoOrg {
    pub insurer_number: &'static str,
    pub org_type: OrgType,
    pub name: &'static str,
    pub point_name: Option<&'static str>,
    pub checkup_linked: bool,
    pub card_pattern: CardPattern,
}

pub const DEMO_ORGS: &[DemoOrg] = &[
    DemoOrg {
        insurer_number: "133033",
        org_type: OrgType::HealthInsurance,
        name: "みらい健康保険組合",
        point_name: Some("みらいポイント"),
        checkup_linked: true,
        card_pattern: CardPattern::SymbolAndNumber,
    },
    DemoOrg {
        insurer_number: "06132013",
        org_type: OrgType::HealthInsurance,
        name: "さくら商事健康保険組合",
        point_name: None,
        checkup_linked: false,
        card_pattern: CardPattern::SymbolWithHyphen,
    },
    DemoOrg {
        insurer_number: "01130012",
        org_type: OrgType::HealthInsurance,
        name: "あおば共済組合",
        point_name: Some("あおばポイント"),
        checkup_linked: true,
        card_pattern: CardPattern::HyphenatedNumber,
    },
    DemoOrg {
        insurer_number: "131011",
        org_type: OrgType::Municipality,
        name: "ひかり市国民健康保険",
        point_name: None,
        checkup_linked: true,
        card_pattern: CardPattern::NumberOnly,
    },
];

/// Adds an organization (operator command `mimoto org add`).
pub async fn add_org(app: &App, new: NewOrganization) -> ServiceResult<Organization> {
    new.validate().map_err(|e| ServiceError::InvalidRequest(format!("{e:?}")))?;
    let org = Organization {
        id: new_id(),
        insurer_number: new.insurer_number,
        org_type: new.org_type,
        name: new.name.trim().to_string(),
        point_name: new.point_name.map(|p| p.trim().to_string()),
        checkup_linked: new.checkup_linked,
        card_pattern: new.card_pattern,
    };
    app.store.insert_org(&org, app.now()).await?;
    Ok(org)
}

/// The demo roster (UTF-8 CSV, all four demo organizations). See README for who to type.
pub const DEMO_ROSTER: &str = include_str!("../demo/roster.csv");

/// Imports each demo organization's part of the demo roster, if it has no roster yet.
async fn load_rosters(app: &App) -> ServiceResult<()> {
    let mut lines = DEMO_ROSTER.lines();
    let header = lines.next().unwrap_or_default();
    for d in DEMO_ORGS {
        let Some(org) = app.store.find_org_by_insurer_number(d.insurer_number).await? else { continue };
        if app.store.roster_count(&org.id).await? > 0 {
            continue;
        }
        let prefix = format!("{},", d.insurer_number);
        let rows: Vec<&str> = lines.clone().filter(|l| l.starts_with(&prefix)).collect();
        if rows.is_empty() {
            continue;
        }
        let csv = format!("{header}\n{}\n", rows.join("\n"));
        crate::services::roster::import_bytes(app, &org, csv.as_bytes(), crate::services::roster::Encoding::Utf8, &mut ())
            .await
            .map_err(|e| ServiceError::Internal(format!("demo roster for {}: {e}", d.insurer_number)))?;
    }
    Ok(())
}

/// Inserts the demo organizations that are not there yet (and their demo rosters); returns
/// how many organizations were added.
pub async fn load(app: &App) -> ServiceResult<usize> {
    let mut added = 0;
    for d in DEMO_ORGS {
        if app.store.find_org_by_insurer_number(d.insurer_number).await?.is_some() {
            continue;
        }
        let insurer_number = InsurerNumber::parse(d.insurer_number).map_err(|e| ServiceError::Internal(format!("demo insurer number: {e}")))?;
        add_org(
            app,
            NewOrganization {
                insurer_number,
                org_type: d.org_type,
                name: d.name.to_string(),
                point_name: d.point_name.map(str::to_string),
                checkup_linked: d.checkup_linked,
                card_pattern: d.card_pattern,
            },
        )
        .await?;
        added += 1;
    }
    load_rosters(app).await?;
    Ok(added)
}
