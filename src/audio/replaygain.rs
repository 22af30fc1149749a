//! ReplayGain 2.0: the gain that plays a take at the reference loudness,
//! stored as tags, so players and music libraries (foobar2000, beets, most
//! players) level a catalog without a byte of the audio changing.
//!
//! - **Gain**: [`REFERENCE_LUFS`] (−18 LUFS) minus the integrated
//!   loudness, written `"-3.21 dB"`.
//! - **Peak**: the true peak as a linear amplitude (1.0 = full scale, may
//!   exceed it for a decoded MP3), written `"0.987654"`. The ReplayGain
//!   peak field is a linear peak of the decoded audio, sample or true;
//!   ReplayGain 2.0 scanners built on libebur128 (loudgain, for one)
//!   store the true peak, which is never below the sample peak, so a
//!   player's clipping prevention that trusts it acts on the waveform its
//!   converter will really make. The same here.
//!
//! In an MP3 they are the ID3v2 `TXXX` frames `REPLAYGAIN_TRACK_GAIN` and
//! `REPLAYGAIN_TRACK_PEAK` (upper case, as the specification writes them).
//! [`write_replaygain`] replaces any earlier track frames of any case and
//! keeps every other frame; album gain is left alone (one take is no
//! album).

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use id3::TagLike;
use id3::frame::ExtendedText;

use super::decode::id3v2_size;
use super::{AudioError, Measurement};
use crate::util::fsx::AtomicFile;

/// ReplayGain 2.0's reference loudness.
pub const REFERENCE_LUFS: f64 = -18.0;

/// The `TXXX` descriptions written.
const GAIN_FRAME: &str = "REPLAYGAIN_TRACK_GAIN";
const PEAK_FRAME: &str = "REPLAYGAIN_TRACK_PEAK";

/// A take's ReplayGain 2.0 track values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayGain {
    /// dB to add for the reference loudness.
    pub track_gain_db: f64,
    /// The true peak, linear.
    pub track_peak: f64,
}

impl ReplayGain {
    /// The values for a measured take; `None` for a silent one (no
    /// loudness to level).
    pub fn of(m: &Measurement) -> Option<ReplayGain> {
        let lufs = m.integrated_lufs?;
        Some(ReplayGain {
            track_gain_db: REFERENCE_LUFS - lufs,
            track_peak: m.true_peak_linear(),
        })
    }

    /// The gain as players read it: two decimals and `dB` (`"-3.21 dB"`).
    pub fn gain_tag(&self) -> String {
        // + 0.0 turns a rounded −0.00 into 0.00.
        let rounded = (self.track_gain_db * 100.0).round() / 100.0 + 0.0;
        format!("{rounded:.2} dB")
    }

    /// The peak as players read it: six decimals (`"0.987654"`).
    pub fn peak_tag(&self) -> String {
        format!("{:.6}", self.track_peak)
    }

    /// Puts these values into `tag`, replacing its track gain and peak
    /// frames of any case and keeping every other frame (for a tag being
    /// built before the file is written; [`write_replaygain`] rewrites a
    /// file in place).
    pub fn set_in(&self, tag: &mut id3::Tag) {
        set_frames(tag, self);
    }
}

/// Writes the ReplayGain 2.0 track tags of `m` into the MP3 at `path`,
/// keeping its other tag frames, and returns what it wrote.
///
/// The file is rewritten whole and atomically (a new file beside it: the
/// new ID3v2.4 tag, then every byte that followed the old tag, as its
/// header sizes it, copied as it is; then a rename), so the audio is untouched and a crash leaves the
/// old file. A rename gives the file a new inode: a hard link to the old
/// one keeps the old tags. A file whose tag already holds exactly these
/// values is left untouched, so writing twice (a run killed after it
/// tagged, before it recorded) changes nothing.
///
/// # Errors
/// [`AudioError::Silent`] for a take without loudness;
/// [`AudioError::Tag`] if the existing tag cannot be read;
/// [`AudioError::Read`] / [`AudioError::Write`] on I/O errors.
pub fn write_replaygain(path: &Path, m: &Measurement) -> Result<ReplayGain, AudioError> {
    let rg = ReplayGain::of(m).ok_or_else(|| AudioError::Silent {
        file: path.to_owned(),
    })?;
    let read = |source: io::Error| AudioError::Read {
        file: path.to_owned(),
        source,
    };
    let tag_error = |e: id3::Error| AudioError::Tag {
        file: path.to_owned(),
        reason: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(read)?;
    let mut tag = match id3::Tag::read_from2(&mut file) {
        Ok(tag) => tag,
        Err(e) if matches!(e.kind, id3::ErrorKind::NoTag) => id3::Tag::new(),
        Err(e) => return Err(tag_error(e)),
    };
    // Past the old tag by its header's size (`id3::Tag::skip` leaves the
    // file read ahead when there is no tag).
    file.seek(SeekFrom::Start(0)).map_err(read)?;
    let mut head = Vec::with_capacity(10);
    (&mut file).take(10).read_to_end(&mut head).map_err(read)?;
    let audio = id3v2_size(&head).map_or(0, |size| 10 + size);
    file.seek(SeekFrom::Start(audio)).map_err(read)?;
    let says = |name: &str| {
        tag.extended_texts()
            .find(|t| t.description == name)
            .map(|t| t.value.clone())
    };
    if says(GAIN_FRAME) == Some(rg.gain_tag()) && says(PEAK_FRAME) == Some(rg.peak_tag()) {
        return Ok(rg);
    }
    set_frames(&mut tag, &rg);

    let write = |source: io::Error| AudioError::Write {
        file: path.to_owned(),
        source,
    };
    let mut out = AtomicFile::create(path).map_err(write)?;
    tag.write_to(&mut out, id3::Version::Id3v24)
        .map_err(tag_error)?;
    io::copy(&mut file, &mut out).map_err(write)?;
    out.commit().map_err(write)?;
    Ok(rg)
}

/// Replaces the track gain and peak frames of `tag` (any case).
fn set_frames(tag: &mut id3::Tag, rg: &ReplayGain) {
    let old: Vec<String> = tag
        .extended_texts()
        .map(|t| t.description.clone())
        .filter(|d| d.eq_ignore_ascii_case(GAIN_FRAME) || d.eq_ignore_ascii_case(PEAK_FRAME))
        .collect();
    for description in &old {
        tag.remove_extended_text(Some(description), None);
    }
    for (description, value) in [(GAIN_FRAME, rg.gain_tag()), (PEAK_FRAME, rg.peak_tag())] {
        tag.add_frame(ExtendedText {
            description: description.to_owned(),
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_strings_are_what_players_parse() {
        let rg = |g: f64, p: f64| ReplayGain {
            track_gain_db: g,
            track_peak: p,
        };
        assert_eq!(rg(-3.214, 0.9876543).gain_tag(), "-3.21 dB");
        assert_eq!(rg(-3.214, 0.9876543).peak_tag(), "0.987654");
        assert_eq!(rg(6.006, 1.2).gain_tag(), "6.01 dB");
        assert_eq!(rg(-0.004, 0.0).gain_tag(), "0.00 dB");
        assert_eq!(rg(0.0, 1.0).peak_tag(), "1.000000");
    }

    #[test]
    fn earlier_track_frames_of_any_case_are_replaced_and_others_kept() {
        let mut tag = id3::Tag::new();
        tag.set_title("keep me");
        for (d, v) in [
            ("replaygain_track_gain", "+1.00 dB"),
            ("REPLAYGAIN_TRACK_PEAK", "0.5"),
            ("REPLAYGAIN_ALBUM_GAIN", "-2.00 dB"),
        ] {
            tag.add_frame(ExtendedText {
                description: d.into(),
                value: v.into(),
            });
        }
        set_frames(
            &mut tag,
            &ReplayGain {
                track_gain_db: -4.0,
                track_peak: 0.25,
            },
        );
        let mut texts: Vec<(String, String)> = tag
            .extended_texts()
            .map(|t| (t.description.clone(), t.value.clone()))
            .collect();
        texts.sort();
        assert_eq!(
            texts,
            [
                ("REPLAYGAIN_ALBUM_GAIN".into(), "-2.00 dB".into()),
                ("REPLAYGAIN_TRACK_GAIN".into(), "-4.00 dB".into()),
                ("REPLAYGAIN_TRACK_PEAK".into(), "0.250000".into()),
            ]
        );
        assert_eq!(tag.title(), Some("keep me"));
    }
}
