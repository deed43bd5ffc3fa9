//! `mimoto operator …` as an administrator runs it: the real binary on a real SQLite file.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use app::services::operators;
use store::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_mimoto");
const OP_PASSWORD: &str = "Kanri-Sakura-Mochi-2026!";

fn mimoto(dir: &std::path::Path, args: &[&str], password_env: Option<&str>, stdin: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("MIMOTO_DATA_DIR", dir)
        .env_remove("MIMOTO_DATABASE_URL")
        .env_remove("MIMOTO_CONFIG")
        .env_remove("MIMOTO_OPERATOR_PASSWORD");
    if let Some(p) = password_env {
        c.env("MIMOTO_OPERATOR_PASSWORD", p);
    }
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("run mimoto");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_create_prints_the_totp_secret_once_and_the_operator_can_log_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let create = |email: &'static str, role: &'static str| {
        ["operator", "create", "--email", email, "--name", "運用 担当", "--role", role]
    };

    // The password comes from the environment…
    let out = mimoto(dir.path(), &create("admin@mimoto.example.jp", "admin"), Some(OP_PASSWORD), None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let secret =
        stdout.lines().find_map(|l| l.strip_prefix("TOTP secret (base32): ")).expect("secret line").to_string();
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)), "{secret}");
    let uri = stdout.lines().find_map(|l| l.strip_prefix("otpauth URI: ")).expect("uri line").to_string();
    assert_eq!(uri, format!("otpauth://totp/Mimoto:admin%40mimoto.example.jp?secret={secret}&issuer=Mimoto"));
    assert!(!stdout.contains(OP_PASSWORD) && !text(&out.stderr).contains(OP_PASSWORD), "the password is never echoed");

    // …or from stdin when it is not a terminal; never from the command line.
    let out = mimoto(
        dir.path(),
        &create("reviewer@mimoto.example.jp", "reviewer"),
        None,
        Some(&format!("{}\n", OP_PASSWORD)),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut args = create("third@mimoto.example.jp", "reviewer").to_vec();
    args.extend(["--password", OP_PASSWORD]);
    let out = mimoto(dir.path(), &args, None, None);
    assert_eq!(out.status.code(), Some(2), "no --password option: {}", text(&out.stderr));
    let out = mimoto(dir.path(), &create("third@mimoto.example.jp", "reviewer"), None, None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("MIMOTO_OPERATOR_PASSWORD"), "{}", text(&out.stderr));
    let out = mimoto(dir.path(), &create("third@mimoto.example.jp", "reviewer"), Some("Short-1!"), None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("12 to 128 characters"), "{}", text(&out.stderr));
    let out = mimoto(dir.path(), &create("admin@mimoto.example.jp", "reviewer"), Some(OP_PASSWORD), None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("exists already"), "{}", text(&out.stderr));
    let out = mimoto(dir.path(), &create("third@mimoto.example.jp", "root"), Some(OP_PASSWORD), None);
    assert_eq!(out.status.code(), Some(2), "roles are reviewer and admin");

    let out = mimoto(dir.path(), &["operator", "list"], None, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!((rows[0][1], rows[0][2], rows[0][3]), ("admin@mimoto.example.jp", "運用 担当", "admin"));
    assert_eq!((rows[1][1], rows[1][3]), ("reviewer@mimoto.example.jp", "reviewer"));
    assert!(!list.contains(&secret) && !list.contains("argon2"), "{list}");

    // At rest: an argon2id hash, the TOTP secret sealed (not its bytes), email sealed.
    let url = format!("sqlite://{}", dir.path().join("mimoto.db").display());
    let db = store::sqlite::SqliteStore::connect(&url).await.expect("open db");
    let stored = db.list_operators().await.expect("list");
    let raw = totp_rs::Secret::Encoded(secret.clone()).to_bytes().expect("base32");
    assert!(stored[0].password_hash.starts_with("$argon2id$"));
    assert!(!stored[0].totp_secret_enc.windows(raw.len()).any(|w| w == raw.as_slice()), "the TOTP secret is sealed");
    assert!(!stored[0].email_enc.windows(5).any(|w| w == b"admin"), "the email is sealed");
    drop(db);

    // The printed secret works: an authenticator app's code logs in (once).
    let config = app::config::Config { data_dir: dir.path().to_path_buf(), ..app::config::Config::default() };
    let app = app::App::open_default(config).await.expect("app");
    let totp = totp_rs::TOTP::from_url(&uri).expect("uri");
    let now = domain::clock::Clock::now(&domain::clock::SystemClock).unix_timestamp() as u64;
    let session = operators::login(&app, "admin@mimoto.example.jp", OP_PASSWORD, &totp.generate(now), "127.0.0.1")
        .await
        .expect("login");
    assert_eq!(session.operator.role, operators::Role::Admin);
    let replay = operators::login(&app, "admin@mimoto.example.jp", OP_PASSWORD, &totp.generate(now), "127.0.0.1").await;
    assert!(matches!(replay, Err(app::error::ServiceError::ConsoleLoginFailed)), "replayed code");
}
