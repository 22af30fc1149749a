//! Units a setting is written in: request rates (`5/s`), durations
//! (`30s`, or plain seconds) and counts of at least one. Parsed the same
//! way by every flag, `[run]` key and sandbox option.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::str::FromStr;
use std::time::Duration;

/// A request rate: `N/s`, `N/min`, `N/h`, `N/<duration>` (`20/10s`, as
/// sunoapi publishes its limit), or `unlimited`. `N` may have up to three
/// decimals (`3.8/s`: a hair under a host's 4/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Limited {
        /// Requests per `per`, in thousandths (`3.8` is 3800): exact, so
        /// rates compare and print back as written.
        milli: NonZeroU64,
        per: Duration,
    },
    Unlimited,
}

impl Rate {
    /// `count` requests per `per`.
    pub const fn new(count: NonZeroU32, per: Duration) -> Rate {
        let milli = NonZeroU64::new(count.get() as u64 * 1000).expect("a nonzero count");
        Rate::Limited { milli, per }
    }

    /// The time between two requests at this rate.
    pub fn interval(self) -> Option<Duration> {
        match self {
            Rate::Limited { milli, per } => {
                let nanos = per.as_nanos() * 1000 / u128::from(milli.get());
                Some(
                    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
                        .max(Duration::from_nanos(1)),
                )
            }
            Rate::Unlimited => None,
        }
    }

    /// Requests per second, for summaries.
    pub fn per_second(self) -> Option<f64> {
        match self {
            Rate::Limited { milli, per } => Some(milli.get() as f64 / 1000.0 / per.as_secs_f64()),
            Rate::Unlimited => None,
        }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate::Unlimited);
        }
        let usage = || {
            format!(
                "invalid rate {s:?}: expected N/s, N/min, N/h, N/<duration> (e.g. 20/10s) or \"unlimited\""
            )
        };
        let (count, unit) = s.split_once('/').ok_or_else(usage)?;
        let milli = thousandths(count.trim()).ok_or_else(usage)?;
        let milli = NonZeroU64::new(milli)
            .ok_or_else(|| format!("invalid rate {s:?}: N must be more than 0"))?;
        let unit = unit.trim();
        let per = match unit {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ if unit.starts_with(|c: char| c.is_ascii_digit()) => {
                humantime::parse_duration(unit).map_err(|_| usage())?
            }
            _ => return Err(usage()),
        };
        if per.is_zero() {
            return Err(format!(
                "invalid rate {s:?}: the period must be longer than 0"
            ));
        }
        Ok(Rate::Limited { milli, per })
    }
}

/// `3.8` as 3800: digits with at most three decimals, nothing else.
fn thousandths(count: &str) -> Option<u64> {
    let (whole, fraction) = count.split_once('.').unwrap_or((count, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 3 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let fraction: u64 = format!("{fraction:0<3}").parse().ok()?;
    whole.checked_mul(1000)?.checked_add(fraction)
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Unlimited => f.write_str("unlimited"),
            Rate::Limited { milli, per } => {
                let (whole, fraction) = (milli.get() / 1000, milli.get() % 1000);
                if fraction == 0 {
                    write!(f, "{whole}/")?;
                } else {
                    let fraction = format!("{fraction:03}");
                    write!(f, "{whole}.{}/", fraction.trim_end_matches('0'))?;
                }
                match per.as_secs() {
                    1 if per.subsec_nanos() == 0 => f.write_str("s"),
                    60 if per.subsec_nanos() == 0 => f.write_str("min"),
                    3600 if per.subsec_nanos() == 0 => f.write_str("h"),
                    _ => write!(f, "{}", humantime::format_duration(*per)),
                }
            }
        }
    }
}

/// Parses a timeout: a humantime duration (`30s`, `2m`) or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e} (e.g. 30s, 2m)"))
}

/// Parses a count that must be at least 1 (`-j`, `--max-attempts`, ...).
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "5/s".parse::<Rate>().unwrap().interval(),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            "30/min".parse::<Rate>().unwrap().interval(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            "2/h".parse::<Rate>().unwrap().interval(),
            Some(Duration::from_secs(1800))
        );
        assert_eq!("unlimited".parse::<Rate>().unwrap(), Rate::Unlimited);
        for bad in ["", "5", "0/s", "5/day", "x/s", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
        assert_eq!("50/min".parse::<Rate>().unwrap().to_string(), "50/min");
    }

    #[test]
    fn rates_may_be_fractional_or_per_any_period() {
        let rate = |s: &str| s.parse::<Rate>().unwrap();
        assert_eq!(rate("3.8/s").to_string(), "3.8/s");
        assert_eq!(rate("3.8/s").per_second(), Some(3.8));
        assert_eq!(rate("0.5/s").interval(), Some(Duration::from_secs(2)));
        assert_eq!(rate("20/10s").interval(), Some(Duration::from_millis(500)));
        assert_eq!(rate("20/10s").to_string(), "20/10s");
        assert_eq!(rate("2.125/min").to_string(), "2.125/min");
        assert_eq!(rate("4.0/s"), rate("4/s"));
        for bad in [
            "0.0/s", "1.2345/s", ".5/s", "5./x", "1e3/s", "5/0s", "5/soon", "+1/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_are_at_least_one() {
        assert!(parse_positive("0").is_err() && parse_positive("x").is_err());
        assert_eq!(parse_positive("3"), Ok(3));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
    }
}
