//! Planning what to collect: incident directories, `--source KIND=PATH` files and
//! directories (walked in sorted order), and standard input.
//!
//! Nothing is read here: this module decides *which* files go into the bundle and under which
//! path and kind, and records what it deliberately leaves out (symbolic links unless asked to
//! follow them, and then every link [`links`] refuses; FIFOs, devices, sockets) and what it
//! cannot reach (missing paths, unreadable directories) as journal events. Each file is
//! planned by its real path (the links on the way resolved), which the reader opens without
//! following any link. Collected bytes are never changed by anything in custody.

pub mod analysis;
pub mod analyze;
pub mod links;
pub mod observe;
pub mod spec;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::bundle::manifest::EventKind;
use crate::bundle::write::{PlanEvent, PlannedFile};
use crate::clock::Clock;
use crate::FileId;

/// The conventional sub-folders of an incident directory, each its own evidence kind.
pub const INCIDENT_DIRS: [&str; 7] = ["traces", "policy", "approvals", "memory", "egress", "logs", "attachments"];

/// The evidence kind a folder's name says (ASCII case ignored): one of [`INCIDENT_DIRS`], or
/// the name of a system that exports that kind (`k8s/`, `squid/`, `cerbos/`…,
/// docs/collector.md §4.1). Content decides first; this is the hint.
pub(crate) fn folder_kind(name: &str) -> Option<&'static str> {
    let f = name.to_ascii_lowercase();
    Some(match f.as_str() {
        "traces" | "otel" | "otlp" | "tracing" | "spans" | "langfuse" | "langsmith" | "openai-agents"
        | "agents-sdk" | "otelcol" | "otel-collector" | "opentelemetry" | "jaeger" | "tempo" => "traces",
        "policy" | "opa" | "policies" | "decisions" | "cerbos" | "authz" | "policy-decisions" => "policy",
        "approvals" | "slack" | "approval" | "jira" | "jira-sm" | "servicenow" | "pagerduty" | "teams" => "approvals",
        "memory" | "mem0" | "memories" | "openmemory" | "qdrant" | "chroma" | "pinecone" | "weaviate"
        | "vector-store" => "memory",
        "egress" | "proxy" | "squid" | "envoy" | "istio" | "gateway" | "traefik" | "kong" | "nginx" | "haproxy" => {
            "egress"
        }
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
#[non_exhaustive]
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

/// How planning treats symbolic links.
#[derive(Debug, Default)]
pub enum Symlinks {
    /// Record each link in the journal (`skipped`, with its target), follow none (the
    /// default).
    #[default]
    Record,
    /// Follow the links that [`links::check`] allows (never to these secrets); record the
    /// others as `skipped`, with the reason.
    Follow(links::Secrets),
}

/// Nested directories entered through links, at most (a deeper one is journaled, not
/// entered: planning must end, whatever links an attacker planted).
const MAX_LINKED_DIRS: usize = 32;

struct Planner<'a> {
    plan: Plan,
    /// For each planned file, how many events had been recorded when it was added (where
    /// [`rename_duplicates`] puts the note of its renaming).
    event_pos: Vec<usize>,
    /// The secrets never followed to, when following links.
    follow: Option<&'a links::Secrets>,
    /// Real paths of the incident directory and of every named source: where links may lead.
    allowed: Vec<PathBuf>,
    /// Real paths of the directories being walked, outermost first (a link into one of them,
    /// or above one, is a loop).
    walking: Vec<PathBuf>,
    /// Directories entered through a link, and the first link that led there: each is
    /// entered once (links that fan out to one directory cannot multiply the work).
    entered: HashMap<PathBuf, String>,
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

    fn add_file(&mut self, rel: String, kind: &str, source: PathBuf, display: String, link_target: Option<FileId>) {
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
            link_target,
        });
    }

    /// Add `path` (as the responder named it: file, directory or link) whose real location is
    /// `real` (the links on the way to it resolved, not its own name): a directory's files go
    /// under bundle prefix `dir_prefix`, a file is bundle path `file_rel`. `named`: a source
    /// the responder named (a link here is theirs: see [`links`], rule 4).
    fn add_path(&mut self, path: &Path, real: &Path, kind: &str, dir_prefix: &str, file_rel: String, named: bool) {
        let meta = match std::fs::symlink_metadata(real) {
            Ok(m) => m,
            Err(e) => {
                self.event(EventKind::Error, path, format!("source is missing or unreadable: {e}"));
                return;
            }
        };
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if meta.file_type().is_symlink() {
            self.link(real, &shown, kind, dir_prefix, file_rel, named);
        } else if meta.is_dir() {
            self.walk(real, &shown, kind, dir_prefix);
        } else {
            self.add_regular(shown, real.to_path_buf(), file_rel, kind, None);
        }
    }

    /// A symbolic link at `real` (shown as `shown`): recorded, or followed if the rules allow
    /// ([`links::check`]). Its target is resolved once, to a real path, and planned by that
    /// path (and, for a file, its device and inode), so the reader never resolves the link
    /// again.
    fn link(&mut self, real: &Path, shown: &Path, kind: &str, dir_prefix: &str, file_rel: String, named: bool) {
        let raw =
            std::fs::read_link(real).map(|t| t.display().to_string()).unwrap_or_else(|e| format!("(unreadable: {e})"));
        let Some(secrets) = self.follow else {
            self.event(
                EventKind::Skipped,
                shown,
                format!("symbolic link to `{raw}`: recorded, not followed (use --follow-symlinks)"),
            );
            return;
        };
        let resolved = real.canonicalize().and_then(|t| std::fs::metadata(&t).map(|m| (t, m)));
        let (target, meta) = match resolved {
            Ok(t) => t,
            Err(e) => {
                self.event(
                    EventKind::Skipped,
                    shown,
                    format!("symbolic link to `{raw}`: recorded, not followed: its target cannot be resolved ({e})"),
                );
                return;
            }
        };
        let not_followed = |why: &dyn std::fmt::Display| {
            format!("symbolic link to `{raw}` (resolves to `{}`): recorded, not followed: {why}", target.display())
        };
        if let Err(why) = links::check(&target, &meta, secrets, &self.allowed, named) {
            let detail = not_followed(&why);
            self.event(EventKind::Skipped, shown, detail);
            return;
        }
        if !meta.is_dir() {
            let detail = format!("symbolic link to `{raw}`: followed, read from `{}`", target.display());
            self.event(EventKind::Note, shown, detail);
            self.add_regular(shown.to_path_buf(), target, file_rel, kind, Some(FileId::of(&meta)));
            return;
        }
        let why = if real.starts_with(&target) || self.walking.iter().any(|w| w.starts_with(&target)) {
            Some("a loop (its target holds the link, or a directory being collected)".to_string())
        } else if let Some(first) = self.entered.get(&target) {
            Some(format!("its directory was already collected through `{first}`"))
        } else if self.walking.len() >= MAX_LINKED_DIRS {
            Some(format!("more than {MAX_LINKED_DIRS} directories deep"))
        } else {
            None
        };
        if let Some(why) = why {
            let detail = not_followed(&why);
            self.event(EventKind::Skipped, shown, detail);
            return;
        }
        self.entered.insert(target.clone(), shown.display().to_string());
        let detail = format!("symbolic link to `{raw}`: followed into `{}`", target.display());
        self.event(EventKind::Note, shown, detail);
        self.walk(&target, shown, kind, dir_prefix);
    }

    /// Walk the directory at real path `root` (shown as `shown`), its files under bundle
    /// prefix `prefix`. Links are never followed by the walk itself: each one found is
    /// checked on its own ([`Self::link`]).
    fn walk(&mut self, root: &Path, shown: &Path, kind: &str, prefix: &str) {
        self.walking.push(root.to_path_buf());
        let shown_under = |rel: &Path| {
            let mut a = shown.as_os_str().to_owned();
            if !a.as_bytes().ends_with(b"/") {
                a.push("/");
            }
            a.push(rel.as_os_str());
            PathBuf::from(a)
        };
        // Sorted by file name, compared as whole paths: siblings share their parent's prefix,
        // so the order is `sort_by_file_name`'s, without parsing two paths' components per
        // comparison (that was 40% of planning 100 000 files).
        // The root is a real directory (checked by the caller): if a link replaced it since,
        // it is not entered (`follow_root_links(false)`; the entry is skipped below).
        let walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .follow_root_links(false)
            .sort_by(|a, b| a.path().as_os_str().cmp(b.path().as_os_str()));
        for item in walker {
            let entry = match item {
                Ok(e) => e,
                Err(e) => {
                    let p = e.path().map(|p| shown_under(strip_root(p, root))).unwrap_or_else(|| shown.to_path_buf());
                    self.event(EventKind::Error, &p, format!("cannot walk: {e}"));
                    continue;
                }
            };
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            if entry.depth() == 0 {
                let detail = "not a directory any more (replaced while planning): not walked".to_string();
                self.event(EventKind::Skipped, shown, detail);
                break;
            }
            let rel_inside = strip_root(entry.path(), root);
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
            let entry_shown = shown_under(rel_inside);
            if ft.is_symlink() {
                let dir_prefix = rel.clone();
                self.link(entry.path(), &entry_shown, kind, &dir_prefix, rel, false);
                continue;
            }
            self.add_regular(entry_shown, entry.path().to_path_buf(), rel, kind, None);
        }
        self.walking.pop();
    }

    /// A file to read from real path `source`, shown (in the manifest and the journal) as
    /// `shown`; `link_target`: reached through a followed link whose target had this
    /// identity when checked.
    fn add_regular(&mut self, shown: PathBuf, source: PathBuf, rel: String, kind: &str, link_target: Option<FileId>) {
        // Only a lossily converted bundle path can hold U+FFFD for a non-UTF-8 name.
        if let Some(name) = shown.file_name().filter(|_| rel.contains('\u{fffd}')) {
            if name.to_str().is_none() {
                self.event(
                    EventKind::Note,
                    &shown,
                    "file name is not valid UTF-8; its bundle path uses U+FFFD for the invalid bytes".into(),
                );
            }
        }
        let display = shown.into_os_string().into_string().unwrap_or_else(|p| Path::new(&p).display().to_string());
        self.add_file(rel, kind, source, display, link_target);
    }
}

/// Where `path` really is: the links on the way to it resolved, its own name kept (so a link
/// stays a link). The reader opens files by such paths and refuses any link on them.
fn real_path(path: &Path) -> PathBuf {
    let parent = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
    let resolved = match (parent, path.file_name()) {
        (Some(parent), Some(name)) => parent.canonicalize().map(|p| p.join(name)),
        // The root, or a path ending in `..`: a directory, never a link.
        _ => path.canonicalize(),
    };
    resolved.unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
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

/// Plan the collection of an incident directory and extra sources. Each planned file is read
/// by its real path (the links on the way resolved); links are recorded or followed as
/// `symlinks` says.
pub fn plan(
    incident_dir: Option<&Path>,
    sources: &[SourceSpec],
    symlinks: &Symlinks,
    clock: &Clock,
) -> Result<Plan, CollectError> {
    let follow = match symlinks {
        Symlinks::Record => None,
        Symlinks::Follow(secrets) => Some(secrets),
    };
    let allowed = match follow {
        None => Vec::new(),
        Some(_) => incident_dir
            .into_iter()
            .chain(sources.iter().map(|s| s.path.as_path()).filter(|p| p.as_os_str() != "-"))
            .filter_map(|p| p.canonicalize().ok())
            .collect(),
    };
    let mut p = Planner {
        plan: Plan::default(),
        event_pos: Vec::new(),
        follow,
        allowed,
        walking: Vec::new(),
        entered: HashMap::new(),
        clock,
    };
    if let Some(dir) = incident_dir {
        // The directory the responder named (links to it resolved: it is theirs).
        match dir.canonicalize().and_then(|real| std::fs::read_dir(&real).map(|rd| (real, rd))) {
            Err(e) => p.event(EventKind::Error, dir, format!("incident directory is missing or unreadable: {e}")),
            Ok((real, rd)) => {
                let mut names: Vec<std::ffi::OsString> = rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
                names.sort();
                for name in names {
                    let (child, child_real) = (dir.join(&name), real.join(&name));
                    let name = name.to_string_lossy().into_owned();
                    let kind = match folder_kind(&name) {
                        Some(k) if child_real.is_dir() => k.to_string(),
                        _ => "other".to_string(),
                    };
                    p.add_path(&child, &child_real, &kind, &name, name.clone(), false);
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
            let src = real_path(tmp.path());
            p.add_file(format!("{}/stdin", s.kind), &s.kind, src, "-".into(), None);
            p.plan.stdin_spool = Some(tmp);
        } else {
            let name = s.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
            let file_rel = format!("{}/{name}", s.kind);
            p.add_path(&s.path, &real_path(&s.path), &s.kind, &s.kind, file_rel, true);
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
        let p = plan(Some(&inc), &sources, &super::Symlinks::Record, &clock).unwrap();
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
        let p = plan(Some(&inc), &[], &super::Symlinks::Record, &clock).unwrap();
        assert!(p.events.is_empty() && p.files.iter().all(|f| !f.rel_path.ends_with("~3")));
    }

    /// Links that fan out (each directory of a chain of 24 links twice to the next) would be
    /// 2^24 walks if every link were entered: each directory is entered through a link once,
    /// every other link to it is journaled, and planning ends.
    #[test]
    fn links_fanning_out_to_one_directory_enter_it_once() {
        use super::{links::Secrets, plan, Symlinks};
        use crate::bundle::manifest::EventKind;
        let tmp = tempfile::tempdir().unwrap();
        let inc = tmp.path().canonicalize().unwrap().join("incident");
        for i in 0..24 {
            let d = inc.join(format!("d{i:02}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f"), format!("{i}")).unwrap();
            if i < 23 {
                for l in ["a", "b"] {
                    std::os::unix::fs::symlink(inc.join(format!("d{:02}", i + 1)), d.join(l)).unwrap();
                }
            }
        }
        let clock = crate::clock::Clock::system();
        let secrets = Secrets::new(&tmp.path().join("keys/no.key"), None, &tmp.path().join("no-home"));
        let p = plan(Some(&inc), &[], &Symlinks::Follow(secrets), &clock).unwrap();
        // 24 files walked as themselves, plus at most one copy per link entered.
        assert!(p.files.len() <= 24 * 2, "{} files planned", p.files.len());
        let again = p.events.iter().filter(|e| e.event == EventKind::Skipped && e.detail.contains("already collected"));
        assert!(again.count() >= 23, "{:#?}", p.events);
        assert!(p.files.iter().any(|f| f.rel_path == "d00/a/f" && f.link_target.is_none()));
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
