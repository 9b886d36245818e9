//! RFC 6962 Merkle tree hashing over the manifest's entries.
//!
//! Leaf input for an entry: `path 0x00 kind 0x00 size(decimal) 0x00 sha256(hex)`;
//! leaf hash = SHA-256(0x00 ‖ input); node hash = SHA-256(0x01 ‖ left ‖ right); the tree of
//! n leaves splits at the largest power of two below n (RFC 6962 §2.1). The empty tree's
//! head is SHA-256 of the empty string. An inclusion proof lets one entry be shown to belong
//! to a signed manifest without disclosing the others.

use super::manifest::Entry;
use crate::digest::{Hasher, Sha256};

/// The leaf input bytes of one entry.
pub fn leaf_input(e: &Entry) -> Vec<u8> {
    let mut v = Vec::with_capacity(e.path.len() + e.kind.len() + 90);
    v.extend_from_slice(e.path.as_bytes());
    v.push(0);
    v.extend_from_slice(e.kind.as_bytes());
    v.push(0);
    v.extend_from_slice(e.size.to_string().as_bytes());
    v.push(0);
    v.extend_from_slice(e.sha256.hex().as_bytes());
    v
}

/// The leaf hash of one entry, `leaf_hash(&leaf_input(e))`, built in `scratch` (cleared
/// first) instead of a fresh allocation: the sealer hashes each entry's leaf as it collects it.
pub fn entry_leaf_hash(e: &Entry, scratch: &mut Vec<u8>) -> Sha256 {
    scratch.clear();
    scratch.push(0);
    scratch.extend_from_slice(e.path.as_bytes());
    scratch.push(0);
    scratch.extend_from_slice(e.kind.as_bytes());
    scratch.push(0);
    scratch.extend_from_slice(decimal(e.size, &mut [0u8; 20]));
    scratch.push(0);
    scratch.extend_from_slice(&e.sha256.hex_bytes());
    Sha256::of(scratch)
}

/// The decimal digits of `n`, written into the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Leaf hash of raw leaf input.
pub fn leaf_hash(input: &[u8]) -> Sha256 {
    let mut h = Hasher::new();
    h.update(&[0]);
    h.update(input);
    h.finish()
}

fn node_hash(l: &Sha256, r: &Sha256) -> Sha256 {
    let mut h = Hasher::new();
    h.update(&[1]);
    h.update(&l.0);
    h.update(&r.0);
    h.finish()
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

fn mth(leaves: &[Sha256]) -> Sha256 {
    match leaves.len() {
        0 => Sha256::of(b""),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// The tree head over the entries (in manifest order).
pub fn root(entries: &[Entry]) -> Sha256 {
    let leaves: Vec<Sha256> = entries.iter().map(|e| leaf_hash(&leaf_input(e))).collect();
    mth(&leaves)
}

/// The tree head over leaf hashes already computed (in manifest order):
/// `root_of_leaves(leaf hashes of entries) == root(entries)`.
pub fn root_of_leaves(leaves: &[Sha256]) -> Sha256 {
    mth(leaves)
}

/// The audit path for leaf `index` (RFC 6962 §2.1.1), bottom-up.
pub fn inclusion_proof(entries: &[Entry], index: usize) -> Option<Vec<Sha256>> {
    let leaves: Vec<Sha256> = entries.iter().map(|e| leaf_hash(&leaf_input(e))).collect();
    if index >= leaves.len() {
        return None;
    }
    fn path(m: usize, d: &[Sha256], out: &mut Vec<Sha256>) {
        let n = d.len();
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(m, &d[..k], out);
            out.push(mth(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(mth(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(index, &leaves, &mut out);
    Some(out)
}

/// Check an inclusion proof of `leaf` at `index` in a tree of `size` leaves against `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Sha256, index: usize, size: usize, proof: &[Sha256], root: &Sha256) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn entry(i: usize) -> Entry {
        Entry {
            path: format!("logs/{i}.log"),
            kind: "logs".into(),
            size: i as u64,
            sha256: Sha256::of(&[i as u8]),
            source: "/x".into(),
            collected_at: Utc::now(),
        }
    }

    #[test]
    fn rfc6962_shape_and_proofs() {
        assert_eq!(root(&[]), Sha256::of(b""));
        let e: Vec<Entry> = (0..7).map(entry).collect();
        // Two leaves: node(leaf0, leaf1).
        let two = root(&e[..2]);
        assert_eq!(two, node_hash(&leaf_hash(&leaf_input(&e[0])), &leaf_hash(&leaf_input(&e[1]))));
        let r = root(&e);
        for i in 0..e.len() {
            let p = inclusion_proof(&e, i).unwrap();
            assert!(verify_inclusion(&leaf_hash(&leaf_input(&e[i])), i, e.len(), &p, &r), "leaf {i}");
            assert!(!verify_inclusion(&leaf_hash(&leaf_input(&e[(i + 1) % 7])), i, e.len(), &p, &r));
        }
        let mut scratch = vec![9u8; 3];
        let leaves: Vec<Sha256> = e.iter().map(|x| entry_leaf_hash(x, &mut scratch)).collect();
        assert_eq!(leaves[3], leaf_hash(&leaf_input(&e[3])));
        assert_eq!(root_of_leaves(&leaves), r);
        let big = Entry { size: u64::MAX, ..entry(0) };
        assert_eq!(entry_leaf_hash(&big, &mut scratch), leaf_hash(&leaf_input(&big)));
        let mut changed = e.clone();
        changed[3].size += 1;
        assert_ne!(root(&changed), r);
    }
}
