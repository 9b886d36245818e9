//! The analysis check (format v2): `analysis.json` is exactly the member the signed manifest
//! names by digest and size. And, for `show`, its bytes parsed into the manifest's `analysis`
//! field, under the memory bound the parsed manifest shares.

use crate::bundle::manifest::{Manifest, ANALYSIS_MEMBER};
use crate::read::archive::AnalysisMember;
use crate::read::envelope::MAX_JSON_VALUES_COST;
use crate::read::json::{cost, Model};
use crate::verify::findings::Findings;
use crate::verify::report::FindingKind;

/// Compare the member with the manifest's `analysis_ref`. Returns the member's bytes when
/// they match and were kept (`keep`: [`crate::read::archive::Limits::keep_analysis`]).
pub(crate) fn check(
    manifest: Option<&Manifest>,
    member: Option<AnalysisMember>,
    keep: u64,
    fs: &mut Findings,
) -> Option<Vec<u8>> {
    let named = manifest.and_then(|m| m.analysis_ref.as_ref());
    match (named, member) {
        (None, None) => {
            fs.detail(
                "analysis",
                match manifest {
                    Some(m) if m.analysis.is_some() => "embedded in the v1 manifest (covered by its signature)",
                    Some(_) => "none (sealed with --no-analyze)",
                    None => "not checked: without a readable manifest, whether the bundle has an analysis is unknown",
                },
            );
            None
        }
        (Some(r), Some(a)) => {
            fs.ran("analysis");
            if r.sha256 != a.sha256 || r.size != a.size {
                fs.error(
                    FindingKind::AnalysisMismatch,
                    ANALYSIS_MEMBER,
                    format!(
                        "analysis.json is {} bytes with SHA-256 {}, but the manifest names {} bytes with SHA-256 {}: it was altered or swapped",
                        a.size,
                        a.sha256.hex(),
                        r.size,
                        r.sha256.hex()
                    ),
                );
                None
            } else {
                fs.detail("analysis", format!("{} bytes, SHA-256 matches the manifest", a.size));
                if keep > 0 && a.bytes.is_none() {
                    fs.warn(
                        FindingKind::AnalysisMismatch,
                        ANALYSIS_MEMBER,
                        format!("analysis.json matches the manifest, but at {} bytes it is above the {keep} bytes loaded to show it: it is not shown (extract the bundle to read it)", a.size),
                    );
                }
                a.bytes
            }
        }
        (Some(_), None) => {
            fs.ran("analysis");
            fs.error(
                FindingKind::AnalysisMismatch,
                ANALYSIS_MEMBER,
                "the manifest names an analysis.json member, but the archive has none (it was removed)",
            );
            None
        }
        (None, Some(_)) => {
            fs.ran("analysis");
            fs.error(
                FindingKind::AnalysisMismatch,
                ANALYSIS_MEMBER,
                if manifest.is_some() {
                    "the archive has an analysis.json member that the manifest does not name (it was added)"
                } else {
                    "the archive has an analysis.json member but no readable manifest names it"
                },
            );
            None
        }
    }
}

/// Put a verified `analysis.json` into the manifest's `analysis` field (so callers see one
/// shape for v1 and v2), unless its parsed form would not fit in what the parsed manifest
/// (`manifest_cost`, [`crate::read::envelope::json_cost`]) leaves of [`MAX_JSON_VALUES_COST`]: the analysis is then not shown (a warning; the bundle
/// is still intact: its digest matched).
pub(crate) fn attach(m: &mut Manifest, manifest_cost: usize, bytes: Vec<u8>, fs: &mut Findings) {
    let budget = MAX_JSON_VALUES_COST.saturating_sub(manifest_cost);
    let need = cost(&bytes, Model::Value);
    if need > budget {
        fs.warn(
            FindingKind::AnalysisMismatch,
            ANALYSIS_MEMBER,
            format!(
                "analysis.json matches the manifest, but parsing it would take ~{} MiB of memory, above the {} MiB left under the bound of {} MiB: it is not shown (extract the bundle to read it)",
                need >> 20,
                budget >> 20,
                MAX_JSON_VALUES_COST >> 20
            ),
        );
        return;
    }
    match serde_json::from_slice(&bytes) {
        Ok(v) => m.analysis = Some(v),
        Err(e) => fs.warn(
            FindingKind::AnalysisMismatch,
            ANALYSIS_MEMBER,
            format!("analysis.json matches the manifest but is not JSON ({e}); it is not shown"),
        ),
    }
}
