//! The takes: their frames, lengths and kinds, the decisions of
//! `--bad-take`, and what a decoder (symphonia) hears in them.

use super::*;

const ID: &str = "0f1c2d3e-0000-4000-8000-000000000000";

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("clip-{i}")).collect()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn length(min: u64, max: u64) -> TakeLength {
    TakeLength::new(secs(min), secs(max)).unwrap()
}

const KINDS: [TakeKind; 6] = [
    TakeKind::Normal,
    TakeKind::Quiet,
    TakeKind::Clipped,
    TakeKind::SilentTail,
    TakeKind::SilentHead,
    TakeKind::Short,
];

/// The bytes as frames: each whole, with the header, and decodable alone
/// (`main_data_begin` 0: no bits borrowed from the frame before).
fn frames(mp3: &[u8]) -> Vec<&[u8]> {
    assert!(mp3.len().is_multiple_of(FRAME_LEN), "whole frames");
    let frames: Vec<&[u8]> = mp3.chunks(FRAME_LEN).collect();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f[..4], FRAME_HEADER, "header of frame {i}");
        assert!(
            f[4] == 0 && f[5] & 0x80 == 0,
            "main_data_begin of frame {i}"
        );
    }
    frames
}

fn is_silent_frame(frame: &[u8]) -> bool {
    frame[4..].iter().all(|&b| b == 0)
}

#[test]
fn the_assets_are_whole_phrases_of_frames() {
    for (asset, phrases) in [(NORMAL, 4), (QUIET, 2), (CLIPPED, 2)] {
        assert_eq!(asset.len(), phrases * PHRASE_LEN);
        let frames = frames(asset);
        assert!(
            !frames.iter().any(|f| is_silent_frame(f)),
            "music throughout"
        );
    }
    assert_eq!(PHRASE_LEN, 320 * FRAME_LEN, "four bars of 80 frames");
    let total = NORMAL.len() + QUIET.len() + CLIPPED.len();
    assert!(total < 1_500_000, "{total} bytes");
}

#[test]
fn every_take_is_whole_frames_and_matches_its_duration() {
    for kind in KINDS {
        for id in ids(20) {
            let take = Take::new(&id, kind, TakeLength::default());
            let mp3 = take.mp3();
            assert_eq!(frames(&mp3).len(), take.frames() as usize, "{kind:?}");
            assert_eq!(mp3.len(), take.frames() as usize * FRAME_LEN);
            let secs = f64::from(take.frames()) * 1152.0 / 48_000.0;
            assert_eq!(take.duration_secs(), secs, "{kind:?}");
            assert_eq!(take.mp3(), mp3, "deterministic");
            assert_eq!(Take::new(&id, kind, TakeLength::default()), take);
        }
    }
}

#[test]
fn each_kind_has_its_documented_length_and_shape() {
    let default = TakeLength::default();
    for id in ids(200) {
        let normal = Take::new(&id, TakeKind::Normal, default);
        assert!((35.0..=70.0).contains(&normal.duration_secs()));
        for kind in [TakeKind::Quiet, TakeKind::Clipped] {
            assert_eq!(Take::new(&id, kind, default).frames(), normal.frames());
        }
        let short = Take::new(&id, TakeKind::Short, default);
        assert!((12.0..=20.0).contains(&short.duration_secs()));
        assert!(frames(&short.mp3()).iter().all(|f| !is_silent_frame(f)));

        let tail = Take::new(&id, TakeKind::SilentTail, default);
        let silent = tail.silent_frames() as usize;
        assert!((15.0..=20.0).contains(&(silent as f64 * 0.024)), "{silent}");
        let mp3 = tail.mp3();
        let f = frames(&mp3);
        let music = f.len() - silent;
        assert!(music >= BAR_FRAMES as usize);
        assert!(f[music..].iter().all(|f| is_silent_frame(f)));
        assert!(f[..music].iter().all(|f| !is_silent_frame(f)));
        assert!((35.0..=70.0).contains(&tail.duration_secs()));

        let head = Take::new(&id, TakeKind::SilentHead, default);
        let silent = head.silent_frames() as usize;
        assert!((3.0..=5.0).contains(&(silent as f64 * 0.024)), "{silent}");
        let mp3 = head.mp3();
        let f = frames(&mp3);
        assert!(f[..silent].iter().all(|f| is_silent_frame(f)));
        assert!(f[silent..].iter().all(|f| !is_silent_frame(f)));
        assert!((35.0..=70.0).contains(&head.duration_secs()));
    }
    // A length set short still leaves the silence and a bar of music.
    let tail = Take::new(ID, TakeKind::SilentTail, length(5, 5));
    assert_eq!(tail.frames(), tail.silent_frames() + BAR_FRAMES);
    assert_eq!(Take::new(ID, TakeKind::Normal, length(5, 5)).frames(), 209);
}

#[test]
fn takes_of_two_clips_differ() {
    let mp3s: Vec<Vec<u8>> = ids(60)
        .iter()
        .map(|id| Take::new(id, TakeKind::Normal, TakeLength::default()).mp3())
        .collect();
    for (i, a) in mp3s.iter().enumerate() {
        for b in &mp3s[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Not only in length: the phrases are in another order.
    let fixed = length(40, 40);
    let a = Take::new("a", TakeKind::Normal, fixed).mp3();
    let b = Take::new("b", TakeKind::Normal, fixed).mp3();
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);
}

#[test]
fn take_lengths_parse_and_print() {
    let parsed = TakeLength::parse("35s..70s").unwrap();
    assert_eq!(parsed, TakeLength::default());
    assert_eq!(parsed.to_string(), "35s..70s");
    let ms = TakeLength::parse("1500ms..2m").unwrap();
    assert_eq!(ms.to_string(), "1500ms..120s");
    assert_eq!(TakeLength::parse(&ms.to_string()), Ok(ms));
    assert_eq!(TakeLength::parse(&parsed.to_string()), Ok(parsed));
    let one = TakeLength::parse("2m").unwrap();
    assert_eq!((one.min(), one.max()), (secs(120), secs(120)));
    for bad in ["70s..35s", "0s..5s", "1s..11m", "x..5s", "5s..", ""] {
        assert!(TakeLength::parse(bad).is_err(), "{bad}");
    }
    for id in ids(50) {
        let take = Take::new(&id, TakeKind::Normal, length(30, 31));
        assert!((30.0..=31.0).contains(&take.duration_secs()));
    }
}

#[test]
fn bad_takes_are_decided_by_the_clip_id_at_the_rate_asked() {
    let ids = ids(1000);
    let bad = |p, kind, first| {
        ids.iter()
            .filter_map(|id| bad_take_for(id, p, kind, first))
            .collect::<Vec<_>>()
    };
    assert!(bad(0.0, BadTakeKind::Mixed, true).is_empty());
    assert_eq!(
        bad(1.0, BadTakeKind::Quiet, false),
        [BadTakeKind::Quiet; 1000]
    );
    assert!(
        bad(1.0, BadTakeKind::Identical, false).is_empty(),
        "per task"
    );
    let some = bad(0.2, BadTakeKind::Mixed, true);
    assert!((150..250).contains(&some.len()), "{}", some.len());
    assert_eq!(bad(0.2, BadTakeKind::Mixed, true), some, "deterministic");
    for kind in [
        BadTakeKind::Quiet,
        BadTakeKind::Clipped,
        BadTakeKind::SilentTail,
        BadTakeKind::SilentHead,
        BadTakeKind::Short,
        BadTakeKind::Identical,
    ] {
        assert!(some.contains(&kind), "{kind:?}");
    }
    let second = bad(0.2, BadTakeKind::Mixed, false);
    assert!(!second.contains(&BadTakeKind::Identical));
    assert_eq!(second.len(), some.len(), "the same draw, another pick");
}

#[test]
fn identical_gives_both_clips_of_a_task_the_same_bytes() {
    let settings = |bad_take, bad_take_kind| TakeSettings {
        bad_take,
        bad_take_kind,
        take_length: TakeLength::default(),
    };
    let pairs: Vec<[String; 2]> = (0..200)
        .map(|i| [format!("a-{i}"), format!("b-{i}")])
        .collect();
    let identical = |s: &TakeSettings| {
        pairs
            .iter()
            .filter(|ids| {
                let [a, b] = takes_for(ids, s);
                a.mp3() == b.mp3()
            })
            .count()
    };
    assert_eq!(identical(&settings(1.0, BadTakeKind::Identical)), 200);
    assert_eq!(identical(&settings(0.0, BadTakeKind::Identical)), 0);
    let some = identical(&settings(0.5, BadTakeKind::Identical));
    assert!((70..130).contains(&some), "{some} of 200 tasks");
    let [a, b] = takes_for(&pairs[0], &settings(1.0, BadTakeKind::Identical));
    assert_eq!(
        (a.kind(), &a),
        (TakeKind::Normal, &b),
        "the first clip's take"
    );
    // No other setting makes a pair identical.
    let [a, b] = takes_for(&pairs[0], &settings(1.0, BadTakeKind::Quiet));
    assert_eq!((a.kind(), b.kind()), (TakeKind::Quiet, TakeKind::Quiet));
    assert_ne!(a.mp3(), b.mp3());
    let normal = TakeSettings::default();
    let [a, b] = takes_for(&pairs[0], &normal);
    assert_eq!((a.kind(), b.kind()), (TakeKind::Normal, TakeKind::Normal));
    assert_ne!(a.mp3(), b.mp3());
}

/// The take decoded by symphonia, as mono samples in -1..1 (more where the
/// codec overshoots).
fn decode(mp3: Vec<u8>) -> Vec<f32> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::errors::Error;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let source = MediaSourceStream::new(Box::new(std::io::Cursor::new(mp3)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            Hint::new().with_extension("mp3"),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .expect("an MP3");
    let mut format = probed.format;
    let track = format.default_track().expect("a track");
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .expect("an MP3 decoder");
    let mut samples = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("reading: {e}"),
        };
        let decoded = decoder.decode(&packet).expect("every frame decodes");
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        samples.extend_from_slice(buf.samples());
    }
    samples
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, s| m.max(s.abs()))
}

fn rms_db(x: &[f32]) -> f64 {
    let power = x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64;
    10.0 * power.log10()
}

#[test]
fn a_decoder_hears_music_quiet_music_and_clipping() {
    // Two phrases' worth, so every phrase of each pool is likely heard.
    let fixed = length(16, 16);
    let normal = decode(Take::new(ID, TakeKind::Normal, fixed).mp3());
    let quiet = decode(Take::new(ID, TakeKind::Quiet, fixed).mp3());
    let clipped = decode(Take::new(ID, TakeKind::Clipped, fixed).mp3());
    let frames = Take::new(ID, TakeKind::Normal, fixed).frames() as usize;
    for decoded in [&normal, &quiet, &clipped] {
        assert_eq!(decoded.len(), frames * 1152, "every frame decoded");
    }
    let (loud, soft) = (rms_db(&normal), rms_db(&quiet));
    assert!(
        (-20.0..-8.0).contains(&loud),
        "normal at {loud:.1} dBFS rms"
    );
    assert!(peak(&normal) < 0.9, "normal peaks at {}", peak(&normal));
    assert!(loud - soft > 12.0, "quiet at {soft:.1} dBFS rms");
    assert!(peak(&quiet) < 0.2, "quiet peaks at {}", peak(&quiet));
    let full = clipped.iter().filter(|s| s.abs() >= 0.999).count();
    assert!(full * 20 > clipped.len(), "{full} samples at full scale");
    // The decoder clamps its samples to full scale; between them the
    // waveform goes over (true peak above 0 dBTP), and a normal take's
    // stays under -1 dBTP.
    let second = 48_000;
    assert!(true_peak(&clipped[..second]) > 1.0);
    assert!(true_peak(&normal[..second]) < 0.89);
}

/// The highest peak of `x` four times oversampled (windowed-sinc
/// interpolation over 32 samples): its true peak, as BS.1770 measures it.
fn true_peak(x: &[f32]) -> f64 {
    const HALF: i64 = 16;
    let tap = |t: f64| {
        let sinc = if t == 0.0 {
            1.0
        } else {
            (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t)
        };
        let hann = 0.5 + 0.5 * (std::f64::consts::PI * t / (HALF as f64 + 1.0)).cos();
        sinc * hann
    };
    let taps: Vec<Vec<f64>> = (1..4)
        .map(|k| {
            (-HALF + 1..=HALF)
                .map(|j| tap(f64::from(k) / 4.0 - j as f64))
                .collect()
        })
        .collect();
    let mut peak = f64::from(self::peak(x));
    for n in HALF as usize..x.len() - HALF as usize {
        for phase in &taps {
            let v: f64 = (-HALF + 1..=HALF)
                .zip(phase)
                .map(|(j, t)| f64::from(x[(n as i64 + j) as usize]) * t)
                .sum();
            peak = peak.max(v.abs());
        }
    }
    peak
}

#[test]
fn a_decoder_hears_silence_where_the_take_is_silent() {
    let fixed = length(20, 20);
    let head = Take::new(ID, TakeKind::SilentHead, fixed);
    let decoded = decode(head.mp3());
    let silent = head.silent_frames() as usize * 1152;
    assert!(
        decoded[..silent].iter().all(|&s| s == 0.0),
        "digital silence"
    );
    assert!(rms_db(&decoded[silent + 1152..]) > -30.0, "then music");

    let tail = Take::new(ID, TakeKind::SilentTail, length(25, 25));
    let decoded = decode(tail.mp3());
    let music = (tail.frames() - tail.silent_frames()) as usize * 1152;
    assert!(rms_db(&decoded[..music]) > -30.0, "music first");
    // The first silent frame still carries the music's last overlap.
    let after = &decoded[music + 1152..];
    assert!(after.iter().all(|&s| s == 0.0), "then digital silence");
    assert!(peak(&decoded[music..music + 1152]) < 0.5);
}
