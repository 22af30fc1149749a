//! An MP3 from any reader to interleaved f32 samples, one packet at a
//! time, the file's bytes hashed as they pass.
//!
//! The source is read once, front to back, never seeked: a download in
//! flight reads the same as a file. A leading ID3v2 tag (or several) is
//! skipped here by its header's size rather than parsed: the tag is not
//! audio, a cover image in it can hold bytes that look like an MPEG frame,
//! and a tag another tool wrote oddly must not make a good take
//! unmeasurable. What follows goes to symphonia's MP3 reader with gapless
//! decoding on (the LAME tag's encoder delay and padding are trimmed).
//!
//! Decoding errors follow symphonia's advice: a packet that does not
//! decode is skipped and counted; the end of the data, where a file cut
//! short ends mid-frame, is the end of the stream.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use symphonia::core::audio::{SampleBuffer, SignalSpec};
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::AudioError;

/// The bytes read so far: their hash and their count.
#[derive(Default)]
struct Hashed {
    sha: Sha256,
    bytes: u64,
}

/// A reader that hashes what passes through it.
struct Tap<R> {
    inner: R,
    seen: Arc<Mutex<Hashed>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.sha.update(&buf[..n]);
        seen.bytes += n as u64;
        Ok(n)
    }
}

/// A decoding MP3: its format, then its samples packet by packet.
pub struct PcmStream {
    file: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    spec: SignalSpec,
    buf: Option<SampleBuffer<f32>>,
    seen: Arc<Mutex<Hashed>>,
    errors: u64,
}

impl std::fmt::Debug for PcmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcmStream")
            .field("file", &self.file)
            .field("sample_rate", &self.spec.rate)
            .field("channels", &self.spec.channels.count())
            .field("decode_errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl PcmStream {
    /// Opens the MP3 at `path`.
    ///
    /// # Errors
    /// As [`PcmStream::new`], or the file cannot be opened.
    pub fn open(path: &Path) -> Result<PcmStream, AudioError> {
        let file = std::fs::File::open(path).map_err(|source| AudioError::Read {
            file: path.to_owned(),
            source,
        })?;
        PcmStream::new(file, path)
    }

    /// Starts decoding the MP3 read from `reader`; `name` is what errors
    /// call it. Reads up to its first audio frame.
    ///
    /// # Errors
    /// [`AudioError::NotMp3`] when no MPEG layer III stream is found (an
    /// empty file, text, an image, a file cut before its first whole
    /// frame); [`AudioError::Read`] on an I/O error; [`AudioError::Decode`]
    /// when the stream's parameters are unusable.
    pub fn new<R>(reader: R, name: &Path) -> Result<PcmStream, AudioError>
    where
        R: Read + Send + Sync + 'static,
    {
        let file = name.to_owned();
        let seen = Arc::new(Mutex::new(Hashed::default()));
        let mut tap = Tap {
            inner: reader,
            seen: Arc::clone(&seen),
        };
        let head = skip_id3v2(&mut tap).map_err(|source| AudioError::Read {
            file: file.clone(),
            source,
        })?;
        let source = ReadOnlySource::new(io::Cursor::new(head).chain(tap));
        let stream = MediaSourceStream::new(Box::new(source), Default::default());
        let mut hint = Hint::new();
        hint.with_extension("mp3");
        let options = FormatOptions {
            enable_gapless: true,
            ..Default::default()
        };
        let probed = symphonia::default::get_probe()
            .format(&hint, stream, &options, &MetadataOptions::default())
            .map_err(|e| not_mp3(&file, &seen, e))?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioError::NotMp3 {
                file: file.clone(),
                reason: "no audio track".to_owned(),
            })?;
        let params = track.codec_params.clone();
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| AudioError::Decode {
                file: file.clone(),
                reason: e.to_string(),
            })?;
        let (Some(rate), Some(channels)) = (params.sample_rate, params.channels) else {
            return Err(AudioError::Decode {
                file,
                reason: "no sample rate or channel layout in the first frame".to_owned(),
            });
        };
        Ok(PcmStream {
            file,
            track: track.id,
            format,
            decoder,
            spec: SignalSpec::new(rate, channels),
            buf: None,
            seen,
            errors: 0,
        })
    }

    /// Frames per second.
    pub fn sample_rate(&self) -> u32 {
        self.spec.rate
    }

    /// Channels per frame (1 or 2 for an MP3).
    pub fn channels(&self) -> u16 {
        self.spec.channels.count() as u16
    }

    /// What errors call the stream.
    pub fn name(&self) -> &Path {
        &self.file
    }

    /// Packets skipped so far because they did not decode.
    pub fn decode_errors(&self) -> u64 {
        self.errors
    }

    /// The next packet's samples, interleaved (channel after channel,
    /// frame after frame); `None` at the end of the stream. A packet that
    /// does not decode, or decodes to another format than the stream's
    /// (junk that looked like a frame), is skipped and counted.
    ///
    /// # Errors
    /// [`AudioError::Read`] on an I/O error other than the end of the
    /// data; [`AudioError::Decode`] when the decoder gives up on the
    /// stream as a whole.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, AudioError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(packet) => packet,
                Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(SymphoniaError::IoError(source)) => {
                    return Err(AudioError::Read {
                        file: self.file.clone(),
                        source,
                    });
                }
                Err(SymphoniaError::DecodeError(_)) => {
                    self.errors += 1;
                    continue;
                }
                Err(e) => return Err(self.error(e)),
            };
            if packet.track_id() != self.track {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                    self.errors += 1;
                    continue;
                }
                Err(e) => return Err(self.error(e)),
            };
            if *decoded.spec() != self.spec {
                self.errors += 1;
                continue;
            }
            if decoded.frames() == 0 {
                continue;
            }
            let needed = decoded.capacity() as u64;
            let buf = match &mut self.buf {
                Some(buf) if buf.capacity() >= decoded.frames() * self.spec.channels.count() => buf,
                slot => slot.insert(SampleBuffer::new(needed, self.spec)),
            };
            buf.copy_interleaved_ref(decoded);
            let buf = self.buf.as_ref().expect("filled above");
            return Ok(Some(buf.samples()));
        }
    }

    /// Reads what is left of the source (past the last frame: an ID3v1
    /// tag, junk) and returns the SHA-256 (hex) and length of every byte
    /// the source held.
    ///
    /// # Errors
    /// [`AudioError::Read`] if the rest cannot be read.
    pub fn finish(self) -> Result<(String, u64), AudioError> {
        let mut rest = self.format.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|source| AudioError::Read {
            file: self.file.clone(),
            source,
        })?;
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        Ok((hex::encode(seen.sha.clone().finalize()), seen.bytes))
    }

    /// `e` as an [`AudioError::Decode`] of this stream.
    pub fn error(&self, e: impl std::fmt::Display) -> AudioError {
        AudioError::Decode {
            file: self.file.clone(),
            reason: e.to_string(),
        }
    }
}

/// Why the probe found no MP3, as an error naming `file`: an I/O error
/// other than the end of the data is a read error; anything else (no
/// frame sync within the probe's reach, a stream cut before its first
/// whole frame) means the bytes are not an MP3.
fn not_mp3(file: &Path, seen: &Mutex<Hashed>, e: SymphoniaError) -> AudioError {
    let bytes = seen.lock().unwrap_or_else(PoisonError::into_inner).bytes;
    let reason = match e {
        SymphoniaError::IoError(source) if source.kind() != io::ErrorKind::UnexpectedEof => {
            return AudioError::Read {
                file: file.to_owned(),
                source,
            };
        }
        _ if bytes == 0 => "the file is empty".to_owned(),
        SymphoniaError::IoError(_) => {
            format!("{bytes} bytes end before a whole MPEG audio frame")
        }
        SymphoniaError::Unsupported(_) => {
            format!("no MPEG audio frame in its first {bytes} bytes")
        }
        other => other.to_string(),
    };
    AudioError::NotMp3 {
        file: file.to_owned(),
        reason,
    }
}

/// Consumes the ID3v2 tags at the start of `reader` (their header says
/// their size) and returns the bytes read past them: up to 10 bytes that
/// turned out not to be a tag header, which belong to the audio.
fn skip_id3v2(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    loop {
        let mut head = Vec::with_capacity(10);
        reader.by_ref().take(10).read_to_end(&mut head)?;
        let Some(size) = id3v2_size(&head) else {
            return Ok(head);
        };
        let skipped = io::copy(&mut reader.by_ref().take(size), &mut io::sink())?;
        if skipped < size {
            return Ok(Vec::new());
        }
    }
}

/// The size of the ID3v2 tag whose 10-byte header is `head`, after the
/// header (footer included); `None` if `head` is not a tag header.
pub(super) fn id3v2_size(head: &[u8]) -> Option<u64> {
    let [b'I', b'D', b'3', major, _, flags, s @ ..] = head else {
        return None;
    };
    let size: [u8; 4] = s.try_into().ok()?;
    if *major == 0xFF || size.iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let body = size.iter().fold(0u64, |acc, b| (acc << 7) | u64::from(*b));
    let footer = if flags & 0x10 != 0 { 10 } else { 0 };
    Some(body + footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id3v2_headers_are_sized_and_anything_else_is_not() {
        assert_eq!(id3v2_size(b"ID3\x04\x00\x00\x00\x00\x02\x01"), Some(257));
        assert_eq!(id3v2_size(b"ID3\x04\x00\x10\x00\x00\x00\x05"), Some(15));
        assert_eq!(id3v2_size(b"ID3\x04\x00\x00\x00\x00\x80\x01"), None);
        assert_eq!(
            id3v2_size(b"\xff\xfb\x90\x64\x00\x00\x00\x00\x00\x00"),
            None
        );
        assert_eq!(id3v2_size(b"ID3"), None);
    }

    #[test]
    fn tags_are_skipped_and_other_bytes_kept() {
        let mut bytes =
            b"ID3\x04\x00\x00\x00\x00\x00\x03abcID3\x03\x00\x00\x00\x00\x00\x01z".to_vec();
        bytes.extend_from_slice(b"\xff\xfbaudio");
        let mut reader = io::Cursor::new(bytes);
        let head = skip_id3v2(&mut reader).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!([head, rest].concat(), b"\xff\xfbaudio");
        let mut short = io::Cursor::new(b"<!DOCTYPE html>".to_vec());
        assert_eq!(skip_id3v2(&mut short).unwrap(), b"<!DOCTYPE ");
    }
}
