//! Command line: `fengqiao serve | demo | migrate | vacuum | init | keys | audit | backup | restore`.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::{Args, Subcommand};

use crate::{
    audit,
    platform::{
        backup,
        crypto::{self, Crypto},
        db::{self, Db, DbUrl},
    },
    web::{AppState, Config},
};

/// Options every command takes (the binary's parser, in `main.rs`, adds
/// the commands: these and, with the `bench` feature, the benchmarks).
#[derive(Args, Debug)]
pub struct Global {
    /// Log as JSON lines instead of compact text.
    #[arg(long, env = "FENGQIAO_LOG_JSON", global = true)]
    pub log_json: bool,
    /// Threads that serve requests. Default: one per core, less the one the
    /// SQLite writer keeps busy.
    #[arg(long, env = "FENGQIAO_WORKERS", global = true)]
    pub workers: Option<usize>,
    #[command(flatten)]
    pub sqlite: SqliteArgs,
}

/// How SQLite keeps what it has answered (see README, "Durability").
#[derive(Args, Debug)]
pub struct SqliteArgs {
    /// When SQLite syncs to disk: `full` (default) at every commit, so an answered write survives a
    /// power cut; `normal` only at checkpoints: faster, survives the server's crash but a power cut or
    /// an operating-system crash may lose the last answered writes.
    #[arg(long = "sqlite-sync", env = "FENGQIAO_SQLITE_SYNC", global = true, default_value = "full")]
    pub sync: db::Synchronous,
    /// Log size, in MiB, past which the checkpoint thread makes the SQLite log start over (tests set
    /// it small to reach that path in seconds).
    #[arg(long = "sqlite-log-restart-mb", env = "FENGQIAO_SQLITE_LOG_RESTART_MB", global = true, hide = true,
        default_value_t = db::SqliteOptions::default().log_restart_bytes >> 20,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub log_restart_mb: u64,
}

impl SqliteArgs {
    pub fn options(&self) -> db::SqliteOptions {
        db::SqliteOptions { synchronous: self.sync, log_restart_bytes: self.log_restart_mb << 20 }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server on the configured database.
    Serve(ServeArgs),
    /// Build (or reuse) the demo district in its own database and serve it.
    Demo(DemoArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Rewrite a SQLite database compactly with the current page size (stop the server first).
    Vacuum(DbArgs),
    /// Set up an empty database: the root region node and a first administrator.
    Init(InitArgs),
    /// Manage the keys that encrypt personal data.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check and maintain the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Back up the database consistently while the server runs (the key file is backed up separately).
    Backup(BackupArgs),
    /// Restore a backup into a database that no server is using.
    Restore(RestoreArgs),
}

/// `backup FILE`: a new directory FILE (see README, "Durability and backups").
#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The data directory: its key file is fingerprinted, its attachments listed.
    #[arg(long, env = "FENGQIAO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The data directory of the restored database: its key file must be the backup's.
    #[arg(long, env = "FENGQIAO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// PostgreSQL: overwrite a database that already has tables.
    #[arg(long)]
    pub force: bool,
    pub file: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a new active key and re-encrypt every encrypted column with it.
    Rotate(KeysArgs),
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Directory of the default key file (`keys.json`); FENGQIAO_KEY_FILE overrides.
    #[arg(long, env = "FENGQIAO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain and check it against the anchored head; exit
    /// non-zero at the first changed, removed or inserted entry, or a cut.
    Verify(AuditArgs),
    /// Delete entries older than N days (at least 180), keeping the chain verifiable.
    Prune(PruneArgs),
}

/// The database and the data directory that holds the key file and the
/// chain's anchor (`audit-anchor.json`).
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long, env = "FENGQIAO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub audit: AuditArgs,
    #[arg(long)]
    pub older_than_days: i64,
}

#[derive(Args, Debug)]
pub struct DbArgs {
    /// sqlite://FILE or postgres://USER@HOST/DB
    #[arg(long, env = "FENGQIAO_DB", default_value = "sqlite://fengqiao.db")]
    pub db: String,
}

#[derive(Args, Debug)]
pub struct WebArgs {
    #[arg(long, env = "FENGQIAO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Map tile URL template, e.g. a 天地图 WMTS URL with your key; none = plain background.
    #[arg(long, env = "FENGQIAO_TILE_URL")]
    pub tile_url: Option<String>,
    /// Do not mark cookies Secure (only for plain-HTTP access from another host in a lab).
    #[arg(long, env = "FENGQIAO_INSECURE_COOKIES")]
    pub insecure_cookies: bool,
    #[arg(long, env = "FENGQIAO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Largest photo a work order may carry, in MB (attachments live under the data directory).
    #[arg(long, env = "FENGQIAO_MAX_PHOTO_MB", default_value_t = 10)]
    pub max_photo_mb: u64,
    /// Largest document (PDF, DOCX, XLSX) a work order may carry, in MB.
    #[arg(long, env = "FENGQIAO_MAX_DOCUMENT_MB", default_value_t = 20)]
    pub max_document_mb: u64,
    /// Most attachments on one work order.
    #[arg(long, env = "FENGQIAO_MAX_ATTACHMENTS", default_value_t = 30)]
    pub max_attachments: i64,
    /// Escalate work orders to the next level when their handling deadline passes.
    #[arg(long, env = "FENGQIAO_ESCALATE_OVERDUE")]
    pub escalate_overdue: bool,
    /// Where to POST each signed head of the audit chain (an external witness).
    #[arg(long, env = "FENGQIAO_AUDIT_WITNESS_URL")]
    pub audit_witness_url: Option<String>,
    /// Seconds between anchors of the audit chain's head.
    #[arg(long, env = "FENGQIAO_AUDIT_ANCHOR_SECS", default_value_t = 300)]
    pub audit_anchor_secs: u64,
    /// Where to POST each outbox event (work-order steps) as JSON; none = events wait in the database.
    #[arg(long, env = "FENGQIAO_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Delivery attempts of an event before it waits for an administrator (dead letter).
    #[arg(long, env = "FENGQIAO_WEBHOOK_MAX_ATTEMPTS", default_value_t = 10)]
    pub webhook_max_attempts: i64,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The demo's own database; an existing demo database is reused.
    #[arg(long, env = "FENGQIAO_DEMO_DB", default_value = "sqlite://fengqiao-demo.db")]
    pub db: String,
    /// Erase the demo database and build it anew.
    #[arg(long)]
    pub reset: bool,
    /// Build the data and exit without serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Random seed of the generated people and buildings.
    #[arg(long, default_value_t = 140107)]
    pub seed: u64,
    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// 6-, 4- or 2-digit code of the root region (district, city or province).
    #[arg(long)]
    pub region_code: String,
    #[arg(long)]
    pub region_name: String,
    #[arg(long, default_value = "admin")]
    pub admin: String,
}

impl Global {
    /// The async runtime's worker threads. On SQLite every write goes
    /// through one writer thread, which under load keeps a core busy; a
    /// worker per core beside it makes three busy threads share two cores
    /// here, and their hand-overs and preemptions cost more than the second
    /// worker brings (the orders bench: ~13,000 transitions/s with one
    /// worker, ~11,200 with two; BENCHMARKS.md). So SQLite leaves the
    /// writer its core; PostgreSQL, whose writes are other processes, takes
    /// them all.
    pub fn workers(&self, on_sqlite: bool) -> usize {
        if let Some(n) = self.workers {
            return n.max(1);
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if on_sqlite {
            cores.saturating_sub(1).max(1)
        } else {
            cores
        }
    }
}

impl Command {
    /// Whether the command serves a SQLite database.
    pub fn on_sqlite(&self) -> bool {
        let url = match self {
            Command::Serve(a) => &a.db.db,
            Command::Demo(a) => &a.db,
            _ => return false,
        };
        matches!(url.parse::<DbUrl>(), Ok(DbUrl::Sqlite { .. }))
    }
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let sqlite = global.sqlite.options();
    match command {
        Command::Serve(a) => {
            let db = open(&a.db.db, sqlite).await?;
            let crypto = open_crypto(&db, &a.web.data_dir).await?;
            key_file_notice(&crypto);
            serve(db, crypto, &a.web).await
        }
        Command::Migrate(a) => {
            let db = open(&a.db, sqlite).await?;
            println!("数据库已是最新 ({} 个迁移已执行)", db::migrate(&db).await?);
            Ok(())
        }
        Command::Vacuum(a) => {
            let DbUrl::Sqlite { path } = a.db.parse::<DbUrl>()? else {
                anyhow::bail!("vacuum 只用于 SQLite；PostgreSQL 请用其自身的 VACUUM");
            };
            let (before, after) = tokio::task::spawn_blocking(move || db::vacuum_sqlite(&path)).await??;
            println!("数据库已整理，页大小 {before} → {after} 字节");
            Ok(())
        }
        Command::Init(a) => init(a, sqlite).await,
        Command::Demo(a) => demo(a, sqlite).await,
        Command::Keys(KeysCommand::Rotate(a)) => rotate_keys(a, sqlite).await,
        Command::Audit(AuditCommand::Verify(a)) => verify_audit(a, sqlite).await,
        Command::Audit(AuditCommand::Prune(a)) => prune_audit(a, sqlite).await,
        Command::Backup(a) => {
            println!("{}", backup::backup(&a.db.db.parse()?, &a.data_dir, &a.file).await?);
            Ok(())
        }
        Command::Restore(a) => restore_backup(a, sqlite).await,
    }
}

/// Loads the key ring and seals any personal data still in plain text
/// (rows from before encryption existed).
async fn open_crypto(db: &Db, data_dir: &std::path::Path) -> anyhow::Result<Crypto> {
    let crypto = Crypto::from_env(data_dir)?;
    audit::chain::install_keys(&crypto);
    crypto::rotate::seal_pending(db, &crypto).await?;
    Ok(crypto)
}

/// Says where the key file is and how to keep it: a copy of the database
/// is only as safe as the keys kept apart from it, and without the keys
/// it cannot be read.
fn key_file_notice(crypto: &Crypto) {
    let Some(path) = crypto.key_file() else { return };
    tracing::warn!(key_file = %path.display(), "back the key file up separately and keep it apart from database copies");
    println!(
        "密钥文件：{}。请另行备份，并与数据库副本分开存放：丢失密钥则加密的个人信息无法读取，\
         与数据库放在一起则一份备份泄露即全部泄露。",
        path.display()
    );
}

async fn rotate_keys(a: KeysArgs, sqlite: db::SqliteOptions) -> anyhow::Result<()> {
    let db = open(&a.db.db, sqlite).await?;
    let crypto = open_crypto(&db, &a.data_dir).await?;
    let old = crypto.active_key_id();
    let report = crypto::rotate::rotate(&db, &crypto, &super::encrypted_columns()).await?;
    let columns: serde_json::Map<String, serde_json::Value> =
        report.columns.iter().map(|(c, n)| (c.clone(), (*n).into())).collect();
    audit::record(
        &db,
        &audit::Actor::system("keys rotate"),
        audit::action::KEYS_ROTATE,
        Some(audit::Object::new("key_ring", &report.new_key_id)),
        None,
        serde_json::json!({"old_key_id": old, "new_key_id": report.new_key_id, "reencrypted": columns}),
    )
    .await?;
    // The head is signed with the new key at once.
    if let Err(e) = audit::anchor(&db, &audit::Anchor::path(&a.data_dir), None).await {
        eprintln!("{e}");
    }
    println!("{report}");
    println!("请备份新的密钥文件；旧密钥仍保留在密钥环中，可在确认无误后人工移除。");
    Ok(())
}

/// Verifies the chain against the anchored head in the data directory, so
/// a cut tail is named too.
async fn verify_audit(a: AuditArgs, sqlite: db::SqliteOptions) -> anyhow::Result<()> {
    let db = open(&a.db.db, sqlite).await?;
    open_crypto(&db, &a.data_dir).await?;
    let anchor = audit::Anchor::read(&audit::Anchor::path(&a.data_dir))?;
    let report = audit::verify_anchored(&db, anchor.as_ref()).await?;
    println!("{report}");
    if !report.ok() {
        std::process::exit(2);
    }
    Ok(())
}

/// Restores a backup, records the restore in the audit chain, and anchors
/// the chain afresh. The anchor in the data directory names a head the
/// chain must reach; restoring a backup legitimately takes the chain back
/// to the backup's head, which that anchor would (rightly) report as a cut
/// tail, and `audit::anchor` refuses to move an anchor backwards. So the
/// restored chain is first verified on its own, the old anchor is set
/// aside (kept beside it, a record of the head before the restore), the
/// restore becomes the chain's newest entry, and that head is anchored:
/// `audit verify` passes on the restored data, and a later cut shows again.
async fn restore_backup(a: RestoreArgs, sqlite: db::SqliteOptions) -> anyhow::Result<()> {
    let report = backup::restore(&a.db.db.parse()?, &a.data_dir, &a.file, a.force).await?;
    let db = open(&a.db.db, sqlite).await?;
    open_crypto(&db, &a.data_dir).await?;
    let chain = audit::verify(&db).await?;
    if !chain.ok() {
        anyhow::bail!("恢复的数据中审计日志校验未通过，锚点未更新：{chain}");
    }
    let anchor_path = audit::Anchor::path(&a.data_dir);
    let set_aside =
        anchor_path.with_file_name(format!("{}.before-restore-{}", audit::chain::ANCHOR_FILE, db::now_ms()));
    let replaced = match std::fs::rename(&anchor_path, &set_aside) {
        Ok(()) => Some(set_aside.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("无法移开旧的锚点文件 {}：{e}", anchor_path.display()),
    };
    audit::record(
        &db,
        &audit::Actor::system("restore"),
        audit::action::BACKUP_RESTORE,
        Some(audit::Object::new("audit_log", chain.head.0)),
        None,
        serde_json::json!({"backup": a.file.display().to_string(), "backup_created_at": report.manifest.created_at,
            "restored_head": chain.head.0, "previous_anchor": replaced,
            "attachments_missing": report.attachments_missing.len()}),
    )
    .await?;
    let anchored = audit::anchor(&db, &anchor_path, None).await?;
    println!("{report}");
    println!(
        "审计日志完整（至 #{}），已记录本次恢复并重新锚定于 #{}{}。",
        chain.head.0,
        anchored.id,
        replaced.map(|p| format!("；原锚点保存为 {p}")).unwrap_or_default()
    );
    db.close().await
}

async fn prune_audit(a: PruneArgs, sqlite: db::SqliteOptions) -> anyhow::Result<()> {
    let db = open(&a.audit.db.db, sqlite).await?;
    open_crypto(&db, &a.audit.data_dir).await?;
    let report = audit::prune(&db, a.older_than_days).await?;
    if let Some(last) = report.last_pruned_id {
        audit::record(
            &db,
            &audit::Actor::system("audit prune"),
            audit::action::AUDIT_PRUNE,
            Some(audit::Object::new("audit_log", last)),
            None,
            serde_json::json!({"older_than_days": a.older_than_days, "pruned": report.pruned, "last_pruned_id": last}),
        )
        .await?;
        // The cut itself is anchored at once, not at the server's next interval.
        audit::anchor(&db, &audit::Anchor::path(&a.audit.data_dir), None).await?;
        println!("已清理 {} 条 {} 天前的审计日志(至 #{last}),校验断点已记录", report.pruned, a.older_than_days);
    } else {
        println!("没有早于 {} 天的审计日志，无需清理", a.older_than_days);
    }
    Ok(())
}

/// Anchors the audit chain's head at each step when it moved; the server
/// anchors once more on shutdown, after the jobs stop.
struct AuditAnchor {
    db: Db,
    path: PathBuf,
    witness: Option<std::sync::Arc<audit::HttpWitness>>,
    every: Duration,
    /// The head anchored last.
    last: std::sync::Mutex<Option<i64>>,
}

impl crate::platform::jobs::Job for AuditAnchor {
    fn name(&self) -> &'static str {
        "audit-anchor"
    }

    fn every(&self) -> Duration {
        self.every.max(Duration::from_secs(1))
    }

    async fn run_once(&self) -> crate::kernel::error::Result<crate::platform::jobs::Outcome> {
        use crate::platform::jobs::Outcome;
        let head =
            sqlx::query_scalar::<_, i64>("select coalesce(max(id), 0) from audit_log").fetch_one(&self.db.pool).await?;
        if *self.last.lock().unwrap_or_else(|e| e.into_inner()) == Some(head) {
            return Ok(Outcome::Idle);
        }
        let w = self.witness.as_deref().map(|w| w as &dyn audit::Witness);
        audit::anchor(&self.db, &self.path, w).await?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(head);
        Ok(Outcome::Idle)
    }
}

async fn open(url: &str, sqlite: db::SqliteOptions) -> anyhow::Result<Db> {
    let url: DbUrl = url.parse()?;
    let db = Db::connect_with(&url, sqlite).await?;
    db::migrate(&db).await?;
    Ok(db)
}

async fn serve(db: Db, crypto: Crypto, web: &WebArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&web.listen)
        .await
        .map_err(|e| anyhow::anyhow!("无法监听 {}: {e}", web.listen))?;
    let config = Config {
        cookie_secure: !web.insecure_cookies,
        tile_url: web.tile_url.clone(),
        data_dir: web.data_dir.clone(),
        attachments: crate::web::UploadLimits {
            image_bytes: web.max_photo_mb << 20,
            document_bytes: web.max_document_mb << 20,
            per_order: web.max_attachments,
            ..Default::default()
        },
        ..Config::default()
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = db.backend.name(), "serving");
    let state = super::state(db.clone(), config, crypto).await?;
    let anchor_path = audit::Anchor::path(&web.data_dir);
    let witness = web.audit_witness_url.as_deref().map(|u| std::sync::Arc::new(audit::HttpWitness::new(u)));
    let jobs = start_jobs(&state, web, &anchor_path, witness.clone());
    println!("枫桥已启动：http://{addr}/");
    let served = super::serve(listener, state.clone(), super::shutdown_signal()).await;
    // Nothing writes once the database closes.
    jobs.stop().await;
    served?;
    let w = witness.as_deref().map(|w| w as &dyn audit::Witness);
    if let Err(e) = audit::anchor(&state.db, &anchor_path, w).await {
        tracing::error!(error = %e, "audit anchor on shutdown failed");
    }
    db.close().await
}

/// The server's background work, each on its own task under one supervisor.
fn start_jobs(
    state: &AppState,
    web: &WebArgs,
    anchor_path: &std::path::Path,
    witness: Option<std::sync::Arc<audit::HttpWitness>>,
) -> crate::platform::jobs::Jobs {
    use crate::platform::outbox;
    let mut jobs = crate::platform::jobs::Jobs::default();
    let rules = crate::orders::timers::Rules { escalate_overdue: web.escalate_overdue };
    jobs.start(crate::orders::timers::Deadlines { state: state.clone(), rules, every: Duration::from_secs(30) });
    jobs.start(crate::orders::exports::Exports::new(state.clone()));
    // Other nodes' setting changes (PostgreSQL); SQLite has one server process.
    if state.db.listen_url().is_some() {
        jobs.start(super::FollowSettings::new(state.clone()));
    }
    jobs.start(AuditAnchor {
        db: state.db.clone(),
        path: anchor_path.to_path_buf(),
        witness,
        every: Duration::from_secs(web.audit_anchor_secs),
        last: Default::default(),
    });
    let day = Duration::from_secs(24 * 3600);
    jobs.start(outbox::Prune { db: state.db.clone(), keep: 7 * day, every: Duration::from_secs(3600) });
    // The inbox: a notice should reach an open page within a second or two.
    jobs.start(crate::notify::consumer(state.db.clone(), Duration::from_secs(1)));
    if let Some(url) = &web.webhook_url {
        if !url.starts_with("http://") {
            // The HTTP client is built without TLS: deliveries would all fail.
            tracing::warn!("FENGQIAO_WEBHOOK_URL is not an http:// URL; events will end as dead letters");
        }
        let settings = outbox::Settings { max_attempts: web.webhook_max_attempts.max(1), ..Default::default() };
        jobs.start(outbox::Consumer::new(state.db.clone(), "webhook", outbox::Webhook::new(url), settings));
    }
    tracing::info!(jobs = ?jobs.names(), "background jobs started");
    jobs
}

async fn init(a: InitArgs, sqlite: db::SqliteOptions) -> anyhow::Result<()> {
    let db = open(&a.db.db, sqlite).await?;
    let password = crate::platform::crypto::random_token()[..12].to_string() + "Aa1";
    let root = crate::demo::init_root(&db, &a.region_code, &a.region_name, &a.admin, &password).await?;
    println!("已创建 {}（{}），管理员 {} 初始密码 {}（首次登录须修改）", a.region_name, root, a.admin, password);
    Ok(())
}

async fn demo(a: DemoArgs, sqlite: db::SqliteOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let url: DbUrl = a.db.parse()?;
    if a.reset {
        crate::demo::erase(&url).await?;
    }
    let db = Db::connect_with(&url, sqlite).await?;
    db::migrate(&db).await?;
    let crypto = open_crypto(&db, &a.web.data_dir).await?;
    key_file_notice(&crypto);
    if crate::demo::is_built(&db).await? {
        println!("使用已有的演示数据库 {url}（如需重建请加 --reset）");
    } else {
        println!("正在生成演示区县：杏花岭区 …");
        let summary = crate::demo::build(&db, &crypto, a.seed).await?;
        println!("{summary}");
    }
    crate::demo::photos::ensure(&db, &a.web.data_dir).await?;
    println!("{}", crate::demo::LOGINS);
    println!("准备用时 {:.1} 秒", started.elapsed().as_secs_f64());
    if a.no_serve {
        return db.close().await;
    }
    serve(db, crypto, &a.web).await
}
