//! What reaches the responder's terminal (issue 18, item 8). File names, record values and
//! notes from the evidence, the fields of a signed manifest and the text of parse errors of
//! unsigned bytes were printed raw: a file named `x\e[2J…` or a record value with `\e[1A`
//! could clear the screen, move the cursor and paint a fake "INTACT / trusted" result. Each
//! command is run on a pseudo-terminal (util-linux `script`) and everything the terminal
//! received is checked: no control character but custody's own line ends, no C1 control, no
//! bidi or invisible formatting character, no line started by a hostile value; and the hostile
//! values are there, escaped (`\u{1b}`), not dropped.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::process::Command;

use crate::util::*;

/// What every hostile string carries: ESC sequences (clear screen, cursor up, an OSC title),
/// CR, LF followed by a fake line, BEL, the one-character CSI U+009B, a right-to-left override
/// and a left-to-right isolate, and a backslash (shown doubled: the value went through the
/// escaping, not only through the output's last net).
const HOSTILE: &str = "\u{1b}[2J\u{1b}[H\u{1b}[1A\u{1b}]0;t\u{7}\r\nFORGED: INTACT\u{7}\u{9b}2J\u{202e}gpj\u{2066}a\\b";

const TRACE: &str = "5c2e8a41f9d3b7066e1a4d2c9f0b8e73";

/// Runs `custody ARGS` with stdin, stdout and stderr on a pseudo-terminal: the exit code and
/// every byte the terminal received.
fn on_a_terminal(env: &Env, args: &[&OsStr]) -> (i32, Vec<u8>) {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let quote = |a: &OsStr| {
        let mut q = b"'".to_vec();
        for &b in a.as_bytes() {
            if b == b'\'' {
                q.extend_from_slice(b"'\\''");
            } else {
                q.push(b);
            }
        }
        q.push(b'\'');
        q
    };
    let mut line = quote(bin().as_os_str());
    for a in args {
        line.push(b' ');
        line.extend(quote(a));
    }
    let out = Command::new("script")
        .arg("-qefc")
        .arg(OsString::from_vec(line))
        .arg("/dev/null")
        .env("CUSTODY_HOME", env.home())
        .env_remove("CUSTODY_STORE")
        .env_remove("CUSTODY_KEY")
        .env_remove("XDG_DATA_HOME")
        .current_dir(env.tmp.path())
        .output()
        .expect("run custody under script(1) (util-linux)");
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// No byte or character a terminal would act on: only LF, and CR right before LF (the
/// terminal's own line ends), no other C0 control, DEL, C1 control, bidi control or
/// invisible formatting character; no line that a hostile value started.
#[track_caller]
fn assert_nothing_paints(what: &str, t: &[u8]) {
    let text = String::from_utf8_lossy(t);
    for (i, &b) in t.iter().enumerate() {
        let ok = match b {
            b'\n' => true,
            b'\r' => t.get(i + 1) == Some(&b'\n'),
            0..=0x1f | 0x7f => false,
            _ => true,
        };
        assert!(ok, "{what}: raw control byte {b:#04x} at {i} reached the terminal:\n{text}");
    }
    for c in text.chars() {
        let bad =
            matches!(c as u32, 0x80..=0x9f | 0x202a..=0x202e | 0x2066..=0x2069 | 0x200b..=0x200f | 0x061c | 0xfeff);
        assert!(!bad, "{what}: U+{:04X} reached the terminal:\n{text}", c as u32);
    }
    for l in text.lines() {
        assert!(!l.trim_start().starts_with("FORGED"), "{what}: a hostile value started a line: {l:?}\n{text}");
    }
}

/// The hostile string as custody shows it.
fn escaped(s: &str) -> String {
    custody::untrusted::untrusted(s).to_string()
}

/// An incident whose file names and record values are hostile: a log named `x<HOSTILE>.jsonl`
/// (with a cut-short last line, so that preserve lists it as a problem) whose record ties the
/// trace to a hostile session id, agent, tool and principal.
fn hostile_incident(env: &Env) -> std::path::PathBuf {
    let inc = env.path("incident");
    fs::create_dir_all(inc.join("logs")).unwrap();
    fs::create_dir_all(inc.join("attachments")).unwrap();
    let v = serde_json::Value::from(HOSTILE);
    let record = serde_json::json!({
        "ts": 1795269711.902, "trace_id": TRACE, "session_id": format!("sess-{HOSTILE}"),
        "agent_id": format!("agent-{HOSTILE}"), "tool": format!("tool-{HOSTILE}"),
        "tool_principal": format!("svc-{HOSTILE}"), "call_id": "call-1", "note": v,
        "idempotency_key": "idem-hostile-0001",
    });
    let body = format!("{record}\n{{\"cut\":\"sho");
    fs::write(inc.join("logs").join(format!("x{HOSTILE}.jsonl")), body).unwrap();
    fs::write(inc.join("attachments").join(format!("shot{HOSTILE}.png")), b"\x89PNG").unwrap();
    inc
}

#[test]
fn regression_hostile_file_names_and_record_values_painted_the_terminal() {
    let env = Env::new();
    let inc = hostile_incident(&env);
    let store = env.store();
    let note = format!("note-{HOSTILE}");
    let args: Vec<&OsStr> = vec![
        "preserve".as_ref(),
        "--quiet".as_ref(),
        "--incident-dir".as_ref(),
        inc.as_os_str(),
        "--trace-id".as_ref(),
        TRACE.as_ref(),
        "--note".as_ref(),
        note.as_ref(),
    ];
    let (code, t) = on_a_terminal(&env, &args);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&t));
    assert_nothing_paints("preserve", &t);
    let text = String::from_utf8_lossy(&t);
    // (A backslash in a file name is sealed as U+FF3C: docs/collector.md.)
    let file = format!("logs/x{}.jsonl", HOSTILE.replace('\\', "\u{ff3c}"));
    assert!(text.contains(&escaped(&file)), "the file is named, escaped:\n{text}");
    // Values with controls are no identifiers (the session and principal are unknown), but the
    // tool a write of unknown outcome named is quoted, escaped.
    assert!(text.contains(&escaped(&format!("tool-{HOSTILE}"))), "the record value is shown, escaped:\n{text}");
    assert!(text.contains(r"a\\b"), "a backslash is doubled (the value itself was escaped):\n{text}");

    // The bundle as JSON tells the digest; the rest of the checks read it from the store.
    let j = env.run(&["list", "--json"]);
    j.expect(0);
    let digest = j.json()["entries"][0]["bundle"].as_str().unwrap().to_string();
    let s = store.as_os_str();

    let (code, t) = on_a_terminal(&env, &["show".as_ref(), "--store".as_ref(), s, digest.as_ref()]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&t));
    assert_nothing_paints("show", &t);
    let text = String::from_utf8_lossy(&t);
    for shown in [
        format!("attachments/shot{HOSTILE}.png").replace('\\', "\u{ff3c}"),
        file.clone(),
        format!("note-{HOSTILE}"),
        format!("tool-{HOSTILE}"),
    ] {
        assert!(text.contains(&escaped(&shown)), "show shows {shown:?} escaped:\n{text}");
    }

    let (code, t) =
        on_a_terminal(&env, &["verify".as_ref(), "--quiet".as_ref(), "--store".as_ref(), s, digest.as_ref()]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&t));
    assert_nothing_paints("verify", &t);

    // JSON on a terminal: valid JSON with the same values, nothing a terminal acts on.
    let (code, t) = on_a_terminal(&env, &["show".as_ref(), "--json".as_ref(), "--store".as_ref(), s, digest.as_ref()]);
    assert_eq!(code, 0);
    assert_nothing_paints("show --json", &t);
    let o = env.run(&["show", "--json", "--store", store.to_str().unwrap(), &digest]);
    let v = o.json();
    assert!(v["manifest"]["incident"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == &serde_json::Value::from(note.clone())));
    assert!(!o.stdout.contains('\u{202e}') && !o.stdout.contains('\u{9b}'), "JSON writes them as \\uXXXX");
}

/// A signed manifest (re-sealed with the trusted key) whose entry path is hostile, a bundle
/// file named with controls, and a manifest that does not parse (serde's message quotes the
/// unknown field): verify's report and show's fallback to it print them escaped.
#[test]
fn regression_verify_findings_quoting_a_signed_manifest_or_a_parse_error_painted_the_terminal() {
    let (env, m) = made();
    let key = custody::keys::SecretKey::load(&env.key()).unwrap();
    let members = reseal(&bundle_members(&m.bundle), &key, |man| {
        rename_entry(man, "attachments/responder-notes.md", &format!("{HOSTILE}/../responder-notes.md"));
    });
    let crafted = env.path(&format!("crafted{HOSTILE}.tar.zst"));
    write_bundle(&crafted, &members);
    let mut unparsable = bundle_members(&m.bundle);
    let i = member_index(&unparsable, "manifest.json");
    let mut man: serde_json::Value = serde_json::from_slice(&unparsable[i].data).unwrap();
    man[format!("field{HOSTILE}")] = serde_json::Value::from(1);
    unparsable[i].set_data(serde_json::to_vec_pretty(&man).unwrap());
    let broken = env.path("broken.tar.zst");
    write_bundle(&broken, &unparsable);
    for (name, bundle, needle) in [
        ("verify of a re-signed hostile entry path", &crafted, format!("{HOSTILE}/../responder-notes.md")),
        ("verify of an unparsable manifest", &broken, format!("field{HOSTILE}")),
    ] {
        for cmd in ["verify", "show"] {
            let args: Vec<&OsStr> = match cmd {
                "verify" => vec!["verify".as_ref(), "--quiet".as_ref(), bundle.as_os_str()],
                _ => vec!["show".as_ref(), bundle.as_os_str()],
            };
            let (code, t) = on_a_terminal(&env, &args);
            let what = format!("{cmd}: {name}");
            assert_eq!(code, 1, "{what}: {}", String::from_utf8_lossy(&t));
            assert_nothing_paints(&what, &t);
            let text = String::from_utf8_lossy(&t);
            assert!(text.contains(&escaped(&needle)), "{what}: the hostile text is shown escaped:\n{text}");
            if bundle == &crafted {
                assert!(text.contains(&escaped(&crafted.display().to_string())), "{what}: names the file:\n{text}");
            }
        }
    }
}

/// A stored ledger entry that does not parse, whose payload type is hostile: `list` quotes
/// the parse error.
#[test]
fn regression_list_printed_a_hostile_ledger_entry_raw() {
    let (env, m) = made();
    let bad = serde_json::json!({"payloadType": HOSTILE, "payload": "", "signatures": []});
    let entry = m.store.join(custody::store::ledger::entry_key(2));
    fs::write(&entry, serde_json::to_vec_pretty(&bad).unwrap()).unwrap();
    let (code, t) = on_a_terminal(&env, &["list".as_ref(), "--store".as_ref(), m.store.as_os_str()]);
    let text = String::from_utf8_lossy(&t);
    assert_eq!(code, 1, "an invalid entry is a finding: {text}");
    assert_nothing_paints("list", &t);
    assert!(text.contains("INVALID ENTRY"), "{text}");
    assert!(text.contains(&escaped(&HOSTILE.chars().take(40).collect::<String>())), "{text}");
}

/// `timeline` quotes every value of the hostile incident (tool, principal, session, file name)
/// on its lines: escaped, nothing painted.
#[test]
fn timeline_of_hostile_evidence_paints_nothing() {
    let env = Env::new();
    let inc = hostile_incident(&env);
    let args: Vec<&OsStr> = vec![
        "preserve".as_ref(),
        "--quiet".as_ref(),
        "--incident-dir".as_ref(),
        inc.as_os_str(),
        "--trace-id".as_ref(),
        TRACE.as_ref(),
    ];
    let (code, t) = on_a_terminal(&env, &args);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&t));
    let j = env.run(&["list", "--json"]);
    let digest = j.json()["entries"][0]["bundle"].as_str().unwrap().to_string();
    let store = env.store();
    let (code, t) = on_a_terminal(&env, &["timeline".as_ref(), "--store".as_ref(), store.as_os_str(), digest.as_ref()]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&t));
    assert_nothing_paints("timeline", &t);
    let text = String::from_utf8_lossy(&t);
    assert!(text.contains(&escaped(&format!("tool-{HOSTILE}"))), "the tool is shown, escaped:\n{text}");
    let file = format!("logs/x{}.jsonl", HOSTILE.replace('\\', "\u{ff3c}"));
    assert!(text.contains(&escaped(&file)), "the cited file is named, escaped:\n{text}");
}
