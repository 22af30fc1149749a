//! Where each job sorts: its place in the results file, without holding
//! the keys.
//!
//! The catalog lists jobs in results order (= manifest order). Sorting,
//! checking that a file is sorted, and finding a job's rows all need the
//! place of a key, for up to millions of keys. [`Ranks`] keeps 16 bytes a
//! job: a sorted table of 64-bit key hashes, each with its place. Two
//! keys with the same hash (about 1 in 3·10^7 for a million keys) get one
//! place, so they sort next to each other; the sort key
//! carries the key itself after the place, so their rows never mix, and
//! nothing but the order of those two jobs in the file changes.

use crate::job::key_hash;

/// The place of keys not in the results: after all of them (by key).
pub const UNRANKED: u32 = u32::MAX;

/// Key hash → place in the results file.
#[derive(Debug, Default, Clone)]
pub struct Ranks {
    /// (hash, place), sorted by hash: one table, sorted in place, so
    /// building it never holds two copies.
    pairs: Vec<(u64, u32)>,
}

impl Ranks {
    /// The places of `keys`, given in results order (the first is 0). A
    /// key given twice keeps its first place.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Ranks {
        let mut pairs: Vec<(u64, u32)> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    key_hash(k.as_bytes()),
                    u32::try_from(i).unwrap_or(UNRANKED - 1),
                )
            })
            .collect();
        Ranks::from_pairs(&mut pairs)
    }

    /// From (hash, place) pairs in any order (taken: sorted in place).
    pub fn from_pairs(pairs: &mut Vec<(u64, u32)>) -> Ranks {
        let mut pairs = std::mem::take(pairs);
        pairs.sort_unstable();
        pairs.dedup_by_key(|p| p.0);
        pairs.shrink_to_fit();
        Ranks { pairs }
    }

    /// The place of `key`, or [`UNRANKED`].
    pub fn of(&self, key: &str) -> u32 {
        self.of_hash(key_hash(key.as_bytes()))
    }

    pub fn of_hash(&self, h: u64) -> u32 {
        match self.pairs.binary_search_by_key(&h, |p| p.0) {
            Ok(i) => self.pairs[i].1,
            Err(_) => UNRANKED,
        }
    }

    /// Jobs known.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Where a row sorts: the job's place, its key (for keys of one place:
/// the unranked, or a hash collision), then the clip index.
pub fn place<'a>(ranks: &Ranks, key: &'a str, clip_index: u32) -> (u32, &'a str, u32) {
    (ranks.of(key), key, clip_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_follow_the_results_and_strangers_sort_last() {
        let ranks = Ranks::new(["b", "a", "c", "a"]);
        assert_eq!((ranks.of("b"), ranks.of("a"), ranks.of("c")), (0, 1, 2));
        assert_eq!(ranks.of("zz"), UNRANKED);
        assert_eq!(ranks.len(), 3);
        assert!(place(&ranks, "a", 2) < place(&ranks, "c", 1));
        assert!(place(&ranks, "c", 9) < place(&ranks, "zz", 0));
    }
}
