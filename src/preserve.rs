//! `preserve`: plan → seal → store → ledger, in that order.
//!
//! A bundle is sealed into a staging file, made durable, and only then linked into place
//! (create-only); its ledger entry is appended last. A preserve interrupted at any point
//! leaves either nothing visible or a complete bundle (which `verify --all` reports as
//! unreferenced until a ledger entry records it). Such a bundle is adopted — verified with the
//! signer's key, then recorded — by the next preserve (once it is older than a grace period,
//! so that bundles of preserves still in flight are left to them) or by `custody store repair`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::bundle::manifest::EventKind;
use crate::bundle::manifest::{Category, IdentName, IdentSource, Identifier, Incident, Manifest, SideEffect, Status};
use crate::bundle::write::{seal_with_progress, SealError, SealInput, Sealed};
use crate::bundle::write::{PlanEvent, PlannedFile};
use crate::clock::Clock;
use crate::collect::analysis::{EvidenceProblem, MappingInfo, Seed, SeedOrigin};
use crate::collect::analyze::{FieldMapping, MappingError};
use crate::collect::links::Secrets;
use crate::collect::observe::{AnalysisObserver, ObserveConfig};
use crate::collect::spec::{Spec, SpecError};
use crate::collect::{self, CollectError};
use crate::digest::{BundleId, EntryId};
use crate::keys::SecretKey;
use crate::store::ledger::{self, LedgerSigner};
use crate::store::{PutOutcome, Store, StoreError};

/// What a preserve's inputs are built from: a source (`--source KIND=PATH`), a format
/// override (`--format SELECTOR=FORMAT`; [`Format::help`] lists the formats), and a seed
/// checked before anything is read ([`normalize_seed`]).
pub use crate::collect::analyze::{normalize_seed, Format, SeedError};
pub use crate::collect::observe::FormatOverride;
pub use crate::collect::SourceSpec;

/// Why a preserve failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreserveError {
    /// Planning failed.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Storing the bundle failed: nothing was written to the ledger.
    #[error("the bundle {bundle} was NOT stored and nothing was written to the ledger")]
    BundleNotStored {
        /// The sealed bundle.
        bundle: BundleId,
        /// Why.
        source: Box<StoreError>,
    },
    /// Streaming the bundle into the store failed while it was being sealed (its upload was
    /// aborted).
    #[error(
        "the bundle was NOT stored (its upload failed while it was being sealed) and nothing was written to the ledger"
    )]
    StreamFailed(#[source] StoreError),
    /// The bundle is stored, but its ledger entry could not be written.
    #[error("the bundle {bundle} IS stored at {location}, but its ledger entry was NOT written (run `custody store repair` on this store to record it)")]
    NotRecorded {
        /// The bundle.
        bundle: BundleId,
        /// Where it is.
        location: String,
        /// Why.
        source: Box<StoreError>,
    },
    /// The incident spec file is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The `--field-map` file is unusable.
    #[error("the field mapping cannot be used (fix the file, or leave out --field-map)")]
    Mapping(#[from] MappingError),
    /// A value in the spec file is invalid.
    #[error("incident spec: {0}")]
    SpecValue(String),
    /// A seed is not a value of its kind.
    #[error("{0} (fix the value, or leave the flag out)")]
    Seed(#[from] SeedError),
    /// A responder note begins like the notes custody writes itself.
    #[error("the note `{0}` begins like the notes custody writes itself (`custody analysis:`, `custody analyze:`, `custody:`); custody's notes are sealed apart (incident.tool_notes), so reword it")]
    ToolNote(String),
    /// The separate ledger key is the signing key itself.
    #[error("the ledger key {0} is the collector's signing key itself: a separate ledger key must be another key (custody keygen --out LEDGER), or leave out --ledger-key")]
    SameLedgerKey(crate::keys::KeyId),
    /// The analysis thread could not be started.
    #[error("cannot start the analysis thread")]
    Thread(#[source] std::io::Error),
    /// The sealing thread died.
    #[error("internal error: the sealing task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// What to preserve.
#[derive(Debug)]
pub struct PreserveRequest {
    /// The conventional incident directory.
    pub incident_dir: Option<PathBuf>,
    /// Extra sources.
    pub sources: Vec<SourceSpec>,
    /// Identifiers given by the responder.
    pub identifiers: Vec<(IdentName, String)>,
    /// Values to search from that are no identifier (`--seed`: a ticket, an order, a
    /// customer).
    pub seeds: Vec<String>,
    /// Merge window for records without a shared id, in milliseconds (`None`: the default).
    pub merge_window_ms: Option<u64>,
    /// Triage category.
    pub category: Option<Category>,
    /// Side effect status.
    pub side_effect: SideEffect,
    /// Responder notes.
    pub notes: Vec<String>,
    /// Checklist items declared not applicable.
    pub not_applicable: Vec<String>,
    /// Follow symbolic links — never to custody's signing key, its directory or custody's
    /// home, never into `/proc`, `/sys` or `/dev`, never out of the incident directory and the
    /// named sources (`crate::collect::links`).
    pub follow_symlinks: bool,
    /// zstd level.
    pub level: i32,
    /// zstd workers.
    pub workers: u32,
    /// Adopt unreferenced bundles older than this before preserving (`None`: do not).
    pub adopt_min_age: Option<std::time::Duration>,
    /// Per-source format overrides (`--format SELECTOR=FORMAT`).
    pub formats: Vec<FormatOverride>,
    /// A field-mapping file (`--field-map`); else `custody-fields.toml` at the incident
    /// directory's root is used when present.
    pub field_map: Option<PathBuf>,
    /// An incident spec file (`--spec`), sealed as an entry of kind `spec`.
    pub spec: Option<PathBuf>,
    /// Run the analysis (identifiers, linkage, index) while sealing (`--no-analyze` turns it off).
    pub analyze: bool,
    /// Progress meter (disabled by default).
    pub progress: crate::progress::Meter,
    /// An RFC 3161 TSA to timestamp the bundle's signature (`--tsa URL`, or `tsa` in the store
    /// config). A TSA that fails does not fail the preserve: the bundle is recorded without a
    /// token and [`Preserved::timestamp_problem`] says why.
    pub tsa: Option<String>,
    /// A separate key for the ledger entries (`--ledger-key`): entries then say
    /// `signed_by: {"role": "ledger"}`; `None`: the signing key signs them too.
    pub ledger_key: Option<Arc<SecretKey>>,
}

/// Default grace period before a preserve adopts someone else's unreferenced bundle.
pub const ADOPT_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

impl Default for PreserveRequest {
    fn default() -> Self {
        PreserveRequest {
            incident_dir: None,
            sources: Vec::new(),
            identifiers: Vec::new(),
            seeds: Vec::new(),
            merge_window_ms: None,
            category: None,
            side_effect: SideEffect::Unknown,
            notes: Vec::new(),
            not_applicable: Vec::new(),
            follow_symlinks: false,
            level: 3,
            workers: default_workers(),
            adopt_min_age: Some(ADOPT_GRACE),
            formats: Vec::new(),
            field_map: None,
            spec: None,
            analyze: true,
            progress: crate::progress::Meter::none(),
            tsa: None,
            ledger_key: None,
        }
    }
}

/// zstd workers: one per core.
pub fn default_workers() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(2)
}

/// The result of a preserve.
#[derive(Debug)]
pub struct Preserved {
    /// Bundle digest.
    pub bundle: BundleId,
    /// Bundle size.
    pub size: u64,
    /// Evidence bytes read.
    pub input_bytes: u64,
    /// Where the bundle is.
    pub location: String,
    /// Ledger position.
    pub position: u64,
    /// Ledger entry id.
    pub entry: EntryId,
    /// Created, or already present (identical evidence and clock).
    pub outcome: PutOutcome,
    /// The manifest.
    pub manifest: Manifest,
    /// A summary of the sealed analysis (`checklist`, `evidence_problems`, `side_effect`), if
    /// it ran.
    pub analysis_summary: Option<crate::collect::analysis::AnalysisSummary>,
    /// Unreferenced bundles found (and adopted or not) before this preserve.
    pub adopted: Vec<Adoption>,
    /// Staging files that killed runs left in a local store, removed before this preserve
    /// ([`Store::sweep_staging`]).
    pub swept: Vec<PathBuf>,
    /// What storing the bundle left that a reader should know of (a provisional upload the
    /// server would not delete, `crate::store::stream`), and what earlier interrupted
    /// uploads were cleaned up.
    pub store_notes: Vec<String>,
    /// The bundle's RFC 3161 token, stored and referenced by its ledger entry.
    pub timestamp: Option<crate::tsa::Stamp>,
    /// Why a TSA was asked and the bundle has no token (untrusted text: print escaped).
    pub timestamp_problem: Option<String>,
}

/// Where a bundle is sealed to.
pub(crate) enum Target {
    /// A staging file, stored once sealed ([`Store::put_bundle`]).
    Staged(crate::unfinished::TrackedTemp),
    /// A multipart upload fed while sealing ([`Store::put_streamed`]).
    Streamed(crate::store::stream::StreamUpload),
}

impl Target {
    /// The sealer's output for `store` and where it goes: a local store's bundle is sealed to a
    /// staging file removed if the run is interrupted; an S3 store's straight into a multipart
    /// upload, part by part as it is sealed ([`crate::store::stream`]).
    pub(crate) fn open(store: &Store) -> Result<(Box<dyn std::io::Write + Send>, Target), StoreError> {
        if store.streams() {
            let (w, upload) = store.start_stream()?;
            return Ok((Box::new(w), Target::Streamed(upload)));
        }
        let staged = store.staging_file()?;
        let out = store.staging_writer(staged.reopen().map_err(|source| StoreError::Io {
            op: "cannot open staging file",
            path: staged.path().into(),
            source,
        })?);
        Ok((Box::new(out), Target::Staged(staged)))
    }
}

/// What happened to one unreferenced bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Adoption {
    /// The bundle.
    pub bundle: BundleId,
    /// `Ok(position)` when recorded (by us or by a concurrent writer), `Err(reason)` when left alone.
    pub result: Result<u64, String>,
}

/// Find bundles no ledger entry records, older than `min_age`, and record in the ledger (as
/// adopted: the entry says so) each one that fits this store, refusing with a reason each one
/// that does not (`verify --all` keeps reporting it):
///
/// * it verifies with `key`'s public key, and its bytes hash to its name;
/// * its `ledger_prev` fits the position it would take, by the verifier's own race rule
///   (`crate::verify::checks::ledger::judge_link`): the head it names is this ledger's entry
///   at that position, appended no later than its collection started, and every entry after
///   that head was appended after its collection started (a bundle sealed against another
///   ledger, or against an older head of this one, does not fit);
/// * its age is within both bounds: its object is older than `min_age` (a preserve still in
///   flight records its own bundle), and it was sealed no later than now (within the default
///   skew) and no earlier than the head it names was appended (the race rule above);
/// * in a versioned store, neither the ledger nor `store.json` nor the bundle's key has a
///   later version or a delete marker: a store whose ledger was replaced or hidden adopts
///   nothing (adopting would record its originals, or a replacement's bundles, as if it were
///   intact).
pub async fn adopt_unreferenced(
    store: &Store,
    key: &SecretKey,
    ledger_key: Option<&SecretKey>,
    min_age: std::time::Duration,
    clock: &Clock,
) -> Result<Vec<Adoption>, StoreError> {
    use crate::verify::checks::ledger::{judge_link, link_problem, LedgerView};
    let view = LedgerView::load(store).await?;
    let now = chrono::Utc::now();
    // An age too large for the calendar adopts nothing (it is older than any bundle).
    let cutoff = chrono::Duration::from_std(min_age).ok().and_then(|d| now.checked_sub_signed(d));
    let max_skew = crate::verify::Options::default().max_skew;
    let mut out = Vec::new();
    let mut next = view.next_position();
    let is_bundle = |k: &str| bundle_of_key(k).is_some();
    // In a versioned store: every key at its first version (a bundle hidden by a delete
    // marker is still recorded; an original hidden under a new version of its entry is read
    // as recorded, not as unreferenced).
    let listed = store.list_objects("bundles/", &is_bundle).await?;
    // A ledger (or store.json) with later versions or delete markers was replaced or hidden
    // by someone: adopting into it would record its originals, or a replacement's bundles, as
    // if the store were intact. Nothing is adopted until it is investigated.
    let tampered: Vec<String> =
        view.tampered.iter().take(3).map(|h| crate::store::address::display_key(&h.key)).collect();
    for o in &listed.objects {
        let Some(id) = bundle_of_key(&o.key) else { continue };
        if !view.recording(&id).is_empty() || cutoff.map_or(true, |c| o.modified > c) {
            continue;
        }
        if !tampered.is_empty() {
            out.push(Adoption {
                bundle: id,
                result: Err(format!(
                    "the store's ledger has later versions or delete markers ({}{}): it was replaced or hidden, and nothing is adopted into it; investigate with `custody verify --store URL --all`",
                    tampered.join(", "),
                    if view.tampered.len() > tampered.len() { ", …" } else { "" }
                )),
            });
            continue;
        }
        if o.history.is_some() {
            out.push(Adoption {
                bundle: id,
                result: Err("its key has later versions or delete markers: it was replaced or hidden, and it is not adopted; investigate with `custody verify --store URL --all`".into()),
            });
            continue;
        }
        let Some(fetched) = store.fetch_bundle_at(&id, &o.at).await? else { continue };
        let path = fetched.path().to_path_buf();
        let trust = crate::verify::Trust::new(vec![key.public.clone()]);
        let check = tokio::task::spawn_blocking(move || {
            std::fs::File::open(&path)
                .map(|f| crate::verify::check_bundle(f, &trust, &crate::verify::Options::default(), None))
        })
        .await;
        drop(fetched);
        let c = match check {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                out.push(Adoption { bundle: id, result: Err(format!("cannot read it: {e}")) });
                continue;
            }
            Err(e) => {
                out.push(Adoption { bundle: id, result: Err(format!("verification task failed: {e}")) });
                continue;
            }
        };
        let first_error = c.findings.iter().find(|f| f.level == crate::verify::Level::Error);
        let refused = match (&c.manifest, first_error) {
            _ if c.digest != id => Some(format!("its bytes hash to {}, not to its name", c.digest)),
            (_, Some(f)) => {
                Some(format!("it does not verify with key {}: {}: {}", key.public.id, f.location, f.message))
            }
            (None, None) => Some("it has no readable manifest".into()),
            (Some(m), None) => match next {
                None => Some("the ledger is full".into()),
                Some(_) if m.sealed_at > crate::verify::checks::plus(now, max_skew) => Some(format!(
                    "it says it was sealed at {}, in the future: its clock, or the bundle, is wrong",
                    m.sealed_at
                )),
                Some(position) => link_problem(&judge_link(&view, position, m, max_skew), position, true, m, max_skew)
                    .filter(|(error, _)| *error)
                    .map(|(_, why)| format!("it does not fit this ledger: {why}; it may come from another store")),
            },
        };
        let (Some(m), None) = (&c.manifest, refused.clone()) else {
            out.push(Adoption { bundle: id, result: Err(refused.unwrap_or_else(|| "no manifest".into())) });
            continue;
        };
        // An adopted supplement keeps its link: its ledger entry names what its manifest signs.
        let new = ledger::NewEntry {
            bundle: id,
            bundle_size: c.size,
            sealed_at: m.sealed_at,
            adopted: true,
            supplement_of: m.supplement_of.as_ref().map(|s| s.bundle),
            // An adopted bundle's token, if any, is found by its key (`custody timestamp`).
            timestamp: None,
        };
        let a = ledger::append_entry(store, &new, LedgerSigner::of(key, ledger_key), || clock.now(), Some(0)).await?;
        // Later adoptions in this run go after it.
        next = next.max(a.position.checked_add(1));
        out.push(Adoption { bundle: id, result: Ok(a.position) });
    }
    Ok(out)
}

/// The bundle a key under `bundles/` names, if it is one.
fn bundle_of_key(key: &str) -> Option<BundleId> {
    let hex = key.strip_prefix("bundles/")?.strip_suffix(".tar.zst")?;
    crate::digest::Sha256::parse_canonical_hex(hex).map(BundleId)
}

/// Refuse a responder note that begins like custody's own: a v3 manifest keeps them apart,
/// but a reader of v1 and v2 bundles tells custody's by that prefix, and a note copied from
/// one bundle into another must not read as the tool's.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn check_responder_notes(notes: &[String]) -> Result<(), PreserveError> {
    match notes.iter().find(|n| crate::bundle::manifest::looks_like_tool_note(n)) {
        Some(n) => Err(PreserveError::ToolNote(n.chars().take(80).collect())),
        None => Ok(()),
    }
}

/// Build the incident section from the responder's input.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn incident_from(req: &PreserveRequest) -> Incident {
    let identifiers = IdentName::ALL
        .iter()
        .map(|name| {
            let given = req.identifiers.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            match given {
                Some(v) => Identifier {
                    name: *name,
                    status: Status::Present,
                    value: Some(v),
                    sources: vec![IdentSource {
                        origin: "flag".into(),
                        path: None,
                        line: None,
                        offset: None,
                        field: None,
                    }],
                    conflicts: Vec::new(),
                },
                None => Identifier {
                    name: *name,
                    status: Status::Missing,
                    value: None,
                    sources: Vec::new(),
                    conflicts: Vec::new(),
                },
            }
        })
        .collect();
    Incident {
        identifiers,
        category: req.category,
        side_effect: req.side_effect,
        notes: req.notes.clone(),
        tool_notes: Some(Vec::new()),
    }
}

/// Fold an incident spec into the request: flags win, the spec fills in what they left out.
/// Returns the names of the identifiers the spec supplied.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn apply_spec(req: &mut PreserveRequest) -> Result<Vec<IdentName>, PreserveError> {
    let Some(path) = req.spec.clone() else { return Ok(Vec::new()) };
    let (spec, _bytes) = Spec::load(&path)?;
    let bad = |what: &str, e: &(dyn std::error::Error + 'static)| {
        PreserveError::SpecValue(format!("{}: {what}: {}", path.display(), crate::error_text(e)))
    };
    if req.incident_dir.is_none() {
        req.incident_dir = spec.incident_dir.clone();
    }
    for s in &spec.sources {
        let parsed: SourceSpec = format!("{}={}", s.kind, s.path.display()).parse().map_err(|e| bad("source", &e))?;
        req.sources.push(parsed);
        if let Some(f) = &s.format {
            let o: FormatOverride = format!("{}={f}", s.kind).parse().map_err(|e| bad("format", &e))?;
            // Flags given on the command line come later and win.
            req.formats.insert(0, o);
        }
    }
    for (sel, f) in &spec.formats {
        let o: FormatOverride = format!("{sel}={f}").parse().map_err(|e| bad("formats", &e))?;
        req.formats.insert(0, o);
    }
    let mut from_spec = Vec::new();
    for (name, value) in &spec.identifiers {
        let n = IdentName::ALL.into_iter().find(|i| i.as_str() == name.as_str()).ok_or_else(|| {
            PreserveError::SpecValue(format!("{}: identifiers: unknown identifier `{name}`", path.display()))
        })?;
        if !req.identifiers.iter().any(|(g, _)| *g == n) {
            req.identifiers.push((n, value.clone()));
            from_spec.push(n);
        }
    }
    if req.category.is_none() {
        if let Some(c) = &spec.category {
            req.category = Some(c.parse().map_err(|e| bad("category", &e))?);
        }
    }
    if req.side_effect == SideEffect::Unknown {
        if let Some(se) = &spec.side_effect {
            req.side_effect = se.parse().map_err(|e| bad("side_effect", &e))?;
        }
    }
    let mut notes = spec.notes.clone();
    notes.append(&mut req.notes);
    req.notes = notes;
    req.not_applicable.extend(spec.not_applicable.iter().cloned());
    req.follow_symlinks |= spec.follow_symlinks;
    if req.field_map.is_none() {
        req.field_map = spec.field_map.clone();
    }
    req.sources.push(SourceSpec { kind: "spec".into(), path: path.clone() });
    Ok(from_spec)
}

fn file_sha256(path: &std::path::Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| crate::digest::Sha256::of(&b).hex())
}

/// Choose the field mapping: `--field-map` (or the spec's `field_map`), else the spec's
/// inline `[fields]`, else `custody-fields.toml` at the incident directory's root, else the
/// built-in names. Problems with the automatic file are journal events, not errors.
fn choose_mapping(
    req: &mut PreserveRequest,
    field_map_from_flag: bool,
    events: &mut Vec<PlanEvent>,
    clock: &Clock,
) -> Result<MappingInfo, PreserveError> {
    if let Some(p) = req.field_map.clone() {
        let mapping = FieldMapping::load(&p)?;
        let inside = req
            .incident_dir
            .as_ref()
            .and_then(|d| d.canonicalize().ok())
            .zip(p.canonicalize().ok())
            .is_some_and(|(d, f)| f.starts_with(d));
        if !inside && !req.sources.iter().any(|s| s.path == p) {
            req.sources.push(SourceSpec { kind: "spec".into(), path: p.clone() });
        }
        return Ok(MappingInfo {
            origin: if field_map_from_flag { "flag" } else { "spec" }.into(),
            path: Some(p.display().to_string()),
            sha256: file_sha256(&p),
            mapping,
        });
    }
    if let Some(spec_path) = &req.spec {
        if let Ok((spec, _)) = Spec::load(spec_path) {
            if let Some(text) = spec.inline_mapping() {
                let mapping = FieldMapping::from_toml_str(&text)?;
                return Ok(MappingInfo {
                    origin: "spec".into(),
                    path: Some(spec_path.display().to_string()),
                    sha256: file_sha256(spec_path),
                    mapping,
                });
            }
        }
    }
    if let Some(dir) = &req.incident_dir {
        let p = dir.join(AUTO_FIELD_MAP);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            let shown = std::path::absolute(&p).unwrap_or_else(|_| p.clone()).display().to_string();
            // Read by its real path with no link followed (a link swapped in since the check
            // above would have its target quoted by a parse error, into the journal).
            let real = dir.canonicalize().map(|d| d.join(AUTO_FIELD_MAP)).unwrap_or_else(|_| p.clone());
            let loaded = crate::bundle::write::open_no_links(&real)
                .map_err(|source| MappingError::Read { path: shown.clone(), source })
                .and_then(|f| FieldMapping::load_file(f, &p));
            match loaded {
                Ok(mapping) => {
                    events.push(PlanEvent {
                        at: clock.now(),
                        event: EventKind::Note,
                        path: Some(shown.clone()),
                        detail: format!("field mapping {AUTO_FIELD_MAP} found at the incident directory's root: used for the analysis (sealed as evidence too)"),
                    });
                    return Ok(MappingInfo {
                        origin: "incident_dir".into(),
                        path: Some(shown),
                        sha256: file_sha256(&p),
                        mapping,
                    });
                }
                Err(e) => events.push(PlanEvent {
                    at: clock.now(),
                    event: EventKind::Error,
                    path: Some(shown),
                    detail: format!("{}; the analysis uses the built-in field names only", crate::error_text(&e)),
                }),
            }
        }
    }
    Ok(MappingInfo::default())
}

/// The field-mapping file picked up automatically at the root of an incident directory.
pub const AUTO_FIELD_MAP: &str = "custody-fields.toml";

/// Preserve an incident into `store`, signed with `key`.
pub async fn preserve(
    store: &Store,
    key: Arc<SecretKey>,
    mut req: PreserveRequest,
    clock: Clock,
) -> Result<Preserved, PreserveError> {
    let mut phases = Phases::new();
    let field_map_from_flag = req.field_map.is_some();
    let from_spec = apply_spec(&mut req)?;
    check_responder_notes(&req.notes)?;
    if let Some(l) = req.ledger_key.as_ref().filter(|l| l.id() == key.id()) {
        return Err(PreserveError::SameLedgerKey(l.id()));
    }
    let ledger_key = req.ledger_key.clone();
    // Seeds are normalised (a traceparent, an upper-case or base64 trace id) before anything
    // is read; one that cannot be a value of its kind stops here (exit 2).
    let mut seeds: Vec<Seed> = Vec::new();
    let mut seed_notes = Vec::new();
    for (name, raw) in req.identifiers.iter_mut() {
        let origin = if from_spec.contains(name) { SeedOrigin::Spec } else { SeedOrigin::Flag };
        let seed = normalize_seed(Some(*name), raw, origin)?;
        if let Some(how) = &seed.normalised {
            seed_notes.push(format!(
                "custody: {} given as `{raw}`, searched for as {} ({how})",
                name.as_str(),
                seed.value
            ));
        }
        *raw = seed.value.clone();
        seeds.push(seed);
    }
    for raw in &req.seeds {
        seeds.push(normalize_seed(None, raw, SeedOrigin::Flag)?);
    }
    let mut mapping_events = Vec::new();
    let mapping = if req.analyze {
        choose_mapping(&mut req, field_map_from_flag, &mut mapping_events, &clock)?
    } else {
        MappingInfo::default()
    };
    let mut plan = {
        // Links are never followed to the signing key, its directory or custody's home.
        let symlinks = if req.follow_symlinks {
            collect::Symlinks::Follow(Secrets::new(&key.path, key.file_id(), &crate::home_dir()))
        } else {
            collect::Symlinks::Record
        };
        let (dir, sources, clock) = (req.incident_dir.clone(), req.sources.clone(), clock.clone());
        tokio::task::spawn_blocking(move || collect::plan(dir.as_deref(), &sources, &symlinks, &clock)).await??
    };
    phases.mark("plan");
    let adopted = match req.adopt_min_age {
        Some(age) => adopt_unreferenced(store, &key, ledger_key.as_deref(), age, &clock).await?,
        None => Vec::new(),
    };
    let swept = store.sweep_staging(crate::store::STALE_STAGING);
    let (mut store_notes, left) = store.sweep_uploads(crate::store::STALE_STAGING).await;
    store_notes.extend(left);
    plan.events.extend(mapping_events);
    let head = ledger::head(store).await?;
    // The store's identity is created (or read) now, before the bundle is stored: the append
    // then finds it known. Same requests either way; but listing a bucket's versions costs
    // moto a deep copy of every object in it, so listings are best done while it holds no
    // bundle of this run (docs/performance.md).
    ledger::ensure_store_id(store, clock.now()).await?;
    phases.mark("adopt+head");
    // One shared list of the planned files: the reader, the writer and every retry use it
    // (each copy of 100 000 planned files was ~30 MB and 400 000 allocations).
    let mut files: Arc<[PlannedFile]> = std::mem::take(&mut plan.files).into();
    if req.progress.is_on() {
        req.progress.add_totals(0, files.len() as u64);
        // The byte total takes an `lstat` per file (~0.1 s for 100 000 files): counted on
        // the side while the seal starts, not before it (the meter shows no percentage
        // until then). If the thread cannot be started, there is no byte total.
        let (progress, files) = (req.progress.clone(), files.clone());
        let _ = std::thread::Builder::new().name("custody-sizes".into()).spawn(move || {
            let bytes = files.iter().filter_map(|f| std::fs::symlink_metadata(&f.source).ok()).map(|m| m.len()).sum();
            progress.add_totals(bytes, 0);
        });
    }
    let mut incident = incident_from(&req);
    incident.tool_notes = Some(seed_notes);
    for id in incident.identifiers.iter_mut().filter(|i| from_spec.contains(&i.name)) {
        for s in id.sources.iter_mut() {
            s.origin = "spec".into();
        }
    }
    let plan_problems: Vec<EvidenceProblem> = plan
        .events
        .iter()
        .filter(|e| matches!(e.event, EventKind::Error | EventKind::Skipped))
        .map(|e| EvidenceProblem {
            path: e.path.clone().unwrap_or_else(|| "-".into()),
            problem: if e.event == EventKind::Error { "unreadable".into() } else { "skipped".into() },
            detail: e.detail.clone(),
        })
        .collect();
    // Built afresh for each attempt: a retry's plan differs (snapshots).
    let observe_config = |files: &Arc<[PlannedFile]>| ObserveConfig {
        mapping: mapping.clone(),
        formats: req.formats.clone(),
        planned: files.clone(),
        plan_problems: plan_problems.clone(),
        not_applicable: req.not_applicable.clone(),
        limits: crate::collect::analyze::AnalyzerLimits {
            merge_window_ms: req
                .merge_window_ms
                .unwrap_or(crate::collect::analyze::AnalyzerLimits::default().merge_window_ms),
            ..Default::default()
        },
    };
    let mut attempt = 0;
    let (sealed, target): (Sealed, Target) = loop {
        attempt += 1;
        let (out, target) = Target::open(store)?;
        crate::test_pause("sealing");
        let input_files = files.clone();
        let events = plan.events.clone();
        let (incident, na, link, key2, clock2) =
            (incident.clone(), req.not_applicable.clone(), head.as_ref().map(|h| h.link()), key.clone(), clock.clone());
        let (level, workers, progress) = (req.level, req.workers, req.progress.clone());
        let (observe, seeds) = (req.analyze.then(|| observe_config(&files)), seeds.clone());
        let r = tokio::task::spawn_blocking(move || {
            let mut observer = match observe {
                Some(cfg) => Some(AnalysisObserver::start(cfg, &seeds).map_err(PreserveError::Thread)?),
                None => None,
            };
            let input = SealInput {
                files: input_files,
                plan_events: events,
                incident,
                not_applicable: na,
                ledger_prev: link,
                clock: &clock2,
                key: &key2,
                level,
                workers,
                observer: observer.as_mut().map(|o| o as &mut dyn crate::bundle::write::Observer),
                supplement_of: None,
            };
            Ok::<_, PreserveError>(seal_with_progress(input, out, &progress))
        })
        .await
        .map_err(PreserveError::from)
        .and_then(|started| started);
        // The analysis could not start (or the task died): a started multipart upload is
        // aborted now, not left for the next preserve's clean-up.
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                if let Target::Streamed(upload) = target {
                    let _ = upload.abandon().await;
                }
                return Err(e);
            }
        };
        let e = match (r, target) {
            (Ok(s), target) => break (s, target),
            (Err(e), Target::Streamed(upload)) => match upload.abandon().await {
                // The upload failed first: the seal only lost its output.
                Some(upload_error) => return Err(PreserveError::StreamFailed(upload_error)),
                None => e,
            },
            (Err(e), Target::Staged(_)) => e,
        };
        match e {
            SealError::Changed(paths) if attempt < 3 => {
                files = files
                    .iter()
                    .map(|f| PlannedFile { snapshot: f.snapshot || paths.contains(&f.rel_path), ..f.clone() })
                    .collect();
            }
            e => return Err(e.into()),
        }
    };
    req.progress.finish();
    phases.mark("seal");
    // The token is asked for right after sealing, before the (maybe long) upload: its genTime
    // then lies within the skew of `sealed_at`, which the verifier holds it to (§6.6, T5).
    let token = match &req.tsa {
        Some(url) => Some(crate::tsa::request_token(url, &sealed.signature).await),
        None => None,
    };
    phases.mark("tsa");
    drop(plan.stdin_spool);
    let stored = match target {
        Target::Staged(staged) => store.put_bundle(staged, &sealed.id).await.map(|o| (o, Vec::new())),
        Target::Streamed(upload) => {
            store.put_streamed(upload, &sealed.id, sealed.size).await.map(|p| (p.outcome, p.notes))
        }
    };
    let (outcome, notes) =
        stored.map_err(|source| PreserveError::BundleNotStored { bundle: sealed.id, source: Box::new(source) })?;
    store_notes.extend(notes);
    phases.mark("store");
    let location = store.location(&crate::store::bundle_key(&sealed.id));
    crate::test_pause("after-bundle");
    // Identical evidence and clock give an identical bundle; do not record it twice.
    if outcome == PutOutcome::AlreadyPresent {
        if let Some(e) = ledger::load_all(store)
            .await
            .map_err(|source| PreserveError::NotRecorded {
                bundle: sealed.id,
                location: location.clone(),
                source: Box::new(source),
            })?
            .into_iter()
            .find(|e| matches!(&e.parsed, Ok((_, le)) if le.bundle == sealed.id))
        {
            return Ok(Preserved {
                bundle: sealed.id,
                size: sealed.size,
                input_bytes: sealed.input_bytes,
                location,
                position: e.position,
                entry: e.id,
                outcome,
                manifest: sealed.manifest,
                analysis_summary: sealed.analysis_summary,
                adopted,
                swept,
                store_notes,
                timestamp: None,
                timestamp_problem: token.is_some().then(|| {
                    "the identical bundle was already recorded: its entry is not rewritten (`custody timestamp` adds a missing token)".into()
                }),
            });
        }
    }
    // The token is stored before the entry that references it; a store failure here only
    // leaves the bundle without one (as a TSA that is down does).
    let (timestamp, timestamp_problem) = match token {
        None => (None, None),
        Some(Err(e)) => (None, Some(crate::error_text(&e))),
        Some(Ok((bytes, attested))) => match crate::tsa::store_token(store, &sealed.id, bytes, attested).await {
            Ok(Some(stamp)) => (Some(stamp), None),
            Ok(None) => {
                (None, Some("another token already holds the bundle's token key; it is kept, found by its key".into()))
            }
            Err(e) => (None, Some(format!("the token could not be stored: {}", crate::error_text(&e)))),
        },
    };
    // Only a writer that adopted this very bundle since we read the head can have recorded it.
    let since = head.as_ref().map(|h| h.position).unwrap_or(0);
    let new = ledger::NewEntry {
        bundle: sealed.id,
        bundle_size: sealed.size,
        sealed_at: sealed.manifest.sealed_at,
        adopted: false,
        supplement_of: None,
        timestamp: timestamp.as_ref().map(crate::tsa::Stamp::reference),
    };
    let signer = LedgerSigner::of(&key, ledger_key.as_deref());
    let appended = ledger::append_entry(store, &new, signer, || clock.now(), Some(since)).await.map_err(|source| {
        PreserveError::NotRecorded { bundle: sealed.id, location: location.clone(), source: Box::new(source) }
    })?;
    let (position, entry) = (appended.position, appended.entry);
    phases.mark("ledger");
    Ok(Preserved {
        bundle: sealed.id,
        size: sealed.size,
        input_bytes: sealed.input_bytes,
        location,
        position,
        entry,
        outcome,
        manifest: sealed.manifest,
        analysis_summary: sealed.analysis_summary,
        adopted,
        swept,
        store_notes,
        timestamp,
        timestamp_problem,
    })
}

/// The wall time of each phase of a preserve, as `tracing` events of target
/// [`crate::TIMING`] (the binary prints them with `CUSTODY_TIMINGS=1`, for the benchmark
/// notes in docs/performance.md).
struct Phases {
    last: std::time::Instant,
}

impl Phases {
    fn new() -> Self {
        Phases { last: std::time::Instant::now() }
    }
    fn mark(&mut self, phase: &str) {
        let now = std::time::Instant::now();
        tracing::info!(target: crate::TIMING, phase, seconds = (now - self.last).as_secs_f64(), "preserve phase");
        self.last = now;
    }
}
