//! The `custody` binary: parse arguments, call the library, print, and map the outcome to an
//! exit code (0 success / intact, 1 verification findings, 2 usage or operational error).

#![forbid(unsafe_code)]

mod cli;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

use custody::bundle::manifest::{Category, IdentName, SideEffect};
use custody::clock::Clock;
use custody::digest::{BundleId, Sha256};
use custody::keys::{pub_path_for, PublicKey, SecretKey};
use custody::preserve::{preserve, PreserveRequest};
use custody::store::Store;
use custody::verify::{self, Trust};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("custody: error: {e:#}");
            ExitCode::from(2)
        }
    }
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
        Command::List(a) => {
            let store = open_store(a.store.store.as_deref())?;
            let rt = runtime()?;
            let entries = rt.block_on(custody::store::ledger::load_all(&store))?;
            output::list(&store, &entries, a.json)?;
            Ok(0)
        }
    }
}

fn open_store(url: Option<&str>) -> Result<Store> {
    let url = url.map(String::from).unwrap_or_else(custody::default_store_url);
    Store::open(&url).with_context(|| format!("cannot open store {url}"))
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
        p.display(),
        pub_path_for(&p).display()
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
    if a.incident_dir.is_none() && sources.is_empty() {
        bail!("nothing to preserve: give --incident-dir DIR and/or --source KIND=PATH");
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
    let identifiers = ids.iter().filter_map(|(n, v)| v.as_ref().map(|v| (*n, v.clone()))).collect();
    let store = open_store(a.store.store.as_deref())?;
    let key = Arc::new(load_or_create_key(a.key.as_deref())?);
    let progress = custody::progress::Progress::stderr("preserve", 0, 0, a.quiet);
    let req = PreserveRequest {
        incident_dir: a.incident_dir.clone(),
        sources,
        identifiers,
        category,
        side_effect,
        notes: a.note.clone(),
        not_applicable: a.not_applicable.clone(),
        follow_symlinks: a.follow_symlinks,
        level: a.level,
        progress: progress.clone(),
        ..Default::default()
    };
    let rt = runtime()?;
    let started = std::time::Instant::now();
    let done = rt.block_on(preserve(&store, key.clone(), req, Clock::from_env()));
    progress.finish();
    let done = done.context("preserve failed; nothing was recorded in the ledger")?;
    output::preserved(&store, &done, &key, started.elapsed(), a.json)?;
    Ok(0)
}

enum Target {
    File(PathBuf),
    Stored(Store, BundleId),
}

fn target(t: &str, store: Option<&str>) -> Result<Target> {
    match store {
        Some(url) => {
            let d = Sha256::parse(t)
                .with_context(|| format!("with --store, `{t}` must be a bundle digest (sha256:<hex> or <hex>)"))?;
            Ok(Target::Stored(open_store(Some(url))?, BundleId(d)))
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

/// A verified target: the report, the manifest if it parsed, and where the bytes are.
struct Verified {
    report: verify::Report,
    manifest: Option<custody::bundle::manifest::Manifest>,
    file: Option<PathBuf>,
    fetched: Option<custody::store::Fetched>,
}

fn verify_target(rt: &tokio::runtime::Runtime, t: &Target, trust: &Trust) -> Result<Verified> {
    let opts = verify::Options::default();
    Ok(match t {
        Target::File(p) => {
            let (report, manifest) =
                verify::verify_file(p, trust, &opts).with_context(|| format!("cannot read {}", p.display()))?;
            Verified { report, manifest, file: Some(p.clone()), fetched: None }
        }
        Target::Stored(store, id) => {
            let (report, manifest) = rt.block_on(verify::verify_in_store(store, id, trust, &opts))?;
            let fetched = rt.block_on(store.fetch_bundle(id))?;
            Verified { report, manifest, file: None, fetched }
        }
    })
}

fn cmd_verify(a: cli::VerifyArgs) -> Result<u8> {
    let trust = trust_from(&a.trusted_key)?;
    let rt = runtime()?;
    let total = match (&a.target, &a.store) {
        (Some(t), None) => std::fs::metadata(t).map(|m| m.len()).unwrap_or(0),
        _ => 0,
    };
    let meter = custody::progress::Progress::stderr("verify", total, 0, a.quiet).install_global();
    let report = if a.all {
        let store = open_store(a.store.as_deref())?;
        rt.block_on(verify::verify_all(&store, &trust, &verify::Options::default(), !a.quick))?
    } else {
        let Some(t) = a.target.as_deref() else {
            bail!("verify needs a BUNDLE_FILE, or --store URL with a DIGEST or --all")
        };
        verify_target(&rt, &target(t, a.store.as_deref())?, &trust)?.report
    };
    drop(meter);
    output::report(&report, a.json)?;
    Ok(if report.intact() { 0 } else { 1 })
}

fn cmd_show(a: cli::ShowArgs) -> Result<u8> {
    let trust = trust_from(&a.trusted_key)?;
    let rt = runtime()?;
    let v = verify_target(&rt, &target(&a.target, a.store.as_deref())?, &trust)?;
    output::show(&v.report, v.manifest.as_ref(), a.json)?;
    Ok(if v.manifest.is_some() { 0 } else { 1 })
}

fn cmd_extract(a: cli::ExtractArgs) -> Result<u8> {
    let trust = trust_from(&a.trusted_key)?;
    let rt = runtime()?;
    let Verified { report, manifest, file, fetched } =
        verify_target(&rt, &target(&a.target, a.store.as_deref())?, &trust)?;
    let (Some(m), true) = (&manifest, report.intact()) else {
        eprint!("{}", report.to_human());
        eprintln!("custody: refusing to extract: the bundle did not verify (nothing was written)");
        return Ok(1);
    };
    let path = file.or_else(|| fetched.as_ref().map(|f| f.path().to_path_buf())).context("bundle disappeared")?;
    let done = custody::extract::extract(&path, m, &a.to, &verify::Options::default().limits)?;
    output::extracted(&a.to, &report, &done, a.json)?;
    Ok(0)
}
