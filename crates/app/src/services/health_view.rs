//! What the health pages and the health API both show of the sealed records, independent of
//! HTML or JSON: item names and values in the member's language, the MHLW reference values in
//! words, judgements, and the per-year totals of the 医療費通知.

use std::collections::BTreeMap;

use records::checkup::{Item, Value};
use records::expenses::ExpenseRow;
use records::jlac10::{self, Direction, Judgement, Reference};

use crate::i18n::Locale;

/// Text for numbers: integers without decimals, else as few decimals as needed (≤ 2).
pub fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

pub fn item_name(item: &Item, locale: Locale) -> String {
    match (locale, jlac10::lookup(&item.code)) {
        (Locale::En, Some(known)) => known.name_en.to_string(),
        _ => item.name.clone(),
    }
}

pub fn value_text(value: &Value, locale: Locale) -> String {
    match value {
        Value::Quantity { value, unit, .. } => match unit {
            Some(u) if !u.is_empty() => format!("{value} {u}"),
            _ => value.clone(),
        },
        Value::Coded { code, display, .. } => jlac10::qualitative_display(code)
            .map(str::to_string)
            .or_else(|| display.clone())
            .unwrap_or_else(|| code.clone()),
        Value::Text { text } => text.clone(),
        Value::Missing { .. } => match locale {
            Locale::Ja => "未実施".into(),
            Locale::En => "not done".into(),
        },
    }
}

pub fn reference_text(reference: Option<&Reference>, locale: Locale) -> String {
    let Some(reference) = reference else { return String::new() };
    match (*reference, locale) {
        (Reference::Numeric { direction, guidance, referral }, _) => {
            let (op_ja, op_en) = match direction {
                Direction::High => ("以上", "≥"),
                Direction::Low => ("未満", "<"),
            };
            match locale {
                Locale::Ja => {
                    let mut s = format!("保健指導判定値 {}{op_ja}", num(guidance));
                    if let Some(r) = referral {
                        s.push_str(&format!("、受診勧奨判定値 {}{op_ja}", num(r)));
                    }
                    s
                }
                Locale::En => {
                    let mut s = format!("guidance {op_en} {}", num(guidance));
                    if let Some(r) = referral {
                        s.push_str(&format!(", referral {op_en} {}", num(r)));
                    }
                    s
                }
            }
        }
        (Reference::Ordinal { guidance_from, referral_from }, _) => {
            let sym = |r: u8| jlac10::qualitative_display(&r.to_string()).unwrap_or("?").to_string();
            match locale {
                Locale::Ja => {
                    let mut s = format!("保健指導判定値 {}以上", sym(guidance_from));
                    if let Some(r) = referral_from {
                        s.push_str(&format!("、受診勧奨判定値 {}以上", sym(r)));
                    }
                    s
                }
                Locale::En => {
                    let mut s = format!("guidance from {}", sym(guidance_from));
                    if let Some(r) = referral_from {
                        s.push_str(&format!(", referral from {}", sym(r)));
                    }
                    s
                }
            }
        }
    }
}

/// The API's name of a judgement.
pub fn judgement_str(j: Judgement) -> &'static str {
    match j {
        Judgement::Normal => "normal",
        Judgement::Guidance => "guidance",
        Judgement::Referral => "referral",
    }
}

/// (year, total cost, paid) per calendar year, newest year first (the pages and the API).
pub fn year_totals(rows: &[ExpenseRow]) -> Vec<(i32, u64, u64)> {
    let mut totals: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    for r in rows {
        let t = totals.entry(r.month.year()).or_default();
        t.0 = t.0.saturating_add(r.total_cost);
        t.1 = t.1.saturating_add(r.paid);
    }
    totals.into_iter().rev().map(|(y, (t, p))| (y, t, p)).collect()
}
