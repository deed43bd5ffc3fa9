//! Demo organizations for `mimoto demo-data` (run by `make demo`): both consent variants
//! (with and without own points) and more than one card pattern.

use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, NewOrganization, OrgType, Organization};

use crate::error::{ServiceError, ServiceResult};
use crate::services::new_id;
use crate::state::App;

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

/// Adds an organization (operator command `mimoto org add`), its roster family keyed by the
/// active MAC key. An insurer number that names an existing organization's insurer, in either
/// form (`133033` / `00133033`), is refused.
pub async fn add_org(app: &App, new: NewOrganization) -> ServiceResult<Organization> {
    new.validate().map_err(|e| ServiceError::InvalidRequest(format!("{e:?}")))?;
    // One insurer, one organization: files write a 6-digit number as `00` + 6 digits, so
    // 133033 and 00133033 are the same insurer (`domain::insurer::same_insurer_number`).
    if let Some(existing) = crate::services::health_match::find_org(app, new.insurer_number.as_str()).await? {
        return Err(ServiceError::InvalidRequest(format!(
            "insurer number {} is the same insurer as the organization {} ({})",
            new.insurer_number, existing.insurer_number, existing.name
        )));
    }
    let org = Organization {
        id: new_id(),
        insurer_number: new.insurer_number,
        org_type: new.org_type,
        name: new.name.trim().to_string(),
        point_name: new.point_name.map(|p| p.trim().to_string()),
        checkup_linked: new.checkup_linked,
        card_pattern: new.card_pattern,
    };
    // The organization's roster family is keyed by the MAC key active now.
    app.store.insert_org_with_mac_key(&org, Some(app.keys.active_mac_key_id()), app.now()).await?;
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
        crate::services::roster::import_bytes(
            app,
            &org,
            csv.as_bytes(),
            crate::services::roster::Encoding::Utf8,
            &mut (),
        )
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
        if crate::services::health_match::find_org(app, d.insurer_number).await?.is_some() {
            continue;
        }
        let insurer_number = InsurerNumber::parse(d.insurer_number)
            .map_err(|e| ServiceError::Internal(format!("demo insurer number: {e}")))?;
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

/// ヤマダ ハナコ (133033, 記号 1234, 番号 5678)'s health data for the demo: three years of
/// 特定健診 results delivered as the insurers do (a ZIP of HL7 CDA documents), and お薬履歴 and
/// 医療費通知 CSV files in the documented format (`docs/health-csv.md`). Imported through the same
/// services as an operator's files; importing again replaces or skips, so it can run on every
/// `make demo`. Members see it after 本人確認 and 健診・医療アクセス認証 as ヤマダ ハナコ.
pub async fn load_health(app: &App) -> ServiceResult<()> {
    let org = "133033";
    crate::services::checkups::import_zip(app, org, "demo-checkups.zip", demo_checkups_zip()?, &mut ()).await?;
    crate::services::health_imports::import_medications(
        app,
        org,
        "demo-medications.csv",
        DEMO_MEDICATIONS.as_bytes().to_vec(),
        &mut (),
    )
    .await?;
    crate::services::health_imports::import_expenses(
        app,
        org,
        "demo-expenses.csv",
        DEMO_EXPENSES.as_bytes().to_vec(),
        &mut (),
    )
    .await?;
    Ok(())
}

const DEMO_CHECKUP: &str = include_str!("../demo/checkup-template.xml");
const DEMO_MEDICATIONS: &str = include_str!("../demo/medications.csv");
const DEMO_EXPENSES: &str = include_str!("../demo/expenses.csv");

/// (JLAC10 code, name, unit, value per demo year) of the 特定健診 items; the last is not in the
/// JLAC10 table and is shown by its name.
const DEMO_ITEMS: &[(&str, &str, &str, [&str; 3])] = &[
    ("9N001000000000001", "身長", "cm", ["158.0", "158.1", "158.0"]),
    ("9N006000000000001", "体重", "kg", ["56.2", "58.9", "61.4"]),
    ("9N011000000000001", "BMI", "kg/m2", ["22.5", "23.6", "24.6"]),
    ("9N016160100000001", "腹囲", "cm", ["78.5", "82.0", "86.4"]),
    ("9A751000000000001", "収縮期血圧", "mmHg", ["118", "127", "136"]),
    ("9A761000000000001", "拡張期血圧", "mmHg", ["74", "81", "86"]),
    ("3D010000001926101", "空腹時血糖", "mg/dL", ["88", "95", "102"]),
    ("3D046000001906202", "HbA1c（NGSP）", "%", ["5.3", "5.5", "5.8"]),
    ("3F015000002327101", "中性脂肪", "mg/dL", ["92", "128", "161"]),
    ("3F070000002327101", "HDLコレステロール", "mg/dL", ["66", "58", "52"]),
    ("3F077000002327101", "LDLコレステロール", "mg/dL", ["112", "128", "141"]),
    ("3B035000002327201", "AST（GOT）", "U/L", ["18", "21", "24"]),
    ("3B045000002327201", "ALT（GPT）", "U/L", ["15", "22", "29"]),
    ("3B090000002327101", "γ-GT", "U/L", ["20", "31", "45"]),
    ("9Z999000000000001", "骨密度（参考）", "%", ["98", "97", "95"]),
];

fn demo_checkups_zip() -> ServiceResult<Vec<u8>> {
    use std::io::Write as _;
    let zip_err = |e: &dyn std::fmt::Display| ServiceError::Internal(format!("demo checkups: {e}"));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (year, examined) in ["20230607", "20240612", "20250610"].iter().enumerate() {
        let mut entries: Vec<String> = DEMO_ITEMS
            .iter()
            .map(|(code, name, unit, values)| {
                format!(
                    r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="{code}" codeSystem="1.2.392.200119.6.1005" displayName="{name}"/><value xsi:type="PQ" value="{}" unit="{unit}"/></observation></entry>"#,
                    values[year]
                )
            })
            .collect();
        // Urine: sugar − every year, protein − then ±.
        for (code, name, value) in
            [("1A020000000191111", "尿糖", "1"), ("1A010000000191111", "尿蛋白", if year == 2 { "2" } else { "1" })]
        {
            entries.push(format!(
                r#"<entry><observation classCode="OBS" moodCode="EVN"><code code="{code}" codeSystem="1.2.392.200119.6.1005" displayName="{name}"/><value xsi:type="CO" code="{value}" codeSystem="1.2.392.200119.6.2102"/></observation></entry>"#
            ));
        }
        let xml = DEMO_CHECKUP
            .replace("{document}", &format!("demo{examined}"))
            .replace("{examined}", examined)
            .replace("{entries}", &entries.join("\n"));
        writer.start_file(format!("133033_demo/DATA/h{examined}.xml"), options).map_err(|e| zip_err(&e))?;
        writer.write_all(xml.as_bytes()).map_err(|e| zip_err(&e))?;
    }
    Ok(writer.finish().map_err(|e| zip_err(&e))?.into_inner())
}
