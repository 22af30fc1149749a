//! The module against real MP3s: the fixtures in `tests/fixtures/audio/`
//! (how each was made: that folder's README), each with the values it was
//! made to have.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use id3::TagLike;
use sha2::{Digest, Sha256};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(name)
}

fn measure(name: &str) -> Measurement {
    measure_file(&fixture(name), &SilenceSettings::default()).unwrap()
}

/// `|got − want| ≤ tol`, with the numbers in the failure.
#[track_caller]
fn near(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} is not within {tol} of {want}"
    );
}

/// The bytes after the ID3v2 tag (all of them if there is none), by the
/// tag header's own size field.
fn audio_bytes(bytes: &[u8]) -> &[u8] {
    let start = bytes.get(..10).and_then(super::decode::id3v2_size);
    &bytes[start.map_or(0, |size| 10 + size as usize)..]
}

#[test]
fn a_sine_at_minus_20_dbfs_measures_minus_20() {
    let m = measure("sine-1k-20dbfs.mp3");
    assert_eq!((m.sample_rate, m.channels, m.version), (44_100, 2, VERSION));
    // Gapless: exactly the 5 s that were encoded.
    assert_eq!(m.frames, 5 * 44_100);
    near(m.duration, 5.0, 1e-9, "duration");
    // A stereo 1 kHz sine at −20 dBFS per channel is −20 LUFS (as EBU Tech
    // 3341's −23 dBFS one is −23); through the encoder, within 0.1 LU.
    near(m.integrated_lufs.unwrap(), -20.0, 0.1, "integrated");
    assert!(m.loudness_range_lu < 0.5, "{}", m.loudness_range_lu);
    // The encoder moves a pure tone's peaks by a few tenths of a dB.
    near(m.true_peak_dbtp.unwrap(), -20.0, 0.3, "true peak");
    near(m.sample_peak_dbfs.unwrap(), -20.0, 0.3, "sample peak");
    assert!(m.true_peak_dbtp >= m.sample_peak_dbfs);
    assert_eq!(
        (
            m.leading_silence,
            m.trailing_silence,
            m.longest_inner_silence
        ),
        (0.0, 0.0, 0.0)
    );
    assert_eq!((m.clipped_samples, m.clip_runs, m.decode_errors), (0, 0, 0));
    let bytes = std::fs::read(fixture("sine-1k-20dbfs.mp3")).unwrap();
    assert_eq!(m.file_bytes, bytes.len() as u64);
    assert_eq!(m.file_sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(m.audio_sha256.len(), 64);
}

#[test]
fn silences_at_the_head_the_tail_and_inside_are_placed_within_a_window() {
    let m = measure("silence-3s-12s.mp3");
    near(m.duration, 20.5, 1e-9, "duration");
    let window = SilenceSettings::WINDOW.as_secs_f64();
    near(m.leading_silence, 3.0, window, "leading");
    near(m.trailing_silence, 12.0, window, "trailing");
    near(m.longest_inner_silence, 1.5, window, "inner");
    // The same take with a minimum longer than the inner gap.
    let strict = SilenceSettings {
        min_len: std::time::Duration::from_secs(2),
        ..SilenceSettings::default()
    };
    let m = measure_file(&fixture("silence-3s-12s.mp3"), &strict).unwrap();
    assert_eq!(m.longest_inner_silence, 0.0);
    assert_eq!(m.silence, strict);
    near(m.trailing_silence, 12.0, window, "trailing");
}

#[test]
fn a_clipped_master_counts_its_clipped_samples() {
    let m = measure("clipped.mp3");
    // Music driven 12 dB into full scale and clipped: 3.4 % of the
    // master's samples sit at ±1. The encoder smooths the flat tops into
    // a ripple around 1.0, so far fewer decoded samples reach 0.999 (ffmpeg
    // decodes 118 of them), but some do, and overshoot: a clean take has
    // none.
    assert!(
        (50..2000).contains(&m.clipped_samples),
        "{} clipped",
        m.clipped_samples
    );
    assert!(m.clip_runs > 0 && m.clip_runs <= m.clipped_samples);
    assert!(m.longest_clip_run >= 2, "{}", m.longest_clip_run);
    // ffmpeg decodes a +0.46 dBFS sample peak; symphonia 0.5 clamps its
    // output to ±1.0, so this reads full scale (see `Measurement`).
    let peak = m.sample_peak_dbfs.unwrap();
    assert!((-0.01..=0.47).contains(&peak), "sample peak {peak}");
    assert!(m.true_peak_dbtp >= m.sample_peak_dbfs);
    assert_eq!(measure("sine-1k-20dbfs.mp3").clipped_samples, 0);
    assert_eq!(measure("music-nores-192k.mp3").clipped_samples, 0);
}

#[test]
fn the_same_audio_under_other_tags_has_the_same_fingerprint() {
    let a = measure("same-a.mp3");
    let b = measure("same-b.mp3");
    assert_eq!(a.audio_sha256, b.audio_sha256);
    assert_ne!(a.file_sha256, b.file_sha256);
    assert_eq!(a.integrated_lufs, b.integrated_lufs);
    let other = measure("sine-1k-20dbfs.mp3");
    assert_ne!(a.audio_sha256, other.audio_sha256);
    // One bit flipped in one frame's audio data is another fingerprint.
    let mut bytes = std::fs::read(fixture("music-nores-192k.mp3")).unwrap();
    let original = measure_reader(
        Cursor::new(bytes.clone()),
        Path::new("m"),
        &Default::default(),
    )
    .unwrap();
    bytes[40_000] ^= 0x01;
    let altered = measure_reader(Cursor::new(bytes), Path::new("m"), &Default::default()).unwrap();
    assert_ne!(original.audio_sha256, altered.audio_sha256);
}

#[test]
fn a_tag_holding_frame_like_bytes_is_skipped_not_decoded() {
    // A cover whose bytes look like MPEG frame headers, in front of take A.
    let mut tag = id3::Tag::new();
    tag.add_frame(id3::frame::Picture {
        mime_type: "image/png".into(),
        picture_type: id3::frame::PictureType::CoverFront,
        description: String::new(),
        data: [0xFF, 0xFB, 0x90, 0x64].repeat(20_000),
    });
    let mut bytes = Vec::new();
    tag.write_to(&mut bytes, id3::Version::Id3v24).unwrap();
    let a = std::fs::read(fixture("same-a.mp3")).unwrap();
    bytes.extend_from_slice(audio_bytes(&a));
    let m = measure_reader(
        Cursor::new(bytes),
        Path::new("covered.mp3"),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(m.audio_sha256, measure("same-a.mp3").audio_sha256);
    assert_eq!(m.decode_errors, 0);
}

#[test]
fn bytes_in_memory_measure_as_the_file_does() {
    let path = fixture("silence-3s-12s.mp3");
    let bytes = std::fs::read(&path).unwrap();
    let from_bytes = measure_reader(Cursor::new(bytes), &path, &Default::default()).unwrap();
    assert_eq!(from_bytes, measure("silence-3s-12s.mp3"));
}

#[test]
fn what_is_not_an_mp3_is_a_typed_error_naming_the_file() {
    let mp3 = std::fs::read(fixture("sine-1k-20dbfs.mp3")).unwrap();
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "page.html",
            b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>".to_vec(),
        ),
        (
            "error.json",
            br#"{"code":429,"msg":"rate limited","data":null}"#.to_vec(),
        ),
        ("empty.mp3", Vec::new()),
        ("tag-only.mp3", mp3[..200].to_vec()),
        (
            "first-frame-cut.mp3",
            mp3[..audio_len_before(&mp3, 300)].to_vec(),
        ),
        (
            "noise.bin",
            (0..5000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 & 0x7F)
                .collect(),
        ),
    ];
    for (name, bytes) in cases {
        let err =
            measure_reader(Cursor::new(bytes), Path::new(name), &Default::default()).unwrap_err();
        assert!(
            matches!(err, AudioError::NotMp3 { .. } | AudioError::NoAudio { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    let missing = fixture("no-such-take.mp3");
    let err = measure_file(&missing, &Default::default()).unwrap_err();
    assert!(matches!(err, AudioError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-take.mp3"), "{err}");
    let folder = fixture("");
    let err = measure_file(&folder, &Default::default()).unwrap_err();
    assert!(matches!(err, AudioError::Read { .. }), "{err:?}");
}

/// The length of `mp3`'s ID3 tag plus `audio` bytes.
fn audio_len_before(mp3: &[u8], audio: usize) -> usize {
    mp3.len() - audio_bytes(mp3).len() + audio
}

#[test]
fn a_take_cut_short_measures_what_is_left() {
    // Constant bitrate, no bit reservoir, no LAME tag: every 1152-frame
    // packet is 626 or 627 bytes and decodes on its own.
    let bytes = std::fs::read(fixture("music-nores-192k.mp3")).unwrap();
    let whole = measure("music-nores-192k.mp3");
    let cut = bytes.len() / 2 + 100;
    let half = measure_reader(
        Cursor::new(bytes[..cut].to_vec()),
        Path::new("half.mp3"),
        &Default::default(),
    )
    .unwrap();
    let packet = 1152.0 / 44_100.0;
    let whole_packets = (cut as f64 / (192_000.0 * 1152.0 / 8.0 / 44_100.0)).floor();
    near(
        half.duration,
        whole_packets * packet,
        packet,
        "duration of the half",
    );
    assert!(half.duration < whole.duration / 2.0 + packet);
    assert_eq!(half.file_bytes, cut as u64);
    // A VBR take with a LAME tag, cut: its tag promised 20.5 s.
    let bytes = std::fs::read(fixture("silence-3s-12s.mp3")).unwrap();
    let cut = measure_reader(
        Cursor::new(bytes[..bytes.len() / 3].to_vec()),
        Path::new("cut.mp3"),
        &Default::default(),
    )
    .unwrap();
    assert!(
        cut.duration > 3.0 && cut.duration < 15.0,
        "{}",
        cut.duration
    );
}

#[test]
fn replaygain_tags_are_written_beside_the_others_and_the_audio_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["sine-1k-20dbfs.mp3", "silence-3s-12s.mp3"] {
        let path = dir.path().join(name);
        std::fs::copy(fixture(name), &path).unwrap();
        let before = std::fs::read(&path).unwrap();
        let m = measure_file(&path, &Default::default()).unwrap();
        let rg = write_replaygain(&path, &m).unwrap();
        near(
            rg.track_gain_db,
            -18.0 - m.integrated_lufs.unwrap(),
            1e-12,
            "gain",
        );
        near(rg.track_peak, m.true_peak_linear(), 1e-12, "peak");
        let after = std::fs::read(&path).unwrap();
        assert_eq!(audio_bytes(&before), audio_bytes(&after), "{name}");
        assert!(after.starts_with(b"ID3\x04") && after.len() > before.len());
        let tag = id3::Tag::read_from_path(&path).unwrap();
        let text = |d: &str| {
            tag.extended_texts()
                .find(|t| t.description == d)
                .map(|t| t.value.clone())
        };
        assert_eq!(text("REPLAYGAIN_TRACK_GAIN"), Some(rg.gain_tag()));
        assert_eq!(text("REPLAYGAIN_TRACK_PEAK"), Some(rg.peak_tag()));
        let again = measure_file(&path, &Default::default()).unwrap();
        assert_eq!(again.audio_sha256, m.audio_sha256);
        // Written twice: the file already says it, and is left untouched.
        let tagged = std::fs::read(&path).unwrap();
        write_replaygain(&path, &again).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), tagged, "{name}");
        let tag = id3::Tag::read_from_path(&path).unwrap();
        assert_eq!(tag.extended_texts().count(), 2, "{name}");
    }
    let sine = id3::Tag::read_from_path(dir.path().join("sine-1k-20dbfs.mp3")).unwrap();
    assert_eq!(sine.title(), Some("sine 1 kHz -20 dBFS"));
    let gain = sine
        .extended_texts()
        .find(|t| t.description == "REPLAYGAIN_TRACK_GAIN")
        .unwrap();
    assert!(
        gain.value.starts_with("2.0") || gain.value.starts_with("1.9"),
        "{}",
        gain.value
    );
}

#[test]
fn a_silent_take_has_no_replaygain_and_a_null_loudness_in_json() {
    let mut meter = Meter::new(44_100, 2, &Default::default()).unwrap();
    meter.push(&vec![0.0; 2 * 44_100 * 3]).unwrap();
    let m = meter.finish().unwrap();
    assert_eq!(
        (m.integrated_lufs, m.true_peak_dbtp, m.sample_peak_dbfs),
        (None, None, None)
    );
    near(m.leading_silence, 3.0, 1e-9, "leading");
    near(m.trailing_silence, 3.0, 1e-9, "trailing");
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains(r#""integrated_lufs":null"#), "{json}");
    assert!(json.contains(r#""min_len":1.0"#), "{json}");
    let back: Measurement = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    let err = write_replaygain(Path::new("silent.mp3"), &m).unwrap_err();
    assert!(matches!(err, AudioError::Silent { .. }) && err.to_string().contains("silent.mp3"));
    assert!(ReplayGain::of(&m).is_none());
}

/// The WAV at `path` read back and measured with the same meters.
fn measure_wav(path: &Path) -> (hound::WavSpec, Measurement) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    let scale = (1u32 << (spec.bits_per_sample - 1)) as f32;
    let samples: Vec<f32> = reader
        .samples::<i32>()
        .map(|s| s.unwrap() as f32 / scale)
        .collect();
    let mut meter = Meter::new(spec.sample_rate, spec.channels, &Default::default()).unwrap();
    meter.push(&samples).unwrap();
    (spec, meter.finish().unwrap())
}

#[test]
fn a_wav_meets_the_target_loudness_under_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let sine = fixture("sine-1k-20dbfs.mp3");
    let m = measure("sine-1k-20dbfs.mp3");
    for bits in [WavBits::Sixteen, WavBits::TwentyFour] {
        let wav = dir.path().join(format!("sine-{}.wav", bits.bits()));
        let settings = WavSettings {
            bits,
            ..WavSettings::default()
        };
        let report = write_wav(&sine, &wav, &m, &settings).unwrap();
        assert_eq!((report.limit, report.frames), (Limit::Target, m.frames));
        let (spec, w) = measure_wav(&wav);
        assert_eq!(spec.bits_per_sample, bits.bits());
        assert_eq!((spec.sample_rate, spec.channels), (44_100, 2));
        assert_eq!(w.frames, m.frames);
        near(w.integrated_lufs.unwrap(), -14.0, 0.1, "WAV loudness");
        assert!(w.true_peak_dbtp.unwrap() <= -1.0, "{:?}", w.true_peak_dbtp);
    }
    // A ceiling of −10 dBTP is nearer than the target for the music take.
    let music = fixture("music-nores-192k.mp3");
    let m = measure("music-nores-192k.mp3");
    let wav = dir.path().join("music.wav");
    let settings = WavSettings {
        ceiling_dbtp: -10.0,
        ..WavSettings::default()
    };
    let report = write_wav(&music, &wav, &m, &settings).unwrap();
    assert_eq!(report.limit, Limit::Ceiling);
    let (_, w) = measure_wav(&wav);
    let peak = w.true_peak_dbtp.unwrap();
    assert!((-10.05..=-10.0).contains(&peak), "{peak}");
    assert!(w.integrated_lufs.unwrap() < -14.0);
    // Written twice, the same bytes: the dither is seeded.
    let first = std::fs::read(&wav).unwrap();
    write_wav(&music, &wav, &m, &settings).unwrap();
    assert_eq!(std::fs::read(&wav).unwrap(), first);
}

#[test]
fn a_wav_is_not_written_from_another_takes_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let other = measure("same-a.mp3");
    let err = write_wav(
        &fixture("sine-1k-20dbfs.mp3"),
        &wav,
        &other,
        &Default::default(),
    )
    .unwrap_err();
    assert!(matches!(err, AudioError::Mismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("sine-1k-20dbfs.mp3"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
