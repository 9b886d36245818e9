//! The ledger's formats, read and write side by side: ledger entry objects
//! (`custody-ledger/v1` and `/v2`), their object keys, and the store identity file
//! (`store.json`). The writer ([`crate::store::ledger`]) serializes these types; this module is
//! the only parser of their untrusted bytes (`docs/format.md` §6).
//!
//! An entry object is a DSSE envelope (checked by [`CheckedEnvelope::parse_one_of`]) whose
//! payload type names the entry's format. Parsing is structural only: strict JSON, no unknown
//! fields, the fields of the entry's format and no others, and RFC 3339 times with four-digit
//! years (so every later time comparison is in range). Signatures, links and positions are the
//! verifier's business.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{BundleId, EntryId, Sha256};
use crate::read::envelope::CheckedEnvelope;

/// DSSE payload type of a `custody-ledger/v1` entry (read only).
pub const LEDGER_PAYLOAD_TYPE_V1: &str = "application/vnd.custody.ledger-entry.v1+json";
/// DSSE payload type of a `custody-ledger/v2` entry (written).
pub const LEDGER_PAYLOAD_TYPE_V2: &str = "application/vnd.custody.ledger-entry.v2+json";
/// Format tag of a v1 entry.
pub const LEDGER_FORMAT_V1: &str = "custody-ledger/v1";
/// Format tag of a v2 entry.
pub const LEDGER_FORMAT_V2: &str = "custody-ledger/v2";
/// Largest ledger entry object accepted.
pub const MAX_ENTRY: u64 = 64 * 1024;
/// Prefix of every ledger object key.
pub const LEDGER_PREFIX: &str = "ledger/";

/// The store identity file's key, at the store's root.
pub const STORE_FILE: &str = "store.json";
/// Format tag of the store identity file.
pub const STORE_FORMAT: &str = "custody-store/v1";
/// Largest store identity file accepted.
pub const MAX_STORE_FILE: u64 = 4096;

/// A store's identity: 16 random bytes, written once (create-only) in `store.json` when the
/// store is first written to. Text form: 32 lower-case hex digits. A ledger entry names the
/// store it was appended to by this id (not by URL: a copied or migrated bucket keeps it).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId(pub [u8; 16]);

impl StoreId {
    /// A fresh random id.
    pub fn random() -> Result<StoreId, rand_core::Error> {
        let mut b = [0u8; 16];
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut b)?;
        Ok(StoreId(b))
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse exactly 32 lower-case hex digits.
    pub fn parse_canonical_hex(s: &str) -> Option<StoreId> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).ok()?;
        Some(StoreId(b))
    }
}

impl std::fmt::Display for StoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl std::fmt::Debug for StoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreId({})", self.hex())
    }
}

impl Serialize for StoreId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for StoreId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        StoreId::parse_canonical_hex(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{}` is not a store id: expected 32 lower-case hex digits",
                s.chars().take(40).collect::<String>()
            ))
        })
    }
}

/// `store.json`: the store's identity (unsigned; entries bind it by naming the id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// Always [`STORE_FORMAT`].
    pub format: String,
    /// The store id.
    pub store_id: StoreId,
    /// When the store was first written to.
    pub created_at: DateTime<Utc>,
}

impl StoreFile {
    /// The bytes custody writes: pretty JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Parse `store.json` (untrusted).
pub fn parse_store_file(bytes: &[u8]) -> Result<StoreFile, EntryProblem> {
    if bytes.len() as u64 > MAX_STORE_FILE {
        return Err(EntryProblem::Object(format!("{} bytes, above the limit of {MAX_STORE_FILE}", bytes.len())));
    }
    let f: StoreFile = serde_json::from_slice(bytes).map_err(|e| EntryProblem::Payload(e.to_string()))?;
    if f.format != STORE_FORMAT {
        return Err(EntryProblem::Payload(format!("format is `{}`, expected `{STORE_FORMAT}`", clip(&f.format))));
    }
    check_time("created_at", &f.created_at)?;
    Ok(f)
}

/// The role of the key that signed an entry (v2, optional; for separate ledger keys).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyRole {
    /// The collector's key, the one that signs bundles (the default when absent).
    Collector,
    /// A key that signs only ledger entries.
    Ledger,
}

/// Who signed an entry, as the entry itself states it (v2, optional).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignedBy {
    /// The key's role.
    pub role: KeyRole,
    /// The key id; equal to the envelope's `keyid`.
    pub keyid: Sha256,
}

/// An RFC 3161 timestamp token stored beside the bundle (v2, optional).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimestampRef {
    /// Its object key (`timestamps/<bundle digest hex>.tsr`).
    pub key: String,
    /// SHA-256 of the token object's bytes.
    pub sha256: Sha256,
}

/// One ledger record, v1 or v2 (the v2 fields are `None` in a v1 entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// [`LEDGER_FORMAT_V1`] or [`LEDGER_FORMAT_V2`].
    pub format: String,
    /// 1-based position.
    pub position: u64,
    /// The bundle recorded.
    pub bundle: BundleId,
    /// Its size in bytes.
    pub bundle_size: u64,
    /// Its object key.
    pub bundle_key: String,
    /// SHA-256 of the object at position − 1 (`null` at position 1).
    pub prev: Option<EntryId>,
    /// When the bundle was sealed (its manifest's `sealed_at`).
    pub sealed_at: DateTime<Utc>,
    /// When this entry was written.
    pub appended_at: DateTime<Utc>,
    /// v2: the id of the store this entry was appended to (`store.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<StoreId>,
    /// v2: true when the bundle was adopted (recorded by a later preserve or `store repair`,
    /// not by the preserve that sealed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<bool>,
    /// v2, optional: the bundle's RFC 3161 timestamp token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampRef>,
    /// v2, optional: the signing key's role (absent: the collector's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<SignedBy>,
    /// v2, optional: the entry records a supplement to this earlier evidence bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplement_of: Option<BundleId>,
}

impl LedgerEntry {
    /// Is this a v2 entry?
    pub fn is_v2(&self) -> bool {
        self.format == LEDGER_FORMAT_V2
    }
    /// Was the bundle adopted? (Never for a v1 entry: v1 did not say.)
    pub fn adopted(&self) -> bool {
        self.adopted == Some(true)
    }
    /// The payload bytes custody signs: pretty JSON, fields in declaration order, absent
    /// optional v2 fields omitted, no final newline.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
    /// The DSSE payload type of this entry's format.
    pub fn payload_type(&self) -> &'static str {
        if self.is_v2() {
            LEDGER_PAYLOAD_TYPE_V2
        } else {
            LEDGER_PAYLOAD_TYPE_V1
        }
    }
}

/// The object key of position `n`.
pub fn entry_key(n: u64) -> String {
    format!("{LEDGER_PREFIX}{n:020}.json")
}

/// The position an entry key names: `ledger/` + exactly 20 decimal digits + `.json`, a
/// position from 1 to 2^64 − 1. Anything else under `ledger/` is a stray object.
pub fn parse_entry_key(key: &str) -> Option<u64> {
    let digits = key.strip_prefix(LEDGER_PREFIX)?.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n >= 1)
}

/// A ledger object as read from the store (untrusted until checked).
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// Position from the key.
    pub position: u64,
    /// SHA-256 of the object bytes.
    pub id: EntryId,
    /// The envelope and entry, if they parse.
    pub parsed: Result<(CheckedEnvelope, LedgerEntry), EntryProblem>,
}

impl StoredEntry {
    /// Read one object at `position` (`bytes` as stored).
    pub fn from_bytes(position: u64, bytes: &[u8]) -> StoredEntry {
        StoredEntry { position, id: EntryId(Sha256::of(bytes)), parsed: parse_entry(bytes) }
    }
    /// The entry, if it parsed.
    pub fn entry(&self) -> Option<&LedgerEntry> {
        self.parsed.as_ref().ok().map(|(_, e)| e)
    }
}

/// Why a stored ledger object (or `store.json`) cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// Envelope invalid.
    #[error("envelope: {0}")]
    Envelope(String),
    /// Payload invalid.
    #[error("payload: {0}")]
    Payload(String),
    /// Object unreadable or too large.
    #[error("object: {0}")]
    Object(String),
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// RFC 3339 has four-digit years; chrono accepts years up to ±262 143, where adding a skew
/// overflows. Refusing them here keeps every later comparison in range.
fn check_time(field: &str, t: &DateTime<Utc>) -> Result<(), EntryProblem> {
    if (0..=9999).contains(&t.year()) {
        Ok(())
    } else {
        Err(EntryProblem::Payload(format!(
            "`{field}` is in year {}: timestamps are RFC 3339, years 0000 to 9999",
            t.year()
        )))
    }
}

/// Parse one entry object: a canonical single-signature envelope of a v1 or v2 payload type,
/// and a payload with exactly the fields of the format its payload type names.
pub fn parse_entry(bytes: &[u8]) -> Result<(CheckedEnvelope, LedgerEntry), EntryProblem> {
    if bytes.len() as u64 > MAX_ENTRY {
        return Err(EntryProblem::Object(format!("{} bytes, above the limit of {MAX_ENTRY}", bytes.len())));
    }
    let env = CheckedEnvelope::parse_one_of(bytes, &[LEDGER_PAYLOAD_TYPE_V2, LEDGER_PAYLOAD_TYPE_V1])
        .map_err(|e| EntryProblem::Envelope(crate::error_text(&e)))?;
    let entry: LedgerEntry = serde_json::from_slice(&env.payload).map_err(|e| EntryProblem::Payload(e.to_string()))?;
    let v2 = env.payload_type == LEDGER_PAYLOAD_TYPE_V2;
    let want = if v2 { LEDGER_FORMAT_V2 } else { LEDGER_FORMAT_V1 };
    if entry.format != want {
        return Err(EntryProblem::Payload(format!(
            "format is `{}`, but the payload type {} is that of `{want}`",
            clip(&entry.format),
            env.payload_type
        )));
    }
    if v2 {
        for (field, present) in [("store_id", entry.store_id.is_some()), ("adopted", entry.adopted.is_some())] {
            if !present {
                return Err(EntryProblem::Payload(format!("a `{LEDGER_FORMAT_V2}` entry must have `{field}`")));
            }
        }
    } else {
        for (field, present) in [
            ("store_id", entry.store_id.is_some()),
            ("adopted", entry.adopted.is_some()),
            ("timestamp", entry.timestamp.is_some()),
            ("signed_by", entry.signed_by.is_some()),
            ("supplement_of", entry.supplement_of.is_some()),
        ] {
            if present {
                return Err(EntryProblem::Payload(format!("a `{LEDGER_FORMAT_V1}` entry has no field `{field}`")));
            }
        }
    }
    if entry.position == 0 {
        return Err(EntryProblem::Payload("position is 0: positions start at 1".into()));
    }
    check_time("sealed_at", &entry.sealed_at)?;
    check_time("appended_at", &entry.appended_at)?;
    Ok((env, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::dsse;

    fn key() -> (tempfile::TempDir, crate::keys::SecretKey) {
        let d = tempfile::tempdir().unwrap();
        let k = crate::keys::SecretKey::generate(&d.path().join("k")).unwrap();
        (d, k)
    }

    fn v2_entry() -> LedgerEntry {
        let t = DateTime::from_timestamp(1_763_800_000, 0).unwrap();
        LedgerEntry {
            format: LEDGER_FORMAT_V2.into(),
            position: 1,
            bundle: BundleId(Sha256::of(b"b")),
            bundle_size: 10,
            bundle_key: format!("bundles/{}.tar.zst", Sha256::of(b"b").hex()),
            prev: None,
            sealed_at: t,
            appended_at: t,
            store_id: Some(StoreId([7; 16])),
            adopted: Some(false),
            timestamp: None,
            signed_by: None,
            supplement_of: None,
        }
    }

    fn signed(payload_type: &str, payload: &[u8], k: &crate::keys::SecretKey) -> Vec<u8> {
        dsse::to_bytes(&dsse::sign(payload_type, payload, k))
    }

    #[test]
    fn a_v2_entry_round_trips_and_its_payload_layout_is_fixed() {
        let (_d, k) = key();
        let e = v2_entry();
        let text = String::from_utf8(e.to_payload()).unwrap();
        assert!(text.starts_with("{\n  \"format\": \"custody-ledger/v2\",\n  \"position\": 1,"), "{text}");
        assert!(text.contains("\"prev\": null"), "prev is written as null at position 1: {text}");
        assert!(text.contains("\"store_id\": \"07070707070707070707070707070707\""), "{text}");
        assert!(!text.contains("timestamp") && !text.contains("signed_by"), "absent optional fields are omitted");
        let (_, back) = parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V2, text.as_bytes(), &k)).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn each_format_has_exactly_its_fields_and_its_payload_type() {
        let (_d, k) = key();
        let v2 = v2_entry();
        let mut v1 = v2.clone();
        v1.format = LEDGER_FORMAT_V1.into();
        v1.store_id = None;
        v1.adopted = None;
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V1, &v1.to_payload(), &k)).is_ok());
        // The payload type names the format.
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V2, &v1.to_payload(), &k)).is_err());
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V1, &v2.to_payload(), &k)).is_err());
        // v2 without its required fields, v1 with a v2 field.
        let mut no_store = v2.clone();
        no_store.store_id = None;
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V2, &no_store.to_payload(), &k)).is_err());
        let mut v1_adopted = v1.clone();
        v1_adopted.adopted = Some(true);
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V1, &v1_adopted.to_payload(), &k)).is_err());
        // Unknown fields, prefixed ids and a zero position are refused.
        let text = String::from_utf8(v2.to_payload()).unwrap();
        let unknown = text.replacen("\"position\"", "\"extra\": 1,\n  \"position\"", 1);
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V2, unknown.as_bytes(), &k)).is_err());
        let prefixed = text.replacen("\"bundle\": \"", "\"bundle\": \"sha256:", 1);
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V2, prefixed.as_bytes(), &k)).is_err());
        let zero = text.replacen("\"position\": 1", "\"position\": 0", 1);
        assert!(parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V2, zero.as_bytes(), &k)).is_err());
    }

    #[test]
    fn regression_an_entry_in_year_262143_is_refused_not_used_in_arithmetic() {
        let (_d, k) = key();
        let text = String::from_utf8(v2_entry().to_payload()).unwrap();
        let when = v2_entry().appended_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        // What chrono parses (and writes for its extreme times), beyond RFC 3339's years.
        for extreme in [
            "+262142-12-31T23:59:59.999999999Z",
            "-262143-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "-0001-12-31T23:59:59Z",
        ] {
            let t =
                text.replacen(&format!("\"appended_at\": \"{when}\""), &format!("\"appended_at\": \"{extreme}\""), 1);
            assert_ne!(t, text, "the time was replaced");
            let r = parse_entry(&signed(LEDGER_PAYLOAD_TYPE_V2, t.as_bytes(), &k));
            match r {
                Err(EntryProblem::Payload(m)) => assert!(m.contains("`appended_at` is in year"), "{m}"),
                other => panic!("{extreme}: {other:?}"),
            }
        }
    }

    /// On main the envelope's parse error stopped writing its JSON cause into its own message
    /// (it is the error's source); a ledger entry's problem read only "envelope: envelope is
    /// not valid", without saying why. The cause is shown, once.
    #[test]
    fn regression_an_unparsable_entry_envelope_says_its_cause_once() {
        let Err(EntryProblem::Envelope(m)) = parse_entry(b"{\"payloadType\": ") else {
            panic!("not an envelope error")
        };
        assert_eq!(m.matches("EOF while parsing").count(), 1, "{m}");
        let Err(e) = crate::read::checkpoint::parse(b"{\"payloadType\": ") else { panic!("parsed") };
        let m = e.to_string();
        assert_eq!(m.matches("EOF while parsing").count(), 1, "{m}");
    }

    #[test]
    fn entry_keys_are_twenty_digits_from_one() {
        assert_eq!(entry_key(3), "ledger/00000000000000000003.json");
        assert_eq!(parse_entry_key(&entry_key(3)), Some(3));
        assert_eq!(parse_entry_key("ledger/18446744073709551615.json"), Some(u64::MAX));
        for bad in [
            "ledger/00000000000000000000.json",
            "ledger/18446744073709551616.json",
            "ledger/3.json",
            "ledger/0000000000000000000a.json",
            "ledger/00000000000000000003.json.bak",
            "ledger/x/00000000000000000003.json",
        ] {
            assert_eq!(parse_entry_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn store_ids_are_32_lower_hex_digits() {
        let id = StoreId::random().unwrap();
        assert_eq!(StoreId::parse_canonical_hex(&id.hex()), Some(id));
        assert_eq!(StoreId::parse_canonical_hex(&id.hex().to_uppercase()), None);
        assert_eq!(StoreId::parse_canonical_hex(&id.hex()[1..]), None);
        let f = StoreFile { format: STORE_FORMAT.into(), store_id: id, created_at: v2_entry().sealed_at };
        assert_eq!(parse_store_file(&f.to_bytes()).unwrap(), f);
        assert!(parse_store_file(b"{}").is_err());
        assert!(parse_store_file(&[b' '; 5000]).is_err());
    }
}
