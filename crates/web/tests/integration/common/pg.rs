//! A PostgreSQL server of the test's own — Debian's binaries (`/usr/lib/postgresql/<v>/bin`),
//! a cluster made by `initdb` in a temporary directory, listening on a free loopback port (and
//! a Unix socket in that directory) — that the test can stop and start again without touching
//! the machine's shared server. Stopped (`-m immediate`) and deleted when dropped.
//!
//! PostgreSQL refuses to run as root: as root (CI) the cluster belongs to the `postgres` user
//! (made by the Debian package) and every `initdb` / `pg_ctl` runs through `runuser -u postgres`,
//! which needs no terminal or stdin.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct PrivatePg {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_postgres: bool,
}

/// The newest installed server's `bin` directory, if any.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl PrivatePg {
    /// Makes and starts a cluster; `None` (the caller skips, saying why) when the server
    /// binaries are not installed (`scripts/ensure-system-deps.sh` installs them).
    pub fn start() -> Option<PrivatePg> {
        let Some(bin) = server_bin() else {
            // `make test` installs them (scripts/ensure-system-deps.sh): in CI a missing server
            // is a broken set-up, not a reason to pass without testing.
            assert!(
                std::env::var_os("CI").is_none(),
                "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin in CI"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian package \
                 `postgresql`; `make deps` installs it)"
            );
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("mimoto-pg-").tempdir().expect("tempdir");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:", &dir.path().display().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster directory to the postgres user");
        }
        let pg = PrivatePg { port: free_port(), bin, dir, as_postgres };
        let data = pg.data().display().to_string();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
        pg.pg_ctl_start();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let data = self.data().display().to_string();
        let log = self.log_path().display().to_string();
        self.run("pg_ctl", &["start", "-w", "-t", "60", "-D", &data, "-l", &log, "-o", &options]);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the server as an administrator's restart does (`-m fast`: sessions are ended,
    /// transactions in flight rolled back), keeps it down for `down`, starts it again.
    pub fn restart(&self, down: Duration) {
        let data = self.data().display().to_string();
        self.run("pg_ctl", &["stop", "-w", "-m", "fast", "-D", &data]);
        std::thread::sleep(down);
        self.pg_ctl_start();
    }

    /// Runs `sql` with psql; its unaligned output, trimmed.
    pub fn psql(&self, sql: &str) -> String {
        psql(&self.url(), None, sql)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.command("pg_ctl").args(["stop", "-w", "-m", "immediate", "-D", &data]).output();
    }
}

/// Runs `sql` with psql on `url` (in `schema`, if given); its unaligned output, trimmed.
pub fn psql(url: &str, schema: Option<&str>, sql: &str) -> String {
    let mut c = Command::new("psql");
    c.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]).stdin(Stdio::null());
    if let Some(schema) = schema {
        c.env("PGOPTIONS", format!("-c search_path={schema}"));
    }
    let out = c.output().expect("run psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
