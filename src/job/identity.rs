//! A job's identity: the fingerprint of what shapes its music, and the
//! digest of a whole manifest's jobs that lets a rerun trust its results
//! file.
//!
//! Fingerprints are kept in results files, so the bytes hashed
//! (`JobFields::content_json`) are a format: a job's key must come out the
//! same in every later version. Fields added to the API later are appended
//! only when set, which keeps the bytes of every job that does not set them
//! (tested against serde_json, and against results files written before).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Field, JobFields};

impl JobFields {
    /// Hash of what shapes the music, with defaults applied; see the module
    /// docs for why `callback_url`, `cluster` and `id` are left out.
    pub fn fingerprint(&self) -> String {
        String::from_utf8_lossy(&self.fingerprint_hex()).into_owned()
    }

    /// [`JobFields::fingerprint`] as bytes on the stack: validation takes
    /// it for every row of a manifest, so it is kept cheap.
    pub fn fingerprint_hex(&self) -> [u8; FINGERPRINT_LEN] {
        let digest = Sha256::digest(self.content_json());
        let mut out = [0; FINGERPRINT_LEN];
        hex::encode_to_slice(&digest[..FINGERPRINT_LEN / 2], &mut out)
            .expect("8 bytes are 16 hex digits");
        out
    }

    /// What the fingerprint hashes: the content as compact JSON, keys in
    /// this order, unset texts `null`, then each of the newer fields only
    /// when set (so the bytes of a job without them are what they were
    /// before those fields existed). Written by hand rather than with
    /// serde_json because serde_json escapes byte by byte, which was most of
    /// the cost of a fingerprint; the bytes are the same (tested against
    /// serde_json), and must stay so: fingerprints are kept in results
    /// files.
    fn content_json(&self) -> Vec<u8> {
        let texts = [
            ("prompt", self.prompt.as_deref()),
            (
                "gpt_description_prompt",
                self.gpt_description_prompt.as_deref(),
            ),
            ("title", self.title.as_deref()),
            ("style", self.style.as_deref()),
            ("tags", self.tags.as_deref()),
        ];
        let size: usize = texts.iter().map(|(_, t)| t.map_or(0, str::len)).sum();
        let mut json = Vec::with_capacity(size + 192);
        json.push(b'{');
        for (name, text) in texts {
            json_key(&mut json, name);
            match text {
                Some(text) => json_str(&mut json, text),
                None => json.extend_from_slice(b"null"),
            }
            json.push(b',');
        }
        let mode = self.mode();
        for (name, on) in [
            ("custom_mode", mode.custom),
            ("make_instrumental", mode.instrumental),
        ] {
            json_key(&mut json, name);
            json.extend_from_slice(if on { b"true," } else { b"false," });
        }
        json_key(&mut json, "model");
        json_str(&mut json, self.key_model());
        if let Some(gender) = self.gender {
            json.push(b',');
            json_key(&mut json, "gender");
            json_str(&mut json, gender.name());
        }
        for field in [
            Field::StyleWeight,
            Field::WeirdnessConstraint,
            Field::AudioWeight,
        ] {
            if let Some(weight) = self.weight(field) {
                json.push(b',');
                json_key(&mut json, field.name());
                serde_json::to_writer(&mut json, &weight).expect("a number serializes");
            }
        }
        json.push(b'}');
        json
    }
}

/// `"name":`, for names that need no escaping.
fn json_key(json: &mut Vec<u8>, name: &str) {
    json.push(b'"');
    json.extend_from_slice(name.as_bytes());
    json.extend_from_slice(b"\":");
}

/// A JSON string exactly as serde_json writes it: `"` and `\` escaped, a
/// line feed as `\n`, every other byte as is. Other control characters
/// (rare: validation refuses most of them) take serde_json's own path.
fn json_str(json: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // No early exit, so the compiler can check many bytes at a time.
    let other_control = bytes
        .iter()
        .fold(false, |found, &b| found | (b < 0x20 && b != b'\n'));
    if other_control {
        serde_json::to_writer(&mut *json, text).expect("a string serializes");
        return;
    }
    json.push(b'"');
    let mut start = 0;
    for at in memchr::memchr3_iter(b'"', b'\\', b'\n', bytes) {
        json.extend_from_slice(&bytes[start..at]);
        json.extend_from_slice(match bytes[at] {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            _ => b"\\n",
        });
        start = at + 1;
    }
    json.extend_from_slice(&bytes[start..]);
    json.push(b'"');
}

/// A job's identity in every file and report: the manifest's `id`, or
/// `fp-` and the job's [fingerprint](JobFields::fingerprint) when the row
/// has none. The results report, the catalog, the state store, the page and
/// the file-name template all call it `key`; the manifest's `id` is one of
/// the two ways to make one.
///
/// A newtype so a key is never confused with a task ID, a clip ID or a
/// manifest `id` (which is not a key when it is absent); it derefs to `str`
/// for the places that only read it.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobKey(String);

impl JobKey {
    /// The key of a job with these fields and this fingerprint.
    pub fn of(fields: &JobFields, fingerprint: &str) -> JobKey {
        match &fields.id {
            Some(id) => JobKey(id.clone()),
            None => JobKey(format!("fp-{fingerprint}")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for JobKey {
    /// A key as a file recorded it.
    fn from(key: String) -> JobKey {
        JobKey(key)
    }
}

impl From<&str> for JobKey {
    fn from(key: &str) -> JobKey {
        JobKey(key.to_owned())
    }
}

impl std::ops::Deref for JobKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for JobKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for JobKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// As the text it is (quoted), so a message that shows a key with `{:?}`
/// reads the same as one that shows a string.
impl fmt::Debug for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for JobKey {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for JobKey {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

impl PartialEq<&str> for JobKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Length of a fingerprint in hex digits (the first 8 bytes of a SHA-256).
pub const FINGERPRINT_LEN: usize = 16;

/// A digest of a sequence of jobs as a results file records them: each
/// job's key, line and fingerprint, in order. The manifest's first pass
/// builds one over its jobs; a results file whose rows give the same digest
/// holds exactly those jobs, one row each, in that order, on those lines and
/// with that content, so a rerun can plan from the results file alone
/// instead of reading the manifest a second time. SHA-256, so equal digests
/// of different sequences are not a practical concern.
#[derive(Clone, Default)]
pub struct JobsDigest {
    hasher: Sha256,
    count: u64,
}

impl JobsDigest {
    /// Adds the next job. Lengths are part of what is hashed, so no two
    /// sequences of fields run together into the same bytes.
    pub fn add(&mut self, key: &[u8], line: u64, fingerprint: &[u8]) {
        self.count += 1;
        self.hasher.update((key.len() as u64).to_le_bytes());
        self.hasher.update(key);
        self.hasher.update(line.to_le_bytes());
        self.hasher.update((fingerprint.len() as u64).to_le_bytes());
        self.hasher.update(fingerprint);
    }

    /// Jobs added so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest of the jobs added so far.
    pub fn finish(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }
}

impl fmt::Debug for JobsDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsDigest")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// A fast 64-bit hash of a job key, for the indexes that find jobs by key
/// (the manifest's duplicate check, the results file's index). Users of it
/// confirm a match against the real key, so speed matters more than
/// strength; deterministic within a build, never persisted.
pub fn key_hash(key: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(key);
    h.finish()
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::job::{Gender, Job, KEY_MODEL, Weight};

    #[test]
    fn key_ignores_defaults_spelled_out_and_delivery_fields() {
        let a = JobFields {
            prompt: Some("rain on a tin roof".into()),
            ..JobFields::default()
        };
        let b = JobFields {
            custom_mode: Some(false),
            model: Some(KEY_MODEL.into()),
            callback_url: Some("https://example.com/hook".into()),
            cluster: Some("default".into()),
            ..a.clone()
        };
        assert_eq!(Job::new(a.clone(), 1).key, Job::new(b, 9).key);
        let c = JobFields {
            prompt: Some("rain on a tin roof!".into()),
            ..a.clone()
        };
        assert_ne!(Job::new(a, 1).key, Job::new(c, 1).key);
    }

    /// The fingerprint's JSON as it was first defined, with serde_json.
    fn content_json_by_serde(f: &JobFields) -> Vec<u8> {
        #[derive(Serialize)]
        struct Content<'a> {
            prompt: Option<&'a str>,
            gpt_description_prompt: Option<&'a str>,
            title: Option<&'a str>,
            style: Option<&'a str>,
            tags: Option<&'a str>,
            custom_mode: bool,
            make_instrumental: bool,
            model: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            gender: Option<Gender>,
            #[serde(skip_serializing_if = "Option::is_none")]
            style_weight: Option<Weight>,
            #[serde(skip_serializing_if = "Option::is_none")]
            weirdness_constraint: Option<Weight>,
            #[serde(skip_serializing_if = "Option::is_none")]
            audio_weight: Option<Weight>,
        }
        let mode = f.mode();
        serde_json::to_vec(&Content {
            prompt: f.prompt.as_deref(),
            gpt_description_prompt: f.gpt_description_prompt.as_deref(),
            title: f.title.as_deref(),
            style: f.style.as_deref(),
            tags: f.tags.as_deref(),
            custom_mode: mode.custom,
            make_instrumental: mode.instrumental,
            model: f.key_model(),
            gender: f.gender,
            style_weight: f.style_weight,
            weirdness_constraint: f.weirdness_constraint,
            audio_weight: f.audio_weight,
        })
        .unwrap()
    }

    #[test]
    fn fingerprints_are_the_serde_json_ones() {
        let tricky = "a \"quoted\", back\\slash\nnew line\ttab\r\u{1}\u{7f} é 🎵 </>";
        let cases = [
            JobFields::default(),
            JobFields {
                prompt: Some(tricky.into()),
                title: Some("\"\"".into()),
                style: Some(String::new()),
                tags: Some("\n".into()),
                custom_mode: Some(true),
                model: Some("chirp-v4-5".into()),
                ..JobFields::default()
            },
            JobFields {
                gpt_description_prompt: Some("plain".into()),
                make_instrumental: Some(true),
                id: Some("ignored".into()),
                cluster: Some("ignored".into()),
                ..JobFields::default()
            },
            JobFields {
                prompt: Some("p".into()),
                gender: Some(Gender::Female),
                style_weight: Weight::from_hundredths(65),
                audio_weight: Some(Weight::ONE),
                ..JobFields::default()
            },
            JobFields {
                gpt_description_prompt: Some("g".into()),
                weirdness_constraint: Some(Weight::ZERO),
                ..JobFields::default()
            },
        ];
        for f in cases {
            assert_eq!(
                String::from_utf8(f.content_json()).unwrap(),
                String::from_utf8(content_json_by_serde(&f)).unwrap()
            );
        }
        // As results files written by earlier versions hold it.
        let f = JobFields {
            prompt: Some("rain on a tin roof".into()),
            ..JobFields::default()
        };
        let old = hex::encode(&Sha256::digest(content_json_by_serde(&f))[..8]);
        assert_eq!(f.fingerprint(), old);
    }

    #[test]
    fn newer_fields_are_hashed_only_when_set() {
        let plain = JobFields {
            prompt: Some("rain on a tin roof".into()),
            ..JobFields::default()
        };
        assert_eq!(
            String::from_utf8(plain.content_json()).unwrap(),
            r#"{"prompt":"rain on a tin roof","gpt_description_prompt":null,"title":null,"style":null,"tags":null,"custom_mode":false,"make_instrumental":false,"model":"chirp-v3.5"}"#,
            "the bytes every results file before issue 12 was keyed by"
        );
        let weighted = JobFields {
            gender: Some(Gender::Male),
            style_weight: Weight::from_hundredths(65),
            ..plain.clone()
        };
        assert!(
            String::from_utf8(weighted.content_json())
                .unwrap()
                .ends_with(r#""model":"chirp-v3.5","gender":"male","style_weight":0.65}"#)
        );
        let mut keys = std::collections::HashSet::new();
        for f in [
            plain.clone(),
            weighted,
            JobFields {
                style_weight: Some(Weight::ZERO),
                ..plain.clone()
            },
            JobFields {
                weirdness_constraint: Some(Weight::ZERO),
                ..plain.clone()
            },
            JobFields {
                audio_weight: Some(Weight::ZERO),
                ..plain.clone()
            },
            JobFields {
                gender: Some(Gender::Female),
                ..plain
            },
        ] {
            assert!(keys.insert(Job::new(f, 1).key), "each field counts");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_fingerprints_as_serde_json_does(
            prompt in proptest::option::of(".*"),
            style in proptest::option::of("[\"\\\\\n\t a-z\u{0}-\u{1f}\u{7f}é]*"),
            custom in proptest::bool::ANY,
        ) {
            let f = JobFields {
                prompt,
                style,
                custom_mode: Some(custom),
                ..JobFields::default()
            };
            proptest::prop_assert_eq!(f.content_json(), content_json_by_serde(&f));
        }
    }
}
