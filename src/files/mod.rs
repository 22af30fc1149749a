//! Files on disk: the manifest a person writes ([`manifest`]), the state
//! store where runs and collectors keep what they know ([`state`], SQLite),
//! and the reports written from it: the results file ([`results`]) and the
//! clip catalog ([`catalog`]); where a catalog stands, read from the store
//! ([`status`]); and what a person opens to look and listen: the catalog
//! page ([`page`]) and the playlist ([`playlist`]).
//!
//! # What this layer owns
//! What is on disk and what it means: the formats and their versions, the
//! line numbers in every diagnostic, the import rules for an earlier
//! release's files, and the safe, atomic way each file is written.
//! Nothing here sends a request, sleeps or picks an exit code: each module
//! returns its own error ([`manifest::ManifestError`],
//! [`results::ResultsError`], [`catalog::CatalogError`]), and the program
//! decides what each one means to the process.
//!
//! # What it may use
//! Only lower layers: [`crate::util`] (safe file creation, the redaction
//! rule), [`crate::job`] (what a row must be, job identity and
//! fingerprints), [`crate::settings`] (a manifest's `[run]` table is
//! settings), and [`crate::api::feed`] for the clip types the catalog's
//! rows are made of (a catalog row *is* a clip the wire reported). Within
//! the layer, the arrows run one way: `page` → `playlist`, and `page`,
//! `status` → `state` → `catalog` → `results` → `manifest` (the results
//! file quotes `id`s in its messages as a manifest diagnostic does,
//! [`manifest::quoted`]); `manifest` uses none of them.
//!
//! # Why the two reports share their mechanics
//! Both are CSV files a person may open, edit, cut short or symlink, and
//! the risks are the same: a damaged file read whole into memory, a
//! half-written file after a kill, a planted link, a spreadsheet running a
//! server's text as a formula. So the catalog uses the results file's
//! answers rather than its own copies: the same [`results::Lock`] (taken
//! by `collect` and `receive`), the `results::Bounded` reader,
//! [`results::cell`]'s defusing, and the atomic rewrite
//! ([`crate::util::fsx::AtomicFile`]). Its errors are the results file's
//! under the catalog's own names, so a message points at `--catalog`, not
//! `--out`.

pub mod catalog;
pub mod manifest;
pub mod page;
pub mod playlist;
pub mod results;
pub mod state;
pub mod status;
