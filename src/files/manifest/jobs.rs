//! The second pass: the jobs of a validated manifest handed to a run, one
//! at a time.
//!
//! `[[job]]` tables were kept as jobs by the first pass; a CSV was not
//! kept at all, so it is read again here, each row checked again in case
//! the file changed after it was validated (then the run stops on a
//! diagnostic that says so). Separate from the first pass
//! ([`super::first_pass`]) because it runs later, once per run, and holds
//! nothing but the reader of the row it is on.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::from_csv::CsvRows;
use super::open::open;
use super::{ManifestError, Rows};
use crate::job::{Job, JobFields, Rules};

/// Where a manifest's rows live after validation.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// `[[job]]` tables, already jobs.
    Inline(Arc<[Job]>),
    /// A CSV file, read again for each pass.
    Csv {
        path: PathBuf,
        defaults: Box<JobFields>,
        rules: Rules,
    },
}

/// The jobs of a validated manifest, in manifest order, one at a time.
pub struct Jobs {
    inner: JobsInner,
}

enum JobsInner {
    Inline {
        jobs: Arc<[Job]>,
        next: usize,
    },
    Csv {
        path: PathBuf,
        csv: Option<Box<CsvRows<File>>>,
        scratch: Box<Rows>,
    },
}

impl Jobs {
    pub(super) fn new(source: &Source) -> Result<Jobs, ManifestError> {
        let inner = match source {
            Source::Inline(jobs) => JobsInner::Inline {
                jobs: Arc::clone(jobs),
                next: 0,
            },
            Source::Csv {
                path,
                defaults,
                rules,
            } => {
                let mut scratch = Box::new(Rows::checking(
                    (**defaults).clone(),
                    Vec::new(),
                    rules.clone(),
                ));
                let csv = CsvRows::open(path, open(path)?, &mut scratch).map(Box::new);
                JobsInner::Csv {
                    path: path.clone(),
                    csv,
                    scratch,
                }
            }
        };
        Ok(Jobs { inner })
    }
}

impl Iterator for Jobs {
    type Item = Result<Job, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            JobsInner::Inline { jobs, next } => {
                let job = jobs.get(*next)?.clone();
                *next += 1;
                Some(Ok(job))
            }
            JobsInner::Csv { path, csv, scratch } => {
                let row = csv.as_mut()?.next_row(scratch);
                let job = row
                    .and_then(|(line, fields, unread)| scratch.build(path, line, fields, unread));
                if scratch.diagnostics.is_empty() {
                    return job.map(Ok);
                }
                // Valid a moment ago, not now: the file changed under the run.
                *csv = None;
                let mut diagnostics = std::mem::take(&mut scratch.diagnostics);
                for d in &mut diagnostics {
                    d.message = format!("{} (the file changed after it was validated)", d.message);
                }
                Some(Err(ManifestError::Invalid { diagnostics }))
            }
        }
    }
}
