//! `custody analyze`: re-run the analysis on the sealed evidence of a verified bundle and seal
//! the result as a small **supplement** evidence bundle in the same store and ledger.
//!
//! Order: the original is verified in its store (the whole ledger chain, its place in it,
//! every blob, signed by a pinned key); a bundle that does not verify is refused and nothing
//! is written. Its blobs are then read again from the store's object — never from the incident
//! directory it was collected from — each one hashed as it is read and checked against the
//! verified manifest (an object swapped since verification is refused), and fed to the same
//! analysis observer `preserve` runs (`crate::collect::observe::AnalysisObserver`), in the
//! manifest's order, as the sealer feeds it. Only then is the ledger head read and the
//! supplement sealed (its `ledger_prev` is the head right before its seal starts, as for
//! preserve, however long the feed took). The supplement is sealed by the same sealer,
//! its analysis written by that observer as its `analysis.json`, its only entries the record of
//! what was done ([`SUPPLEMENT_RECORD`]) and the field-mapping file's exact bytes, its manifest
//! naming the original (`supplement_of`, signed), and its ledger entry naming the original too
//! (`custody-ledger/v2` `supplement_of`). `docs/format.md` §3b and §6.4 (rule L9, P4) say
//! what a verifier checks of the two links.
//!
//! Blobs are spooled to temporary files (registered for removal if the run is interrupted):
//! small ones one after the other in one file, each large one (above
//! `crate::bundle::write::SMALL_FILE`) in its own, because the observer re-reads a large
//! file by position. The disk this takes is the original's evidence bytes; the memory, one
//! small file at a time.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bundle::manifest::{
    Category, Entry, IdentName, Incident, Manifest, SideEffect, Status, SupplementOf, SUPPLEMENT_KIND,
    SUPPLEMENT_RECORD,
};
use crate::bundle::write::{
    observe_file, seal_with_progress, Observer, PlanEvent, PlannedFile, SealError, SealInput, SMALL_FILE,
};
use crate::clock::Clock;
use crate::collect::analysis::{Analysis, AnalysisSummary, EvidenceProblem, MappingInfo, Seed, SeedOrigin};
use crate::collect::analyze::{normalize_seed, AnalyzerLimits, FieldMapping, MappingError, SeedError};
use crate::collect::observe::{AnalysisObserver, FormatOverride, ObserveConfig};
use crate::digest::{BundleId, EntryId, Sha256};
use crate::keys::SecretKey;
use crate::preserve::Target;
use crate::read::archive::{read_archive, BlobVisitor};
use crate::store::{ledger, PutOutcome, Store, StoreError};
use crate::unfinished::TrackedTemp;
use crate::verify::{Report, Trust};

/// Format tag of a supplement's record of what was done.
pub const SUPPLEMENT_FORMAT: &str = "custody-supplement/v1";
/// The entry path of the field-mapping file a supplement was analysed with (`.json` when the
/// file was JSON).
pub const SUPPLEMENT_FIELD_MAP: &str = "supplement/field-map";
/// Largest `analysis.json` of the original read to reuse its field mapping (as `show`).
const MAX_ORIGINAL_ANALYSIS: u64 = 32 << 20;

/// Why an analyze failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The original did not verify: nothing was read or written.
    #[error("refusing to analyze {bundle}: it did not verify ({failed}); nothing was written")]
    NotIntact {
        /// The bundle.
        bundle: BundleId,
        /// The checks that failed.
        failed: String,
        /// The verification report (the binary prints it).
        report: Box<Report>,
    },
    /// The bundle is itself a supplement: its evidence is the original's.
    #[error("{bundle} is a supplement (a re-analysis) of {original}: analyze the original, whose evidence it is (custody analyze {original} --store URL …)")]
    IsSupplement {
        /// The supplement.
        bundle: BundleId,
        /// The bundle it supplements.
        original: BundleId,
    },
    /// The `--field-map` file is unusable.
    #[error("the field mapping cannot be used (fix the file, or leave out --field-map)")]
    Mapping(#[from] MappingError),
    /// No `--field-map` was given and the original's analysis, which records the mapping to
    /// reuse, could not be read: guessing the built-in names could silently analyse with
    /// another mapping than the original's.
    #[error("cannot reuse the field mapping of {bundle}: {what}; give the mapping to use with --field-map FILE")]
    OriginalMapping {
        /// The original.
        bundle: BundleId,
        /// Why its analysis was not read.
        what: String,
        /// The parse error, if one.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A seed is not a value of its kind.
    #[error("{0} (fix the value, or leave the flag out)")]
    Seed(#[from] SeedError),
    /// A responder note that begins like custody's own, or a ledger key that is the signing
    /// key: refused before the store is read.
    #[error(transparent)]
    Request(Box<crate::preserve::PreserveError>),
    /// Reading the original's blobs, or spooling them, failed.
    #[error("cannot read the evidence of {bundle}: {what}")]
    Read {
        /// The original.
        bundle: BundleId,
        /// What went wrong.
        what: String,
        /// The I/O error, if one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// Writing the supplement's own files failed.
    #[error("cannot write a temporary file for the supplement")]
    Temp(#[source] std::io::Error),
    /// The analysis thread could not be started.
    #[error("cannot start the analysis thread")]
    Thread(#[source] std::io::Error),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Storing the supplement failed: nothing was written to the ledger.
    #[error("the supplement {bundle} was NOT stored and nothing was written to the ledger")]
    BundleNotStored {
        /// The sealed supplement.
        bundle: BundleId,
        /// Why.
        source: Box<StoreError>,
    },
    /// Streaming the supplement into the store failed while it was sealed.
    #[error("the supplement was NOT stored (its upload failed while it was being sealed) and nothing was written to the ledger")]
    StreamFailed(#[source] StoreError),
    /// The supplement is stored, but its ledger entry could not be written.
    #[error("the supplement {bundle} IS stored at {location}, but its ledger entry was NOT written (run `custody store repair` on this store to record it)")]
    NotRecorded {
        /// The supplement.
        bundle: BundleId,
        /// Where it is.
        location: String,
        /// Why.
        source: Box<StoreError>,
    },
    /// A thread died.
    #[error("internal error: a task of analyze (reading, analysing or sealing) stopped unexpectedly; nothing was written to the ledger: run analyze again")]
    Task(#[from] tokio::task::JoinError),
}

/// What to re-analyse, and how.
#[derive(Debug)]
pub struct AnalyzeRequest {
    /// The original evidence bundle (in the store).
    pub original: BundleId,
    /// Identifier seeds (`--trace-id` …).
    pub identifiers: Vec<(IdentName, String)>,
    /// Value seeds (`--seed`).
    pub seeds: Vec<String>,
    /// Merge window in milliseconds (`None`: the default).
    pub merge_window_ms: Option<u64>,
    /// Format overrides (`--format`).
    pub formats: Vec<FormatOverride>,
    /// A field-mapping file; `None`: the mapping the original's analysis used.
    pub field_map: Option<PathBuf>,
    /// Responder notes.
    pub notes: Vec<String>,
    /// zstd level.
    pub level: i32,
    /// A separate key for the supplement's ledger entry (`--ledger-key`); `None`: `key`.
    pub ledger_key: Option<Arc<SecretKey>>,
}

/// The record of what was done, sealed as [`SUPPLEMENT_RECORD`] (`docs/format.md` §3b).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SupplementRecord {
    /// [`SUPPLEMENT_FORMAT`].
    pub format: String,
    /// The original.
    pub supplement_of: OriginalRef,
    /// The seeds, normalised, as the analysis took them (`records` is 0 here: the analysis
    /// counts them).
    pub seeds: Vec<Seed>,
    /// The field mapping in force.
    pub field_map: FieldMapRecord,
    /// `--format` overrides, as `SELECTOR=FORMAT`.
    pub formats: Vec<String>,
    /// The merge window, in milliseconds.
    pub merge_window_ms: u64,
    /// The custody version that re-analysed.
    pub custody_version: String,
}

/// The original, as the record names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OriginalRef {
    /// Its bundle digest (bare hex).
    pub bundle: BundleId,
    /// Its manifest's `sealed_at`.
    pub sealed_at: chrono::DateTime<chrono::Utc>,
    /// Its signer's key id.
    pub signer: String,
    /// Its own `analysis.json`'s SHA-256, if it has one.
    pub analysis_sha256: Option<Sha256>,
    /// Its ledger position when it was analysed.
    pub position: Option<u64>,
}

/// The field mapping of a supplement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldMapRecord {
    /// `flag` (`--field-map`: its bytes are the entry `entry`), `original` (the mapping the
    /// original's analysis recorded) or `default` (the built-in names).
    pub origin: String,
    /// The file as given (`flag`) or as the original recorded it (`original`).
    pub path: Option<String>,
    /// SHA-256 of the file's bytes.
    pub sha256: Option<String>,
    /// The supplement's entry holding the bytes (`flag` only).
    pub entry: Option<String>,
}

/// A sealed and recorded supplement.
#[derive(Debug)]
pub struct Supplemented {
    /// The supplement's bundle digest.
    pub bundle: BundleId,
    /// Its size.
    pub size: u64,
    /// Where it is.
    pub location: String,
    /// Its ledger position.
    pub position: u64,
    /// Its ledger entry id.
    pub entry: EntryId,
    /// Its manifest.
    pub manifest: Manifest,
    /// The original's manifest (verified).
    pub original: Manifest,
    /// The record sealed.
    pub record: SupplementRecord,
    /// The new analysis' summary.
    pub analysis_summary: Option<AnalysisSummary>,
    /// Evidence bytes re-analysed.
    pub evidence_bytes: u64,
}

/// Verify `req.original` in `store`, re-analyse its sealed evidence and seal the supplement
/// with `key` into the same store and ledger. See the module doc.
pub async fn analyze(
    store: &Store,
    key: Arc<SecretKey>,
    trust: &Trust,
    req: AnalyzeRequest,
    clock: Clock,
) -> Result<Supplemented, AnalyzeError> {
    crate::preserve::check_responder_notes(&req.notes).map_err(|e| AnalyzeError::Request(Box::new(e)))?;
    if let Some(l) = req.ledger_key.as_ref().filter(|l| l.id() == key.id()) {
        return Err(AnalyzeError::Request(Box::new(crate::preserve::PreserveError::SameLedgerKey(l.id()))));
    }
    // Seeds first: one that cannot be a value of its kind stops before the store is read.
    let mut seeds = Vec::new();
    for (name, raw) in &req.identifiers {
        seeds.push(normalize_seed(Some(*name), raw, SeedOrigin::Flag)?);
    }
    for raw in &req.seeds {
        seeds.push(normalize_seed(None, raw, SeedOrigin::Flag)?);
    }
    let flag_map = match &req.field_map {
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|source| MappingError::Read { path: p.display().to_string(), source })?;
            Some((p.clone(), FieldMapping::load_file_bytes(f, p)?))
        }
        None => None,
    };

    // The original, verified in full (chain, place, blobs, signer), with its analysis kept to
    // reuse its mapping.
    let mut opts = crate::verify::Options::default();
    opts.limits.keep_analysis = MAX_ORIGINAL_ANALYSIS;
    // The bytes verified are kept for reading the blobs below: one download, and the very
    // object that verified (not a later version or a replacement).
    let (report, manifest, kept) = crate::verify::verify_in_store_keeping(store, &req.original, trust, &opts).await?;
    let original = match manifest {
        Some(m) if report.intact() => m,
        _ => {
            let failed: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| c.status == crate::verify::report::CheckStatus::Fail)
                .map(|c| c.name)
                .collect();
            return Err(AnalyzeError::NotIntact {
                bundle: req.original,
                failed: if failed.is_empty() { "no readable manifest".into() } else { failed.join(", ") },
                report: Box::new(report),
            });
        }
    };
    if let Some(s) = &original.supplement_of {
        return Err(AnalyzeError::IsSupplement { bundle: req.original, original: s.bundle });
    }
    let position = report.ledger.as_ref().map(|l| l.position);

    // The mapping: the file given, else the one the original's analysis recorded, else (only
    // when the original has no v2 analysis at all) the built-in names.
    let original_analysis: Option<Analysis> = match &flag_map {
        Some(_) => None,
        None => original_analysis(&req.original, original.analysis.as_ref(), original.analysis_ref.as_ref())?,
    };
    let map_ext = |p: &std::path::Path| {
        if p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            ".json"
        } else {
            ".toml"
        }
    };
    let (mapping, field_map, map_bytes) = match &flag_map {
        Some((p, (mapping, bytes))) => {
            let sha = Sha256::of(bytes).hex();
            let entry = format!("{SUPPLEMENT_FIELD_MAP}{}", map_ext(p));
            (
                MappingInfo {
                    origin: "flag".into(),
                    path: Some(p.display().to_string()),
                    sha256: Some(sha.clone()),
                    mapping: mapping.clone(),
                },
                FieldMapRecord {
                    origin: "flag".into(),
                    path: Some(p.display().to_string()),
                    sha256: Some(sha),
                    entry: Some(entry.clone()),
                },
                Some((entry, bytes.clone())),
            )
        }
        None => match &original_analysis {
            Some(a) => (
                a.field_mapping.clone(),
                FieldMapRecord {
                    origin: "original".into(),
                    path: a.field_mapping.path.clone(),
                    sha256: a.field_mapping.sha256.clone(),
                    entry: None,
                },
                None,
            ),
            None => (
                MappingInfo::default(),
                FieldMapRecord { origin: "default".into(), path: None, sha256: None, entry: None },
                None,
            ),
        },
    };
    let merge_window_ms = req.merge_window_ms.unwrap_or(AnalyzerLimits::default().merge_window_ms);
    let record = SupplementRecord {
        format: SUPPLEMENT_FORMAT.into(),
        supplement_of: OriginalRef {
            bundle: req.original,
            sealed_at: original.sealed_at,
            signer: original.signer.keyid.clone(),
            analysis_sha256: original.analysis_ref.as_ref().map(|a| a.sha256),
            position,
        },
        seeds: seeds.clone(),
        field_map,
        formats: req.formats.iter().map(|f| format!("{}={}", f.selector, f.format.name())).collect(),
        merge_window_ms,
        custody_version: env!("CARGO_PKG_VERSION").into(),
    };

    // The original's blobs, read again from the bytes that verified and checked against its
    // manifest.
    let Some(fetched) = kept else {
        return Err(AnalyzeError::Read {
            bundle: req.original,
            what: "the bundle disappeared from the store after it was verified".into(),
            source: None,
        });
    };
    let path = fetched.path().to_path_buf();
    let (m2, limits) = (original.clone(), opts.limits.clone());
    let spool = tokio::task::spawn_blocking(move || Spool::read(&path, &m2, &limits)).await?;
    drop(fetched);
    let spool = spool.map_err(|(what, source)| AnalyzeError::Read { bundle: req.original, what, source })?;

    // The same observer preserve runs, fed the sealed bytes in the manifest's order.
    let planned: Arc<[PlannedFile]> = original
        .entries
        .iter()
        .map(|e| PlannedFile {
            rel_path: e.path.clone(),
            kind: e.kind.clone(),
            source: PathBuf::from(&e.source),
            display_source: e.source.clone(),
            snapshot: false,
            link_target: None,
        })
        .collect();
    let plan_problems: Vec<EvidenceProblem> = original
        .journal
        .iter()
        .filter(|j| {
            matches!(j.event, crate::bundle::manifest::EventKind::Error | crate::bundle::manifest::EventKind::Skipped)
        })
        .map(|j| EvidenceProblem {
            path: j.path.clone().unwrap_or_else(|| "-".into()),
            problem: if j.event == crate::bundle::manifest::EventKind::Error { "unreadable" } else { "skipped" }.into(),
            detail: j.detail.clone().unwrap_or_default(),
        })
        .collect();
    let not_applicable: Vec<String> = original
        .completeness
        .items
        .iter()
        .filter(|i| i.status == Status::NotApplicable)
        .map(|i| i.item.clone())
        .collect();
    let config = ObserveConfig {
        mapping,
        formats: req.formats.clone(),
        planned,
        plan_problems,
        not_applicable: not_applicable.clone(),
        limits: AnalyzerLimits { merge_window_ms, ..Default::default() },
    };

    // The supplement's own files: the record and the mapping's bytes.
    let mut files = Vec::new();
    let mut temps = Vec::new();
    let record_bytes = {
        let mut v = serde_json::to_vec_pretty(&record).unwrap_or_default();
        v.push(b'\n');
        v
    };
    for (rel, kind, bytes, shown) in std::iter::once((
        SUPPLEMENT_RECORD.to_string(),
        SUPPLEMENT_KIND,
        record_bytes,
        format!("custody analyze of {}", req.original),
    ))
    .chain(map_bytes.into_iter().map(|(entry, bytes)| {
        let shown = req.field_map.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        (entry, "spec", bytes, shown)
    })) {
        let mut t = crate::unfinished::temp_file(&tempfile::Builder::new(), None).map_err(AnalyzeError::Temp)?;
        t.write_all(&bytes).and_then(|_| t.flush()).map_err(AnalyzeError::Temp)?;
        files.push(PlannedFile {
            rel_path: rel,
            kind: kind.into(),
            source: t.path().to_path_buf(),
            display_source: shown,
            snapshot: false,
            link_target: None,
        });
        temps.push(t);
    }
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    let files: Arc<[PlannedFile]> = files.into();

    let mut incident = incident_for(&seeds, original.incident.category, req.notes.clone());
    // The supplement's origin is custody's note, the first of its own (the analysis' follow).
    incident.tool_notes = Some(vec![format!(
        "custody analyze: a re-analysis of evidence bundle {} (sealed at {}), read from that bundle after it verified, not collected again; its evidence stays there",
        req.original, original.sealed_at
    )]);
    let supplement_of = SupplementOf { bundle: req.original, sealed_at: original.sealed_at };

    // The whole original evidence is fed to the analysis first, in a task of its own: it can
    // take far longer than the allowed clock skew. The ledger head is read only afterwards,
    // right before the seal starts (as preserve does), so the supplement's `ledger_prev` and its
    // `collector.started_at` are close in time: were the head read before the feed and another
    // preserve appended meanwhile, rule P3 would judge the link stale and this correct
    // supplement would fail verify for good.
    let evidence_bytes = spool.bytes;
    let bundle = req.original;
    let (inner, original) = tokio::task::spawn_blocking(move || -> Result<_, AnalyzeError> {
        let mut inner = AnalysisObserver::start(config, &seeds).map_err(AnalyzeError::Thread)?;
        spool.feed(&original.entries, &mut inner).map_err(|(what, source)| AnalyzeError::Read {
            bundle,
            what,
            source,
        })?;
        drop(spool);
        Ok((inner, original))
    })
    .await??;

    let head = ledger::head(store).await?;
    ledger::ensure_store_id(store, clock.now()).await?;
    let (out, target) = Target::open(store)?;
    let link = head.as_ref().map(|h| h.link());
    let (key2, clock2, level) = (key.clone(), clock.clone(), req.level);
    let joined = tokio::task::spawn_blocking(move || {
        let mut observer = Replayed(inner);
        let input = SealInput {
            files,
            plan_events: Vec::<PlanEvent>::new(),
            incident,
            not_applicable,
            ledger_prev: link,
            clock: &clock2,
            key: &key2,
            level,
            workers: crate::preserve::default_workers(),
            observer: Some(&mut observer),
            supplement_of: Some(supplement_of),
        };
        seal_with_progress(input, out, &crate::progress::Meter::none())
    })
    .await;
    drop(temps);
    // Whatever went wrong, a started upload is abandoned (aborted), never left to complete.
    let sealed = match (joined, target) {
        (Ok(Ok(s)), target) => (s, target),
        (Ok(Err(e)), Target::Streamed(upload)) => match upload.abandon().await {
            Some(upload_error) => return Err(AnalyzeError::StreamFailed(upload_error)),
            None => return Err(e.into()),
        },
        (Ok(Err(e)), Target::Staged(_)) => return Err(e.into()),
        (Err(join), Target::Streamed(upload)) => {
            // The task's failure is the error to report; the upload's own is only its consequence.
            let _ = upload.abandon().await;
            return Err(join.into());
        }
        (Err(join), Target::Staged(_)) => return Err(join.into()),
    };
    let (sealed, target) = sealed;
    let stored = match target {
        Target::Staged(staged) => store.put_bundle(staged, &sealed.id).await,
        Target::Streamed(upload) => store.put_streamed(upload, &sealed.id, sealed.size).await.map(|p| p.outcome),
    };
    let outcome =
        stored.map_err(|source| AnalyzeError::BundleNotStored { bundle: sealed.id, source: Box::new(source) })?;
    let location = store.location(&crate::store::bundle_key(&sealed.id));
    let not_recorded =
        |source| AnalyzeError::NotRecorded { bundle: sealed.id, location: location.clone(), source: Box::new(source) };
    // Only a writer that adopted this very supplement since the head was read can have
    // recorded it (a bundle identical to a recorded one is not recorded twice).
    let since = match outcome {
        PutOutcome::AlreadyPresent => Some(0),
        _ => Some(head.as_ref().map(|h| h.position).unwrap_or(0)),
    };
    let new = ledger::NewEntry {
        bundle: sealed.id,
        bundle_size: sealed.size,
        sealed_at: sealed.manifest.sealed_at,
        adopted: false,
        supplement_of: Some(req.original),
        // A supplement can be timestamped later (`custody timestamp`).
        timestamp: None,
    };
    let signer = ledger::LedgerSigner::of(&key, req.ledger_key.as_deref());
    let appended = ledger::append_entry(store, &new, signer, || clock.now(), since).await.map_err(not_recorded)?;
    Ok(Supplemented {
        bundle: sealed.id,
        size: sealed.size,
        location,
        position: appended.position,
        entry: appended.entry,
        manifest: sealed.manifest,
        original,
        record,
        analysis_summary: sealed.analysis_summary,
        evidence_bytes,
    })
}

/// The original's `custody-analysis/v2` analysis, whose field mapping analyze reuses when no
/// `--field-map` is given: `kept` is its verified manifest's `analysis` (what verify kept, up to
/// [`MAX_ORIGINAL_ANALYSIS`]), `sealed` its `analysis_ref`. `None` only when the original truly has no v2 analysis (sealed
/// with `--no-analyze`, or a v1 analysis): then the built-in names are the mapping. A v2
/// analysis that was not kept (too large) or does not parse is an error: the mapping it
/// recorded is unknown, and the built-in names could differ from it without anyone noticing.
fn original_analysis(
    bundle: &BundleId,
    kept: Option<&serde_json::Value>,
    sealed: Option<&crate::bundle::manifest::AnalysisRef>,
) -> Result<Option<Analysis>, AnalyzeError> {
    let refuse = |what: String, source| AnalyzeError::OriginalMapping { bundle: *bundle, what, source };
    match (kept, sealed) {
        (None, None) => Ok(None),
        (None, Some(r)) => Err(refuse(
            format!(
                "its analysis.json ({} bytes) was not read (above the {} MiB read, or beyond the parse bound)",
                r.size,
                MAX_ORIGINAL_ANALYSIS >> 20
            ),
            None,
        )),
        (Some(a), _) if a["format"].as_str() != Some(crate::collect::analysis::ANALYSIS_FORMAT_V2) => Ok(None),
        (Some(a), _) => Analysis::deserialize(a).map(Some).map_err(|e| {
            refuse(
                format!("its analysis.json does not match {}", crate::collect::analysis::ANALYSIS_FORMAT_V2),
                Some(e),
            )
        }),
    }
}

/// What a reader of an evidence bundle learns of its supplements (`show`, `timeline`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Supplements {
    /// Whether the ledger was read (`false` for a bundle file: there is no ledger to read).
    pub looked_up: bool,
    /// Why not, when not.
    pub note: Option<String>,
    /// How many supplements the ledger records of this bundle, counting only entries that
    /// are valid and signed by a pinned key with a good signature (rules L3–L6 of one entry).
    pub count: u64,
    /// The latest one (the highest position).
    pub latest: Option<LatestSupplement>,
}

/// The latest supplement of a bundle.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatestSupplement {
    /// Its bundle digest (`sha256:<hex>`).
    pub bundle: String,
    /// Its ledger position.
    pub position: u64,
    /// When it was sealed, as its verified manifest says; `None` when it did not verify (the
    /// ledger's word alone is not shown as a fact).
    pub sealed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its seeds (`ident=value`, or the value of a `--seed`), read from its analysis once it
    /// verified; empty when it did not.
    pub seeds: Vec<String>,
    /// Whether it verified (bound to its entry's digest, signed by a pinned key).
    pub verified: bool,
    /// Why not, when not.
    pub problem: Option<String>,
}

/// What `show`/`timeline` of a bundle file say: a file has no ledger to look supplements up in.
pub const NOT_LOOKED_UP: &str = "not looked up (give --store)";

impl Supplements {
    /// For a bundle file.
    pub fn not_looked_up() -> Supplements {
        Supplements { looked_up: false, note: Some(NOT_LOOKED_UP.into()), count: 0, latest: None }
    }
}

/// The supplements the ledger `entries` (sorted by position) record of `bundle`, the latest
/// verified in `store` with `trust` to read its seeds. Only entries that are valid and signed
/// by a pinned key with a good signature count ([`crate::verify::check_ledger_entry`]): an
/// entry anyone could have written names no supplement here (the ledger checks report it).
pub async fn supplements_of(
    store: &Store,
    entries: &[crate::read::ledger::StoredEntry],
    bundle: &BundleId,
    trust: &Trust,
) -> Result<Supplements, StoreError> {
    let of: Vec<(u64, &crate::read::ledger::LedgerEntry)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.entry().filter(|x| x.supplement_of.as_ref() == Some(bundle)).map(|x| (i, e, x)))
        .filter(|(i, e, _)| {
            let prev = i.checked_sub(1).map(|j| &entries[j]).filter(|p| e.position.checked_sub(1) == Some(p.position));
            !crate::verify::check_ledger_entry(e, prev, trust).iter().any(|f| f.level == crate::verify::Level::Error)
        })
        .map(|(_, e, x)| (e.position, x))
        .collect();
    let Some(&(position, last)) = of.last() else {
        return Ok(Supplements { looked_up: true, note: None, count: 0, latest: None });
    };
    let mut latest = LatestSupplement {
        bundle: last.bundle.to_string(),
        position,
        sealed_at: None,
        seeds: Vec::new(),
        verified: false,
        problem: None,
    };
    match store.fetch_bundle(&last.bundle).await? {
        None => latest.problem = Some("the supplement is missing from the store".into()),
        Some(f) => {
            let mut opts = crate::verify::Options { expected_digest: Some(last.bundle), ..Default::default() };
            opts.limits.keep_analysis = MAX_ORIGINAL_ANALYSIS;
            let path = f.path().to_path_buf();
            let trust = trust.clone();
            let checked = tokio::task::spawn_blocking(move || crate::verify::verify_file(&path, &trust, &opts))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r);
            drop(f);
            match checked {
                Ok((r, Some(m))) if r.intact() && m.supplement_of.as_ref().map(|s| s.bundle) == Some(*bundle) => {
                    latest.verified = true;
                    latest.sealed_at = Some(m.sealed_at);
                    latest.seeds = seeds_of(&m);
                }
                Ok((r, Some(_))) if r.intact() => {
                    latest.problem = Some(format!("its signed manifest does not name {bundle} as its original"));
                }
                Ok(_) => {
                    latest.problem = Some(format!(
                        "it did not verify: `custody verify --store URL {}` lists the findings",
                        last.bundle
                    ))
                }
                Err(e) => latest.problem = Some(format!("cannot read it: {e}")),
            }
        }
    }
    Ok(Supplements { looked_up: true, note: None, count: of.len() as u64, latest: Some(latest) })
}

/// A verified bundle's seeds as `list` shows them: `ident=value`, or the value of a `--seed`.
pub fn seeds_of(m: &Manifest) -> Vec<String> {
    m.analysis
        .as_ref()
        .and_then(|a| a["seeds"].as_array())
        .map(|s| {
            s.iter()
                .map(|s| match s["ident"].as_str() {
                    Some(i) => format!("{i}={}", s["value"].as_str().unwrap_or("")),
                    None => s["value"].as_str().unwrap_or("").to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The supplement's incident: the seeds given as identifiers, the original's category, the
/// side effect left to the analysis.
fn incident_for(seeds: &[Seed], category: Option<Category>, notes: Vec<String>) -> Incident {
    let req = crate::preserve::PreserveRequest {
        identifiers: seeds.iter().filter_map(|s| s.ident.map(|i| (i, s.value.clone()))).collect(),
        category,
        side_effect: SideEffect::Unknown,
        notes,
        ..Default::default()
    };
    crate::preserve::incident_from(&req)
}

/// The observer the sealer sees while sealing a supplement: the analysis observer, already
/// fed the original's evidence, which does not see the supplement's own files (they are no
/// evidence of the incident).
struct Replayed(AnalysisObserver);

impl Observer for Replayed {
    fn on_bytes(&mut self, _entry: &Entry, _data: &[u8]) {}
    fn on_file(&mut self, _entry: &Entry, _file: &std::fs::File) {}
    fn finish(&mut self, incident: &mut Incident, out: &mut dyn Write) -> std::io::Result<Option<AnalysisSummary>> {
        self.0.finish(incident, out)
    }
    fn missing_identifier_detail(&self, name: IdentName) -> String {
        self.0.missing_identifier_detail(name)
    }
    fn evidence_kinds(&self) -> Option<std::collections::BTreeMap<String, u64>> {
        self.0.evidence_kinds()
    }
    fn changed_since_sealed(&mut self) -> Vec<String> {
        self.0.changed_since_sealed()
    }
}

/// The original's blobs, spooled: small ones in one file at (offset, length), large ones each
/// in a file of its own.
struct Spool {
    small: TrackedTemp,
    at: HashMap<Sha256, Spooled>,
    /// Evidence bytes (every entry's size, duplicates counted).
    bytes: u64,
}

enum Spooled {
    Small { offset: u64, len: u64 },
    Large(TrackedTemp),
}

type SpoolError = (String, Option<std::io::Error>);

impl Spool {
    /// Streams the bundle at `path`, keeping each blob `m` names; every one must be met, with
    /// the digest and size `m` gives.
    fn read(path: &std::path::Path, m: &Manifest, limits: &crate::read::archive::Limits) -> Result<Spool, SpoolError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |e: std::io::Error| (what, Some(e))
        };
        let file = std::fs::File::open(path).map_err(io("cannot open the bundle"))?;
        let mut want: HashMap<Sha256, u64> = HashMap::new();
        let mut bytes = 0u64;
        for e in &m.entries {
            want.insert(e.sha256, e.size);
            bytes = bytes.saturating_add(e.size);
        }
        let small = crate::unfinished::temp_file(&tempfile::Builder::new(), None).map_err(io("cannot spool"))?;
        let mut w = Writer {
            want,
            small: small.reopen().map_err(io("cannot spool"))?,
            small_len: 0,
            current: None,
            at: HashMap::new(),
            error: None,
        };
        let scan = read_archive(file, limits, Some(&mut w));
        if let Some(e) = w.error.take() {
            return Err(e);
        }
        if let Some(p) = scan.problems.first() {
            return Err((format!("its archive is no longer readable ({p}): it changed since it was verified"), None));
        }
        let missing = w.want.keys().filter(|k| !w.at.contains_key(*k)).count();
        if missing > 0 {
            return Err((
                format!("{missing} blob(s) its manifest names were not found in it: it changed since it was verified"),
                None,
            ));
        }
        w.small.flush().map_err(io("cannot spool"))?;
        Ok(Spool { small, at: w.at, bytes })
    }

    /// Feeds every entry's bytes to `observer`, in the manifest's order, as the sealer does.
    fn feed(&self, entries: &[Entry], observer: &mut dyn Observer) -> Result<(), SpoolError> {
        let mut small = self.small.reopen().map_err(|e| ("cannot read the spool".to_string(), Some(e)))?;
        let mut buf = Vec::new();
        for e in entries {
            match self.at.get(&e.sha256) {
                Some(Spooled::Small { offset, len }) => {
                    buf.clear();
                    small
                        .seek(std::io::SeekFrom::Start(*offset))
                        .and_then(|_| (&mut small).take(*len).read_to_end(&mut buf))
                        .map_err(|e| ("cannot read the spool".to_string(), Some(e)))?;
                    observer.on_bytes(e, &buf);
                }
                Some(Spooled::Large(t)) => {
                    let mut f = t.reopen().map_err(|e| ("cannot read the spool".to_string(), Some(e)))?;
                    observe_file(observer, e, &mut f).map_err(|e| ("cannot read the spool".to_string(), Some(e)))?;
                }
                None => return Err((format!("blob {} of {} was not read", e.sha256, e.path), None)),
            }
        }
        Ok(())
    }
}

/// The archive visitor that spools the blobs.
struct Writer {
    want: HashMap<Sha256, u64>,
    small: std::fs::File,
    small_len: u64,
    /// The blob being streamed: its digest, size, and where it goes.
    current: Option<(Sha256, u64, Current)>,
    at: HashMap<Sha256, Spooled>,
    error: Option<SpoolError>,
}

enum Current {
    Small { offset: u64 },
    Large(TrackedTemp),
    Skip,
}

impl BlobVisitor for Writer {
    fn begin(&mut self, claimed: &Sha256, size: u64) {
        let dest = match self.want.get(claimed) {
            _ if self.error.is_some() || self.at.contains_key(claimed) => Current::Skip,
            None => Current::Skip,
            Some(_) if size <= SMALL_FILE => Current::Small { offset: self.small_len },
            Some(_) => match crate::unfinished::temp_file(&tempfile::Builder::new(), None) {
                Ok(t) => Current::Large(t),
                Err(e) => {
                    self.error = Some(("cannot spool".into(), Some(e)));
                    Current::Skip
                }
            },
        };
        self.current = Some((*claimed, size, dest));
    }

    fn chunk(&mut self, data: &[u8]) {
        let r = match &mut self.current {
            Some((_, _, Current::Small { .. })) => self.small.write_all(data),
            Some((_, _, Current::Large(t))) => t.write_all(data),
            _ => Ok(()),
        };
        if let Err(e) = r {
            self.error.get_or_insert(("cannot spool".into(), Some(e)));
            self.current = None;
        }
        if matches!(self.current, Some((_, _, Current::Small { .. }))) {
            self.small_len = self.small_len.saturating_add(data.len() as u64);
        }
    }

    fn end(&mut self, claimed: &Sha256, actual: Option<Sha256>) {
        let Some((sha, size, dest)) = self.current.take() else { return };
        if sha != *claimed || matches!(dest, Current::Skip) {
            return;
        }
        // The manifest was verified; the bytes read now must be the ones it names.
        if actual != Some(sha) || self.want.get(&sha) != Some(&size) {
            self.error.get_or_insert((
                format!("blob {sha} no longer has the digest or size the verified manifest gives: it changed since it was verified"),
                None,
            ));
            return;
        }
        let spooled = match dest {
            Current::Small { offset } => Spooled::Small { offset, len: size },
            Current::Large(mut t) => {
                if let Err(e) = t.flush() {
                    self.error.get_or_insert(("cannot spool".into(), Some(e)));
                    return;
                }
                Spooled::Large(t)
            }
            Current::Skip => return,
        };
        self.at.insert(sha, spooled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_refuses_unknown_fields() {
        let r = SupplementRecord {
            format: SUPPLEMENT_FORMAT.into(),
            supplement_of: OriginalRef {
                bundle: BundleId(Sha256::of(b"o")),
                sealed_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                signer: "k".into(),
                analysis_sha256: None,
                position: Some(1),
            },
            seeds: Vec::new(),
            field_map: FieldMapRecord { origin: "default".into(), path: None, sha256: None, entry: None },
            formats: Vec::new(),
            merge_window_ms: 2000,
            custody_version: "0".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["supplement_of"]["bundle"], Sha256::of(b"o").hex());
        assert_eq!(serde_json::from_value::<SupplementRecord>(v.clone()).unwrap(), r);
        let mut extra = v;
        extra["more"] = serde_json::json!(1);
        assert!(serde_json::from_value::<SupplementRecord>(extra).is_err());
    }

    /// Without --field-map, the built-in names are used only when the original has no v2
    /// analysis; one that was not read or does not parse is refused, never guessed.
    #[test]
    fn the_original_mapping_falls_back_only_when_there_is_no_v2_analysis() {
        let id = BundleId(Sha256::of(b"o"));
        let v2 = crate::collect::analysis::ANALYSIS_FORMAT_V2;
        let sealed = crate::bundle::manifest::AnalysisRef {
            member: crate::bundle::manifest::ANALYSIS_MEMBER.into(),
            sha256: Sha256::of(b"a"),
            size: 40 << 20,
        };
        assert!(original_analysis(&id, None, None).unwrap().is_none(), "sealed with --no-analyze");
        let v1 = serde_json::json!({"format": "custody-analysis/v1"});
        assert!(original_analysis(&id, Some(&v1), None).unwrap().is_none(), "a v1 analysis");
        let too_large = original_analysis(&id, None, Some(&sealed)).unwrap_err();
        assert!(matches!(too_large, AnalyzeError::OriginalMapping { .. }), "{too_large}");
        assert!(too_large.to_string().contains("--field-map FILE"), "{too_large}");
        let not_v2 = serde_json::json!({"format": v2, "x": 1});
        let bad = original_analysis(&id, Some(&not_v2), Some(&sealed)).unwrap_err();
        assert!(matches!(bad, AnalyzeError::OriginalMapping { source: Some(_), .. }), "{bad}");
    }
}
