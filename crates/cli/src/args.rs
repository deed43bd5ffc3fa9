//! The `mimoto` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, NewOrganization, OrgType};

#[derive(Parser, Debug)]
#[command(name = "mimoto", version, about = "Mimoto: member identity platform for health insurers")]
pub struct Cli {
    /// TOML configuration file (default: $MIMOTO_CONFIG, or ./mimoto.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (pages, API, mail worker).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage organizations (団体).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Load the demo organizations and their demo rosters (idempotent).
    DemoData,
    /// Insurer rosters (名簿).
    #[command(subcommand)]
    Roster(RosterCommand),
    /// 特定健診 results (HL7 CDA files in the insurers' ZIP deliveries).
    #[command(subcommand)]
    Checkup(CheckupCommand),
    /// お薬履歴 (medication history) CSV files (format: docs/health-csv.md).
    #[command(subcommand)]
    Medication(HealthCsvCommand),
    /// 医療費通知 (medical expense notice) CSV files (format: docs/health-csv.md).
    #[command(subcommand)]
    Expenses(HealthCsvCommand),
    /// The face engine: compare, inspect, evaluate.
    #[command(subcommand)]
    Face(crate::face::FaceCommand),
    /// Operators of the review console (/console).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The data keys (MIMOTO_DATA_KEYS) and MAC keys (MIMOTO_SECRET_KEY).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Re-seal every sealed value and eKYC image under the active data key
    /// (MIMOTO_ACTIVE_DATA_KEY) and re-key every stored blind index under the active MAC key
    /// (MIMOTO_ACTIVE_SECRET_KEY), in batches, with progress. Idempotent and resumable: run it
    /// again after an interruption. Exits 1 when some value could not be re-keyed or changed
    /// meanwhile (run it again).
    Rotate {
        /// Rows read and re-sealed per batch.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit log's hash chain: every row against its hash and its link to the row
    /// before. Prints the head (last seq and hash) to keep elsewhere; exits 1 when the chain
    /// is broken, naming the first row that does not fit.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Create an operator. The password is read from $MIMOTO_OPERATOR_PASSWORD or, when stdin
    /// is not a terminal, from its first line (never from the command line). Prints the TOTP
    /// secret and its otpauth:// URI once, for the operator's authenticator app.
    Create(OperatorCreate),
    /// List operators.
    List,
}

#[derive(Args, Debug)]
pub struct OperatorCreate {
    /// The operator's email address (their login).
    #[arg(long)]
    pub email: String,
    /// Display name, shown in the console and the audit log.
    #[arg(long)]
    pub name: String,
    /// reviewer (reviews eKYC applications) or admin (also reads the audit log).
    #[arg(long, value_parser = parse_role)]
    pub role: app::services::operators::Role,
}

fn parse_role(s: &str) -> Result<app::services::operators::Role, String> {
    app::services::operators::Role::parse(s).ok_or_else(|| "expected reviewer or admin".to_string())
}

/// Where `mimoto operator create` takes the password from.
pub const OPERATOR_PASSWORD_ENV: &str = "MIMOTO_OPERATOR_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum PasswordInputError {
    #[error("set MIMOTO_OPERATOR_PASSWORD or pipe the password on stdin (it is never taken from the command line)")]
    Missing,
    #[error("reading the password from stdin: {0}")]
    Io(#[from] std::io::Error),
}

/// The new operator's password: `$MIMOTO_OPERATOR_PASSWORD`, else the first line of stdin
/// when stdin is not a terminal (e.g. `printf %s "$PW" | mimoto operator create …`).
pub fn operator_password() -> Result<String, PasswordInputError> {
    use std::io::{BufRead, IsTerminal};
    if let Ok(p) = std::env::var(OPERATOR_PASSWORD_ENV) {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(PasswordInputError::Missing);
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(PasswordInputError::Missing);
    }
    Ok(password)
}

#[derive(Subcommand, Debug)]
pub enum RosterCommand {
    /// Import an organization's roster CSV (all or nothing; see README for the format).
    Import(RosterImportArgs),
}

#[derive(Args, Debug)]
pub struct RosterImportArgs {
    /// The organization's insurer number.
    #[arg(long, value_parser = parse_insurer_number)]
    pub org: InsurerNumber,
    /// auto (UTF-8 if valid, else Shift_JIS), utf-8, or shift_jis (CP932).
    #[arg(long, default_value = "auto")]
    pub encoding: String,
    /// The CSV file.
    pub file: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum CheckupCommand {
    /// Import a ZIP of 特定健診 CDA documents (`DATA/*.xml`), matched to the roster; all or
    /// nothing, every problem listed by entry.
    Import(CheckupImportArgs),
}

#[derive(Args, Debug)]
pub struct CheckupImportArgs {
    /// The organization's insurer number.
    #[arg(long, value_parser = parse_insurer_number)]
    pub org: InsurerNumber,
    /// The ZIP archive.
    pub file: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum HealthCsvCommand {
    /// Import a CSV file (docs/health-csv.md), matched to the roster; all or nothing, every
    /// problem listed by line.
    Import(HealthImportArgs),
}

#[derive(Args, Debug)]
pub struct HealthImportArgs {
    /// The organization's insurer number.
    #[arg(long, value_parser = parse_insurer_number)]
    pub org: InsurerNumber,
    /// auto (UTF-8 if valid, else Shift_JIS), utf-8, or shift_jis (CP932).
    #[arg(long, default_value = "auto", value_parser = parse_encoding)]
    pub encoding: records::health_csv::Encoding,
    /// The CSV file.
    pub file: PathBuf,
}

fn parse_encoding(s: &str) -> Result<records::health_csv::Encoding, String> {
    records::health_csv::Encoding::parse(s).ok_or_else(|| "expected auto, utf-8 or shift_jis".to_string())
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Add an organization.
    Add(OrgAdd),
    /// List organizations.
    List,
}

#[derive(Args, Debug)]
pub struct OrgAdd {
    /// 保険者番号 (6 or 8 digits with a valid check digit).
    #[arg(long, value_parser = parse_insurer_number)]
    pub insurer_number: InsurerNumber,
    /// Display name (団体・組合名).
    #[arg(long)]
    pub name: String,
    /// health_insurance or municipality.
    #[arg(long = "type", default_value = "health_insurance", value_parser = parse_org_type)]
    pub org_type: OrgType,
    /// The organization's own point name (独自ポイント); omit for the platform coin.
    #[arg(long)]
    pub point_name: Option<String>,
    /// Checkup results are linked (健診結果連携).
    #[arg(long)]
    pub checkup_linked: bool,
    /// Card symbol/number input pattern, 1–4 (パターン①–④).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub card_pattern: u8,
}

fn parse_insurer_number(s: &str) -> Result<InsurerNumber, String> {
    InsurerNumber::parse(s).map_err(|e| format!("invalid insurer number: {e:?}"))
}

fn parse_org_type(s: &str) -> Result<OrgType, String> {
    OrgType::parse(s).ok_or_else(|| "expected health_insurance or municipality".to_string())
}

impl OrgAdd {
    pub fn into_new(self) -> Result<NewOrganization, String> {
        Ok(NewOrganization {
            insurer_number: self.insurer_number,
            org_type: self.org_type,
            name: self.name,
            point_name: self.point_name,
            checkup_linked: self.checkup_linked,
            card_pattern: CardPattern::from_number(self.card_pattern).ok_or("card pattern must be 1-4")?,
        })
    }
}

/// Progress of a roster import: a bar on a terminal, plain lines otherwise (logs, tests).
pub struct ImportProgress {
    bar: Option<indicatif::ProgressBar>,
    /// What is counted ("rows", "documents").
    unit: &'static str,
}

impl ImportProgress {
    pub fn new() -> Self {
        Self::counting("rows")
    }

    /// A progress display counting `unit` (e.g. "documents").
    pub fn counting(unit: &'static str) -> Self {
        use std::io::IsTerminal;
        ImportProgress { bar: std::io::stderr().is_terminal().then(|| indicatif::ProgressBar::new(0)), unit }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

impl Default for ImportProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl app::services::roster::Progress for ImportProgress {
    fn written(&mut self, done: u64, total: u64) {
        match &self.bar {
            Some(bar) => {
                if bar.length() != Some(total) {
                    bar.set_length(total);
                    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
                        "{{bar:40}} {{pos}}/{{len}} {} ({{eta}})",
                        self.unit
                    )) {
                        bar.set_style(style);
                    }
                }
                bar.set_position(done);
            }
            // The plain line format is what scripts (and tests) read: keep it stable.
            None => eprintln!("written {done}/{total}"),
        }
    }
}
