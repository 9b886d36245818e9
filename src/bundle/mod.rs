//! Writing format v1 bundles: the manifest types, the custody journal, the Merkle tree, DSSE
//! envelopes and the streaming tar+zstd writer. Reading bundles (untrusted bytes) lives in
//! [`crate::read`].

pub mod dsse;
pub mod journal;
pub mod manifest;
pub mod merkle;
pub mod write;
