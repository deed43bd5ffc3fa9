//! The `mimoto` binary as an operator runs it, on its own SQLite data directory (after
//! `mimoto demo-data`), and files to hand it.

use std::process::{Command, Output, Stdio};

pub struct Cli {
    pub dir: tempfile::TempDir,
}

impl Cli {
    /// A fresh data directory with the demo data loaded.
    pub fn with_demo_data() -> Cli {
        let cli = Cli { dir: tempfile::tempdir().expect("tempdir") };
        let out = cli.run(&["demo-data"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        cli
    }

    /// Runs `mimoto args…` without stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mimoto"))
            .args(args)
            .env("MIMOTO_DATA_DIR", self.dir.path())
            .env_remove("MIMOTO_DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run mimoto")
    }

    /// Writes `bytes` into the data directory; the file's path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path.display().to_string()
    }
}
