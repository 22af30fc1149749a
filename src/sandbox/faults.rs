//! Fault injection: which of the API's real failure modes a request gets.
//!
//! Every authenticated generate request draws one [`Roll`] from a seeded RNG,
//! always the same number of draws whatever the probabilities or the outcome,
//! so the same seed and the same sequence of requests give the same faults
//! on every run. That is what lets a test or a user's rehearsal reproduce
//! "the third request times out". Task ids come from a second RNG seeded from
//! the same seed, so a fault firing or not never shifts the id sequence, and
//! clip ids from a third, so adding clips did not change the task ids an
//! older seed gave. Faults of a task or clip after it is accepted
//! (`--fail-531`, `--fail-captcha`) are drawn from its id ([`drawn_for`]),
//! not from a stream.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Probabilities and delays of the injected faults; all zero means none.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultSettings {
    pub fail_500: f64,
    pub fail_503: f64,
    pub fail_429: f64,
    pub slow: f64,
    pub slow_delay: Duration,
    pub drop_before: f64,
    pub drop_after: f64,
}

/// The faults drawn for one request. Several can fire at once; the handler
/// applies them in a fixed precedence (see [`Roll::early`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roll {
    pub fail_500: bool,
    pub fail_503: bool,
    pub fail_429: bool,
    pub slow: bool,
    pub drop_before: bool,
    pub drop_after: bool,
}

/// A fault that ends a request before it is validated or recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Early {
    DropBefore,
    Fail500,
    Fail503,
    Fail429,
}

impl Roll {
    /// The fault that pre-empts the request, if any: dropping the connection
    /// wins over any answer, then 500, 503, 429.
    pub fn early(self) -> Option<Early> {
        if self.drop_before {
            Some(Early::DropBefore)
        } else if self.fail_500 {
            Some(Early::Fail500)
        } else if self.fail_503 {
            Some(Early::Fail503)
        } else if self.fail_429 {
            Some(Early::Fail429)
        } else {
            None
        }
    }
}

/// The three seeded RNGs: faults, task ids, clips.
#[derive(Debug)]
pub struct Dice {
    faults: StdRng,
    ids: StdRng,
    clips: StdRng,
}

/// Task ids are this prefix plus [`ID_RANDOM_LEN`] characters of [`ID_ALPHABET`].
const ID_PREFIX: &str = "gen2";
const ID_RANDOM_LEN: usize = 16;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice {
            faults: StdRng::seed_from_u64(seed),
            // Any fixed tweak works; it only has to differ from the fault stream.
            ids: StdRng::seed_from_u64(seed ^ 0x5eed_1d5e_u64),
            clips: StdRng::seed_from_u64(seed ^ 0xc11b_5eed_u64),
        }
    }

    /// Draws the faults for one request: six draws, always.
    pub fn roll(&mut self, s: &FaultSettings) -> Roll {
        let mut hit = |p: f64| self.faults.random::<f64>() < p;
        Roll {
            fail_500: hit(s.fail_500),
            fail_503: hit(s.fail_503),
            fail_429: hit(s.fail_429),
            slow: hit(s.slow),
            drop_before: hit(s.drop_before),
            drop_after: hit(s.drop_after),
        }
    }

    /// A new task id such as `gen2k3q0z8x1m2p7c4ab`.
    pub fn task_id(&mut self) -> String {
        let mut id = String::with_capacity(ID_PREFIX.len() + ID_RANDOM_LEN);
        id.push_str(ID_PREFIX);
        for _ in 0..ID_RANDOM_LEN {
            let i = self.ids.random_range(0..ID_ALPHABET.len());
            id.push(char::from(ID_ALPHABET[i]));
        }
        id
    }

    /// A new task id of 32 hex digits, as sunoapi.org's are; from the same
    /// stream as [`Dice::task_id`].
    pub fn hex_task_id(&mut self) -> String {
        let bytes: [u8; 16] = self.ids.random();
        hex::encode(bytes)
    }

    /// A new clip id shaped like a version-4 UUID, as the service's are.
    pub fn clip_id(&mut self) -> String {
        let mut b: [u8; 16] = self.clips.random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

/// Whether the draw for `what` (a fault's name) of the task or clip `id`
/// falls under `probability`: a pure function of the two, so the seed that
/// gives the ids gives the same hits, and no seeded stream is drawn from
/// (the ids of later tasks stay as they were without the fault).
pub fn drawn_for(id: &str, what: &str, probability: f64) -> bool {
    use sha2::{Digest, Sha256};
    if probability <= 0.0 {
        return false;
    }
    let d = Sha256::new()
        .chain_update(what.as_bytes())
        .chain_update(b":")
        .chain_update(id.as_bytes())
        .finalize();
    let draw = f64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]])) / f64::from(u32::MAX);
    probability >= 1.0 || draw < probability
}

/// Parses a probability flag: a number from 0 to 1.
pub fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid probability {s:?}: expected a number from 0 to 1"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("invalid probability {s:?}: must be from 0 to 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_rolls_and_ids() {
        let s = FaultSettings {
            fail_500: 0.5,
            drop_after: 0.3,
            ..FaultSettings::default()
        };
        let mut a = Dice::new(7);
        let mut b = Dice::new(7);
        for _ in 0..50 {
            assert_eq!(a.roll(&s), b.roll(&s));
        }
        assert_eq!(a.task_id(), b.task_id());
        assert_ne!(Dice::new(8).task_id(), Dice::new(7).task_id());
    }

    #[test]
    fn certain_and_impossible_faults() {
        let all = FaultSettings {
            fail_500: 1.0,
            fail_503: 1.0,
            fail_429: 1.0,
            slow: 1.0,
            slow_delay: Duration::ZERO,
            drop_before: 1.0,
            drop_after: 1.0,
        };
        let mut d = Dice::new(0);
        for _ in 0..100 {
            let r = d.roll(&all);
            assert!(r.fail_500 && r.fail_503 && r.fail_429 && r.slow && r.drop_after);
            assert_eq!(r.early(), Some(Early::DropBefore));
            assert_eq!(d.roll(&FaultSettings::default()), Roll::default());
        }
    }

    #[test]
    fn ids_look_like_the_apis() {
        let id = Dice::new(0).task_id();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("gen2"));
        assert!(id[4..].bytes().all(|b| ID_ALPHABET.contains(&b)));
        let mut dice = Dice::new(0);
        let clip = dice.clip_id();
        let groups: Vec<usize> = clip.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&clip[14..15], "4");
        assert_ne!(clip, dice.clip_id());
        assert_eq!(Dice::new(0).task_id(), id, "clips do not shift task ids");
    }

    #[test]
    fn probabilities_parse() {
        assert_eq!(parse_probability("0.25"), Ok(0.25));
        assert_eq!(parse_probability("1"), Ok(1.0));
        for bad in ["-0.1", "1.5", "x", "NaN"] {
            assert!(parse_probability(bad).is_err(), "{bad}");
        }
    }
}
