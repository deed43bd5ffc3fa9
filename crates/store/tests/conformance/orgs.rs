//! Organizations.

use super::*;

async fn organizations(s: Arc<dyn Store>) {
    let now = t0();
    s.insert_org(&org("o2", "06132013", false), now).await.expect("insert");
    s.insert_org(&org("o1", "133033", true), now).await.expect("insert");
    let dup = s.insert_org(&org("o3", "133033", false), now).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "same insurer number twice: {dup:?}");
    // The same insurer in its 8-digit form (`00` + 6 digits), e.g. two `org add` racing.
    let other_form = s.insert_org(&org("o4", "00133033", false), now).await;
    assert!(matches!(other_form, Err(StoreError::Duplicate)), "133033 and 00133033: {other_form:?}");
    s.insert_org(&org("o5", "01130012", false), now).await.expect("an 8-digit number not starting with 00");
    let list = s.list_orgs().await.expect("list");
    assert_eq!(list.iter().map(|o| o.insurer_number.as_str()).collect::<Vec<_>>(), ["01130012", "06132013", "133033"]);
    let found = s.find_org_by_insurer_number("133033").await.expect("find").expect("present");
    assert_eq!(found, org("o1", "133033", true));
    assert!(s.find_org_by_insurer_number("131011").await.expect("find").is_none());
    assert_eq!(s.get_org("o2").await.expect("get"), Some(org("o2", "06132013", false)));
}

conformance!(organizations,);
