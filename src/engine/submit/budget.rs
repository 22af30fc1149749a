//! What a run may spend, in the host's credits: each job's price from the
//! model catalogue (its model's offer on the provider, else the
//! provider's price, else `--credits-per-job`), reserved before its first
//! request and given back when the job ends without any request that may
//! have created a task. With `--budget`, a job whose price would take the
//! run past it is not started, nor is any job after it: each stays as it
//! was (`pending`, or `submitted` for a regeneration), while the jobs that
//! reserved their price before go on to their end. Nothing is sent past
//! the cap. Without one, the same counting gives the estimate the summary
//! reports. Regenerations (`--regenerate`) are jobs like any other here.
//!
//! A price is an estimate: the catalogue holds the prices providers
//! publish, and a host may charge otherwise (a failed task refunded, a
//! longer song charged more). The budget bounds what batchgen sends, by
//! those prices.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::job::{Catalogue, Job, Provider};

use crate::settings::DEFAULT_CREDITS_PER_JOB;

/// A run's prices and its cap. Credits are counted in thousandths, so a
/// fractional price (`--credits-per-job 2.5`) adds up exactly.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Thousandths of a credit; `None`: no cap, only the estimate.
    limit: Option<u64>,
    catalogue: Arc<Catalogue>,
    provider: Provider,
    /// The price of a job the catalogue has none for, in thousandths.
    fallback: u64,
}

/// Credits as thousandths.
fn milli(credits: f64) -> u64 {
    (credits.max(0.0) * 1000.0).round() as u64
}

/// Thousandths of a credit as credits.
pub fn credits(milli: u64) -> f64 {
    milli as f64 / 1000.0
}

impl Budget {
    /// A cap of `limit` credits (none: only the estimate), prices from
    /// `catalogue` on `provider`, else `fallback` credits a job.
    pub fn new(
        limit: Option<f64>,
        catalogue: Arc<Catalogue>,
        provider: Provider,
        fallback: f64,
    ) -> Budget {
        Budget {
            limit: limit.map(milli),
            catalogue,
            provider,
            fallback: milli(fallback),
        }
    }

    /// A budget that prices every job at the fallback and caps nothing.
    pub fn unlimited() -> Budget {
        Budget::new(
            None,
            Catalogue::built_in(),
            Provider::default(),
            DEFAULT_CREDITS_PER_JOB,
        )
    }

    /// The cap, in credits.
    pub fn limit(&self) -> Option<f64> {
        self.limit.map(credits)
    }

    /// What one request for `job` costs, in thousandths of a credit.
    pub fn price(&self, job: &Job) -> u64 {
        self.catalogue
            .price(self.provider, job.fields.model.as_deref())
            .map_or(self.fallback, |c| u64::from(c) * 1000)
    }

    /// Adds `price` (thousandths) to `spent` if the cap allows it; `false`
    /// (and nothing added) when it would go past the cap.
    pub fn reserve(&self, spent: &AtomicU64, price: u64) -> bool {
        spent
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                let next = s.saturating_add(price);
                match self.limit {
                    Some(limit) if next > limit => None,
                    _ => Some(next),
                }
            })
            .is_ok()
    }

    /// Gives back a reservation whose requests created nothing.
    pub fn release(&self, spent: &AtomicU64, price: u64) {
        let _ = spent.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
            Some(s.saturating_sub(price))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobFields, Provider};

    fn job(model: Option<&str>) -> Job {
        Job::new(
            JobFields {
                prompt: Some("rain".into()),
                model: model.map(str::to_owned),
                ..JobFields::default()
            },
            2,
        )
    }

    #[test]
    fn prices_come_from_the_catalogue_else_the_fallback() {
        let sunoapi = Budget::new(None, Catalogue::built_in(), Provider::Sunoapi, 7.0);
        assert_eq!(sunoapi.price(&job(None)), 12_000, "the provider's price");
        let udioapi = Budget::new(None, Catalogue::built_in(), Provider::Udioapi, 2.5);
        assert_eq!(udioapi.price(&job(None)), 2_500, "no price: the fallback");
    }

    #[test]
    fn the_cap_is_never_passed_and_a_release_gives_back() {
        let b = Budget::new(Some(25.0), Catalogue::built_in(), Provider::Udioapi, 10.0);
        let spent = AtomicU64::new(0);
        assert!(b.reserve(&spent, 10_000));
        assert!(b.reserve(&spent, 10_000));
        assert!(!b.reserve(&spent, 10_000), "30 > 25");
        assert_eq!(credits(spent.load(Ordering::SeqCst)), 20.0);
        b.release(&spent, 10_000);
        assert!(b.reserve(&spent, 5_000));
        assert_eq!(credits(spent.load(Ordering::SeqCst)), 15.0);
        let none = Budget::new(None, Catalogue::built_in(), Provider::Udioapi, 10.0);
        assert!(none.reserve(&spent, u64::MAX / 2));
    }
}
