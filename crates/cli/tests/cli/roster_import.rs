//! `mimoto roster import` as an operator runs it: the real binary on a real SQLite file.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use store::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_mimoto");
const HEADER: &str =
    "insurer_number,symbol,number,branch,family_name_kana,given_name_kana,birth_date,eligible_from,eligible_until";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env { dir: tempfile::tempdir().expect("tempdir") };
        let out = env
            .cmd(&["org", "add", "--insurer-number", "133033", "--name", "みらい健康保険組合", "--card-pattern", "4"])
            .output()
            .expect("org add");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env("MIMOTO_DATA_DIR", self.dir.path()).env_remove("MIMOTO_DATABASE_URL").stdin(Stdio::null());
        c
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes)).expect("write file");
        path.display().to_string()
    }

    fn import(&self, file: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["roster", "import", "--org", "133033"];
        args.extend_from_slice(extra);
        args.push(file);
        self.cmd(&args).output().expect("import")
    }

    async fn count(&self) -> i64 {
        let url = format!("sqlite://{}", self.dir.path().join("mimoto.db").display());
        let s = store::sqlite::SqliteStore::connect(&url).await.expect("open db");
        let org = s.find_org_by_insurer_number("133033").await.expect("org").expect("present");
        s.roster_count(&org.id).await.expect("count")
    }
}

fn rows(n: usize) -> String {
    let mut csv = format!("{HEADER}\n");
    for i in 0..n {
        csv.push_str(&format!("133033,{},{},,ヤマダ,タロウ,1980-01-01,2020-04-01,\n", 1000 + i % 7, 100_000 + i));
    }
    csv
}

#[tokio::test]
async fn shift_jis_with_half_width_kana_imports_and_kanji_is_reported() {
    let env = Env::new();
    // Columns in another order; half-width kana names; a kanji name on line 4.
    let text = "family_name_kana,given_name_kana,insurer_number,symbol,number,branch,birth_date,eligible_from,eligible_until\r\n\
                ﾔﾏﾀﾞ,ﾊﾅｺ,133033,1234,5678,,1990/04/01,2020/04/01,\r\n\
                サトウ,タロウ,133033,1234,5679,01,1985-12-24,2020-04-01,2030-03-31\r\n\
                山田,花子,133033,1234,5690,,1991-01-01,2020-04-01,\r\n";
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&sjis).is_err(), "the file really is Shift_JIS");
    let bad = env.write("bad.csv", &sjis);
    let out = env.import(&bad, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 4: family_name_kana"), "{stderr}");
    assert!(!stderr.contains("山田"), "no personal data in the report: {stderr}");
    assert_eq!(env.count().await, 0, "nothing imported from a file with errors");

    let good_text: String = text.lines().take(3).map(|l| format!("{l}\r\n")).collect();
    let (good, _, _) = encoding_rs::SHIFT_JIS.encode(&good_text);
    let good = env.write("good.csv", &good);
    let out = env.import(&good, &["--encoding", "shift_jis"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 rows"));
    assert_eq!(env.count().await, 2);
}

#[tokio::test]
async fn every_bad_row_is_reported_with_its_line_number() {
    let env = Env::new();
    let csv = format!(
        "{HEADER}\n\
         133033,1234,5678,,ヤマダ,ハナコ,1990-04-01,2020-04-01,\n\
         06132013,1234,5679,,ヤマダ,ハナコ,1990-04-01,2020-04-01,\n\
         133033,1234,5680,,Yamada,ハナコ,1990-04-01,2020-04-01,\n\
         133033,1234,5681,,ヤマダ,ハナコ,1990-02-30,2020-04-01,\n\
         133033,1234,5682,,ヤマダ,ハナコ,1990-04-01,2020-04-01,2019-03-31\n\
         133033,1234,5683,1,ヤマダ,ハナコ,1990-04-01,2020-04-01,\n\
         133033,1234,5678,,ヤマダ,ハナコ,1990-04-01,2020-04-01,\n\
         133033,1234\n"
    );
    let file = env.write("rows.csv", csv.as_bytes());
    let out = env.import(&file, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in 3..=9 {
        assert!(stderr.contains(&format!("line {line}:")), "line {line} not reported:\n{stderr}");
    }
    assert!(!stderr.contains("line 2:"), "{stderr}");
    assert!(stderr.contains("duplicate of line 2"), "{stderr}");
    assert_eq!(env.count().await, 0);
}

#[tokio::test]
async fn a_killed_import_leaves_the_previous_roster() {
    let env = Env::new();
    let small = env.write("small.csv", rows(3).as_bytes());
    assert!(env.import(&small, &[]).status.success());
    assert_eq!(env.count().await, 3);

    let big = env.write("big.csv", rows(60_000).as_bytes());
    let mut child = env
        .cmd(&["roster", "import", "--org", "133033", &big])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut saw_progress = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        // "written N/T": kill once some rows, but not all, were written.
        let done = line
            .strip_prefix("written ")
            .and_then(|r| r.split_once('/'))
            .and_then(|(d, t)| Some((d.parse::<u64>().ok()?, t.parse::<u64>().ok()?)));
        if let Some((done, total)) = done {
            if done > 0 && done < total {
                saw_progress = true;
                break;
            }
        }
    }
    assert!(saw_progress, "the import never reported progress");
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert!(!status.success());
    assert_eq!(env.count().await, 3, "the interrupted import left nothing behind");

    // And a complete run afterwards works (the database is not left locked or broken).
    let out = env.import(&big, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.count().await, 60_000, "the first 3 rows are the same records");
}

#[tokio::test]
async fn re_imports_write_only_what_changed_and_end_who_left() {
    let env = Env::new();
    let line =
        |number: u32, until: &str| format!("133033,1234,{number},,ヤマダ,タロウ,1980-01-01,2020-04-01,{until}\n");
    let first: String = format!("{HEADER}\n{}{}{}", line(1, ""), line(2, ""), line(3, ""));
    let file = env.write("first.csv", first.as_bytes());
    let out = env.import(&file, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 new, 0 changed, 0 unchanged; eligibility ended for 0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = env.import(&file, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 new, 0 changed, 3 unchanged; eligibility ended for 0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Member 2's eligibility gets an end date, member 3 left, member 4 joined.
    let second: String = format!("{HEADER}\n{}{}{}", line(1, ""), line(2, "2027-03-31"), line(4, ""));
    let out = env.import(&env.write("second.csv", second.as_bytes()), &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 new, 1 changed, 1 unchanged; eligibility ended for 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(env.count().await, 4, "member 3's record stays");

    // The same file again ends nobody twice; member 3 coming back is a change, not a new record.
    let out = env.import(&env.write("second.csv", second.as_bytes()), &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 new, 0 changed, 3 unchanged; eligibility ended for 0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = env.import(&file, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 new, 2 changed, 1 unchanged; eligibility ended for 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(env.count().await, 4);
}
