//! A verified bundle's events in time order, one line each, through custody's library alone:
//!
//! ```text
//! cargo run --example timeline -- BUNDLE.tar.zst SIGNER.pub
//! ```
//!
//! The bundle is verified first (`custody::Bundle::open`); one that does not verify prints
//! nothing of its contents. Each line: time, kind, principal, target, outcome, the
//! identifiers the event carries, and its first citation with the cited record's first bytes
//! (read again from the sealed file, hashed again).

use std::process::ExitCode;

use custody::keys::PublicKey;
use custody::timeline::{Filter, Timeline};
use custody::untrusted::untrusted;
use custody::verify::Trust;
use custody::{Bundle, OpenError};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bundle, key] = args.as_slice() else {
        eprintln!("usage: timeline BUNDLE.tar.zst SIGNER.pub");
        return ExitCode::from(2);
    };
    match run(bundle, key) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timeline: {}", untrusted(&custody::error_text(e.as_ref())));
            ExitCode::from(1)
        }
    }
}

fn run(bundle: &str, key: &str) -> Result<(), Box<dyn std::error::Error>> {
    let trust = Trust::new(vec![PublicKey::load(key.as_ref())?]);
    let opened = match Bundle::open(bundle, &trust) {
        Err(OpenError::NotIntact { report, .. }) => {
            eprint!("{}", report.to_human());
            return Err("the bundle did not verify".into());
        }
        other => other?,
    };
    let mut timeline = Timeline::of(&opened, &Filter::default())?;
    // A supplement's records are in its original: this example reads only plain bundles'.
    if opened.supplement_of().is_none() {
        timeline.attach_records(&opened)?;
    }
    println!("bundle {} sealed at {}", opened.digest(), opened.manifest().sealed_at);
    let mut events: Vec<usize> = (0..timeline.events.len()).collect();
    // Time order; events without a time last, in the analysis' order.
    events.sort_by_key(|&i| {
        (custody::timeline::placed_at(&timeline.events[i]).is_none(), custody::timeline::placed_at(&timeline.events[i]))
    });
    for i in events {
        let e = &timeline.events[i];
        let at = e.start.as_ref().or(e.end.as_ref()).map_or("(no time)", |t| t.at.as_str());
        let outcome = e.outcome.as_ref().map_or("-".to_string(), |o| format!("{:?}", o.status).to_lowercase());
        let ids: Vec<String> = e.ids.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let cite = e.citations.first().map_or(String::new(), |c| match c.line {
            Some(l) => format!("{}:{l}", c.path),
            None => format!("{}@{}", c.path, c.offset),
        });
        let record = timeline
            .records
            .as_ref()
            .and_then(|r| r.get(i))
            .and_then(|r| r.first())
            .map(|r| String::from_utf8_lossy(&r.raw()).chars().take(60).collect::<String>())
            .unwrap_or_default();
        println!(
            "{}  {:<17} {:<20} {:<28} {:<9} [{}] {}  {}",
            untrusted(at),
            e.kind.as_str(),
            untrusted(e.principal.as_deref().unwrap_or("-")),
            untrusted(e.target.as_deref().unwrap_or("-")),
            outcome,
            untrusted(&ids.join(" ")),
            untrusted(&cite),
            untrusted(&record),
        );
    }
    Ok(())
}
