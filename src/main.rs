//! The `custody` binary: parse arguments, call the library, print, and map the outcome to an
//! exit code (0 success / intact, 1 verification findings, 2 usage or operational error).

#![forbid(unsafe_code)]

// Stops this build if the library's hidden writers become public (without `internals`,
// the feature custody's own tests turn on, this is how a tool sees the library).
#[cfg(not(feature = "internals"))]
mod api_guard;
mod cli;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Deserialize as _;

use custody::clock::Clock;
use custody::digest::{BundleId, Sha256};
use custody::keys::{pub_path_for, PublicKey, SecretKey};
use custody::manifest::{Category, IdentName, SideEffect};
use custody::preserve::{preserve, PreserveRequest};
use custody::store::config::StoreOptions;
use custody::store::Store;
use custody::untrusted::{untrusted as u, Untrusted};
use custody::verify::{self, Pin, Trust};
use custody::{Bundle, OpenError, VerifiedBundle};

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
    let formats = custody::preserve::Format::help();
    let help = format!(
        "Scan SELECTOR as FORMAT instead of detecting it (repeatable). SELECTOR is a bundle path (logs/tool_calls.jsonl), a folder (logs) or an evidence kind; FORMAT is one of:\n{formats}"
    );
    // analyze takes the same overrides (its SELECTOR names the original's paths).
    Cli::command()
        .mut_subcommand("preserve", |c| c.mut_arg("formats", |a| a.long_help(help.clone())))
        .mut_subcommand("analyze", |c| c.mut_arg("formats", |a| a.long_help(help.clone())))
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
    print_timings_if_asked();
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

/// With `CUSTODY_TIMINGS=1`, the library's timing events ([`custody::TIMING`]: the phases of
/// a preserve, the sealer's and the analysis' waits and memory) on stderr, for the benchmark
/// notes in docs/performance.md.
fn print_timings_if_asked() {
    if !std::env::var_os("CUSTODY_TIMINGS").is_some_and(|v| v == "1") {
        return;
    }
    use tracing_subscriber::layer::SubscriberExt as _;
    let only_timings = tracing_subscriber::filter::Targets::new().with_target(custody::TIMING, tracing::Level::INFO);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_level(false);
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(fmt).with(only_timings));
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
        Command::Timeline(a) => cmd_timeline(a),
        Command::Export(a) => cmd_export(a),
        Command::Search(a) => cmd_search(a),
        Command::Analyze(a) => cmd_analyze(*a),
        Command::Completions(a) => {
            let shell = match a.shell {
                cli::Shell::Bash => clap_complete::Shell::Bash,
                cli::Shell::Zsh => clap_complete::Shell::Zsh,
                cli::Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command(), "custody", &mut out);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
            Ok(0)
        }
        Command::Man(a) => cmd_man(a),
        Command::Store(cli::StoreCommand::Init(a)) => cmd_store_init(a),
        Command::Store(cli::StoreCommand::Repair(a)) => cmd_store_repair(a),
        Command::Checkpoint(a) => cmd_checkpoint(a),
        Command::Timestamp(a) => cmd_timestamp(a),
        Command::Witness(cli::WitnessCommand::Cosign(a)) => cmd_witness_cosign(a),
        Command::List(a) => cmd_list(a),
    }
}

/// `list` checks each entry (signature by a pinned key, position, link to the entry before):
/// exit 1 when one does not check out, as every command that verifies.
fn cmd_list(a: cli::ListArgs) -> Result<u8> {
    let trust = trust_from(&a.trust)?;
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
    let details: Vec<Option<serde_json::Value>> = if a.ledger_only {
        vec![None; entries.len()]
    } else {
        // The ledger's supplement links, by original, gathered once (not a scan per entry).
        let mut supplements: std::collections::HashMap<BundleId, Vec<String>> = Default::default();
        for (_, le) in entries.iter().filter_map(|e| e.parsed.as_ref().ok()) {
            if let Some(of) = le.supplement_of {
                supplements.entry(of).or_default().push(le.bundle.to_string());
            }
        }
        entries.iter().map(|e| bundle_details(&rt, &store, &supplements, e, &trust)).collect::<Result<_>>()?
    };
    output::list(&store, &entries, &findings, &details, &trust, a.json)?;
    let failed = findings.iter().flatten().any(|f| f.level == verify::Level::Error)
        || details.iter().flatten().any(|d| d["verified"] != true || d["links"]["signed"] == false);
    Ok(if failed { 1 } else { 0 })
}

/// What tells one bundle of a ledger entry from another: the bundle is verified (bound to the
/// entry's digest), then its category, seeds, side effect, files, first note, and the
/// supplement links of the ledger (`supplements`: the ledger's links, by original), with
/// whether the verified manifest signs the same link as the entry. `None` for an entry that
/// cannot be read.
fn bundle_details(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    supplements: &std::collections::HashMap<BundleId, Vec<String>>,
    e: &custody::store::ledger::StoredEntry,
    trust: &Trust,
) -> Result<Option<serde_json::Value>> {
    use serde_json::json;
    let Ok((_, le)) = &e.parsed else { return Ok(None) };
    // `signed`: null until the bundle verified (the link is then the ledger's claim alone).
    let mut links = json!({
        "supplement_of": le.supplement_of.as_ref().map(|b| b.to_string()),
        "supplements": supplements.get(&le.bundle).cloned().unwrap_or_default(),
        "signed": null,
    });
    let Some(fetched) = rt.block_on(store.fetch_bundle(&le.bundle))? else {
        return Ok(Some(json!({"verified": false, "problem": "the bundle is missing from the store", "links": links})));
    };
    let mut opts = verify::Options { expected_digest: Some(le.bundle), ..verify::Options::default() };
    opts.limits.keep_analysis = SHOW_MAX_ANALYSIS;
    let (report, manifest) = verify::verify_file(fetched.path(), trust, &opts)
        .with_context(|| format!("cannot read bundle {}", le.bundle))?;
    let Some(m) = manifest.filter(|_| report.intact()) else {
        let failed: Vec<&str> =
            report.checks.iter().filter(|c| c.status == verify::report::CheckStatus::Fail).map(|c| c.name).collect();
        return Ok(Some(json!({
            "verified": false,
            "problem": format!("the bundle did not verify ({}): `custody verify --store URL {}` lists the findings", failed.join(", "), le.bundle),
            "links": links,
        })));
    };
    // The manifest is read here anyway: the link the ledger records is compared with the one
    // the bundle signs (what verify's P4 checks), so `list` does not print the ledger's word
    // as a fact.
    links["signed"] = json!(m.supplement_of.as_ref().map(|s| s.bundle) == le.supplement_of);
    links["manifest_supplement_of"] = json!(m.supplement_of.as_ref().map(|s| s.bundle.to_string()));
    let a = m.analysis.as_ref();
    let seeds = custody::analyze::seeds_of(&m);
    Ok(Some(json!({
        "verified": true,
        "category": m.incident.category,
        "side_effect": m.incident.side_effect.as_str(),
        "analysis_side_effect": a.and_then(|a| a["side_effect"]["status"].as_str()),
        "seeds": seeds,
        "files": m.entries.len(),
        "evidence_bytes": m.entries.iter().map(|e| e.size).fold(0u64, u64::saturating_add),
        // The responder's first note, never custody's (v3 seals them apart; in older bundles
        // custody's are told by their prefix).
        "note": m.incident.notes_by_author().0.first().map(|n| n.lines().next().unwrap_or("").to_string()),
        "links": links,
    })))
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
        tsa: None,
        require_timestamp: None,
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
    open(&url, &opts).with_context(|| format!("cannot open store {}", custody::store::redact(&url)))
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

/// The pinned keys of a command that verifies: `--trusted-key` (every role),
/// `--trusted-ledger-key` (ledger entries and checkpoints only), `--trusted-keys FILE` (roles
/// and validity per key); none of them: the local default key, for every role.
fn trust_from(t: &cli::TrustArgs) -> Result<Trust> {
    let mut trust = Trust::default();
    for p in &t.trusted_key {
        trust.add(Pin::any(PublicKey::load(p).with_context(|| format!("cannot use trusted key {}", p.display()))?));
    }
    for p in &t.trusted_ledger_key {
        trust.add(Pin::ledger(
            PublicKey::load(p).with_context(|| format!("cannot use trusted ledger key {}", p.display()))?,
        ));
    }
    for f in &t.trusted_keys {
        for pin in Trust::load_file(f)? {
            trust.add(pin);
        }
    }
    if trust.is_empty() {
        let def = pub_path_for(&custody::default_key_path());
        if def.exists() {
            trust.add(Pin::any(
                PublicKey::load(&def)
                    .with_context(|| format!("cannot use the default public key {}", def.display()))?,
            ));
        }
    }
    Ok(trust)
}

/// The separate ledger key (`--ledger-key`, `$CUSTODY_LEDGER_KEY`), if any. Never created: a
/// ledger key is made on purpose (`custody keygen`), and kept where the collector is not.
fn load_ledger_key(a: &cli::LedgerKeyArg) -> Result<Option<SecretKey>> {
    a.ledger_key
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| SecretKey::load(p).with_context(|| format!("cannot use ledger key {}", p.display())))
        .transpose()
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
        use custody::analysis::SeedOrigin;
        use custody::preserve::normalize_seed;
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
    let ledger_key = load_ledger_key(&a.ledger)?.map(Arc::new);
    let progress = output::progress::stderr("preserve", 0, 0, a.quiet);
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
        tsa: a.tsa.clone().or(store_options(&a.config)?.tsa),
        ledger_key,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let done = rt.block_on(preserve(&store, key.clone(), req, Clock::from_env()));
    progress.finish();
    let done = done.context("preserve failed")?;
    output::swept(&done.swept);
    output::store_notes(&done.store_notes);
    output::adoptions(&done.adopted);
    if let Some(p) = &done.timestamp_problem {
        // Never fatal: the bundle is sealed, stored and recorded; only its time is unattested.
        eprintln!(
            "custody: warning: the bundle has no RFC 3161 timestamp: {}; it is stored and recorded all the same — run `custody timestamp --store URL` when the TSA is back",
            u(p)
        );
    }
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
    manifest: Option<custody::manifest::Manifest>,
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
    let trust = trust_from(&a.trust)?;
    let rt = runtime()?;
    let expected_digest = match a.expect_digest.as_deref() {
        Some(d) => Some(BundleId(
            Sha256::parse(d)
                .with_context(|| format!("--expect-digest `{d}` is not a digest (sha256:<hex> or <hex>)"))?,
        )),
        None => None,
    };
    let timestamp_token = match &a.timestamp {
        Some(p) => Some(read_bounded(p, custody::tsa::MAX_TOKEN, "timestamp token")?),
        None => None,
    };
    let opts = verify::Options {
        max_skew: a.max_skew,
        expected_digest,
        trusted_tsa: trusted_tsa_from(&a.trusted_tsa)?,
        require_timestamp: a.require_timestamp || store_options(&a.config)?.require_timestamp == Some(true),
        timestamp_token,
        ..verify::Options::default()
    };
    let total = match (&a.target, &a.store) {
        (Some(t), None) => std::fs::metadata(t).map(|m| m.len()).unwrap_or(0),
        _ => 0,
    };
    let meter = output::progress::stderr("verify", total, 0, a.quiet).install_global();
    let cp = match &a.checkpoint {
        Some(p) => Some(anchor_from(p, &a.witness_key, a.witnesses, &trust)?),
        None => None,
    };
    let report = if a.all {
        let store = open_existing_store_with(a.store.as_deref(), &a.config)?;
        rt.block_on(verify::verify_all_anchored(&store, &trust, &opts, !a.quick, cp.as_ref()))?
    } else {
        let Some(t) = a.target.as_deref() else {
            bail!("verify needs a BUNDLE_FILE, or --store URL with a DIGEST or --all")
        };
        match target_with(t, a.store.as_deref(), &a.config)? {
            Target::Stored(store, id) => {
                rt.block_on(verify::verify_in_store_anchored(&store, &id, &trust, &opts, cp.as_ref()))?.0
            }
            file => verify_target_with(&rt, &file, &trust, &opts)?.report,
        }
    };
    drop(meter);
    output::report(&report, a.json)?;
    Ok(if report.intact() { 0 } else { 1 })
}

/// The pinned TSA certificates of `--trusted-tsa`.
fn trusted_tsa_from(paths: &[PathBuf]) -> Result<Vec<custody::tsa::TrustedTsa>> {
    let mut out = Vec::new();
    for p in paths {
        let pem = read_bounded(p, 1 << 20, "TSA certificate")?;
        let origin = p.display().to_string();
        out.extend(
            custody::tsa::TrustedTsa::from_pem(&pem, &origin)
                .with_context(|| format!("cannot use TSA certificate {}", Untrusted::path(p)))?,
        );
    }
    Ok(out)
}

/// The bytes of file `p`, refused above `max` bytes.
fn read_bounded(p: &Path, max: usize, what: &str) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p).with_context(|| format!("cannot read {what} {}", Untrusted::path(p)))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, max as u64 + 1), &mut bytes)
        .with_context(|| format!("cannot read {what} {}", Untrusted::path(p)))?;
    if bytes.len() > max {
        bail!("{what} {} is larger than {max} bytes", Untrusted::path(p));
    }
    Ok(bytes)
}

/// `timestamp`: exit 1 when a bundle was left without a token.
fn cmd_timestamp(a: cli::TimestampArgs) -> Result<u8> {
    let Some(url) = a.tsa.clone().or(store_options(&a.config)?.tsa) else {
        bail!("no TSA to ask: give --tsa URL, or set `tsa` in the store config");
    };
    let store = open_existing_store_with(a.store.store.as_deref(), &a.config)?;
    let trust = trust_from(&a.trust)?;
    let rt = runtime()?;
    let added = rt.block_on(custody::tsa::add_missing(&store, &url, &trust))?;
    let mut failed = 0usize;
    for x in &added {
        match x {
            custody::tsa::Added::Stamped { bundle, stamp } => println!(
                "timestamped {bundle} at {} by {}: {} (added later: the ledger entry does not reference it)",
                stamp.attested.gen_time,
                u(&stamp.attested.tsa),
                u(&stamp.key)
            ),
            custody::tsa::Added::Failed { bundle, why } => {
                failed += 1;
                eprintln!("custody: {bundle} NOT timestamped: {}", u(why));
            }
            _ => {}
        }
    }
    eprintln!(
        "custody: {} token(s) added, {failed} bundle(s) left without one",
        added.iter().filter(|x| matches!(x, custody::tsa::Added::Stamped { .. })).count()
    );
    Ok(if failed == 0 { 0 } else { 1 })
}

/// The checkpoint `verify --checkpoint` compares with, and the witnesses it must carry (all
/// of them unless `--witnesses K` says how many).
fn anchor_from(
    path: &Path,
    witness_keys: &[PathBuf],
    required: Option<u32>,
    trust: &verify::Trust,
) -> Result<verify::Anchor> {
    // Read bounded: a checkpoint is at most 64 KiB; one byte more is enough to refuse it.
    let mut checkpoint = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?,
            custody::store::checkpoint::MAX_CHECKPOINT as u64 + 1,
        ),
        &mut checkpoint,
    )
    .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let mut witnesses: Vec<PublicKey> = Vec::new();
    for p in witness_keys {
        let k = PublicKey::load(p).with_context(|| format!("cannot use witness key {}", p.display()))?;
        // A witness is a second party: whoever holds a store key could mint its cosignature.
        if trust.keys().iter().any(|t| t.id == k.id) {
            bail!(
                "witness key {} is also a trusted store key: a cosignature by the signer is no witness; give the witness's own public key",
                p.display()
            );
        }
        // The same key twice is one witness.
        if !witnesses.iter().any(|w| w.id == k.id) {
            witnesses.push(k);
        }
    }
    let required = match required {
        None => witnesses.len(),
        Some(k) if k as usize > witnesses.len() => {
            bail!(
                "--witnesses {k} asks for more cosignatures than the {} distinct --witness-key given",
                witnesses.len()
            )
        }
        Some(k) => k as usize,
    };
    // The checkpoint's RFC 3161 token, where `custody checkpoint --tsa` wrote it.
    let tsr = custody::tsa::checkpoint_token_path(path);
    let timestamp = match tsr.is_file() {
        true => Some(read_bounded(&tsr, custody::tsa::MAX_TOKEN, "checkpoint timestamp token")?),
        false => None,
    };
    Ok(verify::Anchor { checkpoint, witnesses, required, timestamp })
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
    let ledger_key = load_ledger_key(&a.ledger)?;
    if ledger_key.as_ref().is_some_and(|l| l.id() == key.id()) {
        bail!("--ledger-key is the signing key itself: a separate ledger key must be another key, or leave out --ledger-key");
    }
    let rt = runtime()?;
    output::swept(&store.sweep_staging(custody::store::STALE_STAGING));
    let (removed, left) = rt.block_on(store.sweep_uploads(std::time::Duration::from_secs(a.uploads_min_age)));
    output::store_notes(&removed);
    output::store_notes(&left);
    let done = rt.block_on(custody::preserve::adopt_unreferenced(
        &store,
        &key,
        ledger_key.as_ref(),
        std::time::Duration::from_secs(a.min_age),
        &Clock::from_env(),
    ))?;
    output::repaired(&store, &done, a.json)?;
    Ok(if done.iter().all(|d| d.result.is_ok()) { 0 } else { 1 })
}

fn cmd_checkpoint(a: cli::CheckpointArgs) -> Result<u8> {
    let store = open_existing_store_with(a.store.store.as_deref(), &a.config)?;
    // A checkpoint is the ledger's statement: signed by the ledger key when there is one.
    let key = match load_ledger_key(&a.ledger)? {
        Some(k) => k,
        None => load_or_create_key(a.key.as_deref())?,
    };
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
    let tsa = match &a.tsa {
        Some(t) => Some(t.clone()),
        None if a.out.is_some() => store_options(&a.config)?.tsa,
        None => None,
    };
    if let (Some(url), Some(out)) = (tsa, &a.out) {
        let tsr = custody::tsa::checkpoint_token_path(out);
        match rt.block_on(custody::tsa::request_checkpoint_token(&url, &bytes)) {
            Ok((token, attested)) => {
                write_new(&tsr, &token, "checkpoint timestamp token")?;
                eprintln!(
                    "custody: checkpoint timestamped at {} by {}: {}",
                    attested.gen_time,
                    u(&attested.tsa),
                    Untrusted::path(&tsr)
                );
            }
            // The checkpoint itself is written: only its time is unattested.
            Err(e) => {
                eprintln!("custody: warning: the checkpoint has no RFC 3161 timestamp: {}", u(&custody::error_text(&e)))
            }
        }
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
    eprintln!(
        "custody: checkpoint of {} (store {}) at position {} signed by {}; keep it outside the store, have witnesses cosign it (`custody witness cosign`), and audit later with `custody verify --store URL --all --checkpoint FILE`",
        u(store.url()),
        cp.store_id,
        cp.position,
        key.id()
    );
    Ok(0)
}

/// `witness cosign`: exit 1 when the witness refuses the checkpoint, 2 on other errors.
fn cmd_witness_cosign(a: cli::WitnessCosignArgs) -> Result<u8> {
    let key = SecretKey::load(&a.key).with_context(|| format!("cannot use witness key {}", a.key.display()))?;
    let mut trusted = Vec::new();
    for p in &a.trusted_key {
        trusted.push(PublicKey::load(p).with_context(|| format!("cannot use trusted key {}", p.display()))?);
    }
    if trusted.iter().any(|k| k.id == key.id()) {
        bail!(
            "the witness key {} is one of the --trusted-key store keys: a witness is a second party with its own key",
            key.id()
        );
    }
    let name = a.name.clone().unwrap_or_else(|| custody::witness::default_name(&key.public));
    if !custody::witness::valid_name(&name) {
        bail!("--name `{}` is not a key name: non-empty, without spaces or `+`", u(&name));
    }
    let bytes = {
        let mut b = Vec::new();
        let f = std::fs::File::open(&a.checkpoint)
            .with_context(|| format!("cannot read checkpoint {}", a.checkpoint.display()))?;
        std::io::Read::read_to_end(
            &mut std::io::Read::take(f, custody::store::checkpoint::MAX_CHECKPOINT as u64 + 1),
            &mut b,
        )
        .with_context(|| format!("cannot read checkpoint {}", a.checkpoint.display()))?;
        b
    };
    let store = match &a.store {
        Some(url) => Some(open_existing_store_with(Some(url), &a.config)?),
        None => None,
    };
    let rt = runtime()?;
    let witness = custody::witness::Witness { key: &key, name, state: &a.state, new_state: a.new_state };
    let done =
        match rt.block_on(custody::witness::cosign(&bytes, &witness, &trusted, store.as_ref(), chrono::Utc::now())) {
            Ok(d) => d,
            Err(e) if e.is_refusal() => {
                eprintln!("custody: witness: {}", u(&custody::error_text(&e)));
                return Ok(1);
            }
            Err(e) => return Err(e.into()),
        };
    match &a.out {
        Some(p) => {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .with_context(|| format!("cannot create {} (it must not exist)", p.display()))?;
            f.write_all(&done.bytes).with_context(|| format!("cannot write {}", p.display()))?;
            f.sync_all().with_context(|| format!("cannot sync {}", p.display()))?;
        }
        None => std::io::Write::write_all(&mut std::io::stdout().lock(), &done.bytes)?,
    }
    let since = match &done.previous {
        None => "the first checkpoint of this store for this witness".to_string(),
        Some(p) if p.position == done.checkpoint.position => format!("the head it cosigned at {}", p.cosigned_at),
        Some(p) => format!("extending position {} cosigned at {}", p.position, p.cosigned_at),
    };
    eprintln!(
        "custody: witness {} cosigned the checkpoint of store {} at position {} ({since}; {})",
        key.id(),
        done.checkpoint.store_id,
        done.checkpoint.position,
        if done.chain_checked {
            "entry and chain checked in the store"
        } else {
            "store not read: give --store to check the entry is in it"
        }
    );
    Ok(0)
}

/// Largest `analysis.json` that `show` loads to print (the analyzer's lists are capped: a
/// 100 000-file incident writes ~300 KB). Held with the manifest, it counts in show's memory
/// bound (docs/format-reader-rules.md); its parsed form shares the manifest's parse bound.
/// The library's bound for `Bundle::open`, so `show`, `list`, `search` and `timeline` agree.
const SHOW_MAX_ANALYSIS: u64 = custody::MAX_ANALYSIS;

fn cmd_show(a: cli::ShowArgs) -> Result<u8> {
    let trust = trust_from(&a.trust)?;
    let rt = runtime()?;
    // show prints the analysis too: keep analysis.json's bytes (checked against the manifest).
    let mut opts = verify::Options::default();
    opts.limits.keep_analysis = SHOW_MAX_ANALYSIS;
    let t = target(&a.target, a.store.as_deref())?;
    let v = verify_target_with(&rt, &t, &trust, &opts)?;
    let supplements = supplements_of_target(&rt, &t, &trust)?;
    output::show(&v.report, v.manifest.as_ref(), &supplements, a.store.as_deref(), a.json)?;
    // show verifies, so it keeps verify's contract: 1 for a bundle that did not verify (an
    // untrusted signer too), even though it still shows what the manifest says.
    Ok(if v.report.intact() { 0 } else { 1 })
}

fn cmd_extract(a: cli::ExtractArgs) -> Result<u8> {
    let trust = trust_from(&a.trust)?;
    let rt = runtime()?;
    let t = target(&a.target, a.store.as_deref())?;
    // Only the files are wanted: the analysis is verified (its digest), not parsed.
    let opts = verify::Options::default();
    let Some(bundle) = open_target(&rt, &t, &trust, &opts, "extract")? else { return Ok(1) };
    // Extraction re-hashes every blob, so a bundle file swapped since verification writes
    // nothing.
    let done = bundle.extract(&a.to)?;
    output::extracted(&a.to, bundle.report(), &done, a.json)?;
    Ok(0)
}

/// Opens (verifies) a target: a bundle that does not verify is refused, its report on
/// standard error, `None` (exit 1, as every command that verifies).
fn open_target(
    rt: &tokio::runtime::Runtime,
    t: &Target,
    trust: &Trust,
    opts: &verify::Options,
    what: &str,
) -> Result<Option<VerifiedBundle>> {
    let opened = match t {
        Target::File(p) => Bundle::open_with(p, trust, opts),
        Target::Stored(store, id) => rt.block_on(Bundle::open_in_store_with(store, id, trust, opts)),
    };
    match opened {
        Ok(b) => Ok(Some(b)),
        Err(OpenError::NotIntact { report, .. }) => {
            eprint!("{}", report.to_human());
            eprintln!("custody: refusing to {what}: the bundle did not verify (nothing was written)");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// A verified target with its typed `custody-analysis/v2` (show's bound on its size), or
/// `None` when it did not verify (refused as by [`open_target`]).
fn verified_analysis(
    rt: &tokio::runtime::Runtime,
    t: &Target,
    trust: &Trust,
    what: &str,
) -> Result<Option<VerifiedBundle>> {
    let mut opts = verify::Options::default();
    opts.limits.keep_analysis = SHOW_MAX_ANALYSIS;
    let Some(b) = open_target(rt, t, trust, &opts, what)? else { return Ok(None) };
    if let Err(why) = b.analysis() {
        return Err(anyhow::Error::new(why).context(format!("{what} reads the sealed typed analysis")));
    }
    Ok(Some(b))
}

/// The supplements of a target: looked up in its store's ledger (the latest one verified to
/// read its seeds); a bundle file has no ledger to look them up in, and says so.
fn supplements_of_target(
    rt: &tokio::runtime::Runtime,
    t: &Target,
    trust: &Trust,
) -> Result<custody::analyze::Supplements> {
    match t {
        Target::File(_) => Ok(custody::analyze::Supplements::not_looked_up()),
        Target::Stored(store, id) => rt
            .block_on(async {
                let entries = custody::store::ledger::load_all(store).await?;
                custody::analyze::supplements_of(store, &entries, id, trust).await
            })
            .context("cannot look up the bundle's supplements in the store's ledger"),
    }
}

/// Attaches the records a verified timeline's events cite: from the bundle itself, or for a
/// supplement from the original it re-analysed (verified in the same store: a supplement
/// holds no evidence).
fn attach_records(
    rt: &tokio::runtime::Runtime,
    t: &mut custody::timeline::Timeline,
    b: &VerifiedBundle,
    target: &Target,
    trust: &Trust,
) -> Result<()> {
    let Some(s) = b.supplement_of() else {
        return t.attach_records(b).context("cannot read the cited records");
    };
    let Target::Stored(store, _) = target else {
        bail!(
            "this bundle is a supplement of {}: the records its analysis cites are in that bundle; give --store URL and the supplement's digest to read them from there",
            s.bundle
        )
    };
    // Only its files are read: its analysis is verified (its digest), not parsed.
    let opts = verify::Options::default();
    let original = match rt.block_on(Bundle::open_in_store_with(store, &s.bundle, trust, &opts)) {
        Ok(o) => o,
        Err(OpenError::NotIntact { report, .. }) => {
            eprint!("{}", report.to_human());
            bail!("the original {} of this supplement did not verify: its records are not read", s.bundle);
        }
        Err(e) => return Err(e.into()),
    };
    t.attach_records(&original).context("cannot read the cited records")
}

fn rfc3339(flag: &str, v: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&chrono::Utc))
            .with_context(|| format!("{flag} `{}` is not an RFC 3339 time (e.g. 2026-12-03T09:15:00Z)", u(s)))
    })
    .transpose()
}

/// Creates `p` (it must not exist) and writes `bytes`.
fn write_new(p: &Path, bytes: &[u8], what: &str) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p)
        .with_context(|| format!("cannot create {what} {} (it must not exist)", Untrusted::path(p)))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", Untrusted::path(p)))?;
    f.sync_all().with_context(|| format!("cannot sync {}", Untrusted::path(p)))?;
    Ok(())
}

fn cmd_timeline(a: cli::TimelineArgs) -> Result<u8> {
    use custody::analysis::EventKind;
    let filter = custody::timeline::Filter {
        kinds: a.kind.iter().filter_map(|k| EventKind::ALL.into_iter().find(|e| e.as_str() == k)).collect(),
        session: a.session.clone(),
        since: rfc3339("--since", a.since.as_deref())?,
        until: rfc3339("--until", a.until.as_deref())?,
    };
    let trust = trust_from(&a.trust)?;
    let rt = runtime()?;
    let target = target(&a.target, a.store.as_deref())?;
    let Some(v) = verified_analysis(&rt, &target, &trust, "show a timeline")? else {
        return Ok(1);
    };
    let mut t = custody::timeline::Timeline::of(&v, &filter)?;
    t.supplements = supplements_of_target(&rt, &target, &trust)?;
    if a.records || a.html.is_some() {
        attach_records(&rt, &mut t, &v, &target, &trust)?;
    }
    if let Some(p) = &a.html {
        write_new(p, custody::timeline::html::render(&t).as_bytes(), "HTML report")?;
        eprintln!("custody: wrote the HTML report {}", Untrusted::path(p));
    }
    if !a.records {
        t.records = None;
    }
    output::timeline(&t, a.store.as_deref(), a.json)?;
    Ok(0)
}

fn cmd_export(a: cli::ExportArgs) -> Result<u8> {
    let trust = trust_from(&a.trust)?;
    let rt = runtime()?;
    let target = target(&a.target, a.store.as_deref())?;
    let Some(v) = verified_analysis(&rt, &target, &trust, "export")? else {
        return Ok(1);
    };
    let mut t = custody::timeline::Timeline::of(&v, &Default::default())?;
    attach_records(&rt, &mut t, &v, &target, &trust)?;
    if let Some(dir) = &a.otlp {
        let (traces, logs) = custody::export::otlp(&t);
        std::fs::create_dir(dir).with_context(|| {
            format!("cannot create the OTLP directory {} (it must not exist)", Untrusted::path(dir))
        })?;
        write_new(&dir.join("traces.json"), &serde_json::to_vec(&traces)?, "OTLP traces")?;
        write_new(&dir.join("logs.json"), &serde_json::to_vec(&logs)?, "OTLP logs")?;
        let spans = traces["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().map_or(0, Vec::len);
        let records = logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"].as_array().map_or(0, Vec::len);
        println!(
            "wrote {} ({spans} span(s), one per event with a time) and {} ({records} log record(s), one per cited record)",
            Untrusted::path(&dir.join("traces.json")),
            Untrusted::path(&dir.join("logs.json"))
        );
    }
    if let Some(f) = &a.eval_case {
        let case = custody::export::eval_case(&t, &v.analysis()?.memory.read_after_write);
        let mut line = serde_json::to_vec(&case)?;
        line.push(b'\n');
        write_new(f, &line, "eval case")?;
        println!(
            "wrote {} (one eval case, {}, {} expected-behaviour rule(s))",
            Untrusted::path(f),
            custody::export::EVAL_CASE_FORMAT,
            case["expected_behaviour"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(0)
}

/// `analyze`: verify the original in its store, analyze its sealed evidence again and seal
/// the supplement into the same store and ledger ([`custody::analyze`]).
fn cmd_analyze(a: cli::AnalyzeArgs) -> Result<u8> {
    use custody::analysis::SeedOrigin;
    use custody::analyze::{AnalyzeError, AnalyzeRequest};
    use custody::preserve::normalize_seed;
    let Some(url) = a.store.as_deref() else {
        bail!(
            "analyze needs --store URL: the bundle is read from the store, and the supplement is sealed into it and recorded in its ledger next to the original (a bundle file alone has no ledger)"
        )
    };
    let original = Sha256::parse(&a.target)
        .map(BundleId)
        .with_context(|| format!("`{}` must be a bundle digest (sha256:<hex> or <hex>) in the store", u(&a.target)))?;
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
    // Refused before the store is touched, as preserve does.
    for (n, v) in &identifiers {
        normalize_seed(Some(*n), v, SeedOrigin::Flag)?;
    }
    for v in &a.seed {
        normalize_seed(None, v, SeedOrigin::Flag)?;
    }
    let mut formats = Vec::new();
    for f in &a.formats {
        formats.push(f.parse()?);
    }
    let trust = trust_from(&a.trust)?;
    // A store that does not exist is an error (never created for a digest it cannot hold);
    // an existing one is then opened to write, which makes its staging directory if missing.
    open_existing_store_with(Some(url), &a.config)?;
    let store = open_store_with(Some(url), &a.config)?;
    let rt = runtime()?;
    let key = Arc::new(load_or_create_key(a.key.as_deref())?);
    let req = AnalyzeRequest {
        original,
        identifiers,
        seeds: a.seed.clone(),
        merge_window_ms: Some(a.merge_window),
        formats,
        field_map: a.field_map.clone(),
        notes: a.note.clone(),
        level: 3,
        ledger_key: load_ledger_key(&a.ledger)?.map(Arc::new),
    };
    match rt.block_on(custody::analyze::analyze(&store, key.clone(), &trust, req, Clock::from_env())) {
        Ok(done) => {
            output::analyzed(&store, &done, &key, a.json)?;
            Ok(0)
        }
        Err(AnalyzeError::NotIntact { bundle, failed, report }) => {
            // As extract: the report, then the refusal; exit 1 like every command that verifies.
            eprint!("{}", report.to_human());
            eprintln!("custody: refusing to analyze {bundle}: it did not verify ({}); nothing was written", u(&failed));
            Ok(1)
        }
        Err(e) => Err(anyhow::Error::new(e).context("analyze failed")),
    }
}

/// custody(1) from the same clap command as the parser (its help texts, the format list).
fn cmd_man(a: cli::ManArgs) -> Result<u8> {
    let cmd = command();
    match &a.dir {
        Some(dir) => {
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write man pages into {}", Untrusted::path(dir)))?;
            println!("wrote custody.1 and one page per command into {}", Untrusted::path(dir));
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
        }
    }
    Ok(0)
}

/// `search`: every bundle of the ledger is fetched and verified in full (bound to its entry's
/// digest), then its typed analysis is searched. A bundle that cannot be searched is listed
/// with why, and the command exits 1 (a bundle that does not verify is a finding).
fn cmd_search(a: cli::SearchArgs) -> Result<u8> {
    use custody::analysis::{Analysis, ANALYSIS_FORMAT_V2};
    use custody::search::Query;
    use serde_json::json;
    let query = match (&a.host, &a.memory_id, &a.principal, &a.session) {
        (Some(h), ..) => Query::Host(h.clone()),
        (_, Some(m), ..) => Query::MemoryId(m.clone()),
        (_, _, Some(p), _) => Query::Principal(p.clone()),
        (.., Some(s)) => Query::Session(s.clone()),
        _ => bail!("give one of --host, --memory-id, --principal, --session"),
    };
    let trust = trust_from(&a.trust)?;
    let store = open_existing_store_with(a.store.store.as_deref(), &a.config)?;
    let rt = runtime()?;
    let entries = rt.block_on(custody::store::ledger::load_all(&store))?;
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut searched = 0u64;
    for e in &entries {
        let le = match &e.parsed {
            Ok((_, le)) => le,
            Err(_) => {
                skipped.push(json!({"position": e.position, "bundle": null, "why": "the ledger entry cannot be read (custody list says why)"}));
                continue;
            }
        };
        let skip = |why: String| json!({"position": e.position, "bundle": le.bundle.to_string(), "why": why});
        let Some(fetched) = rt.block_on(store.fetch_bundle(&le.bundle))? else {
            skipped.push(skip("the bundle is missing from the store".into()));
            continue;
        };
        let mut opts = verify::Options { expected_digest: Some(le.bundle), ..verify::Options::default() };
        opts.limits.keep_analysis = SHOW_MAX_ANALYSIS;
        let (report, manifest) = verify::verify_file(fetched.path(), &trust, &opts)
            .with_context(|| format!("cannot read bundle {}", le.bundle))?;
        let Some(m) = manifest.filter(|_| report.intact()) else {
            skipped.push(skip(format!(
                "it did not verify: `custody verify --store URL {}` lists the findings",
                le.bundle
            )));
            continue;
        };
        let Some(doc) = m.analysis.as_ref().filter(|d| d["format"].as_str() == Some(ANALYSIS_FORMAT_V2)) else {
            skipped.push(skip(format!("it has no {ANALYSIS_FORMAT_V2} analysis (sealed with --no-analyze, or older)")));
            continue;
        };
        let analysis = match Analysis::deserialize(doc) {
            Ok(x) => x,
            Err(err) => {
                skipped.push(skip(format!("its analysis.json does not match {ANALYSIS_FORMAT_V2}: {err}")));
                continue;
            }
        };
        searched += 1;
        if let Some(h) = custody::search::search(&analysis, &query) {
            found.push(json!({
                "position": e.position, "bundle": le.bundle.to_string(), "sealed_at": m.sealed_at,
                "category": m.incident.category, "session": h.session, "deployment": h.deployment,
                "wave": h.wave, "events": h.events,
            }));
        }
    }
    let distinct = |key: &str| -> Vec<String> {
        let set: std::collections::BTreeSet<String> =
            found.iter().filter_map(|f| f[key].as_str().map(String::from)).collect();
        set.into_iter().collect()
    };
    let doc = json!({
        "format": "custody-search/v1",
        "store": store.url(),
        "query": {"by": query.name(), "value": query.value()},
        "checked": "each bundle: its ledger entry's digest, signature by a pinned key, every blob and analysis.json",
        "bundles": entries.len(),
        "searched": searched,
        "not_searched": skipped,
        "matches": found,
        "sessions": distinct("session"),
        "waves": distinct("wave"),
    });
    output::search(&doc, a.json)?;
    Ok(if doc["not_searched"].as_array().is_some_and(|s| !s.is_empty()) { 1 } else { 0 })
}
