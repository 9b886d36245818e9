//! `preserve`: plan → seal → store → ledger, in that order.
//!
//! A bundle is sealed into a staging file, made durable, and only then linked into place
//! (create-only); its ledger entry is appended last. A preserve interrupted at any point
//! leaves either nothing visible or a complete bundle (which `verify --all` reports as
//! unreferenced until a ledger entry records it).

use std::path::PathBuf;
use std::sync::Arc;

use crate::bundle::manifest::{Category, IdentName, IdentSource, Identifier, Incident, Manifest, SideEffect, Status};
use crate::bundle::write::{seal_with_progress, SealError, SealInput, Sealed};
use crate::clock::Clock;
use crate::collect::{self, CollectError, SourceSpec};
use crate::digest::{BundleId, EntryId};
use crate::keys::SecretKey;
use crate::store::ledger;
use crate::store::{PutOutcome, Store, StoreError};

/// Why a preserve failed.
#[derive(Debug, thiserror::Error)]
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
    /// The sealing thread died.
    #[error("internal error: the sealing task failed: {0}")]
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
    /// Triage category.
    pub category: Option<Category>,
    /// Side effect status.
    pub side_effect: SideEffect,
    /// Responder notes.
    pub notes: Vec<String>,
    /// Checklist items declared not applicable.
    pub not_applicable: Vec<String>,
    /// Follow symbolic links.
    pub follow_symlinks: bool,
    /// zstd level.
    pub level: i32,
    /// zstd workers.
    pub workers: u32,
    /// Progress meter (disabled by default).
    pub progress: crate::progress::Progress,
}

impl Default for PreserveRequest {
    fn default() -> Self {
        PreserveRequest {
            incident_dir: None,
            sources: Vec::new(),
            identifiers: Vec::new(),
            category: None,
            side_effect: SideEffect::Unknown,
            notes: Vec::new(),
            not_applicable: Vec::new(),
            follow_symlinks: false,
            level: 3,
            workers: default_workers(),
            progress: crate::progress::Progress::disabled(),
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
}

/// Build the incident section from the responder's input.
pub fn incident_from(req: &PreserveRequest) -> Incident {
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
    Incident { identifiers, category: req.category, side_effect: req.side_effect, notes: req.notes.clone() }
}

/// Preserve an incident into `store`, signed with `key`.
pub async fn preserve(
    store: &Store,
    key: Arc<SecretKey>,
    req: PreserveRequest,
    clock: Clock,
) -> Result<Preserved, PreserveError> {
    let plan = {
        let (dir, sources, follow, clock) =
            (req.incident_dir.clone(), req.sources.clone(), req.follow_symlinks, clock.clone());
        tokio::task::spawn_blocking(move || collect::plan(dir.as_deref(), &sources, follow, &clock)).await??
    };
    let head = ledger::head(store).await?;
    if req.progress.is_enabled() {
        let bytes = plan.files.iter().filter_map(|f| std::fs::symlink_metadata(&f.source).ok()).map(|m| m.len()).sum();
        req.progress.add_totals(bytes, plan.files.len() as u64);
    }
    let incident = incident_from(&req);
    let mut files = plan.files.clone();
    let mut attempt = 0;
    let (sealed, staged): (Sealed, tempfile::NamedTempFile) = loop {
        attempt += 1;
        let staged = store.staging_file()?;
        let out = staged.reopen().map_err(|source| StoreError::Io {
            op: "cannot open staging file",
            path: staged.path().into(),
            source,
        })?;
        let input_files = files.clone();
        let events = plan.events.clone();
        let (incident, na, link, key2, clock2) =
            (incident.clone(), req.not_applicable.clone(), head.as_ref().map(|h| h.link()), key.clone(), clock.clone());
        let (level, workers, progress) = (req.level, req.workers, req.progress.clone());
        let r = tokio::task::spawn_blocking(move || {
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
                observer: None,
            };
            seal_with_progress(input, out, &progress)
        })
        .await?;
        match r {
            Ok(s) => break (s, staged),
            Err(SealError::Changed(paths)) if attempt < 3 => {
                for f in files.iter_mut().filter(|f| paths.contains(&f.rel_path)) {
                    f.snapshot = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    req.progress.finish();
    drop(plan.stdin_spool);
    let outcome = store.put_bundle(staged, &sealed.id).await?;
    let location = store.location(&crate::store::bundle_key(&sealed.id));
    // Identical evidence and clock give an identical bundle; do not record it twice.
    if outcome == PutOutcome::AlreadyPresent {
        if let Some(e) = ledger::load_all(store)
            .await?
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
            });
        }
    }
    let (position, entry) =
        ledger::append(store, &sealed.id, sealed.size, sealed.manifest.sealed_at, &key, || clock.now()).await?;
    Ok(Preserved {
        bundle: sealed.id,
        size: sealed.size,
        input_bytes: sealed.input_bytes,
        location,
        position,
        entry,
        outcome,
        manifest: sealed.manifest,
    })
}
