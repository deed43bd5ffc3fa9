//! The `mimoto` binary: one function per command over the `app` services and the `web` router.

mod args;
mod face;

use std::process::ExitCode;

use crate::args::{
    AuditCommand, CheckupCommand, Cli, Command, HealthCsvCommand, HealthImportArgs, KeysCommand, OperatorCommand,
    OrgCommand, RosterCommand,
};
use app::config::Config;
use app::error::ServiceError;
use app::services::roster::{self, Encoding, ImportError};
use app::App;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

fn init_logging(json: bool) {
    let filter =
        EnvFilter::try_from_env("MIMOTO_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mimoto: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(cli.log_json || config.log_format == "json");
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("mimoto: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `mimoto face …`: no database, only the models; blocking work on this thread.
fn run_face(command: &crate::face::FaceCommand, config: &Config) -> u8 {
    let engine = match app::load_face_engine(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("mimoto: {e}");
            return 1;
        }
    };
    match tokio::task::block_in_place(|| crate::face::run(&engine, command)) {
        Ok(outcome) => {
            println!("{}", outcome.stdout.trim_end());
            if let Some(reason) = &outcome.reason {
                eprintln!("mimoto: {reason}");
            }
            outcome.code.clamp(0, 255) as u8
        }
        Err(e) => {
            eprintln!("mimoto: {e}");
            1
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Org(OrgCommand::Add(args)) => org_add(config, args).await,
        Command::Org(OrgCommand::List) => org_list(config).await,
        Command::Roster(RosterCommand::Import(args)) => roster_import(config, args).await,
        Command::Checkup(CheckupCommand::Import(args)) => checkup_import(config, args).await,
        Command::Medication(HealthCsvCommand::Import(args)) => {
            health_import::<records::medication::MedicationRow>(config, &args, "お薬履歴").await
        }
        Command::Expenses(HealthCsvCommand::Import(args)) => {
            health_import::<records::expenses::ExpenseRow>(config, &args, "医療費通知").await
        }
        Command::Face(face) => {
            let code = run_face(&face, &config);
            if code != 0 {
                std::process::exit(code.into());
            }
            Ok(())
        }
        Command::Operator(OperatorCommand::Create(args)) => operator_create(config, args).await,
        Command::Operator(OperatorCommand::List) => operator_list(config).await,
        Command::DemoData => demo_data(config).await,
        Command::Audit(AuditCommand::Verify) => audit_verify(config).await,
        Command::Keys(KeysCommand::Rotate { batch }) => keys_rotate(config, batch).await,
    }
}

/// `mimoto keys rotate`: progress per table on stderr, the summary on stdout.
async fn keys_rotate(config: Config, batch: i64) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open_default(config).await?;
    let active = app.keys.active_key_id().to_string();
    let active_mac = app.keys.active_mac_key_id().to_string();
    cli_audit(&app, "cli.keys.rotate", Some(("data_key", &active))).await?;
    let mut progress = |table: &str, done: u64, changed: u64| eprintln!("{table}: {done} read, {changed} re-keyed");
    let report = app::services::rekey::rotate(&app, batch, &mut progress).await?;
    for c in &report.columns {
        println!("{}: {} read, {} re-keyed, {} skipped, {} failed", c.name, c.seen, c.changed, c.skipped, c.failed);
    }
    println!(
        "active data key {}, active MAC key {}: {} re-keyed, {} skipped, {} failed",
        report.active_key,
        report.active_mac_key,
        report.changed(),
        report.skipped(),
        report.failed()
    );
    if !report.complete() {
        eprintln!("mimoto: not everything is under data key {active} and MAC key {active_mac} yet: run `mimoto keys rotate` again (failures are in the log)");
        std::process::exit(1);
    }
    println!("everything is sealed under data key {active} and indexed under MAC key {active_mac}");
    Ok(())
}

/// Every CLI action that changes data writes an audit row: no operator, client `cli`.
async fn cli_audit(app: &App, action: &str, target: Option<(&str, &str)>) -> Result<(), Box<dyn std::error::Error>> {
    app::services::operators::audit(app, None, action, target, "cli").await?;
    Ok(())
}

/// `mimoto audit verify`.
async fn audit_verify(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open_default(config).await?;
    let report = app.store.verify_audit_chain().await?;
    println!("rows: {} (before the chain: {})", report.rows, report.unchained_prefix);
    if let Some((seq, hash)) = &report.head {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        println!("head: seq {seq} hash {hex}");
    }
    match report.broken {
        None => {
            println!("the chain holds");
            Ok(())
        }
        Some((seq, why)) => {
            eprintln!("mimoto: the audit chain is broken at seq {seq}: {why}");
            std::process::exit(1);
        }
    }
}

/// `mimoto serve`: the HTTP server with the mail worker and retention jobs, until SIGTERM or Ctrl-C.
async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let listen = config.listen;
    config.check_serve()?;
    let app = App::open_default(config).await?;
    // Load and check the face models now, so a missing or altered model is reported at
    // start (eKYC stays off), not at a member's first photo.
    let face_app = app.clone();
    match tokio::task::spawn_blocking(move || face_app.face().map(|_| ()).map_err(str::to_string)).await {
        Ok(Ok(())) => tracing::info!(models = %app.config.models_dir.display(), "face engine ready"),
        Ok(Err(e)) => tracing::error!("eKYC features are off: {e}"),
        Err(e) => tracing::error!("eKYC features are off: face engine failed to load: {e}"),
    }
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, public_url = %app.config.public_url(), backend = app.store.backend(), "mimoto listening");
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    web::serve(app, listener, rx).await?;
    Ok(())
}

/// `mimoto migrate`: creates or upgrades the schema.
async fn migrate(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open_default(config).await?;
    println!("database is up to date ({})", app.store.backend());
    Ok(())
}

/// `mimoto org add`.
async fn org_add(config: Config, args: args::OrgAdd) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open_default(config).await?;
    let new = args.into_new()?;
    let org = app::demo::add_org(&app, new).await?;
    cli_audit(&app, "cli.org.add", Some(("organization", &org.id))).await?;
    println!("added {} {}", org.insurer_number, org.name);
    Ok(())
}

/// `mimoto org list`: one organization a line, tab-separated.
async fn org_list(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open_default(config).await?;
    for o in app.store.list_orgs().await? {
        println!(
            "{}\t{}\t{}\tpoints={}\tcheckup_linked={}\tpattern={}",
            o.insurer_number,
            o.org_type.as_str(),
            o.name,
            o.point_name.as_deref().unwrap_or("-"),
            o.checkup_linked,
            o.card_pattern.number()
        );
    }
    Ok(())
}

/// `mimoto roster import`: counts on success; every bad row by line number on stderr otherwise.
async fn roster_import(config: Config, args: args::RosterImportArgs) -> Result<(), Box<dyn std::error::Error>> {
    let encoding = Encoding::parse(&args.encoding).ok_or("--encoding must be auto, utf-8 or shift_jis")?;
    // Refuse an oversized file before reading it into memory (the import checks again).
    let limit = roster::Limits::default().max_bytes;
    let size = std::fs::metadata(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?.len();
    if size > limit as u64 {
        return Err(
            format!("{}: the file is larger than {limit} bytes; nothing was imported", args.file.display()).into()
        );
    }
    let bytes = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let app = App::open_default(config).await?;
    let org = app
        .store
        .find_org_by_insurer_number(args.org.as_str())
        .await?
        .ok_or_else(|| format!("no organization with insurer number {}", args.org))?;
    let mut progress = crate::args::ImportProgress::new();
    match roster::import_bytes(&app, &org, &bytes, encoding, &mut progress).await {
        Ok((stats, timings)) => {
            progress.finish();
            cli_audit(&app, "cli.roster.import", Some(("organization", &org.id))).await?;
            println!(
                    "imported {} rows for {} ({}) in {:.1} s: {} new, {} changed, {} unchanged; eligibility ended for {} record(s) not in the file",
                    stats.rows,
                    org.insurer_number,
                    org.name,
                    (timings.parse + timings.index + timings.compare + timings.write).as_secs_f64(),
                    stats.inserted,
                    stats.updated,
                    stats.rows - stats.inserted - stats.updated,
                    stats.ended
                );
        }
        Err(ImportError::Rows(errors)) => {
            for e in &errors {
                eprintln!("line {}: {}", e.line, e.message);
            }
            return Err(format!("{} problem(s) in {}; nothing was imported", errors.len(), args.file.display()).into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `mimoto checkup import`: counts on success; every refused entry on stderr otherwise.
async fn checkup_import(config: Config, args: args::CheckupImportArgs) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let file_name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let app = App::open_default(config).await?;
    let mut progress = crate::args::ImportProgress::counting("documents");
    match app::services::checkups::import_zip_report(&app, args.org.as_str(), &file_name, bytes, &mut progress).await {
        Ok(report) => {
            let stats = report.stats;
            progress.finish();
            cli_audit(&app, "cli.checkup.import", Some(("insurer_number", args.org.as_str()))).await?;
            println!(
                "imported {} checkup result(s) for {} from {}: {} new, {} replaced; {} other entr(ies) skipped",
                stats.documents,
                args.org,
                args.file.display(),
                stats.inserted,
                stats.replaced,
                stats.skipped
            );
            if report.codes_without_system > 0 {
                println!("read {} observation code(s) without a codeSystem as JLAC10", report.codes_without_system);
            }
            for skipped in &report.skipped_files {
                println!("not imported: {}: {}", skipped.entry, skipped.reason);
            }
            let listed = report.skipped_files.len() as u64;
            if report.skipped_files_total > listed {
                println!("not imported: {} more file(s) not listed", report.skipped_files_total - listed);
            }
        }
        Err(ServiceError::CheckupEntries(errors)) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return Err(format!("{} problem(s) in {}; nothing was imported", errors.len(), args.file.display()).into());
        }
        Err(ServiceError::CheckupArchive(reason)) => {
            return Err(format!("{}: {reason}; nothing was imported", args.file.display()).into());
        }
        Err(ServiceError::UnknownOrganization) => {
            return Err(format!("no organization with insurer number {}", args.org).into())
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `mimoto operator create`: the password from the environment or stdin (never argv); prints the TOTP secret once.
async fn operator_create(config: Config, args: args::OperatorCreate) -> Result<(), Box<dyn std::error::Error>> {
    let password = crate::args::operator_password()?;
    let app = App::open_default(config).await?;
    let created = app::services::operators::create(&app, &args.email, &args.name, args.role, &password)
        .await
        .map_err(|e| if e.is_internal() { e.to_string() } else { e.message(app::i18n::Locale::En) })?;
    let o = &created.operator;
    cli_audit(&app, "cli.operator.create", Some(("operator", &o.id))).await?;
    println!("created operator {} <{}> ({}), id {}", o.name, o.email, o.role.as_str(), o.id);
    println!("TOTP secret (base32): {}", created.totp_secret);
    println!("otpauth URI: {}", created.otpauth_uri);
    println!("Add it to an authenticator app now: it is not shown again.");
    Ok(())
}

/// `mimoto operator list`: one operator a line, tab-separated.
async fn operator_list(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open_default(config).await?;
    for o in app::services::operators::list(&app).await? {
        let created = o.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        println!("{}\t{}\t{}\t{}\t{}", o.id, o.email, o.name, o.role.as_str(), created);
    }
    Ok(())
}

/// `mimoto demo-data`: idempotent.
async fn demo_data(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open_default(config).await?;
    let added = app::demo::load(&app).await?;
    app::demo::load_health(&app).await?;
    cli_audit(&app, "cli.demo_data", None).await?;
    println!("demo data: {added} organization(s) added; health data of ヤマダ ハナコ (133033) imported");
    Ok(())
}

/// `mimoto medication import` / `mimoto expenses import`: counts on success; every problem by
/// line on stderr and an error (non-zero exit) when the file is refused.
async fn health_import<R: app::services::health_imports::HealthRow>(
    config: Config,
    args: &HealthImportArgs,
    label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    // Refuse an oversized file before reading it into memory (the parser checks again).
    let limit = records::health_csv::Limits::default().max_bytes;
    let size = std::fs::metadata(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?.len();
    if size > limit as u64 {
        return Err(
            format!("{}: the file is larger than {limit} bytes; nothing was imported", args.file.display()).into()
        );
    }
    let bytes = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let file_name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let app = App::open_default(config).await?;
    let mut progress = crate::args::ImportProgress::counting("rows");
    match app::services::health_imports::import_file::<R>(
        &app,
        args.org.as_str(),
        &file_name,
        bytes,
        args.encoding,
        &mut progress,
    )
    .await
    {
        Ok(stats) => {
            progress.finish();
            cli_audit(&app, &format!("cli.{}.import", R::KIND.as_str()), Some(("insurer_number", args.org.as_str())))
                .await?;
            println!(
                "imported {} {label} row(s) for {} from {}: {} new, {} already stored",
                stats.rows,
                args.org,
                args.file.display(),
                stats.inserted,
                stats.existing
            );
            Ok(())
        }
        Err(ServiceError::HealthEntries(errors)) => {
            for e in &errors {
                eprintln!("{e}");
            }
            Err(format!("{} problem(s) in {}; nothing was imported", errors.len(), args.file.display()).into())
        }
        Err(ServiceError::HealthCsv(reason)) => {
            Err(format!("{}: {reason}; nothing was imported", args.file.display()).into())
        }
        Err(ServiceError::UnknownOrganization) => {
            Err(format!("no organization with insurer number {}", args.org).into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
