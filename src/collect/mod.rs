//! Planning what to collect: incident directories, `--source KIND=PATH` files and
//! directories (walked in sorted order), and standard input.
//!
//! Nothing is read here: this module decides *which* files go into the bundle and under which
//! path and kind, and records what it deliberately leaves out (symbolic links unless asked to
//! follow them, FIFOs, devices, sockets) and what it cannot reach (missing paths, unreadable
//! directories) as journal events. Collected bytes are never changed by anything in custody.

pub mod analysis;
pub mod analyze;
pub mod observe;
pub mod spec;

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::bundle::manifest::EventKind;
use crate::bundle::write::{PlanEvent, PlannedFile};
use crate::clock::Clock;

/// The conventional sub-folders of an incident directory, each its own evidence kind.
pub const INCIDENT_DIRS: [&str; 7] = ["traces", "policy", "approvals", "memory", "egress", "logs", "attachments"];

/// The evidence kind a folder's name says (ASCII case ignored): one of [`INCIDENT_DIRS`], or
/// the name of a system that exports that kind (`k8s/`, `squid/`, `cerbos/`…,
/// docs/collector.md §4.1). Content decides first; this is the hint.
pub(crate) fn folder_kind(name: &str) -> Option<&'static str> {
    let f = name.to_ascii_lowercase();
    Some(match f.as_str() {
        "traces" | "otel" | "otlp" | "tracing" | "spans" | "langfuse" | "langsmith" | "openai-agents"
        | "agents-sdk" => "traces",
        "policy" | "opa" | "policies" | "decisions" | "cerbos" | "authz" | "policy-decisions" => "policy",
        "approvals" | "slack" | "approval" => "approvals",
        "memory" | "mem0" | "memories" | "openmemory" | "qdrant" | "chroma" | "pinecone" | "weaviate"
        | "vector-store" => "memory",
        "egress" | "proxy" | "squid" | "envoy" | "istio" | "gateway" => "egress",
        "logs" | "datadog" | "cloudwatch" | "loki" | "splunk" | "elastic" | "elasticsearch" | "app-logs" => "logs",
        "deploy" | "cd" | "ci" | "pipeline" | "pipelines" | "argo" | "argocd" | "argo-rollouts" | "deployments"
        | "releases" | "changes" | "github" | "spinnaker" | "flux" => "deploy",
        "cloud" | "cloudtrail" | "aws" | "gcp" | "azure" => "cloud",
        "cluster" | "k8s" | "kubernetes" | "kube" | "cluster-audit" | "audit" | "k8s-audit" | "kube-audit" => "cluster",
        "attachments" => "attachments",
        _ => return None,
    })
}

/// Errors that stop planning.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A `--source` argument is not `KIND=PATH`.
    #[error(
        "--source `{0}` is not KIND=PATH (for example logs=/var/log/agent/tool_calls.jsonl, or traces=- for stdin)"
    )]
    BadSource(String),
    /// A kind name that cannot be used as a path component.
    #[error("evidence kind `{0}` must be letters, digits, `-` or `_`")]
    BadKind(String),
    /// Standard input could not be spooled.
    #[error("cannot read standard input into a temporary file")]
    Stdin(#[source] std::io::Error),
    /// Standard input given twice.
    #[error("`-` (standard input) can be given only once")]
    StdinTwice,
}

/// One `--source` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// Evidence kind.
    pub kind: String,
    /// File, directory, or `-`.
    pub path: PathBuf,
}

impl std::str::FromStr for SourceSpec {
    type Err = CollectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, path) = s.split_once('=').ok_or_else(|| CollectError::BadSource(s.into()))?;
        if kind.is_empty() || path.is_empty() {
            return Err(CollectError::BadSource(s.into()));
        }
        if !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(CollectError::BadKind(kind.into()));
        }
        Ok(SourceSpec { kind: kind.into(), path: PathBuf::from(path) })
    }
}

/// What to collect.
#[derive(Debug, Default)]
pub struct Plan {
    /// Files, sorted by bundle path.
    pub files: Vec<PlannedFile>,
    /// What was left out and why.
    pub events: Vec<PlanEvent>,
    /// Standard input, spooled to a private temporary file (kept alive while sealing; removed
    /// if the run is interrupted: [`crate::unfinished`]).
    pub stdin_spool: Option<crate::unfinished::TrackedTemp>,
}

struct Planner<'a> {
    plan: Plan,
    /// For each planned file, how many events had been recorded when it was added (where
    /// [`rename_duplicates`] puts the note of its renaming).
    event_pos: Vec<usize>,
    follow: bool,
    clock: &'a Clock,
}

impl Planner<'_> {
    fn event(&mut self, event: EventKind, path: &Path, detail: String) {
        self.plan.events.push(PlanEvent {
            at: self.clock.now(),
            event,
            path: Some(path.display().to_string()),
            detail,
        });
    }

    fn add_file(&mut self, rel: String, kind: &str, source: PathBuf, display: String) {
        let mut rel = rel;
        if let Err(why) = crate::read::envelope::check_entry_path(&rel) {
            let safe = safe_bundle_path(&rel);
            self.event(
                EventKind::Note,
                &source,
                format!("bundle path `{rel}` is not allowed ({why}); stored as `{safe}` (its source path is kept in the entry)"),
            );
            rel = safe;
        }
        // Bundle paths taken twice are renamed after the walk (`rename_duplicates`), only
        // when there are any: no set of 100 000 paths to hash and copy while walking.
        self.event_pos.push(self.plan.events.len());
        self.plan.files.push(PlannedFile {
            rel_path: rel,
            kind: kind.into(),
            source,
            display_source: display,
            snapshot: false,
        });
    }

    /// Add `path` (file or directory) under bundle prefix `prefix`.
    fn add_path(&mut self, path: &Path, kind: &str, prefix: &str) {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.event(EventKind::Error, path, format!("source is missing or unreadable: {e}"));
                return;
            }
        };
        if meta.file_type().is_symlink() && !self.follow {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|e| format!("(unreadable: {e})"));
            self.event(
                EventKind::Skipped,
                path,
                format!("symbolic link to `{target}`: recorded, not followed (use --follow-symlinks)"),
            );
            return;
        }
        let is_dir = if self.follow { path.is_dir() } else { meta.is_dir() };
        if !is_dir {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            self.add_regular(path, rel, kind, None);
            return;
        }
        // The absolute form of the walked root, once (`std::path::absolute` per file costs a
        // getcwd each for a relative root: ~10% of planning 100 000 files).
        let abs_root = std::path::absolute(path).ok();
        // Sorted by file name, compared as whole paths: siblings share their parent's prefix,
        // so the order is `sort_by_file_name`'s, without parsing two paths' components per
        // comparison (that was 40% of planning 100 000 files).
        let walker = walkdir::WalkDir::new(path)
            .follow_links(self.follow)
            .sort_by(|a, b| a.path().as_os_str().cmp(b.path().as_os_str()));
        for item in walker {
            let entry = match item {
                Ok(e) => e,
                Err(e) => {
                    let p = e.path().map(Path::to_path_buf).unwrap_or_else(|| path.to_path_buf());
                    self.event(EventKind::Error, &p, format!("cannot walk: {e}"));
                    continue;
                }
            };
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            let rel_inside = strip_root(entry.path(), path);
            // A walked path has no `.` components or repeated separators: valid UTF-8 is
            // already the bundle-relative form.
            let rel_str = match rel_inside.to_str() {
                Some(s) => s.to_owned(),
                None => rel_inside
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
            };
            let rel = if prefix.is_empty() {
                rel_str
            } else {
                let mut r = String::with_capacity(prefix.len() + 1 + rel_str.len());
                r.push_str(prefix);
                r.push('/');
                r.push_str(&rel_str);
                r
            };
            if ft.is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|e| format!("(unreadable: {e})"));
                self.event(
                    EventKind::Skipped,
                    entry.path(),
                    format!("symbolic link to `{target}`: recorded, not followed (use --follow-symlinks)"),
                );
                continue;
            }
            let abs = abs_root.as_ref().map(|r| {
                let mut a = r.clone().into_os_string();
                if !a.as_bytes().ends_with(b"/") {
                    a.push("/");
                }
                a.push(rel_inside.as_os_str());
                PathBuf::from(a)
            });
            self.add_regular(entry.path(), rel, kind, abs);
        }
    }

    /// `abs`: the absolute form of `path`, when the caller already has it.
    fn add_regular(&mut self, path: &Path, rel: String, kind: &str, abs: Option<PathBuf>) {
        let source =
            if self.follow { path.canonicalize().unwrap_or_else(|_| path.to_path_buf()) } else { path.to_path_buf() };
        let display = abs
            .or_else(|| std::path::absolute(path).ok())
            .unwrap_or_else(|| path.to_path_buf())
            .into_os_string()
            .into_string()
            .unwrap_or_else(|p| Path::new(&p).display().to_string());
        // Only a lossily converted bundle path can hold U+FFFD for a non-UTF-8 name.
        if let Some(name) = path.file_name().filter(|_| rel.contains('\u{fffd}')) {
            if name.to_str().is_none() {
                self.event(
                    EventKind::Note,
                    path,
                    "file name is not valid UTF-8; its bundle path uses U+FFFD for the invalid bytes".into(),
                );
            }
        }
        self.add_file(rel, kind, source, display);
    }
}

/// `path` relative to the walked `root` it was found under. walkdir builds every path as
/// `root.join(…)`, so the prefix is stripped as bytes (component-wise `strip_prefix` was 18%
/// of planning 100 000 files), falling back to `strip_prefix` for anything unexpected.
fn strip_root<'a>(path: &'a Path, root: &Path) -> &'a Path {
    let (p, r) = (path.as_os_str().as_bytes(), root.as_os_str().as_bytes());
    if let Some(rest) = p.strip_prefix(r) {
        let rest = if r.ends_with(b"/") { Some(rest) } else { rest.strip_prefix(b"/") };
        if let Some(rest) = rest.filter(|x| !x.is_empty() && !x.starts_with(b"/")) {
            return Path::new(std::ffi::OsStr::from_bytes(rest));
        }
    }
    path.strip_prefix(root).unwrap_or(path)
}

/// A bundle path the verifier accepts ([`crate::read::envelope::check_entry_path`]) for a
/// file whose own relative path it would reject: a backslash (legal in a Unix file name, a
/// separator when extracted on Windows) becomes U+FF3C `＼`; empty, `.` and `..` components
/// become `_`; a path longer than the limit keeps its first 200 bytes and ends with the
/// SHA-256 of the whole path. Collisions with other files are resolved by the caller.
fn safe_bundle_path(rel: &str) -> String {
    let mut out: String = rel
        .replace('\\', "\u{ff3c}")
        .replace('\0', "\u{fffd}")
        .split('/')
        .map(|c| if c.is_empty() || c == "." || c == ".." { "_" } else { c })
        .collect::<Vec<_>>()
        .join("/");
    if crate::read::envelope::check_entry_path(&out).is_err() {
        let mut cut = 200.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}…{}", &out[..cut], crate::digest::Sha256::of(rel.as_bytes()).hex());
        out = out.split('/').map(|c| if c.is_empty() { "_" } else { c }).collect::<Vec<_>>().join("/");
    }
    out
}

/// Plan the collection of an incident directory and extra sources.
pub fn plan(
    incident_dir: Option<&Path>,
    sources: &[SourceSpec],
    follow_symlinks: bool,
    clock: &Clock,
) -> Result<Plan, CollectError> {
    let mut p = Planner { plan: Plan::default(), event_pos: Vec::new(), follow: follow_symlinks, clock };
    if let Some(dir) = incident_dir {
        match std::fs::read_dir(dir) {
            Err(e) => p.event(EventKind::Error, dir, format!("incident directory is missing or unreadable: {e}")),
            Ok(rd) => {
                let mut children: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                children.sort();
                for child in children {
                    let name = child.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    let kind = match folder_kind(&name) {
                        Some(k) if child.is_dir() => k.to_string(),
                        _ => "other".to_string(),
                    };
                    let is_dir = std::fs::symlink_metadata(&child).map(|m| m.is_dir()).unwrap_or(false);
                    if is_dir {
                        p.add_path(&child, &kind, &name);
                    } else {
                        p.add_path(&child, &kind, "");
                    }
                }
            }
        }
    }
    for s in sources {
        if s.path.as_os_str() == "-" {
            if p.plan.stdin_spool.is_some() {
                return Err(CollectError::StdinTwice);
            }
            let mut tmp = crate::unfinished::temp_file(&tempfile::Builder::new(), None).map_err(CollectError::Stdin)?;
            let mut stdin = std::io::stdin().lock();
            std::io::copy(&mut stdin, &mut *tmp).map_err(CollectError::Stdin)?;
            tmp.flush().map_err(CollectError::Stdin)?;
            let src = tmp.path().to_path_buf();
            p.add_file(format!("{}/stdin", s.kind), &s.kind, src, "-".into());
            p.plan.stdin_spool = Some(tmp);
        } else {
            p.add_path(&s.path, &s.kind, &s.kind);
        }
    }
    let Planner { mut plan, event_pos, .. } = p;
    let mut order: Vec<usize> = (0..plan.files.len()).collect();
    order.sort_by(|&a, &b| plan.files[a].rel_path.cmp(&plan.files[b].rel_path));
    if order.windows(2).any(|w| plan.files[w[0]].rel_path == plan.files[w[1]].rel_path) {
        rename_duplicates(&mut plan, &event_pos, clock);
    }
    plan.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(plan)
}

/// Gives every file whose bundle path an earlier-planned file took `path~2` (or `~3`, …: the
/// first not taken by any earlier file), in planning order, and records a note for each at
/// the place in the events where it was planned — exactly what checking each path against
/// the paths planned before it would have done.
fn rename_duplicates(plan: &mut Plan, event_pos: &[usize], clock: &Clock) {
    let mut used: HashSet<String> = HashSet::with_capacity(plan.files.len());
    let mut notes = Vec::new();
    for (f, &pos) in plan.files.iter_mut().zip(event_pos) {
        if used.contains(&f.rel_path) {
            let mut n = 2;
            while used.contains(&format!("{}~{n}", f.rel_path)) {
                n += 1;
            }
            let renamed = format!("{}~{n}", f.rel_path);
            let detail = format!("bundle path `{}` already taken; stored as `{renamed}`", f.rel_path);
            let path = Some(f.source.display().to_string());
            notes.push((pos, PlanEvent { at: clock.now(), event: EventKind::Note, path, detail }));
            f.rel_path = renamed;
        }
        used.insert(f.rel_path.clone());
    }
    // Merged in one pass (inserting each note would be quadratic when a whole directory is
    // planned twice): a note planned after `pos` events goes before the event at `pos`.
    let mut notes = notes.into_iter().peekable();
    let mut events = Vec::with_capacity(plan.events.len() + notes.len());
    for (i, ev) in std::mem::take(&mut plan.events).into_iter().enumerate() {
        while let Some((_, note)) = notes.next_if(|(pos, _)| *pos <= i) {
            events.push(note);
        }
        events.push(ev);
    }
    events.extend(notes.map(|(_, note)| note));
    plan.events = events;
}

#[cfg(test)]
mod tests {
    use super::{safe_bundle_path, strip_root};
    use crate::read::envelope::check_entry_path;
    use std::path::Path;

    /// A bundle path planned twice: the later file (in planning order) is renamed `~2`, or
    /// `~3` when a real `~2` was planned before it, and a note naming it is journaled where it
    /// was planned (between the skipped symlinks found before and after it).
    #[test]
    fn paths_taken_twice_are_renamed_in_planning_order() {
        use super::{plan, SourceSpec};
        use crate::bundle::manifest::EventKind;
        let tmp = tempfile::tempdir().unwrap();
        let inc = tmp.path().join("incident");
        std::fs::create_dir_all(inc.join("logs")).unwrap();
        for name in ["a.log", "a.log~2", "b.log"] {
            std::fs::write(inc.join("logs").join(name), name).unwrap();
        }
        let extra = tmp.path().join("extra");
        std::fs::create_dir_all(&extra).unwrap();
        std::fs::write(extra.join("a.log"), "extra a").unwrap();
        std::fs::write(extra.join("b.log"), "extra b").unwrap();
        std::os::unix::fs::symlink("/nowhere", extra.join("0-link")).unwrap();
        std::os::unix::fs::symlink("/nowhere", extra.join("b-link")).unwrap();
        std::fs::write(extra.join("c.log"), "extra c").unwrap();
        let clock = crate::clock::Clock::system();
        let sources = [SourceSpec { kind: "logs".into(), path: extra.clone() }];
        let p = plan(Some(&inc), &sources, false, &clock).unwrap();
        let got: Vec<(&str, String)> =
            p.files.iter().map(|f| (f.rel_path.as_str(), std::fs::read_to_string(&f.source).unwrap())).collect();
        let want = [
            ("logs/a.log", "a.log"),
            ("logs/a.log~2", "a.log~2"),
            ("logs/a.log~3", "extra a"),
            ("logs/b.log", "b.log"),
            ("logs/b.log~2", "extra b"),
            ("logs/c.log", "extra c"),
        ];
        assert_eq!(got, want.map(|(r, c)| (r, c.to_string())));
        let events: Vec<(EventKind, &str)> = p.events.iter().map(|e| (e.event, e.detail.as_str())).collect();
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!((events[0].0, events[2].0), (EventKind::Skipped, EventKind::Skipped));
        assert_eq!(p.events[0].path.as_deref(), Some(extra.join("0-link").to_str().unwrap()));
        assert_eq!(events[1], (EventKind::Note, "bundle path `logs/a.log` already taken; stored as `logs/a.log~3`"));
        assert_eq!(p.events[1].path.as_deref(), Some(extra.join("a.log").to_str().unwrap()));
        assert_eq!(p.events[2].path.as_deref(), Some(extra.join("b-link").to_str().unwrap()));
        assert_eq!(events[3], (EventKind::Note, "bundle path `logs/b.log` already taken; stored as `logs/b.log~2`"));
        // Without a duplicate, nothing is renamed and no note is written.
        let p = plan(Some(&inc), &[], false, &clock).unwrap();
        assert!(p.events.is_empty() && p.files.iter().all(|f| !f.rel_path.ends_with("~3")));
    }

    #[test]
    fn strip_root_is_strip_prefix_for_walked_paths() {
        for (root, path, rel) in [
            ("corpus", "corpus/memory/a.json", "memory/a.json"),
            ("corpus/", "corpus/memory/a.json", "memory/a.json"),
            ("./c", "./c/x", "x"),
            ("/abs/c", "/abs/c/d/e", "d/e"),
            ("c", "cx/y", "cx/y"),
            ("c", "c", ""),
        ] {
            let got = strip_root(Path::new(path), Path::new(root));
            assert_eq!(got, Path::new(rel), "{root} {path}");
            if let Ok(p) = Path::new(path).strip_prefix(root) {
                if !p.as_os_str().is_empty() {
                    assert_eq!(got, p);
                }
            }
        }
    }

    #[test]
    fn safe_bundle_path_makes_every_rejected_path_acceptable() {
        assert_eq!(safe_bundle_path("logs/a\\b.log"), "logs/a\u{ff3c}b.log");
        assert_eq!(safe_bundle_path("logs//./x/../y"), "logs/_/_/x/_/y");
        let long = format!("logs/{}", "d/".repeat(3000));
        let safe = safe_bundle_path(&long);
        assert!(safe.len() < 400 && safe.starts_with("logs/d/"), "{safe}");
        for p in ["a\\b", "/abs", "a//b", "..", "x/./y", &long, &"é".repeat(2100), "a\0b"] {
            assert!(check_entry_path(p).is_err(), "{p} should be rejected");
            let s = safe_bundle_path(p);
            assert_eq!(check_entry_path(&s), Ok(()), "{p:?} mapped to {s:?}");
        }
    }
}
