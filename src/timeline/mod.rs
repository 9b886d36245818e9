//! The incident's events in time order, read from a verified bundle's `analysis.json`
//! (`custody timeline`; format [`TIMELINE_FORMAT`], schema `schemas/timeline.v1.schema.json`).
//!
//! A timeline is a view of the sealed analysis, never a new analysis: its events are the
//! analysis' typed [`Event`]s, unchanged and in the analysis' order (time order; events with no
//! time last, as the analysis orders them), with the header a responder reads first (the
//! identifiers, the chain trace → session → deployment → change → wave and the policy/config
//! bundle revision, the checklist, the side-effect verdict). Filters only leave events out, and
//! the document says how many each filter left out. With [`Timeline::attach_records`] each
//! event also carries the exact sealed bytes of every record it cites (`crate::cite`).
//!
//! The HTML report ([`html`]) renders the same document.

pub mod html;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::bundle::manifest::{Category, Manifest};
use crate::collect::analysis::{
    Action, Analysis, Chain, Event, EventKind, IdentifierFinding, LinkCheck, SideEffectVerdict, Time,
};

/// The format tag of `timeline --json`.
pub const TIMELINE_FORMAT: &str = "custody-timeline/v1";

/// Which events to keep (all of them by default). Filters combine with AND.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep these kinds (empty: every kind).
    pub kinds: Vec<EventKind>,
    /// Keep the events carrying this session id, and the events directly related to them (a
    /// call's policy decision, approval, egress request).
    pub session: Option<String>,
    /// Keep events at or after this time (by their start, else their end); an event with no
    /// time that can be placed is left out.
    pub since: Option<DateTime<Utc>>,
    /// Keep events at or before this time (as `since`).
    pub until: Option<DateTime<Utc>>,
}

/// The filters in force, as written in the document.
#[derive(Debug, Clone, Serialize)]
pub struct FilterEcho {
    /// `--kind`.
    pub kinds: Vec<EventKind>,
    /// `--session`.
    pub session: Option<String>,
    /// `--since`, RFC 3339.
    pub since: Option<DateTime<Utc>>,
    /// `--until`, RFC 3339.
    pub until: Option<DateTime<Utc>>,
}

/// How many of the analysis' events each filter left out (an event is counted under the first
/// filter that leaves it out, in this order).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LeftOut {
    /// By `--kind`.
    pub kind: u64,
    /// By `--session`.
    pub session: u64,
    /// By `--since`/`--until`: outside the window.
    pub time: u64,
    /// By `--since`/`--until`: no time that can be placed.
    pub no_time: u64,
}

/// The bytes of one cited record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The bundle member they were read from (`blobs/sha256/<hex>`).
    pub member: String,
    /// `utf8` (the bytes are valid UTF-8 and `bytes` is that text) or `base64` (standard
    /// alphabet, padded).
    pub encoding: &'static str,
    /// The bytes, in `encoding`.
    pub bytes: String,
}

impl Record {
    /// The record's bytes as they are sealed.
    pub fn of(sha256_hex: &str, bytes: Vec<u8>) -> Record {
        let member = format!("blobs/sha256/{sha256_hex}");
        match String::from_utf8(bytes) {
            Ok(s) => Record { member, encoding: "utf8", bytes: s },
            Err(e) => {
                use base64::Engine as _;
                Record {
                    member,
                    encoding: "base64",
                    bytes: base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                }
            }
        }
    }

    /// The bytes again (what `bytes` encodes).
    pub fn raw(&self) -> Vec<u8> {
        use base64::Engine as _;
        match self.encoding {
            "base64" => base64::engine::general_purpose::STANDARD.decode(&self.bytes).unwrap_or_default(),
            _ => self.bytes.clone().into_bytes(),
        }
    }
}

/// The timeline document.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// [`TIMELINE_FORMAT`].
    pub format: &'static str,
    /// The evidence bundle's digest (`sha256:<hex>`).
    pub bundle: String,
    /// When it was sealed.
    pub sealed_at: DateTime<Utc>,
    /// The triage category the responder gave.
    pub category: Option<Category>,
    /// The responder's notes.
    pub notes: Vec<String>,
    /// The notes custody itself wrote (`incident.tool_notes`), shown as the tool's.
    pub tool_notes: Vec<String>,
    /// True for a v1 or v2 bundle: its manifest keeps custody's notes among the responder's,
    /// and they were told apart by their prefix.
    pub tool_notes_by_prefix: bool,
    /// The filters in force.
    pub filter: FilterEcho,
    /// The identifiers, as the analysis decided them.
    pub identifiers: Vec<IdentifierFinding>,
    /// The chain trace → session → deployment → change → wave (and the policy/config bundle
    /// revision the deployment carried).
    pub chain: Chain,
    /// The side-effect verdict.
    pub side_effect: SideEffectVerdict,
    /// The linkage checklist.
    pub checklist: Vec<LinkCheck>,
    /// Attempts grouped by idempotency key.
    pub actions: Vec<Action>,
    /// Events in the analysis.
    pub events_total: u64,
    /// Events the analysis itself did not list (over its cap).
    pub events_omitted: u64,
    /// What the filters left out.
    pub left_out: LeftOut,
    /// The events kept, in the analysis' (time) order, exactly as the analysis wrote them.
    pub events: Vec<Event>,
    /// The evidence bundle this one supplements (`custody analyze`), as its signed manifest
    /// names it (`sha256:<hex>`); its cited records are in that bundle.
    pub supplement_of: Option<String>,
    /// That original's `sealed_at`, as the signed manifest names it (not in the JSON: the
    /// exports give it as the sealing time of the bundle their records are in).
    #[serde(skip)]
    pub supplement_of_sealed_at: Option<DateTime<Utc>>,
    /// This bundle's supplements, as its store's ledger records them (not looked up for a
    /// bundle file).
    pub supplements: crate::analyze::Supplements,
    /// With [`Timeline::attach_records`]: `records[i][j]` is the sealed bytes of
    /// `events[i].citations[j]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Vec<Record>>>,
}

/// The time an event is placed at by the filters: its start, else its end, when understood.
pub fn placed_at(e: &Event) -> Option<DateTime<Utc>> {
    let parse = |t: &Option<Time>| {
        t.as_ref().and_then(|t| DateTime::parse_from_rfc3339(&t.at).ok()).map(|d| d.with_timezone(&Utc))
    };
    parse(&e.start).or_else(|| parse(&e.end))
}

/// Whether `e` carries session id `s` (an id field may list several values, comma-separated).
fn has_session(e: &Event, s: &str) -> bool {
    e.ids.get("session_id").is_some_and(|v| v.split(',').any(|x| x == s))
}

impl Timeline {
    /// The timeline of a verified bundle's typed analysis, filtered by `filter` (the records
    /// are not attached: [`Timeline::attach_records`]).
    pub fn of(bundle: &crate::VerifiedBundle, filter: &Filter) -> Result<Timeline, crate::NoAnalysis> {
        let analysis = bundle.analysis()?;
        Ok(Timeline::build(&bundle.digest().to_string(), bundle.manifest(), analysis, filter))
    }

    /// The timeline of `analysis`, the verified analysis of the bundle `bundle` (its digest)
    /// whose verified manifest is `manifest`, filtered by `filter`.
    pub(crate) fn build(bundle: &str, manifest: &Manifest, analysis: &Analysis, filter: &Filter) -> Timeline {
        let mut left_out = LeftOut::default();
        let session_ids: BTreeSet<&str> = match &filter.session {
            Some(s) => {
                let own: Vec<&Event> = analysis.events.iter().filter(|e| has_session(e, s)).collect();
                own.iter()
                    .map(|e| e.id.as_str())
                    .chain(own.iter().flat_map(|e| e.related.iter().map(|r| r.event.as_str())))
                    .collect()
            }
            None => BTreeSet::new(),
        };
        let timed = filter.since.is_some() || filter.until.is_some();
        let mut events = Vec::new();
        for e in &analysis.events {
            if !filter.kinds.is_empty() && !filter.kinds.contains(&e.kind) {
                left_out.kind += 1;
                continue;
            }
            if filter.session.is_some() && !session_ids.contains(e.id.as_str()) {
                left_out.session += 1;
                continue;
            }
            if timed {
                match placed_at(e) {
                    None => {
                        left_out.no_time += 1;
                        continue;
                    }
                    Some(t) if filter.since.is_some_and(|s| t < s) || filter.until.is_some_and(|u| t > u) => {
                        left_out.time += 1;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            events.push(e.clone());
        }
        let (responder, tool, tool_notes_by_prefix) = manifest.incident.notes_by_author();
        let responder_notes: Vec<String> = responder.into_iter().map(String::from).collect();
        let tool_notes: Vec<String> = tool.into_iter().map(String::from).collect();
        Timeline {
            format: TIMELINE_FORMAT,
            bundle: bundle.to_string(),
            sealed_at: manifest.sealed_at,
            category: manifest.incident.category,
            notes: responder_notes,
            tool_notes,
            tool_notes_by_prefix,
            filter: FilterEcho {
                kinds: filter.kinds.clone(),
                session: filter.session.clone(),
                since: filter.since,
                until: filter.until,
            },
            identifiers: analysis.identifiers.clone(),
            chain: analysis.chain.clone(),
            side_effect: analysis.side_effect.clone(),
            checklist: analysis.checklist.clone(),
            actions: analysis.actions.clone(),
            events_total: analysis.events.len() as u64,
            events_omitted: analysis.events_omitted,
            left_out,
            events,
            supplement_of: manifest.supplement_of.as_ref().map(|s| s.bundle.to_string()),
            supplement_of_sealed_at: manifest.supplement_of.as_ref().map(|s| s.sealed_at),
            supplements: crate::analyze::Supplements::not_looked_up(),
            records: None,
        }
    }

    /// The bundle (`sha256:<hex>`) holding the records the events cite, where their paths,
    /// digests and offsets point: for a supplement the original it re-analysed (a supplement
    /// holds no evidence), else this bundle.
    pub fn records_bundle(&self) -> &str {
        self.supplement_of.as_deref().unwrap_or(&self.bundle)
    }

    /// When [`Timeline::records_bundle`] was sealed.
    pub fn records_sealed_at(&self) -> DateTime<Utc> {
        self.supplement_of_sealed_at.unwrap_or(self.sealed_at)
    }

    /// Read the sealed bytes of every record the kept events cite into their `records`, from
    /// `records`: the verified bundle [`Timeline::records_bundle`] names (this bundle, or for a
    /// supplement the original it re-analysed).
    pub fn attach_records(&mut self, records: &crate::VerifiedBundle) -> Result<(), crate::cite::CiteError> {
        if records.digest().to_string() != self.records_bundle() {
            return Err(crate::cite::CiteError::OtherBundle {
                wanted: self.records_bundle().to_string(),
                given: records.digest().to_string(),
            });
        }
        let all: Vec<&crate::collect::analysis::Citation> =
            self.events.iter().flat_map(|e| e.citations.iter()).collect();
        let bytes = records.resolve(&all)?;
        let mut it = bytes.into_iter();
        let records = self
            .events
            .iter()
            .map(|e| e.citations.iter().zip(it.by_ref()).map(|(c, b)| Record::of(&c.sha256, b)).collect())
            .collect();
        self.records = Some(records);
        Ok(())
    }
}
