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
    /// Show a bundle's identifiers, completeness, entries, signer and ledger link.
    Show(ShowArgs),
    /// Verify a bundle, then write its original evidence files under a directory.
    Extract(ExtractArgs),
    /// List a store's ledger, oldest first.
    List(ListArgs),
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
    /// Store URL: a path or file:///abs/path (local, the default), memory://, s3://bucket/prefix.
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
    /// An incident directory with the conventional sub-folders traces/ policy/ approvals/
    /// memory/ egress/ logs/ attachments/ (other files are kept as kind `other`).
    #[arg(long, value_name = "DIR")]
    pub incident_dir: Option<PathBuf>,
    /// Add evidence: KIND=PATH, where PATH is a file, a directory (walked) or - (stdin).
    #[arg(long, value_name = "KIND=PATH")]
    pub source: Vec<String>,
    /// OTLP trace id of the incident.
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
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
    /// Follow symbolic links (default: record them, do not follow).
    #[arg(long)]
    pub follow_symlinks: bool,
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
    /// A pinned signer public key (SPKI PEM; repeatable). Default: the local default key.
    #[arg(long, value_name = "PUB")]
    pub trusted_key: Vec<PathBuf>,
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
    /// A pinned signer public key (repeatable). Default: the local default key.
    #[arg(long, value_name = "PUB")]
    pub trusted_key: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
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
    /// A pinned signer public key (repeatable). Default: the local default key.
    #[arg(long, value_name = "PUB")]
    pub trusted_key: Vec<PathBuf>,
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
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
