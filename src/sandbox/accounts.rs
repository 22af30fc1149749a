//! The accounts a sandbox imitates: one per `--key`, each with its own
//! credit balance and rate limit, as one real host serves many customers.
//!
//! A key pool (several API keys in one batchgen run) must be tested against
//! a host where each key runs out of credits, hits its rate limit and owns
//! its tasks on its own. So `--key` is repeatable and each value may carry
//! its own settings, `KEY[,credits=N][,rate=R]`; a key without them takes
//! `--credits` and `--rate`. The first key is the default account: the one
//! [`super::Sandbox::key`] gives, and the one a gcui request without a
//! `Cookie` uses.
//!
//! Its own module, low in the layout, because the config reads
//! [`KeySpec`]s, the state counts per [`AccountId`] and the request side
//! (`auth`) resolves a request to one; none of them should own the others'
//! idea of an account.

use std::fmt;

use crate::util::units::Rate;

/// One `--key` value: a key (on gcui, a cookie string) and the settings it
/// overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// The key clients present (`Authorization: Bearer`, a `token` field,
    /// or gcui's `Cookie` header).
    pub key: String,
    /// Its starting balance; `None` takes `--credits`.
    pub credits: Option<u64>,
    /// Its rate limit; `None` takes `--rate`.
    pub rate: Option<Rate>,
}

impl KeySpec {
    /// A key with the global settings.
    pub fn new(key: impl Into<String>) -> KeySpec {
        KeySpec {
            key: key.into(),
            credits: None,
            rate: None,
        }
    }

    /// Reads `KEY[,credits=N][,rate=R]`, as `--key` takes it: `R` as
    /// `--rate` takes it (`2/s`, `20/10s`, `unlimited`).
    ///
    /// # Errors
    /// A [`KeySpecError`] naming the bad part: an empty key, a setting
    /// without `=`, an unknown or repeated setting, or a bad value.
    pub fn parse(text: &str) -> Result<KeySpec, KeySpecError> {
        let mut parts = text.split(',');
        let key = parts.next().unwrap_or_default().trim();
        if key.is_empty() {
            return Err(KeySpecError::EmptyKey);
        }
        let mut spec = KeySpec::new(key);
        for part in parts {
            let part = part.trim();
            let Some((name, value)) = part.split_once('=') else {
                return Err(KeySpecError::NotASetting(part.to_owned()));
            };
            let (name, value) = (name.trim(), value.trim());
            let repeated = || KeySpecError::Repeated(name.to_owned());
            match name {
                "credits" => {
                    let credits = value.parse().map_err(|_| KeySpecError::BadCredits {
                        value: value.to_owned(),
                    })?;
                    if spec.credits.replace(credits).is_some() {
                        return Err(repeated());
                    }
                }
                "rate" => {
                    let rate = value.parse().map_err(|reason| KeySpecError::BadRate {
                        value: value.to_owned(),
                        reason,
                    })?;
                    if spec.rate.replace(rate).is_some() {
                        return Err(repeated());
                    }
                }
                _ => return Err(KeySpecError::UnknownSetting(name.to_owned())),
            }
        }
        Ok(spec)
    }
}

impl From<&str> for KeySpec {
    fn from(key: &str) -> KeySpec {
        KeySpec::new(key)
    }
}

impl From<String> for KeySpec {
    fn from(key: String) -> KeySpec {
        KeySpec::new(key)
    }
}

impl fmt::Display for KeySpec {
    /// The `--key` value that reads back as this spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(credits) = self.credits {
            write!(f, ",credits={credits}")?;
        }
        if let Some(rate) = self.rate {
            write!(f, ",rate={rate}")?;
        }
        Ok(())
    }
}

/// Why a `--key` value does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySpecError {
    #[error("the key before the first ',' is empty (expected KEY[,credits=N][,rate=R])")]
    EmptyKey,
    #[error("{0:?} is not a setting: expected credits=N or rate=R after the key")]
    NotASetting(String),
    #[error("unknown setting {0:?}: a key takes credits=N and rate=R")]
    UnknownSetting(String),
    #[error("{0} is given twice")]
    Repeated(String),
    #[error("credits={value:?}: not a whole number of credits")]
    BadCredits { value: String },
    #[error("rate={value:?}: {reason}")]
    BadRate { value: String, reason: String },
}

/// Which account a request or a task belongs to: its place in the
/// sandbox's list of keys (0 is the first `--key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub usize);

/// An account's settings, its spec resolved against the global flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub key: String,
    /// Starting balance.
    pub credits: u64,
    /// Its rate limit, `None` for none.
    pub rate: Option<Rate>,
}

impl Account {
    /// The accounts of these specs: each setting a spec leaves out is the
    /// global one.
    pub fn resolve(specs: &[KeySpec], credits: u64, rate: Option<Rate>) -> Vec<Account> {
        specs
            .iter()
            .map(|spec| Account {
                key: spec.key.clone(),
                credits: spec.credits.unwrap_or(credits),
                rate: spec.rate.or(rate),
            })
            .collect()
    }
}

/// The first key given twice, if any: two accounts cannot share a key.
pub fn repeated_key(specs: &[KeySpec]) -> Option<&str> {
    specs.iter().enumerate().find_map(|(i, spec)| {
        specs[..i]
            .iter()
            .any(|earlier| earlier.key == spec.key)
            .then_some(spec.key.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_alone_or_with_its_settings() {
        assert_eq!(KeySpec::parse("sk-a"), Ok(KeySpec::new("sk-a")));
        let spec = KeySpec::parse("sk-a,credits=5,rate=2/s").unwrap();
        assert_eq!(spec.credits, Some(5));
        assert_eq!(spec.rate, Some("2/s".parse().unwrap()));
        let spec = KeySpec::parse(" sk-b , rate = unlimited").unwrap();
        assert_eq!(
            (spec.key.as_str(), spec.rate),
            ("sk-b", Some(Rate::Unlimited))
        );
        assert_eq!(spec.credits, None);
        // A cookie string keeps its `=` and `;`.
        let cookie = KeySpec::parse("__client=abc; other=1,credits=0").unwrap();
        assert_eq!(cookie.key, "__client=abc; other=1");
        assert_eq!(cookie.credits, Some(0));
        for text in ["sk-a", "sk-a,credits=5,rate=20/10s", "sk-a,rate=unlimited"] {
            let spec = KeySpec::parse(text).unwrap();
            assert_eq!(KeySpec::parse(&spec.to_string()), Ok(spec), "{text}");
        }
    }

    #[test]
    fn a_bad_spec_names_the_bad_part() {
        let error = |text: &str| KeySpec::parse(text).unwrap_err().to_string();
        assert!(error("").contains("key"), "{}", error(""));
        assert!(error(",credits=5").contains("empty"));
        assert!(error("sk-a,credits").contains("\"credits\" is not a setting"));
        assert!(error("sk-a,limit=3").contains("unknown setting \"limit\""));
        assert!(error("sk-a,credits=5,credits=6").contains("credits is given twice"));
        assert!(error("sk-a,credits=-1").contains("credits=\"-1\""));
        assert!(error("sk-a,rate=fast").starts_with("rate=\"fast\": "));
    }

    #[test]
    fn unset_settings_are_the_global_ones() {
        let specs = [
            KeySpec::parse("a,credits=5,rate=2/s").unwrap(),
            KeySpec::new("b"),
        ];
        let rate = Some("1/s".parse().unwrap());
        let accounts = Account::resolve(&specs, 100, rate);
        assert_eq!(accounts[0].credits, 5);
        assert_eq!(accounts[0].rate, Some("2/s".parse().unwrap()));
        assert_eq!((accounts[1].credits, accounts[1].rate), (100, rate));
        assert_eq!(repeated_key(&specs), None);
        assert_eq!(
            repeated_key(&[specs[1].clone(), "c".into(), "b".into()]),
            Some("b")
        );
    }
}
