//! Deployments: Argo Rollouts and Argo CD controller logs (logrus JSON lines) and generic
//! CD-pipeline JSON Lines.
//!
//! A CD pipeline's `run_id` (or `pipeline_run_id`, `deployment_id`) is the deployment: the id
//! services put in the OTel resource attribute `deployment.id`. Its lines become one `deploy`
//! event per run (merged by run id) that carries the change id, the rollout wave and the
//! policy/config bundle revisions it rolled out (any object under a key naming bundles, e.g.
//! `opa_bundles: {"agent-policy": "rev"}`, lists revisions). Argo Rollouts lines about steps,
//! promotion, pauses and completion are `rollout` events of their rollout; Argo CD sync lines
//! are `deploy` events of their application. GitHub deployments (and their statuses) are
//! `deploy` events keyed by the deployment's numeric id.

use super::super::item::{bounded, first, outcome_of, scalar, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{norm_key, LinkKey, Role};
use super::super::values::Time;
use super::generic::TIME_FIELDS;
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// Argo Rollouts / Argo CD logs.
pub(crate) struct Argo;

impl FormatDef for Argo {
    fn name(&self) -> &'static str {
        "argo"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["argo-rollouts", "argocd", "argo-cd"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("deploy")
    }
    fn what(&self) -> &'static str {
        "Argo Rollouts / Argo CD controller logs (JSON lines with msg and rollout or application)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let keys = |has: &dyn Fn(&str) -> bool| {
            has("msg") && (has("rollout") || has("application") || has("app") || has("appName"))
        };
        // An Argo CD server log may start with a gRPC access line (`msg`, `grpc.*`) before the
        // lines that name their `application`: the keys of the head's later lines count too.
        keys(&|k| h.has(k))
            || super::logs::logfmt(h.first_line.trim()).is_some_and(|o| keys(&|k| o.get(k).is_some()))
            || (h.line_complete && h.has("msg") && (h.mentions("application") || h.mentions("rollout")))
    }
    fn layout(&self) -> super::LayoutPref {
        super::LayoutPref::Auto
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(argo(e, m))),
            _ => out.push(argo(v, m)),
        }
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        let obj = super::logs::logfmt(line.trim())?;
        let mut it = argo(&obj, m);
        let mut b = ItemBuilder::new(m);
        b.text("line", line);
        for tok in b.finish().tokens {
            if !it.tokens.contains(&tok) {
                it.tokens.push(tok);
            }
        }
        Some(it)
    }
}

fn argo(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    let start = b.time_from(v, &TIME_FIELDS);
    let msg = first(v, &["msg", "message"]).unwrap_or_default();
    let lower = msg.to_ascii_lowercase();
    // Kubernetes events the controller logs name their object only inside the message
    // (`Event(v1.ObjectReference{Kind:"Rollout", …, Name:"procure-agent", …}): … reason:
    // 'RolloutStepCompleted' …`).
    let event_of_rollout = msg.contains("Kind:\"Rollout\"") || msg.contains("reason: 'Rollout");
    let rollout = first(v, &["rollout"]).or_else(|| event_of_rollout.then(|| object_name(&msg)).flatten());
    let app = first(v, &["application", "app", "appName"]);
    // A rollout step (`Rollout step 5/7 completed`), a promotion, a completed or aborted
    // rollout; an application's sync. Bookkeeping lines (patches, reconciliations, health) are
    // linked, not events.
    let step = step_of(&msg);
    let kind = if rollout.is_some()
        && (step.is_some()
            || ["promoted", "rollout completed", "aborted", "fully promoted"].iter().any(|w| lower.contains(w)))
    {
        EventKind::Rollout
    } else if app.is_some() && lower.contains("sync") && !lower.contains("health") {
        EventKind::Deploy
    } else {
        return b.finish();
    };
    let mut ev = Ev::new(kind, Side::Server);
    ev.start = start;
    ev.target = rollout.or(app);
    ev.operation = Some(bounded(msg.clone()));
    ev.outcome = if ["fail", "error", "abort", "degraded"].iter().any(|w| lower.contains(w)) {
        OutcomeEv {
            status: Some(OutcomeStatus::Failed),
            code: Some(bounded(msg)),
            reason: Some("reported failed".into()),
            replayed: false,
        }
    } else if ["complet", "succeeded", "healthy", "promoted", "synced"].iter().any(|w| lower.contains(w)) {
        OutcomeEv { status: Some(OutcomeStatus::Succeeded), code: Some(bounded(msg)), reason: None, replayed: false }
    } else {
        OutcomeEv::default()
    };
    if let Some(s) = &step {
        ev.detail("step", s.clone());
    }
    for k in ["revision", "commit", "sha", "namespace"] {
        if let Some(x) = first(v, &[k]) {
            ev.detail(
                match k {
                    "revision" => "revision",
                    "commit" | "sha" => "commit",
                    "step" => "step",
                    _ => "namespace",
                },
                x,
            );
        }
    }
    b.evidence(ev);
    b.finish()
}

/// The `Name:"…"` of a Kubernetes object reference printed in a message.
fn object_name(msg: &str) -> Option<String> {
    let i = msg.find("Name:\"")? + 6;
    let rest = msg.get(i..)?;
    let end = rest.find('"')?;
    rest.get(..end).filter(|n| !n.is_empty()).map(str::to_string)
}

/// `N/M` of a rollout step message (`Rollout step 5/7 completed (setWeight: 60)`).
fn step_of(msg: &str) -> Option<String> {
    let lower = msg.to_ascii_lowercase();
    let i = lower.find("step ")?;
    let rest = lower.get(i + 5..)?;
    let w: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '/').collect();
    (w.contains('/') && w.len() >= 3).then_some(w)
}

/// Generic CD pipeline JSON Lines.
pub(crate) struct CdPipeline;

const RUN_KEYS: [&str; 6] = ["run_id", "pipeline_run_id", "deployment_id", "deploy_id", "release_id", "runId"];

impl FormatDef for CdPipeline {
    fn name(&self) -> &'static str {
        "cd_pipeline"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["cd", "deploy-log", "pipeline"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("deploy")
    }
    fn what(&self) -> &'static str {
        "CD / deploy pipeline JSON Lines (a run id with change, wave, service, bundle revisions)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let Some(o) = h.obj() else { return false };
        let run = RUN_KEYS.iter().any(|k| o.has(k));
        let deployish = o.names().any(|k| {
            let n = norm_key(k);
            n.ends_with("change_id")
                || n.ends_with("wave")
                || n.contains("bundle")
                || matches!(
                    n.as_ref(),
                    "pipeline" | "stage" | "step" | "environment" | "env" | "image" | "deploy" | "service"
                )
        });
        run && deployish
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(pipeline(e, m))),
            _ => out.push(pipeline(v, m)),
        }
    }
}

/// Bundle revisions under any key naming bundles (`bundles`, `opa_bundles`, `policy_bundles`).
fn bundle_revisions(b: &mut ItemBuilder<'_>, path: &str, v: &Value, depth: usize) {
    let Value::Object(o) = v else { return };
    if depth > 4 {
        return;
    }
    for (k, x) in o {
        let p = format!("{path}.{k}");
        match x {
            Value::Object(_) => {
                // `{"agent-policy": {"revision": "…"}}` or nested maps.
                if let Some(r) = x.get("revision").and_then(scalar) {
                    b.field(Role::Ident(IdentName::BundleId), &r, &format!("{p}.revision"));
                } else {
                    bundle_revisions(b, &p, x, depth + 1);
                }
            }
            other => {
                if let Some(s) = scalar(other) {
                    b.field(Role::Ident(IdentName::BundleId), &s, &p);
                }
            }
        }
    }
}

fn pipeline(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    for (k, x) in v.as_object().into_iter().flatten() {
        let n = norm_key(k);
        if n.contains("bundle") && x.is_object() && !super::super::semantics::superseded(k) {
            bundle_revisions(&mut b, k, x, 0);
        }
    }
    let run = RUN_KEYS.iter().find_map(|k| v.get(*k).and_then(scalar).map(|r| (*k, r)));
    if let Some((k, r)) = &run {
        b.field(Role::Link(LinkKey::DeploymentId), r, k);
    }
    if run.is_some() {
        wave_of_environment(v, &mut b);
    }
    let start = b.time_from(v, &TIME_FIELDS);
    let Some((_, run)) = run else { return b.finish() };
    let mut ev = Ev::new(EventKind::Deploy, Side::Server);
    ev.start = start;
    ev.key(Role::Link(LinkKey::DeploymentId), &run);
    ev.target = first(v, &["service", "app", "application", "component", "pipeline"]);
    ev.operation = first(v, &["step", "stage", "action", "event"]);
    if let Some(s) = first(v, &["status", "result", "outcome", "state"]) {
        let o = outcome_of(&s);
        ev.outcome = OutcomeEv { code: Some(s), ..o };
    }
    chain_details(&b, &mut ev);
    if let Some(env) = first(v, &["environment", "env", "cluster", "region"]) {
        ev.detail("environment", env);
    }
    // A step that rolls the change out (a rollout, a promotion, a canary or wave step) is also
    // a rollout event of its own.
    let step = ev.operation.clone().unwrap_or_default().to_ascii_lowercase();
    let rollout = ["rollout", "roll-out", "promot", "canary", "wave", "traffic"].iter().any(|w| step.contains(w));
    let rollout_ev = rollout.then(|| {
        let mut r = Ev::new(EventKind::Rollout, Side::Server);
        r.start = ev.start.clone();
        r.target = first(v, &["deployment", "target.deployment", "service", "app"]).or_else(|| ev.target.clone());
        r.operation = ev.operation.clone();
        r.outcome = ev.outcome.clone();
        r.key(Role::Link(LinkKey::DeploymentId), &run);
        for (k, d) in &ev.detail {
            if matches!(*k, "wave" | "change") {
                r.detail(k, d.clone());
            }
        }
        r
    });
    b.evidence(ev);
    if let Some(r) = rollout_ev {
        b.evidence(r);
    }
    b.finish()
}

/// The rollout wave a deployment's environment is named after, when no field names it: GitLab
/// and GitHub environments are often one per wave (`production/wave-2`, `prod-wave2`,
/// `Wave 3`): a path segment or word `wave` followed by a number gives that number. Only in a
/// record of one deployment (its run id read), so the wave is that deployment's.
fn wave_of_environment(v: &Value, b: &mut ItemBuilder<'_>) {
    if b.value_of(Role::Ident(IdentName::RolloutWave)).is_some() {
        return;
    }
    for key in ["environment", "environment_slug", "environment.name", "original_environment", "env"] {
        let Some(env) = first(v, &[key]) else { continue };
        if let Some(n) = wave_number(&env) {
            b.field(Role::Ident(IdentName::RolloutWave), &n, &format!("{key}→wave"));
            return;
        }
    }
}

/// `wave` (any case) at the start of a segment (after `/`, `-`, `_`, `.`, a space or the
/// start), then an optional `-`, `_` or space, then 1 to 3 digits that end the segment.
fn wave_number(env: &str) -> Option<String> {
    let lower = env.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(i) = lower.get(from..).and_then(|r| r.find("wave")).map(|i| i + from) {
        from = i + 4;
        let starts = i == 0 || bytes.get(i - 1).is_some_and(|c| matches!(c, b'/' | b'-' | b'_' | b'.' | b' ' | b':'));
        if !starts {
            continue;
        }
        let mut j = i + 4;
        if bytes.get(j).is_some_and(|c| matches!(c, b'-' | b'_' | b' ')) {
            j += 1;
        }
        let digits = bytes.get(j..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
        let ends = !bytes.get(j + digits).is_some_and(|c| c.is_ascii_alphanumeric());
        if (1..=3).contains(&digits) && ends {
            return lower.get(j..j + digits).map(|d| d.trim_start_matches('0')).map(|d| if d.is_empty() { "0" } else { d }).map(str::to_string);
        }
    }
    None
}

/// GitHub deployments and deployment statuses (REST API `GET /repos/{owner}/{repo}/deployments`
/// and `…/deployments/{id}/statuses`, as `gh api` saves them: a JSON array).
pub(crate) struct GithubDeployments;

impl FormatDef for GithubDeployments {
    fn name(&self) -> &'static str {
        "github_deployments"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["github-deployment", "gh-deployments"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("deploy")
    }
    fn what(&self) -> &'static str {
        "GitHub deployments and deployment statuses (REST API JSON; payload as an object or a JSON string)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        (h.has("statuses_url") && h.has("environment") && (h.has("sha") || h.has("task")))
            || (h.has("deployment_url") && h.has("state") && h.has("environment"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(github_deployment(e, m))),
            _ => out.push(github_deployment(v, m)),
        }
    }
}

/// One deployment (a `deploy` event keyed by its numeric `id`; its `payload` — often a JSON
/// string — names the change, the wave and the bundle, read by the semantics table) or one of
/// its statuses (the same event, keyed by the id at the end of `deployment_url`; its `state`
/// is the outcome).
fn github_deployment(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    if !v.is_object() {
        return b.finish();
    }
    b.walk("", v);
    let status = v.get("deployment_url").is_some();
    let id = if status {
        first(v, &["deployment_url"]).and_then(|u| u.rsplit('/').next().map(str::to_string))
    } else {
        first(v, &["id"])
    }
    .filter(|id| !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()));
    let Some(id) = id else { return b.finish() };
    b.field(Role::Link(LinkKey::DeploymentId), &id, if status { "deployment_url" } else { "id" });
    wave_of_environment(v, &mut b);
    let start = b.time_from(v, &["created_at", "updated_at"]);
    let mut ev = Ev::new(EventKind::Deploy, Side::Server);
    ev.start = start;
    ev.key(Role::Link(LinkKey::DeploymentId), &id);
    ev.target = first(v, &["environment", "original_environment"]);
    if status {
        ev.operation = Some("status".into());
        if let Some(s) = first(v, &["state"]) {
            let mut o = outcome_of(&s);
            // `in_progress`, `queued`, `pending`: not an outcome yet; `inactive`: superseded
            // by a later deployment to the environment, which it did not undo.
            if matches!(s.as_str(), "in_progress" | "queued" | "pending" | "inactive") {
                o.status = None;
            }
            ev.outcome = OutcomeEv { code: Some(s), ..o };
        }
    } else {
        ev.operation = first(v, &["task"]);
        for k in ["sha", "ref", "description"] {
            if let Some(x) = first(v, &[k]) {
                ev.detail(k, x);
            }
        }
    }
    chain_details(&b, &mut ev);
    b.evidence(ev);
    b.finish()
}

/// A deploy event's `change`, `wave` and `bundle` details: the values its record holds.
fn chain_details(b: &ItemBuilder<'_>, ev: &mut Ev) {
    for (key, role) in
        [("change", IdentName::ChangeId), ("wave", IdentName::RolloutWave), ("bundle", IdentName::BundleId)]
    {
        let vals: Vec<String> =
            b.item.fields.iter().filter(|f| f.role == Role::Ident(role)).map(|f| f.value.clone()).collect();
        if !vals.is_empty() {
            ev.detail(key, vals.join(","));
        }
    }
}

/// Google Cloud Deploy resources as `gcloud deploy releases|rollouts|targets list
/// --format=json` saves them (a JSON array; `describe` gives one object).
pub(crate) struct CloudDeploy;

/// What a Cloud Deploy resource name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeployResource {
    Release,
    Rollout,
    Target,
}

/// `projects/P/locations/L/deliveryPipelines/DP/releases/R[/rollouts/ID]` or
/// `projects/P/locations/L/targets/T`: the kind, the pipeline, the release and the last id.
fn deploy_resource(name: &str) -> Option<(DeployResource, Option<&str>, Option<&str>, &str)> {
    let parts: Vec<&str> = name.split('/').collect();
    let seg = |k: &str| parts.iter().position(|p| *p == k).and_then(|i| parts.get(i + 1)).copied();
    if parts.first() != Some(&"projects") || !parts.contains(&"locations") {
        return None;
    }
    let pipeline = seg("deliveryPipelines");
    let release = seg("releases");
    match (seg("rollouts"), release, seg("targets")) {
        (Some(id), Some(_), _) if parts.len() == 10 => Some((DeployResource::Rollout, pipeline, release, id)),
        (None, Some(r), _) if parts.len() == 8 => Some((DeployResource::Release, pipeline, release, r)),
        (None, None, Some(t)) if parts.len() == 6 => Some((DeployResource::Target, None, None, t)),
        _ => None,
    }
    .filter(|(_, _, _, id)| !id.is_empty())
}

impl FormatDef for CloudDeploy {
    fn name(&self) -> &'static str {
        "cloud_deploy"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["google-cloud-deploy", "gcloud-deploy", "clouddeploy"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("deploy")
    }
    fn what(&self) -> &'static str {
        "Google Cloud Deploy releases, rollouts and targets (gcloud deploy … list --format=json)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let in_text = h.text.contains("\"projects/")
            && (h.text.contains("/deliveryPipelines/") || h.text.contains("/locations/"))
            && (h.text.contains("/releases/") || h.text.contains("/targets/"));
        // A rollout's name is longer than the strings detection keeps: then the head's text
        // says what it names.
        let named = match h.str_of("name") {
            Some(n) => deploy_resource(n).is_some(),
            None => h.has("name") && in_text,
        };
        named && h.has("uid") && (h.has("createTime") || h.has("targetId"))
            // A pretty-printed list larger than the head.
            || (h.obj().is_none() && h.mentions("uid") && h.mentions("etag") && in_text)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(cloud_deploy(e, m))),
            // The REST list responses: `{"releases": […]}`, `{"rollouts": […]}`, `{"targets": […]}`.
            Value::Object(o)
                if ["releases", "rollouts", "targets"].iter().any(|k| o.get(*k).is_some_and(Value::is_array)) =>
            {
                for k in ["releases", "rollouts", "targets"] {
                    for e in o.get(k).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                        out.push(cloud_deploy(e, m));
                    }
                }
            }
            _ => out.push(cloud_deploy(v, m)),
        }
    }
}

/// One Cloud Deploy resource. A rollout is a `deploy` event whose deployment id is the
/// rollout id; it names its release and target (owners: the release's and the target's
/// records are the deployment's history) and the release/target pair an application's pod
/// labels name. A release carries the change and bundle values (its `annotations`, `labels`,
/// `deployParameters`, read by the semantics table), a target its wave (`labels`,
/// `deployParameters`). The release's snapshots of every target of the pipeline are not read
/// for values: they hold the other waves too.
fn cloud_deploy(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    let name = first(v, &["name"]).unwrap_or_default();
    let Some((kind, pipeline, release, id)) = deploy_resource(&name) else {
        return super::generic::generic_item(v, m);
    };
    for (k, x) in v.as_object().into_iter().flatten() {
        // Copies of the pipeline and of all its targets (with the other waves' labels), and
        // per-target render results: not read. They name every target, so as searchable values
        // they would make every release a record of every target's rollout.
        if !matches!(k.as_str(), "targetSnapshots" | "deliveryPipelineSnapshot" | "targetRenders" | "targetArtifacts") {
            b.walk_field(k, k, x);
        }
    }
    let start = b.time_from(v, &["deployStartTime", "createTime", "enqueueTime"]);
    match kind {
        DeployResource::Release | DeployResource::Target => {
            // The release's or target's own records join the deployment through its id.
            b.field(Role::Link(LinkKey::Owner), id, "name");
            if let Some(p) = pipeline {
                b.token(p);
            }
            b.finish()
        }
        DeployResource::Rollout => {
            let release = release.unwrap_or_default();
            let target = first(v, &["targetId"]);
            b.field(Role::Link(LinkKey::DeploymentId), id, "name");
            b.field(Role::Link(LinkKey::Owner), release, "name");
            if let Some(t) = &target {
                b.field(Role::Link(LinkKey::Owner), t, "targetId");
                b.field(Role::Link(LinkKey::ReleaseTarget), &format!("{release}/{t}"), "targetId");
            }
            let mut ev = Ev::new(EventKind::Deploy, Side::Server);
            ev.start = start;
            ev.end = v.get("deployEndTime").and_then(super::super::values::Time::of_json);
            ev.key(Role::Link(LinkKey::DeploymentId), id);
            ev.target = target;
            ev.operation = Some("rollout".into());
            ev.detail("release", release.to_string());
            if let Some(p) = pipeline {
                ev.detail("pipeline", p.to_string());
            }
            // A deploy approval (`approvalState`: who may roll out to a protected target), not
            // an agent's approval id.
            if let Some(a) = first(v, &["approvalState"]) {
                ev.detail("deploy_approval", a);
            }
            if let Some(s) = first(v, &["state"]) {
                let mut o = match s.as_str() {
                    "SUCCEEDED" => outcome_of("succeeded"),
                    // Not rolled out: rejected, or stopped before it deployed.
                    "FAILED" | "APPROVAL_REJECTED" => OutcomeEv {
                        status: Some(OutcomeStatus::Failed),
                        reason: Some("rollout failed".into()),
                        ..OutcomeEv::default()
                    },
                    // Cancelled or halted midway: some of it may be live.
                    "CANCELLED" | "CANCELLING" | "HALTED" => OutcomeEv {
                        status: Some(OutcomeStatus::Unknown),
                        reason: Some("stopped midway: part of it may be deployed".into()),
                        ..OutcomeEv::default()
                    },
                    // Pending, in progress: no outcome yet.
                    _ => OutcomeEv::default(),
                };
                if let Some(f) = first(v, &["failureReason"]) {
                    o.reason = Some(f);
                }
                o.code = Some(s);
                ev.outcome = o;
            }
            chain_details(&b, &mut ev);
            b.evidence(ev);
            b.finish()
        }
    }
}

/// Spinnaker (Orca) pipeline executions (`GET /applications/{app}/pipelines`,
/// `GET /pipelines/{id}`): one execution per object, or an array of them.
pub(crate) struct Spinnaker;

impl FormatDef for Spinnaker {
    fn name(&self) -> &'static str {
        "spinnaker"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["spinnaker-executions", "orca"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("deploy")
    }
    fn what(&self) -> &'static str {
        "Spinnaker pipeline executions (Orca): id, application, trigger (user, parameters), stages, status"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.has("pipelineConfigId") && h.has("stages") && (h.has("trigger") || h.has("application"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(execution(e, m))),
            _ => out.push(execution(v, m)),
        }
    }
}

/// One execution: a deploy event keyed by the execution id, for the application, by the user
/// who triggered it, with the change, wave and bundle its trigger parameters and manifests
/// name (read by the semantics table; `previous_…` parameters are superseded). `SUCCEEDED`
/// succeeded, `TERMINAL` failed; a running, paused or cancelled execution states no outcome of
/// the deployment.
fn execution(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    // A pipeline triggered by another embeds that whole execution (`trigger.parentExecution`,
    // maybe another application's): its parameters are not this execution's.
    for (k, x) in v.as_object().into_iter().flatten() {
        if k == "trigger" {
            for (tk, tx) in x.as_object().into_iter().flatten() {
                if tk != "parentExecution" {
                    b.walk_field(&format!("trigger.{tk}"), tk, tx);
                }
            }
        } else {
            b.walk_field(k, k, x);
        }
    }
    let Some(id) = first(v, &["id"]) else { return b.finish() };
    b.field(Role::Link(LinkKey::DeploymentId), &id, "id");
    let mut ev = Ev::new(EventKind::Deploy, Side::Server);
    ev.start = v.get("startTime").and_then(Time::of_json).or_else(|| v.get("buildTime").and_then(Time::of_json));
    ev.end = v.get("endTime").and_then(Time::of_json);
    ev.key(Role::Link(LinkKey::DeploymentId), &id);
    ev.target = first(v, &["application"]);
    ev.operation = first(v, &["name"]);
    // Automatic triggers record `[anonymous]`.
    ev.principal = first(v, &["trigger.user", "authentication.user"])
        .filter(|u| !matches!(u.trim_matches(['[', ']']), "anonymous" | ""));
    // A stage that deployed and succeeded: a pipeline failing after it (a verify or canary
    // stage) left that deployment in place.
    let deployed = v.get("stages").and_then(Value::as_array).is_some_and(|st| {
        st.iter().take(1024).any(|x| {
            first(x, &["type"]).is_some_and(|t| t.to_ascii_lowercase().contains("deploy"))
                && first(x, &["status"]).as_deref() == Some("SUCCEEDED")
        })
    });
    if let Some(st) = first(v, &["status"]) {
        let outcome = match st.as_str() {
            "SUCCEEDED" => Some((OutcomeStatus::Succeeded, None)),
            "TERMINAL" | "FAILED_CONTINUE" if deployed => Some((
                OutcomeStatus::Unknown,
                Some("the pipeline failed after a deploy stage succeeded: partly deployed"),
            )),
            "TERMINAL" | "FAILED_CONTINUE" => {
                Some((OutcomeStatus::Failed, Some("the pipeline failed before deploying")))
            }
            _ => None,
        };
        if let Some((status, reason)) = outcome {
            ev.outcome =
                OutcomeEv { status: Some(status), code: Some(st), reason: reason.map(str::to_string), replayed: false };
        }
    }
    chain_details(&b, &mut ev);
    let mut it = b.finish();
    it.time = it.time.clone().or_else(|| ev.start.clone());
    it.evidence.push(ev);
    it
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wave_numbers_are_read_from_environment_names() {
        for (env, wave) in [
            ("production/wave-2", Some("2")),
            ("prod-wave2", Some("2")),
            ("Wave 3", Some("3")),
            ("eu.wave_01", Some("1")),
            ("production", None),
            ("microwave-2", None),
            ("wave-2b", None),
            ("waves-2", None),
            ("wave-1234", None),
        ] {
            assert_eq!(wave_number(env).as_deref(), wave, "{env}");
        }
    }
}
