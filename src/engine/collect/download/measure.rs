//! Measuring a take as soon as it is whole: on a blocking thread, at most
//! one per core at once, so the async threads that poll and download
//! never wait on a decoder, and a catalog of thousands never runs more
//! decoders than the machine has cores.
//!
//! A take is measured before it is tagged (its `.part`, under the final
//! file's name in any message), so its ReplayGain values go into the one
//! tag written before the rename, and the size the catalog records is the
//! file's last. A file already in place that was never measured (an
//! earlier release's download) is measured there, and its ReplayGain
//! frames written by a whole-file atomic rewrite
//! ([`crate::audio::write_replaygain`]): the audio is untouched.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::audio::{self, SilenceSettings};
use crate::files::catalog::Measured;
use crate::settings::quality::{Gate, QualitySettings};

/// How takes are measured and judged (`collect`'s `--no-measure` leaves
/// it out).
#[derive(Debug, Clone, Default)]
pub struct MeasureConfig {
    /// The quality rules set above the state store's: `collect`'s flags,
    /// or the manifest's `[quality]` for `batchgen MANIFEST --wait`. The
    /// rules in force are these, then the store's
    /// ([`crate::files::state::Catalog::quality`]), then the defaults.
    pub quality: QualitySettings,
    pub silence: SilenceSettings,
}

/// Runs measurements, at most one per core at once, and knows the rules
/// in force.
pub(super) struct Measurer {
    pub gate: Gate,
    silence: SilenceSettings,
    permits: Arc<Semaphore>,
}

impl Measurer {
    pub fn new(config: &MeasureConfig, gate: Gate) -> Measurer {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Measurer {
            gate,
            silence: config.silence,
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Measures the MP3 at `path`, naming it `name` in any message.
    pub async fn measure(&self, path: &Path, name: &Path) -> Measured {
        let Ok(_permit) = self.permits.acquire().await else {
            return Measured::Unreadable("measuring stopped".into());
        };
        let (path, name) = (path.to_owned(), name.to_owned());
        let silence = self.silence;
        let measured = tokio::task::spawn_blocking(move || {
            let file =
                crate::util::fsx::open_in_place(&path, std::fs::OpenOptions::new().read(true))
                    .map_err(|e| format!("cannot read {}: {e}", name.display()))?;
            audio::measure_reader(file, &name, &silence).map_err(|e| e.to_string())
        })
        .await;
        match measured {
            Ok(Ok(m)) => Measured::Audio(m),
            Ok(Err(why)) => Measured::Unreadable(why),
            Err(e) => Measured::Unreadable(format!("the measurement failed: {e}")),
        }
    }

    /// Measures the file at `path`, already in place and never measured,
    /// and writes its ReplayGain frames into it; the measurement and the
    /// file's size after. A file whose tag cannot be rewritten keeps its
    /// bytes (the measurement stands; the message is logged).
    pub async fn measure_in_place(&self, path: &Path) -> (Measured, Option<u64>) {
        let measured = self.measure(path, path).await;
        let Measured::Audio(m) = &measured else {
            return (measured, None);
        };
        if m.integrated_lufs.is_none() {
            return (measured, None);
        }
        let (p, m2) = (path.to_owned(), m.clone());
        let rewritten = tokio::task::spawn_blocking(move || {
            audio::write_replaygain(&p, &m2)?;
            std::fs::metadata(&p)
                .map(|meta| meta.len())
                .map_err(|source| audio::AudioError::Read {
                    file: p.clone(),
                    source,
                })
        })
        .await;
        let why = match rewritten {
            Ok(Ok(size)) => return (measured, Some(size)),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!("cannot write the ReplayGain tags: {why}");
        (measured, None)
    }
}
