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
        // The hashes are uniform, so a hash's index is close to where its
        // value falls in the table: start there and widen a window until it
        // brackets the hash, then search only it. Two or three cache lines
        // instead of twenty levels of a binary search over megabytes (the
        // place of every row of a million-job catalog is looked up).
        let pairs = &self.pairs;
        let n = pairs.len();
        if n == 0 {
            return UNRANKED;
        }
        let guess = ((u128::from(h) * n as u128) >> 64) as usize;
        let (mut lo, mut hi) = (guess.min(n - 1), guess.min(n - 1) + 1);
        let mut step = 8;
        while lo > 0 && pairs[lo].0 > h {
            lo = lo.saturating_sub(step);
            step *= 2;
        }
        step = 8;
        while hi < n && pairs[hi - 1].0 < h {
            hi = (hi + step).min(n);
            step *= 2;
        }
        match pairs[lo..hi].binary_search_by_key(&h, |p| p.0) {
            Ok(i) => pairs[lo + i].1,
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
    fn every_key_is_found_wherever_its_hash_falls() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("job-{i}")).collect();
        let ranks = Ranks::new(keys.iter().map(String::as_str));
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(ranks.of(k), i as u32, "{k}");
        }
        for stranger in ["", "x", "job-20000", "job--1"] {
            assert_eq!(ranks.of(stranger), UNRANKED);
        }
        let one = Ranks::new(["only"]);
        assert_eq!(
            (one.of("only"), one.of_hash(0), one.of_hash(u64::MAX)),
            (0, UNRANKED, UNRANKED)
        );
        assert_eq!(Ranks::default().of("a"), UNRANKED);
    }

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
