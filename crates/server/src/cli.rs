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
    /// The face engine: compare, inspect, evaluate.
    #[command(subcommand)]
    Face(crate::face_cli::FaceCommand),
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
}

impl ImportProgress {
    pub fn new() -> Self {
        use std::io::IsTerminal;
        ImportProgress { bar: std::io::stderr().is_terminal().then(|| indicatif::ProgressBar::new(0)) }
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

impl crate::services::roster::Progress for ImportProgress {
    fn written(&mut self, done: u64, total: u64) {
        match &self.bar {
            Some(bar) => {
                if bar.length() != Some(total) {
                    bar.set_length(total);
                    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({eta})") {
                        bar.set_style(style);
                    }
                }
                bar.set_position(done);
            }
            None => eprintln!("written {done}/{total}"),
        }
    }
}
