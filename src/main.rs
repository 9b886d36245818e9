//! The `custody` binary: parse arguments, call the library, print, and map the outcome to an
//! exit code (0 success / intact, 1 verification findings, 2 usage or operational error).

#![forbid(unsafe_code)]

mod cli;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use custody::bundle::manifest::{Category, IdentName, SideEffect};
use custody::clock::Clock;
use custody::digest::{BundleId, Sha256};
use custody::keys::{pub_path_for, PublicKey, SecretKey};
use custody::preserve::{preserve, PreserveRequest};
use custody::store::config::StoreOptions;
use custody::store::Store;
use custody::untrusted::{untrusted as u, Untrusted};
use custody::verify::{self, Trust};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let code = main_inner();
    // Resource diagnostics for the hostile-input tests: the process's peak resident memory.
    if std::env::var_os("CUSTODY_REPORT_PEAK_RSS").is_some() {
        if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
            if let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:")) {
                eprintln!("custody: peak rss {}", l.trim_start_matches("VmHWM:").trim());
            }
        }
    }
    code
}

/// The command line, with the `--format` help listing every format (generated from the
/// format registry, so a new format needs no edit here).
fn command() -> clap::Command {
    use clap::CommandFactory;
    let formats = custody::collect::analyze::Format::help();
    Cli::command().mut_subcommand("preserve", |c| {
        c.mut_arg("formats", |a| {
            a.long_help(format!(
                "Scan SELECTOR as FORMAT instead of detecting it (repeatable). SELECTOR is a bundle path (logs/tool_calls.jsonl), a folder (logs) or an evidence kind; FORMAT is one of:\n{formats}"
            ))
        })
    })
}

fn main_inner() -> ExitCode {
    use clap::FromArgMatches;
    let cli = match command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    exit_cleanly_when_interrupted();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Each cause once (custody::error_chain: what `{:#}` prints, without the repeats of
            // crates whose messages include their source's); escaped: errors quote paths,
            // object keys and parse errors of untrusted input.
            eprintln!("custody: error: {}", u(&custody::error_chain(e.chain())));
            ExitCode::from(2)
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP: remove the files this run was still writing (a bundle's
/// staging file, a spool of standard input, a downloaded copy: [`custody::unfinished`]), say
/// so, and exit with 128 + the signal's number, as the default action would have (which runs
/// no destructor and so left a staging file as large as the bundle in the store). A bundle
/// already stored stays: it is under its own name, and without its ledger entry the next
/// preserve or `custody store repair` adopts it. A signal the process inherited as ignored
/// stays ignored (`nohup` ignores SIGHUP; a script's background job, SIGINT). If the handler
/// cannot be installed, the signals keep their default action.
fn exit_cleanly_when_interrupted() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let ignored = custody::unfinished::inherited_ignored_signals();
    let wanted: Vec<i32> =
        [SIGINT, SIGTERM, SIGHUP].into_iter().filter(|&s| ignored & (1u64 << (s - 1)) == 0).collect();
    if wanted.is_empty() {
        return;
    }
    let Ok(mut signals) = signal_hook::iterator::Signals::new(wanted) else { return };
    let _ = std::thread::Builder::new().name("custody-signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let removed = custody::unfinished::remove_all();
            let name = match sig {
                SIGINT => "SIGINT",
                SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            // "\r\x1b[2K" first: a progress line may be drawn on a terminal.
            let clear = if std::io::IsTerminal::is_terminal(&std::io::stderr()) { "\r\x1b[2K" } else { "" };
            const LISTED: usize = 5;
            let mut listed: Vec<String> = removed.iter().take(LISTED).map(|p| Untrusted::path(p).to_string()).collect();
            if removed.len() > LISTED {
                listed.push(format!("and {} more", removed.len() - LISTED));
            }
            match removed.len() {
                0 => eprintln!("{clear}custody: interrupted by {name}"),
                n => eprintln!(
                    "{clear}custody: interrupted by {name}: removed {n} unfinished file(s) of this run ({})",
                    listed.join(", ")
                ),
            }
            std::process::exit(128 + sig);
        }
    });
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Keygen(a) => {
            let k = SecretKey::generate(&a.out)?;
            output::keygen(&k, &a.out, a.json)?;
            Ok(0)
        }
        Command::Preserve(a) => cmd_preserve(*a),
        Command::Verify(a) => cmd_verify(a),
        Command::Show(a) => cmd_show(a),
        Command::Extract(a) => cmd_extract(a),
        Command::Store(cli::StoreCommand::Init(a)) => cmd_store_init(a),
        Command::Store(cli::StoreCommand::Repair(a)) => cmd_store_repair(a),
        Command::Checkpoint(a) => cmd_checkpoint(a),
        Command::List(a) => cmd_list(a),
    }
}

/// `list` checks each entry (signature by a pinned key, position, link to the entry before):
/// exit 1 when one does not check out, as every command that verifies.
fn cmd_list(a: cli::ListArgs) -> Result<u8> {
    let trust = trust_from(&a.trusted_key)?;
    let store = open_existing_store_with(a.store.store.as_deref(), &a.config)?;
    let rt = runtime()?;
    let entries = rt.block_on(custody::store::ledger::load_all(&store))?;
    let findings: Vec<Vec<verify::Finding>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let before = i.checked_sub(1).map(|j| &entries[j]);
            let prev = before.filter(|p| e.position.checked_sub(1) == Some(p.position));
            verify::check_ledger_entry(e, prev, &trust)
        })
        .collect();
    output::list(&store, &entries, &findings, &trust, a.json)?;
    let failed = findings.iter().flatten().any(|f| f.level == verify::Level::Error);
    Ok(if failed { 1 } else { 0 })
}

/// Store options: `--store-config FILE` (else $CUSTODY_STORE_CONFIG), overridden by flags.
fn store_options(c: &cli::StoreConfigArgs) -> Result<StoreOptions> {
    let base = match &c.store_config {
        Some(p) => StoreOptions::from_file(p)?,
        None => StoreOptions::from_env()?,
    };
    let flags = StoreOptions {
        endpoint: c.s3_endpoint.clone(),
        region: c.s3_region.clone(),
        allow_http: c.s3_allow_http.then_some(true),
        retention_days: c.retention,
        lock_mode: c.lock_mode.as_deref().map(str::parse).transpose()?,
        legal_hold: c.legal_hold.then_some(true),
        max_retries: c.max_retries,
        retry_timeout_secs: None,
    };
    Ok(base.merged(flags))
}

/// Opens the store to write to it (preserve, `store init`): a local one is created if missing.
fn open_store_with(url: Option<&str>, c: &cli::StoreConfigArgs) -> Result<Store> {
    open_store_by(Store::open_with, url, c)
}

/// Opens the store to read from it (verify, show, extract, list, checkpoint, repair): a local
/// store that does not exist is an error, never created.
fn open_existing_store_with(url: Option<&str>, c: &cli::StoreConfigArgs) -> Result<Store> {
    open_store_by(Store::open_existing_with, url, c)
}

/// The store at `url` (else the default) with the options of `c`, opened by `open`.
fn open_store_by(
    open: fn(&str, &StoreOptions) -> Result<Store, custody::store::StoreError>,
    url: Option<&str>,
    c: &cli::StoreConfigArgs,
) -> Result<Store> {
    let url = url.map(String::from).unwrap_or_else(custody::default_store_url);
    let opts = store_options(c)?;
    open(&url, &opts).with_context(|| format!("cannot open store {}", custody::store::address::redact(&url)))
}

/// Load the signing key, creating the default one on first use.
fn load_or_create_key(explicit: Option<&Path>) -> Result<SecretKey> {
    if let Some(p) = explicit {
        return SecretKey::load(p).with_context(|| format!("cannot use signing key {}", p.display()));
    }
    let p = custody::default_key_path();
    if p.exists() {
        return SecretKey::load(&p).with_context(|| format!("cannot use the default signing key {}", p.display()));
    }
    let k =
        SecretKey::generate(&p).with_context(|| format!("cannot create the default signing key {}", p.display()))?;
    eprintln!(
        "custody: created signing key {} at {} (mode 0600); public key: {}\n         pin that public key wherever bundles are verified (custody verify --trusted-key ...)",
        k.id(),
        Untrusted::path(&p),
        Untrusted::path(&pub_path_for(&p))
    );
    Ok(k)
}

fn trust_from(paths: &[PathBuf]) -> Result<Trust> {
    let mut keys = Vec::new();
    for p in paths {
        keys.push(PublicKey::load(p).with_context(|| format!("cannot use trusted key {}", p.display()))?);
    }
    if keys.is_empty() {
        let def = pub_path_for(&custody::default_key_path());
        if def.exists() {
            keys.push(
                PublicKey::load(&def)
                    .with_context(|| format!("cannot use the default public key {}", def.display()))?,
            );
        }
    }
    Ok(Trust::new(keys))
}

fn cmd_preserve(a: cli::PreserveArgs) -> Result<u8> {
    let category = a.category.as_deref().map(str::parse::<Category>).transpose()?;
    let side_effect: SideEffect = a.side_effect.parse()?;
    let mut sources = Vec::new();
    for s in &a.source {
        sources.push(s.parse()?);
    }
    if a.incident_dir.is_none() && sources.is_empty() && a.spec.is_none() {
        bail!("nothing to preserve: give --incident-dir DIR, --source KIND=PATH and/or --spec FILE");
    }
    let mut formats = Vec::new();
    for f in &a.formats {
        formats.push(f.parse()?);
    }
    let mut not_applicable = a.not_applicable.clone();
    if a.no_approval_path {
        not_applicable.extend(["approval_path", "approval_id", "approvals"].map(String::from));
    }
    let ids = [
        (IdentName::TraceId, &a.trace_id),
        (IdentName::SessionId, &a.session_id),
        (IdentName::AgentId, &a.agent_id),
        (IdentName::ToolPrincipal, &a.tool_principal),
        (IdentName::ApprovalId, &a.approval_id),
        (IdentName::BundleId, &a.bundle_id),
        (IdentName::ChangeId, &a.change_id),
        (IdentName::RolloutWave, &a.rollout_wave),
        (IdentName::IdempotencyKey, &a.idempotency_key),
    ];
    let identifiers: Vec<(IdentName, String)> =
        ids.iter().filter_map(|(n, v)| v.as_ref().map(|v| (*n, v.clone()))).collect();
    let seeds = a.seed.clone();
    // A seed that cannot be a value of its kind is refused before the store is touched
    // (preserve checks them again, with the spec's).
    {
        use custody::collect::analysis::SeedOrigin;
        use custody::collect::analyze::normalize_seed;
        for (n, v) in &identifiers {
            normalize_seed(Some(*n), v, SeedOrigin::Flag)?;
        }
        for v in &seeds {
            normalize_seed(None, v, SeedOrigin::Flag)?;
        }
    }
    let store = open_store_with(a.store.store.as_deref(), &a.config)?;
    // One runtime for every request of the run: the HTTP clients' pooled connections belong
    // to the runtime that opened them.
    let rt = runtime()?;
    // Say exactly what will protect the objects written now (S3); each object is checked
    // against it after writing, and the preserve fails if it is not locked as said.
    if let Some(p) = rt.block_on(store.protection()) {
        eprintln!("custody: {}", u(&p.describe(store.legal_hold())));
    }
    let key = Arc::new(load_or_create_key(a.key.as_deref())?);
    let progress = custody::progress::Progress::stderr("preserve", 0, 0, a.quiet);
    let req = PreserveRequest {
        incident_dir: a.incident_dir.clone(),
        sources,
        identifiers,
        seeds,
        merge_window_ms: Some(a.merge_window),
        category,
        side_effect,
        notes: a.note.clone(),
        not_applicable,
        follow_symlinks: a.follow_symlinks,
        level: a.level,
        adopt_min_age: Some(std::time::Duration::from_secs(a.adopt_min_age)),
        formats,
        field_map: a.field_map.clone(),
        spec: a.spec.clone(),
        analyze: !a.no_analyze,
        progress: progress.clone(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let done = rt.block_on(preserve(&store, key.clone(), req, Clock::from_env()));
    progress.finish();
    let done = done.context("preserve failed")?;
    output::swept(&done.swept);
    output::store_notes(&done.store_notes);
    output::adoptions(&done.adopted);
    output::preserved(&store, &done, &key, started.elapsed(), a.json)?;
    // The process exits now: freeing the manifest entry by entry would only delay it (~30 ms
    // for 100 000 files).
    std::mem::forget(done);
    Ok(0)
}

enum Target {
    File(PathBuf),
    Stored(Store, BundleId),
}

fn target(t: &str, store: Option<&str>) -> Result<Target> {
    target_with(t, store, &cli::StoreConfigArgs::default())
}

fn target_with(t: &str, store: Option<&str>, config: &cli::StoreConfigArgs) -> Result<Target> {
    match store {
        Some(url) => {
            let d = Sha256::parse(t)
                .with_context(|| format!("with --store, `{t}` must be a bundle digest (sha256:<hex> or <hex>)"))?;
            Ok(Target::Stored(open_existing_store_with(Some(url), config)?, BundleId(d)))
        }
        None => {
            let p = PathBuf::from(t);
            if !p.is_file() {
                bail!(
                    "bundle file {} does not exist (to read from a store, add --store URL and give the digest)",
                    p.display()
                );
            }
            Ok(Target::File(p))
        }
    }
}

/// A verified target: the report and the manifest if it parsed.
struct Verified {
    report: verify::Report,
    manifest: Option<custody::bundle::manifest::Manifest>,
}

fn verify_target(rt: &tokio::runtime::Runtime, t: &Target, trust: &Trust) -> Result<Verified> {
    verify_target_with(rt, t, trust, &verify::Options::default())
}

fn verify_target_with(
    rt: &tokio::runtime::Runtime,
    t: &Target,
    trust: &Trust,
    opts: &verify::Options,
) -> Result<Verified> {
    let opts = opts.clone();
    Ok(match t {
        Target::File(p) => {
            let (report, manifest) =
                verify::verify_file(p, trust, &opts).with_context(|| format!("cannot read {}", p.display()))?;
            Verified { report, manifest }
        }
        Target::Stored(store, id) => {
            let (report, manifest) = rt.block_on(verify::verify_in_store(store, id, trust, &opts))?;
            Verified { report, manifest }
        }
    })
}

fn cmd_verify(a: cli::VerifyArgs) -> Result<u8> {
    let trust = trust_from(&a.trusted_key)?;
    let rt = runtime()?;
    let expected_digest = match a.expect_digest.as_deref() {
        Some(d) => Some(BundleId(
            Sha256::parse(d)
                .with_context(|| format!("--expect-digest `{d}` is not a digest (sha256:<hex> or <hex>)"))?,
        )),
        None => None,
    };
    let opts = verify::Options { max_skew: a.max_skew, expected_digest, ..verify::Options::default() };
    let total = match (&a.target, &a.store) {
        (Some(t), None) => std::fs::metadata(t).map(|m| m.len()).unwrap_or(0),
        _ => 0,
    };
    let meter = custody::progress::Progress::stderr("verify", total, 0, a.quiet).install_global();
    let cp = match &a.checkpoint {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read checkpoint {}", p.display()))?),
        None => None,
    };
    let report = if a.all {
        let store = open_existing_store_with(a.store.as_deref(), &a.config)?;
        rt.block_on(verify::verify_all_with(&store, &trust, &opts, !a.quick, cp.as_deref()))?
    } else {
        let Some(t) = a.target.as_deref() else {
            bail!("verify needs a BUNDLE_FILE, or --store URL with a DIGEST or --all")
        };
        match target_with(t, a.store.as_deref(), &a.config)? {
            Target::Stored(store, id) => {
                rt.block_on(verify::verify_in_store_with(&store, &id, &trust, &opts, cp.as_deref()))?.0
            }
            file => verify_target_with(&rt, &file, &trust, &opts)?.report,
        }
    };
    drop(meter);
    output::report(&report, a.json)?;
    Ok(if report.intact() { 0 } else { 1 })
}

fn cmd_store_init(a: cli::StoreInitArgs) -> Result<u8> {
    let store = open_store_with(Some(&a.url), &a.config)?;
    let rt = runtime()?;
    let checks = rt.block_on(custody::store::inspect::inspect(&store))?;
    output::store_checks(&store, &checks, a.json)?;
    let broken = checks.iter().any(|c| c.status == custody::store::inspect::Promise::Broken);
    Ok(if broken { 1 } else { 0 })
}

fn cmd_store_repair(a: cli::StoreRepairArgs) -> Result<u8> {
    let store = open_existing_store_with(Some(&a.url), &a.config)?;
    let key = load_or_create_key(a.key.as_deref())?;
    let rt = runtime()?;
    output::swept(&store.sweep_staging(custody::store::STALE_STAGING));
    let (removed, left) = rt.block_on(store.sweep_uploads(std::time::Duration::from_secs(a.uploads_min_age)));
    output::store_notes(&removed);
    output::store_notes(&left);
    let done = rt.block_on(custody::preserve::adopt_unreferenced(
        &store,
        &key,
        std::time::Duration::from_secs(a.min_age),
        &Clock::from_env(),
    ))?;
    output::repaired(&store, &done, a.json)?;
    Ok(if done.iter().all(|d| d.result.is_ok()) { 0 } else { 1 })
}

fn cmd_checkpoint(a: cli::CheckpointArgs) -> Result<u8> {
    let store = open_existing_store_with(a.store.store.as_deref(), &a.config)?;
    let key = load_or_create_key(a.key.as_deref())?;
    let rt = runtime()?;
    let (cp, bytes) = rt.block_on(custody::store::checkpoint::take(&store, &key, chrono::Utc::now()))?;
    if let Some(p) = &a.out {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .with_context(|| format!("cannot create checkpoint file {} (it must not exist)", p.display()))?;
        f.write_all(&bytes).with_context(|| format!("cannot write {}", p.display()))?;
        f.sync_all().with_context(|| format!("cannot sync {}", p.display()))?;
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
    eprintln!(
        "custody: checkpoint of {} at position {} signed by {}; keep it outside the store and audit later with `custody verify --store URL --all --checkpoint FILE`",
        u(store.url()),
        cp.position,
        key.id()
    );
    Ok(0)
}

/// Largest `analysis.json` that `show` loads to print (the analyzer's lists are capped: a
/// 100 000-file incident writes ~300 KB). Held with the manifest, it counts in show's memory
/// bound (docs/format-reader-rules.md); its parsed form shares the manifest's parse bound.
const SHOW_MAX_ANALYSIS: u64 = 32 << 20;

fn cmd_show(a: cli::ShowArgs) -> Result<u8> {
    let trust = trust_from(&a.trusted_key)?;
    let rt = runtime()?;
    // show prints the analysis too: keep analysis.json's bytes (checked against the manifest).
    let mut opts = verify::Options::default();
    opts.limits.keep_analysis = SHOW_MAX_ANALYSIS;
    let v = verify_target_with(&rt, &target(&a.target, a.store.as_deref())?, &trust, &opts)?;
    output::show(&v.report, v.manifest.as_ref(), a.json)?;
    // show verifies, so it keeps verify's contract: 1 for a bundle that did not verify (an
    // untrusted signer too), even though it still shows what the manifest says.
    Ok(if v.report.intact() { 0 } else { 1 })
}

fn cmd_extract(a: cli::ExtractArgs) -> Result<u8> {
    let trust = trust_from(&a.trusted_key)?;
    let rt = runtime()?;
    let t = target(&a.target, a.store.as_deref())?;
    let Verified { report, manifest } = verify_target(&rt, &t, &trust)?;
    let (Some(m), true) = (&manifest, report.intact()) else {
        eprint!("{}", report.to_human());
        eprintln!("custody: refusing to extract: the bundle did not verify (nothing was written)");
        return Ok(1);
    };
    // Only extract needs the bytes again (verify/show do not fetch twice). Extraction
    // re-hashes every blob, so an object swapped since verification writes nothing.
    let fetched = match &t {
        Target::File(_) => None,
        Target::Stored(store, id) => rt.block_on(store.fetch_bundle(id))?,
    };
    let path = match (&t, &fetched) {
        (Target::File(p), _) => p.clone(),
        (Target::Stored(..), Some(f)) => f.path().to_path_buf(),
        (Target::Stored(store, id), None) => bail!("bundle {id} disappeared from {} after verification", store.url()),
    };
    let done = custody::extract::extract(&path, m, &a.to, &verify::Options::default().limits)?;
    output::extracted(&a.to, &report, &done, a.json)?;
    Ok(0)
}
