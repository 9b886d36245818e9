//! RFC 6962 Merkle tree hashing over the manifest's entries.
//!
//! Leaf input for an entry: `path 0x00 kind 0x00 size(decimal) 0x00 sha256(hex)`;
//! leaf hash = SHA-256(0x00 ‖ input); node hash = SHA-256(0x01 ‖ left ‖ right); the tree of
//! n leaves splits at the largest power of two below n (RFC 6962 §2.1). The empty tree's
//! head is SHA-256 of the empty string. An inclusion proof lets one entry be shown to belong
//! to a signed manifest without disclosing the others.

use super::journal::decimal;
use super::manifest::Entry;
use crate::digest::{Hasher, Sha256};

/// The leaf input bytes of one entry.
pub fn leaf_input(e: &Entry) -> Vec<u8> {
    let mut v = Vec::with_capacity(e.path.len() + e.kind.len() + 90);
    push_leaf_input(e, &mut v);
    v
}

/// Appends the leaf input of `e` to `out`: the one definition of the format above.
fn push_leaf_input(e: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(e.path.as_bytes());
    out.push(0);
    out.extend_from_slice(e.kind.as_bytes());
    out.push(0);
    out.extend_from_slice(decimal(e.size, &mut [0u8; 20]));
    out.push(0);
    out.extend_from_slice(&e.sha256.hex_bytes());
}

/// The leaf hash of one entry, `leaf_hash(&leaf_input(e))`, built in `scratch` (cleared
/// first) instead of a fresh allocation: the sealer hashes each entry's leaf as it collects it.
pub fn entry_leaf_hash(e: &Entry, scratch: &mut Vec<u8>) -> Sha256 {
    scratch.clear();
    scratch.push(0);
    push_leaf_input(e, scratch);
    Sha256::of(scratch)
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

/// Builds the tree head leaf by leaf, as the sealer collects entries, in O(log n) memory:
/// it keeps the roots of the perfect subtrees that cover the leaves so far, largest first
/// (the binary decomposition of their number), merging two of a size as soon as they exist.
/// RFC 6962's split at the largest power of two then makes the head the right fold of those
/// roots: `MTH = node(T1, node(T2, … Tk))`. So nearly all node hashes are computed during the
/// seal, not after its last file.
#[derive(Debug, Default)]
pub struct RootBuilder {
    /// (subtree root, number of leaves), sizes strictly decreasing.
    stack: Vec<(Sha256, u64)>,
}

impl RootBuilder {
    /// Appends the next leaf hash (see [`entry_leaf_hash`]).
    pub fn push(&mut self, leaf: Sha256) {
        let mut node = (leaf, 1u64);
        while let Some(&(left, size)) = self.stack.last() {
            if size != node.1 {
                break;
            }
            self.stack.pop();
            node = (node_hash(&left, &node.0), size * 2);
        }
        self.stack.push(node);
    }

    /// The tree head over the leaves pushed so far (`root` of their entries).
    pub fn root(&self) -> Sha256 {
        let mut subtrees = self.stack.iter().rev();
        match subtrees.next() {
            None => Sha256::of(b""),
            Some(&(last, _)) => subtrees.fold(last, |right, &(left, _)| node_hash(&left, &right)),
        }
    }
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
        // Built leaf by leaf, the head is `root` for every size (perfect and not).
        let many: Vec<Entry> = (0..70).map(entry).collect();
        let mut b = RootBuilder::default();
        assert_eq!(b.root(), root(&[]));
        for n in 1..=many.len() {
            b.push(entry_leaf_hash(&many[n - 1], &mut scratch));
            assert_eq!(b.root(), root(&many[..n]), "{n} leaves");
        }
        let big = Entry { size: u64::MAX, ..entry(0) };
        assert_eq!(entry_leaf_hash(&big, &mut scratch), leaf_hash(&leaf_input(&big)));
        let mut changed = e.clone();
        changed[3].size += 1;
        assert_ne!(root(&changed), r);
    }
}
