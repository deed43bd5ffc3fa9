//! `mimoto medication import` and `mimoto expenses import` as an operator runs them.

use records::testing::{csv, shift_jis, EXPENSE_HEADER, EXPENSE_ROWS, MEDICATION_HEADER, MEDICATION_ROWS};

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
