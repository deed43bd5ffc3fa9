//! `mimoto checkup import` as an operator runs it, on 特定健診 files built for the demo roster.

use records::testing::{hanako_zip, items, zip, Doc};

/// `mimoto checkup import` on a real SQLite file: counts on success; on failure every entry
/// with its reason, a non-zero exit and nothing imported.
#[test]
fn the_cli_imports_and_reports_per_entry_errors() {
    let cli = crate::common::Cli::with_demo_data();

    let mut stranger = Doc::hanako("20240610", items("5.9"));
    stranger.number = "９９９９";
    let good = Doc::hanako("20240610", items("5.7")).xml();
    let bad = cli.write(
        "bad.zip",
        &zip(&[("DATA/good.xml", good.as_bytes()), ("DATA/stranger.xml", stranger.xml().as_bytes())]),
    );
    let out = cli.run(&["checkup", "import", "--org", "133033", &bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATA/stranger.xml: no roster record matches"), "{stderr}");
    assert!(stderr.contains("1 problem(s)") && stderr.contains("nothing was imported"), "{stderr}");
    assert!(!stderr.contains("9999") && !stderr.contains("９９９９"), "no personal data: {stderr}");

    let ok = cli.write("results.zip", &hanako_zip());
    let out = cli.run(&["checkup", "import", "--org", "133033", &ok]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 2 new: the refused file left nothing behind (its good entry included).
    assert!(
        stdout.contains("imported 2 checkup result(s) for 133033") && stdout.contains("2 new, 0 replaced"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).lines().any(|l| l == "written 2/2"), "progress lines off a terminal");
    let out = cli.run(&["checkup", "import", "--org", "133033", &ok]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 new, 2 replaced"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = cli.run(&["checkup", "import", "--org", "33120015", &ok]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organization with insurer number 33120015"));
}
