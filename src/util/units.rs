//! Units a setting is written in: request rates (`5/s`), durations
//! (`30s`, or plain seconds) and counts of at least one. Parsed the same
//! way by every flag, `[run]` key and sandbox option.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// A request rate: `N/s`, `N/min`, `N/h`, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Limited { count: NonZeroU32, per: Duration },
    Unlimited,
}

impl Rate {
    /// The time between two requests at this rate.
    pub fn interval(self) -> Option<Duration> {
        match self {
            Rate::Limited { count, per } => Some(per / count.get()),
            Rate::Unlimited => None,
        }
    }

    /// Requests per second, for summaries.
    pub fn per_second(self) -> Option<f64> {
        match self {
            Rate::Limited { count, per } => Some(f64::from(count.get()) / per.as_secs_f64()),
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
        let usage = || format!("invalid rate {s:?}: expected N/s, N/min, N/h or \"unlimited\"");
        let (count, unit) = s.split_once('/').ok_or_else(usage)?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        let count = NonZeroU32::new(count)
            .ok_or_else(|| format!("invalid rate {s:?}: N must be at least 1"))?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(usage()),
        };
        Ok(Rate::Limited { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Unlimited => f.write_str("unlimited"),
            Rate::Limited { count, per } => {
                let unit = match per.as_secs() {
                    1 => "s",
                    60 => "min",
                    _ => "h",
                };
                write!(f, "{count}/{unit}")
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
