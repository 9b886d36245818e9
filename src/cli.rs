//! The command line: clap structs only (no logic), so completions and man pages can be
//! generated from them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Preserve the evidence of an AI-agent incident in a sealed, signed, write-once bundle, and
/// prove later that nothing was altered, removed, reordered or replayed.
///
/// Exit codes: 0 success / verified intact, 1 verification findings, 2 usage or operational
/// error.
#[derive(Debug, Parser)]
#[command(name = "custody", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an Ed25519 signing key (PKCS#8 PEM, mode 0600) and its public key (PATH.pub).
    Keygen(KeygenArgs),
    /// Collect an incident's evidence, seal it into one signed bundle and store it write-once.
    Preserve(Box<PreserveArgs>),
    /// Prove a bundle (a file, or a digest in a store) or a whole store ledger is intact.
    Verify(VerifyArgs),
    /// Verify a bundle, then show its identifiers, completeness, entries, signer and ledger link
    /// (exit 1 if it did not verify: what it shows is then only what the manifest claims).
    Show(ShowArgs),
    /// Verify a bundle, then write its original evidence files under a directory.
    Extract(ExtractArgs),
    /// Verify a bundle, then print the incident's events in time order, one line each (or
    /// --json, or an HTML report with --html FILE).
    Timeline(TimelineArgs),
    /// Verify a bundle, then write its incident in other tools' formats: OTLP/JSON traces and
    /// logs with provenance (--otlp DIR), an eval case (--eval-case FILE).
    Export(ExportArgs),
    /// Verify a stored bundle, analyze its sealed evidence again (other seeds, another field
    /// mapping) and seal the result as a small supplement bundle in the same store and ledger,
    /// linked to the original (nothing is collected again).
    Analyze(Box<AnalyzeArgs>),
    /// Search the analyses of every bundle in a store for a destination host, a memory record,
    /// a principal or a session: which other sessions and rollout waves touched it.
    Search(SearchArgs),
    /// List a store's ledger, oldest first, checking each entry's signature, signer and link
    /// (exit 1 when one does not check out).
    List(ListArgs),
    /// Set up and maintain a store: `init` checks its promises, `repair` adopts unreferenced bundles.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Obtain RFC 3161 timestamp tokens for the recorded bundles that have none (a TSA was down
    /// at preserve, or none was configured), stored at timestamps/<bundle digest>.tsr.
    Timestamp(TimestampArgs),
    /// Print a signed checkpoint of the store's ledger head (a C2SP signed note) to keep
    /// somewhere else; `verify --store URL --all --checkpoint FILE` later detects a rollback or
    /// fork.
    Checkpoint(CheckpointArgs),
    /// Act as a witness: cosign checkpoints only while they extend each other.
    #[command(subcommand)]
    Witness(WitnessCommand),
    /// Print the shell completion script for bash, zsh or fish (e.g. `custody completions bash >
    /// ~/.local/share/bash-completion/completions/custody`).
    Completions(CompletionsArgs),
    /// Print the man page custody(1) (roff), or with --dir write it and one page per command.
    Man(ManArgs),
}

/// `search`: exactly one query.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("query").required(true).multiple(false))]
pub struct SearchArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// Egress requests to this host (without case, port or trailing dot).
    #[arg(long, value_name = "HOST", group = "query")]
    pub host: Option<String>,
    /// Events reading or writing this memory record.
    #[arg(long, value_name = "ID", group = "query")]
    pub memory_id: Option<String>,
    /// Events that ran as this principal (or name it as their tool principal).
    #[arg(long, value_name = "PRINCIPAL", group = "query")]
    pub principal: Option<String>,
    /// Events carrying this session id.
    #[arg(long, value_name = "SESSION_ID", group = "query")]
    pub session: Option<String>,
    /// Print JSON (schemas/search.v1.schema.json).
    #[arg(long)]
    pub json: bool,
}

/// The keys a command that verifies trusts (`docs/format.md` §6.7). Without any, the local
/// default key (every role, at any time).
#[derive(Debug, Args, Clone, Default)]
pub struct TrustArgs {
    /// A pinned public key (SPKI PEM; repeatable), trusted for every role: bundles, ledger
    /// entries and checkpoints. Default: the local default key.
    #[arg(long, value_name = "PUB")]
    pub trusted_key: Vec<PathBuf>,
    /// A pinned ledger key (SPKI PEM; repeatable): trusted for ledger entries and checkpoints
    /// only, never for bundles (the key `--ledger-key` signs with).
    #[arg(long, value_name = "PUB")]
    pub trusted_ledger_key: Vec<PathBuf>,
    /// A pinned-keys file (TOML; repeatable): each key with its roles and, optionally, its
    /// validity (not_before, not_after), so bundles signed before a rotation keep verifying
    /// and a retired key's new signatures are findings.
    #[arg(long, value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}

/// A separate key for ledger entries and checkpoints (`docs/format.md` §6.7).
#[derive(Debug, Args, Clone, Default)]
pub struct LedgerKeyArg {
    /// Sign ledger entries (and checkpoints) with this key instead of the signing key, which
    /// then signs bundles only; entries say `signed_by: ledger`. Verifiers pin it with
    /// --trusted-ledger-key. Default: $CUSTODY_LEDGER_KEY, else none.
    #[arg(long, value_name = "PATH", env = "CUSTODY_LEDGER_KEY", hide_env_values = true)]
    pub ledger_key: Option<PathBuf>,
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells `completions` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    /// bash (bash-completion).
    Bash,
    /// zsh (a `#compdef` file for a directory of `$fpath`).
    Zsh,
    /// fish (a file for `~/.config/fish/completions/`).
    Fish,
}

/// `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write custody.1 and custody-COMMAND.1 for every command into the existing directory DIR
    /// instead of printing custody.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Object-store settings: the standard environment variables (AWS_ENDPOINT / AWS_ENDPOINT_URL,
/// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP, …) apply; a store
/// config file and these flags override them.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreConfigArgs {
    /// A JSON store config file (keys: endpoint, region, allow_http, retention_days, lock_mode,
    /// legal_hold, max_retries, retry_timeout_secs, tsa, require_timestamp). Default:
    /// $CUSTODY_STORE_CONFIG.
    #[arg(long, value_name = "FILE")]
    pub store_config: Option<PathBuf>,
    /// S3 endpoint URL (MinIO, Ceph RGW, a local test server…); overrides AWS_ENDPOINT.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region; overrides AWS_REGION.
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Allow a plain-HTTP S3 endpoint; overrides AWS_ALLOW_HTTP.
    #[arg(long)]
    pub s3_allow_http: bool,
    /// Lock every object written for DAYS days (S3 Object Lock). Without it, the bucket's
    /// default retention (if any) applies.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub retention: Option<u32>,
    /// Object Lock mode with --retention: compliance (nobody can shorten or delete) or
    /// governance (privileged users can). Default: compliance.
    #[arg(long, value_name = "MODE", value_parser = ["compliance", "governance"])]
    pub lock_mode: Option<String>,
    /// Put an S3 Object Lock legal hold on every object written (lasts until lifted by
    /// someone with s3:PutObjectLegalHold, whatever the retention); `verify` reports it.
    #[arg(long)]
    pub legal_hold: bool,
    /// Retries per request on transient errors (5xx, timeouts, resets). Default: 10.
    #[arg(long, value_name = "N")]
    pub max_retries: Option<usize>,
}

/// `store` subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check a store: Object Lock enabled, versioning, default retention, conditional writes
    /// honoured, writes come back locked. Exit 1 and say which promise fails.
    Init(StoreInitArgs),
    /// Adopt unreferenced bundles (left by an interrupted preserve): verify each with the
    /// signing key, then record it in the ledger. Also removes the staging files that killed
    /// runs left in a local store (not written to for an hour).
    Repair(StoreRepairArgs),
}

/// `store init`.
#[derive(Debug, Args)]
pub struct StoreInitArgs {
    /// Store URL (s3://bucket/prefix, az://container/prefix, a path, memory://).
    #[arg(value_name = "URL")]
    pub url: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `store repair`.
#[derive(Debug, Args)]
pub struct StoreRepairArgs {
    /// Store URL.
    #[arg(value_name = "URL")]
    pub url: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    /// Signing key: only bundles signed by it are adopted. Default: as for preserve.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ledger: LedgerKeyArg,
    /// Only adopt bundles older than SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub min_age: u64,
    /// Abort the incomplete S3 uploads, and delete the provisional objects under `uploads/`,
    /// that interrupted preserves left and that are older than SECS seconds (younger ones may
    /// belong to a preserve still running).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub uploads_min_age: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    /// Signing key. Default: as for preserve.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ledger: LedgerKeyArg,
    /// Also write the checkpoint to FILE (create-only).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Timestamp the checkpoint's signature at this RFC 3161 TSA and write the token to
    /// FILE.tsr beside --out (create-only). Default: `tsa` in the store config.
    #[arg(long, value_name = "URL", requires = "out")]
    pub tsa: Option<String>,
}

/// `timestamp`.
#[derive(Debug, Args)]
pub struct TimestampArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    /// The TSA URL (RFC 3161 over HTTP). Default: `tsa` in the store config.
    #[arg(long, value_name = "URL")]
    pub tsa: Option<String>,
    /// The pinned keys: only bundles that verify with one are timestamped.
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// `witness` subcommands.
#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Cosign a checkpoint if the store's key signed it and it extends the last one this
    /// witness cosigned for that store (same entry at the old position, and with --store the
    /// ledger's chain linking the two); print it with the cosignature appended. Exit 1 when
    /// refused (a rollback, a fork, another store, a bad signature), 2 on other errors.
    Cosign(WitnessCosignArgs),
}

/// `witness cosign`.
#[derive(Debug, Args)]
pub struct WitnessCosignArgs {
    /// The checkpoint file (from `custody checkpoint`, perhaps cosigned by other witnesses).
    #[arg(value_name = "CHECKPOINT")]
    pub checkpoint: PathBuf,
    /// The witness's signing key (its own, not the store's; `custody keygen --out W`).
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// The witness's state file: the last head it cosigned for each store, replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Start a new state file (it must not exist): the first cosigning of this witness only.
    #[arg(long)]
    pub new_state: bool,
    /// The store's public key the checkpoint must be signed with (SPKI PEM; repeatable;
    /// required: a witness pins the keys of the stores it witnesses).
    #[arg(long, value_name = "PUB", required = true)]
    pub trusted_key: Vec<PathBuf>,
    /// The store, read only: check that the checkpoint's entry is in its ledger and chains back
    /// to the last head cosigned. Needed when the checkpoint moves past that head.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    /// The key name of the cosignature line. Default: witness/<first 16 hex digits of the key id>.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Write the cosigned checkpoint to FILE (create-only) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The original evidence bundle's digest (sha256:<hex> or <hex>) in the store given with
    /// --store (the supplement is sealed into that store and recorded in its ledger).
    #[arg(value_name = "DIGEST")]
    pub target: String,
    /// The store holding the bundle, where the supplement goes (required: a supplement is
    /// recorded in the ledger next to its original).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    /// Signing key for the supplement. Default: as for preserve.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ledger: LedgerKeyArg,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// The trace id to search from (the forms preserve accepts).
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// A value to search from that is no identifier (repeatable), as for preserve.
    #[arg(long, value_name = "VALUE")]
    pub seed: Vec<String>,
    /// Session / conversation id.
    #[arg(long, value_name = "ID")]
    pub session_id: Option<String>,
    /// Agent id.
    #[arg(long, value_name = "ID")]
    pub agent_id: Option<String>,
    /// The principal the tool calls ran as.
    #[arg(long, value_name = "ID")]
    pub tool_principal: Option<String>,
    /// The approval that gated (or should have gated) the action.
    #[arg(long, value_name = "ID")]
    pub approval_id: Option<String>,
    /// The agent's deployed config/policy bundle revision.
    #[arg(long, value_name = "ID")]
    pub bundle_id: Option<String>,
    /// The change that deployed it.
    #[arg(long, value_name = "ID")]
    pub change_id: Option<String>,
    /// The rollout wave.
    #[arg(long, value_name = "W")]
    pub rollout_wave: Option<String>,
    /// The idempotency key of the side-effecting call.
    #[arg(long, value_name = "K")]
    pub idempotency_key: Option<String>,
    /// Merge window for records without a shared id, in milliseconds (as for preserve).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub merge_window: u64,
    /// Scan SELECTOR as FORMAT instead of detecting it (repeatable), as for preserve.
    #[arg(long = "format", value_name = "SELECTOR=FORMAT")]
    pub formats: Vec<String>,
    /// Field-mapping file (TOML, or JSON if named *.json); its bytes are sealed in the
    /// supplement. Default: the mapping the original's analysis used.
    #[arg(long, value_name = "FILE")]
    pub field_map: Option<PathBuf>,
    /// A responder note (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub note: Vec<String>,
    /// Print a JSON document instead of text (schemas/analyze.v1.schema.json).
    #[arg(long)]
    pub json: bool,
}

/// `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key; the public key goes to PATH.pub.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Print a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Store selection shared by several commands.
#[derive(Debug, Args, Clone)]
pub struct StoreArg {
    /// Store URL: a path or file:///abs/path (local, the default), memory://, s3://bucket/prefix,
    /// az://container/prefix.
    /// Default: $CUSTODY_STORE, else ~/.local/share/custody/store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// `preserve`.
#[derive(Debug, Args)]
pub struct PreserveArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
    /// Signing key (PKCS#8 PEM). Default: $CUSTODY_KEY, else ~/.local/share/custody/keys/default.key,
    /// created on first use.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ledger: LedgerKeyArg,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    /// Timestamp the bundle's signature at this RFC 3161 TSA (HTTP POST); the token is stored at
    /// timestamps/<bundle digest>.tsr and referenced by the ledger entry. A TSA that fails only
    /// warns. Default: `tsa` in the store config.
    #[arg(long, value_name = "URL")]
    pub tsa: Option<String>,
    /// Adopt unreferenced bundles (of interrupted preserves) older than SECS seconds first.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub adopt_min_age: u64,
    /// An incident directory with the conventional sub-folders traces/ policy/ approvals/
    /// memory/ egress/ logs/ attachments/ (other files are kept as kind `other`).
    #[arg(long, value_name = "DIR")]
    pub incident_dir: Option<PathBuf>,
    /// Add evidence: KIND=PATH, where PATH is a file, a directory (walked) or - (stdin).
    #[arg(long, value_name = "KIND=PATH")]
    pub source: Vec<String>,
    /// The incident's trace id: 32 hex digits, or as an alert carries it (a W3C traceparent
    /// 00-<trace>-<span>-01, upper case, UUID-hyphenated, base64, AWS X-Ray 1-…-…): normalised,
    /// and the run says so. A value that cannot be a trace id is refused (exit 2).
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// A value to search from that is no identifier: a ticket or order number, a customer id,
    /// whatever the alert gives (repeatable). Every record holding it (in any field, any case)
    /// starts the search.
    #[arg(long, value_name = "VALUE")]
    pub seed: Vec<String>,
    /// Records of one action with no shared id (no call, span or request id) are merged when
    /// they are of the same kind and target, with compatible principals, from different files,
    /// and at most this many milliseconds apart.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub merge_window: u64,
    /// Session / conversation id.
    #[arg(long, value_name = "ID")]
    pub session_id: Option<String>,
    /// Agent id.
    #[arg(long, value_name = "ID")]
    pub agent_id: Option<String>,
    /// The principal the tool calls ran as.
    #[arg(long, value_name = "ID")]
    pub tool_principal: Option<String>,
    /// The approval that gated (or should have gated) the action.
    #[arg(long, value_name = "ID")]
    pub approval_id: Option<String>,
    /// The agent's deployed config/policy bundle.
    #[arg(long, value_name = "ID")]
    pub bundle_id: Option<String>,
    /// The change that deployed it.
    #[arg(long, value_name = "ID")]
    pub change_id: Option<String>,
    /// The rollout wave.
    #[arg(long, value_name = "W")]
    pub rollout_wave: Option<String>,
    /// The idempotency key of the side-effecting call.
    #[arg(long, value_name = "K")]
    pub idempotency_key: Option<String>,
    /// Triage category: policy_bypass, unauthorized_side_effect, dangerous_egress,
    /// memory_contamination, approval_failure, eval_escape, agentic_misalignment.
    #[arg(long, value_name = "C")]
    pub category: Option<String>,
    /// Did the side effect happen? happened | not-happened | unknown (default: unknown).
    #[arg(long, value_name = "S", default_value = "unknown")]
    pub side_effect: String,
    /// A responder note (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub note: Vec<String>,
    /// Declare a checklist item not applicable (an identifier name or evidence kind; repeatable).
    #[arg(long, value_name = "ITEM")]
    pub not_applicable: Vec<String>,
    /// The incident needed no approval: the approval path, approval_id and approvals evidence
    /// are not applicable.
    #[arg(long)]
    pub no_approval_path: bool,
    /// Follow symbolic links whose target is inside the incident directory or a named source
    /// (default: record them, do not follow). Never followed, whatever is named: links to
    /// custody's signing key, its directory or custody's home, and into /proc, /sys or /dev;
    /// each link not followed is journaled as skipped, with the reason.
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Scan SELECTOR as FORMAT instead of detecting it: SELECTOR is a bundle path
    /// (logs/tool_calls.jsonl), a folder (logs) or an evidence kind; FORMAT is a format name
    /// (the list is in `custody preserve --help`) (repeatable).
    #[arg(long = "format", value_name = "SELECTOR=FORMAT")]
    pub formats: Vec<String>,
    /// Field-mapping file (TOML, or JSON if named *.json): which fields hold which identifier.
    /// Default: custody-fields.toml at the incident directory's root, if there is one.
    #[arg(long, value_name = "FILE")]
    pub field_map: Option<PathBuf>,
    /// Incident spec file (TOML): sources, formats, field mapping, identifiers, category,
    /// side effect, notes. Flags win over the spec. Its bytes are sealed (kind `spec`).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Do not analyze the evidence (no identifier discovery, linkage or index): seal only.
    #[arg(long)]
    pub no_analyze: bool,
    /// zstd compression level.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Print a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr (it is only drawn when stderr is a terminal anyway).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A bundle file; with --store, a bundle digest (sha256:<hex> or <hex>).
    #[arg(value_name = "BUNDLE_FILE|DIGEST")]
    pub target: Option<String>,
    /// Verify in this store (with DIGEST or --all).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Audit the store's whole ledger and every bundle in it.
    #[arg(long, requires = "store", conflicts_with = "target")]
    pub all: bool,
    /// With --all: check presence and size only, do not re-hash bundle contents.
    #[arg(long, requires = "all")]
    pub quick: bool,
    /// With --store (DIGEST or --all): compare the ledger with a checkpoint from `custody
    /// checkpoint`, kept outside the store (detects a rollback to an older head, or a rewritten
    /// ledger). Without one, the ledger's tail is not anchored.
    #[arg(long, value_name = "FILE", requires = "store")]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint: a witness's public key (SPKI PEM; repeatable). The checkpoint must
    /// carry valid cosignatures by --witnesses of them.
    #[arg(long, value_name = "PUB", requires = "checkpoint")]
    pub witness_key: Vec<PathBuf>,
    /// A pinned RFC 3161 TSA certificate (PEM; repeatable): a bundle's timestamp token must be
    /// signed by it or by a certificate it issued.
    #[arg(long, value_name = "CERT")]
    pub trusted_tsa: Vec<PathBuf>,
    /// With --store: every bundle verified must have a timestamp token (also `require_timestamp`
    /// in the store config).
    #[arg(long, requires = "store")]
    pub require_timestamp: bool,
    /// For a bundle file: its RFC 3161 token (timestamps/<digest>.tsr from the store), checked
    /// against the bundle's signature and --trusted-tsa.
    #[arg(long, value_name = "TOKEN", conflicts_with = "store")]
    pub timestamp: Option<PathBuf>,
    /// How many of the --witness-key keys must have cosigned the checkpoint. Default: all of
    /// them.
    #[arg(long, value_name = "K", requires = "witness_key", value_parser = clap::value_parser!(u32).range(1..))]
    pub witnesses: Option<u32>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// Allowed clock difference between the sealing host and the ledger's appending host: a
    /// bundle's sealed_at may be later than its own or its successor's ledger time by at most
    /// this (e.g. 30s, 5m, 2h; at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = custody::verify::parse_skew)]
    pub max_skew: chrono::Duration,
    /// For a bundle file: the SHA-256 it must have (sha256:<hex>, from the ledger or the
    /// preserve output). Binds the compressed bytes themselves, not only the signed archive.
    #[arg(long, value_name = "DIGEST", conflicts_with = "store")]
    pub expect_digest: Option<String>,
    /// Print the JSON report instead of the checklist.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr (it is only drawn when stderr is a terminal anyway).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A bundle file; with --store, a bundle digest.
    #[arg(value_name = "BUNDLE_FILE|DIGEST")]
    pub target: String,
    /// Read the bundle from this store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// A bundle file; with --store, a bundle digest.
    #[arg(value_name = "BUNDLE_FILE|DIGEST")]
    pub target: String,
    /// Read the bundle from this store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// Keep only events of this kind (repeatable).
    #[arg(long, value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(custody::analysis::EventKind::ALL.map(|k| k.as_str())))]
    pub kind: Vec<String>,
    /// Keep only the events carrying this session id, and the events directly related to
    /// them (a call's policy decision, approval, egress request).
    #[arg(long, value_name = "SESSION_ID")]
    pub session: Option<String>,
    /// Keep only events at or after this time (RFC 3339, e.g. 2026-12-03T09:15:00Z); events
    /// with no time are then left out (and counted).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Keep only events at or before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Print JSON (schemas/timeline.v1.schema.json).
    #[arg(long)]
    pub json: bool,
    /// With --json: add the exact sealed bytes of every record each event cites.
    #[arg(long, requires = "json")]
    pub records: bool,
    /// Also write a self-contained HTML report to FILE (it must not exist).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `export`: one command for every export format (at least one output).
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("outputs").required(true).multiple(true))]
pub struct ExportArgs {
    /// A bundle file; with --store, a bundle digest.
    #[arg(value_name = "BUNDLE_FILE|DIGEST")]
    pub target: String,
    /// Read the bundle from this store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// Write the incident as OTLP/JSON into the new directory DIR: traces.json (one span per
    /// timed event) and logs.json (one log record per cited record, its exact sealed bytes),
    /// each with its provenance as attributes.
    #[arg(long, value_name = "DIR", group = "outputs")]
    pub otlp: Option<PathBuf>,
    /// Write the incident as one eval case (custody-eval-case/v1, one JSON line) to the new
    /// file FILE.
    #[arg(long, value_name = "FILE", group = "outputs")]
    pub eval_case: Option<PathBuf>,
}

/// `extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// A bundle file; with --store, a bundle digest.
    #[arg(value_name = "BUNDLE_FILE|DIGEST")]
    pub target: String,
    /// Read the bundle from this store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Directory to write the evidence files into (created if missing; nothing in it is overwritten).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: StoreConfigArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub trust: TrustArgs,
    /// Read only the ledger: do not verify each bundle to show its category, seeds, side
    /// effect, files and note (on S3 that reads every bundle).
    #[arg(long)]
    pub ledger_only: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
