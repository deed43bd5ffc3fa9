//! `mimoto medication import` and `mimoto expenses import` as an operator runs them.

const MEDICATION_HEADER: &str =
    "保険者番号,記号,番号,枝番,生年月日,調剤年月日,薬局名,処方医療機関,処方医,医薬品名,用量,日数";
const MEDICATION_ROWS: [&str; 4] = [
    "133033,1234,5678,,1990-04-01,2025-04-01,みらい薬局 本町店,みらいクリニック,山田 一郎,ロキソプロフェンNa錠60mg,1回1錠 1日3回 毎食後,7",
    "133033,1234,5678,,1990-04-01,2025/05/20,みらい薬局 本町店,みらいクリニック,,アムロジピン錠5mg,\"1回1錠, 1日1回 朝食後\",30",
    "00133033,12-34,5678,,19900401,20250301,さくら調剤薬局,さくら内科,,ムコダイン錠500mg,1回1錠 1日3回,5",
    "133033,1234,5679,01,1985-12-24,2025-04-02,みらい薬局 本町店,みらい整形外科,,モーラステープ20mg,1日1回,14",
];
const EXPENSE_HEADER: &str =
    "保険者番号,記号,番号,枝番,生年月日,診療年月,受診者,医療機関等名称,区分,日数,医療費の総額,窓口負担額";
const EXPENSE_ROWS: [&str; 3] = [
    "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらいクリニック,外来,2,\"12,340\",3700",
    "133033,1234,5678,,1990-04-01,2025-05,ヤマダ ハナコ,みらい総合病院,入院,6,\"456,780\",\"57,600\"",
    "133033,1234,5678,,1990-04-01,2025-04,ヤマダ ハナコ,みらい薬局 本町店,調剤,1,4560,1370",
];

fn csv(header: &str, rows: &[&str]) -> String {
    let mut lines = vec![header];
    lines.extend_from_slice(rows);
    lines.join("\r\n") + "\r\n"
}

fn shift_jis(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable, "the test file is representable in Shift_JIS");
    bytes.into_owned()
}

/// `mimoto medication import` and `mimoto expenses import` on a real SQLite file: counts on
/// success; on failure every line with its reason, a non-zero exit and nothing imported.
#[test]
fn the_cli_imports_and_reports_per_line_errors() {
    let cli = crate::common::Cli::with_demo_data();

    let stranger = "133033,1234,9999,,1990-04-01,2025-04-01,みらい薬局,みらいクリニック,,ムコダイン錠500mg,1回1錠,5";
    let bad = cli.write("bad.csv", csv(MEDICATION_HEADER, &[MEDICATION_ROWS[0], stranger]).as_bytes());
    let out = cli.run(&["medication", "import", "--org", "133033", &bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3: no roster record matches"), "{stderr}");
    assert!(stderr.contains("1 problem(s)") && stderr.contains("nothing was imported"), "{stderr}");
    assert!(!stderr.contains("9999") && !stderr.contains("ムコダイン"), "no personal data: {stderr}");

    let ok = cli.write("medication.csv", &shift_jis(&csv(MEDICATION_HEADER, &MEDICATION_ROWS)));
    let out = cli.run(&["medication", "import", "--org", "133033", "--encoding", "shift_jis", &ok]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 4 new: the refused file left nothing behind (its good row included).
    assert!(
        stdout.contains("imported 4 お薬履歴 row(s) for 133033") && stdout.contains("4 new, 0 already stored"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).lines().any(|l| l == "written 4/4"), "progress lines off a terminal");
    let out = cli.run(&["medication", "import", "--org", "133033", &ok]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 new, 4 already stored"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli.run(&["medication", "import", "--org", "133033", "--encoding", "utf-8", &ok]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let expenses = cli.write("expenses.csv", csv(EXPENSE_HEADER, &EXPENSE_ROWS).as_bytes());
    let out = cli.run(&["expenses", "import", "--org", "133033", &expenses]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported 3 医療費通知 row(s) for 133033"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = cli.run(&["expenses", "import", "--org", "33120015", &expenses]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organization with insurer number 33120015"));
}
