//! Writes a large, valid, varied manifest for the benchmark (`examples/bench.rs`).
//!
//! ```sh
//! cargo run --release --example gen_manifest -- --rows 1000000 --format csv --out /tmp/m.csv [--seed 7]
//! ```
//!
//! Why it looks like this:
//! - **Streaming.** Rows are generated and written one at a time through a
//!   buffered writer, so a 10^6-row file costs no memory here and the bench
//!   measures batchgen, not the generator.
//! - **Varied.** Every mode of the API appears (description, description +
//!   instrumental, custom lyrics, custom instrumental), prompts are 100–400
//!   characters, and some cells hold quoted commas, quotes and newlines, so
//!   the CSV and TOML parsers do the work real manifests make them do.
//! - **Valid.** Every row passes `batchgen validate`: ids are unique
//!   (`job-0000001`…), lengths are under every model's limits.
//! - **Repeatable.** A small seeded PRNG (splitmix64) instead of a crate API,
//!   so the same `--seed` gives the same bytes on every machine.
//!
//! The logic is in [`write_manifest`] so the bench can call it in-process.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Manifest formats the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Toml,
}

const MODELS: &[&str] = &[
    "chirp-v3.5",
    "chirp-v3-5",
    "chirp-v4-0",
    "chirp-v4-5",
    "chirp-v4-5-plus",
    "chirp-v5-5",
];
const WORDS: &[&str] = &[
    "rain",
    "neon",
    "harbor",
    "midnight",
    "river",
    "glass",
    "summer",
    "static",
    "engine",
    "velvet",
    "ember",
    "lantern",
    "paper",
    "ocean",
    "winter",
    "signal",
    "garden",
    "thunder",
    "satellite",
    "morning",
    "city",
    "dust",
    "silver",
    "echo",
    "highway",
    "candle",
    "orbit",
    "meadow",
];
const STYLES: &[&str] = &[
    "lofi, mellow, 80 bpm",
    "synthwave, 100 bpm",
    "indie pop, jangly guitar, 120 bpm",
    "neo-soul, rhodes, laid-back",
    "ambient, pads, slow",
    "drum and bass, 174 bpm",
    "folk, acoustic, fingerpicked",
];
const CSV_HEADER: [&str; 8] = [
    "id",
    "prompt",
    "title",
    "style",
    "custom_mode",
    "make_instrumental",
    "model",
    "tags",
];

/// splitmix64: tiny, seedable, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// One generated job; `None` cells are left unset.
struct Row {
    id: String,
    prompt: Option<String>,
    title: Option<String>,
    style: Option<String>,
    custom_mode: bool,
    make_instrumental: bool,
    model: &'static str,
    tags: Option<String>,
}

/// Text of `min..=max` characters made of words, with an occasional comma,
/// quote or line break (lyrics have them).
fn text(rng: &mut Rng, min: usize, max: usize) -> String {
    let target = min + rng.below(max - min + 1);
    let mut s = String::with_capacity(target + 16);
    while s.len() < target {
        if !s.is_empty() {
            s.push_str(match rng.below(20) {
                0 => ", ",
                1 => "\n",
                2 => " \"",
                _ => " ",
            });
        }
        s.push_str(rng.pick(WORDS));
    }
    s.truncate(target);
    // A cell must not end in whitespace only, and must not be blank.
    s.trim_end().to_owned()
}

fn row(rng: &mut Rng, i: u64) -> Row {
    let mode = rng.below(4);
    let custom_mode = mode >= 2;
    let make_instrumental = mode % 2 == 1;
    let title = custom_mode.then(|| {
        let t = text(rng, 8, 40);
        t.replace('\n', " ")
    });
    let style = custom_mode.then(|| rng.pick(STYLES).to_owned());
    // Custom instrumental needs no prompt; give one to half of them anyway.
    let prompt =
        (!(custom_mode && make_instrumental) || rng.below(2) == 0).then(|| text(rng, 100, 400));
    let tags = (rng.below(5) == 0).then(|| "no autotune, no screaming".to_owned());
    Row {
        id: format!("job-{i:07}"),
        prompt,
        title,
        style,
        custom_mode,
        make_instrumental,
        model: MODELS[rng.below(MODELS.len())],
        tags,
    }
}

/// Writes `rows` jobs to `out` in `format`, one row at a time.
///
/// # Errors
/// When writing fails.
pub fn write_manifest(out: impl Write, rows: u64, format: Format, seed: u64) -> io::Result<()> {
    let mut rng = Rng(seed);
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, out));
            w.write_record(CSV_HEADER)?;
            for i in 0..rows {
                let r = row(&mut rng, i);
                let b = |v: bool| if v { "true" } else { "false" };
                w.write_record([
                    r.id.as_str(),
                    r.prompt.as_deref().unwrap_or(""),
                    r.title.as_deref().unwrap_or(""),
                    r.style.as_deref().unwrap_or(""),
                    b(r.custom_mode),
                    b(r.make_instrumental),
                    r.model,
                    r.tags.as_deref().unwrap_or(""),
                ])?;
            }
            w.flush()
        }
        Format::Toml => {
            let mut w = BufWriter::with_capacity(1 << 16, out);
            writeln!(w, "# generated by examples/gen_manifest.rs (seed {seed})")?;
            for i in 0..rows {
                let r = row(&mut rng, i);
                writeln!(w, "\n[[job]]")?;
                writeln!(w, "id = {}", toml_str(&r.id))?;
                for (key, value) in [
                    ("prompt", &r.prompt),
                    ("title", &r.title),
                    ("style", &r.style),
                    ("tags", &r.tags),
                ] {
                    if let Some(v) = value {
                        writeln!(w, "{key} = {}", toml_str(v))?;
                    }
                }
                writeln!(w, "custom_mode = {}", r.custom_mode)?;
                writeln!(w, "make_instrumental = {}", r.make_instrumental)?;
                writeln!(w, "model = {}", toml_str(r.model))?;
            }
            w.flush()
        }
    }
}

/// A TOML basic string, escaped by the `toml` crate (style rule 7: real
/// formats through real libraries).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn usage() -> ! {
    eprintln!("usage: gen_manifest --rows N --format csv|toml --out PATH [--seed S]");
    std::process::exit(2);
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut rows, mut format, mut out, mut seed) = (None, None, None, 0u64);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--rows" => rows = value.parse().ok(),
            "--format" => {
                format = match value.as_str() {
                    "csv" => Some(Format::Csv),
                    "toml" => Some(Format::Toml),
                    _ => usage(),
                }
            }
            "--out" => out = Some(PathBuf::from(value)),
            "--seed" => seed = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let (Some(rows), Some(format), Some(out)) = (rows, format, out) else {
        usage()
    };
    write_manifest(std::fs::File::create(&out)?, rows, format, seed)
}
