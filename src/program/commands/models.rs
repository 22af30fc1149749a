//! `batchgen models`: the model catalogue as a run would use it (the
//! built-in entries, `--models` / `BATCHGEN_MODELS`, `--extra-model`), per
//! provider, with where each entry came from.

use std::fmt::Write as _;
use std::io::Write as _;

use super::super::cli::ModelsArgs;
use super::super::exit::{Error, ExitCode};
use crate::job::Provider;
use crate::job::models::{Catalogue, Limits, Offer};

/// Prints the catalogue: every provider, or the one `--provider` names.
///
/// # Errors
/// A models file that cannot be read or is malformed (exit 78).
pub fn print(args: &ModelsArgs) -> Result<ExitCode, Error> {
    let rules = args.models.rules()?;
    let catalogue = rules.catalogue();
    let providers: Vec<Provider> = match args.models.provider.provider {
        Some(p) => vec![p],
        None => Provider::ALL.to_vec(),
    };
    let text = if args.json {
        json(catalogue, &providers)
    } else {
        let mut out = String::new();
        for provider in providers {
            table(&mut out, catalogue, provider);
        }
        out
    };
    // A closed pipe (`batchgen models | head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::Success)
}

/// One provider's section: what a job naming no model sends, how lengths
/// are counted, then a row per model it takes.
fn table(out: &mut String, catalogue: &Catalogue, provider: Provider) {
    let host = catalogue.provider(provider);
    let unset = match host.default.as_deref().and_then(|d| catalogue.find(d)) {
        Some(m) => {
            let wire = m.offers.get(&provider).map_or(m.name.as_str(), |o| &o.wire);
            format!("sent as {} ({wire})", m.name)
        }
        None => "left out: the host applies its own default".to_owned(),
    };
    let _ = writeln!(out, "{provider} ({})", provider.describe());
    let _ = writeln!(out, "  a job naming no model: {unset}");
    let _ = writeln!(out, "  lengths counted in {}", host.counts.unit());
    if let Some(credits) = host.credits {
        let _ = writeln!(out, "  about {credits} credits per request");
    }
    let rows: Vec<[String; 5]> = catalogue
        .models()
        .iter()
        .filter_map(|m| {
            let offer = m.offers.get(&provider)?;
            let limits = offer.limits.over_all(host.limits, m.limits);
            Some([
                names(&m.name, &m.aliases),
                offer.wire.clone(),
                if offer.listed { "listed" } else { "not listed" }.to_owned(),
                limits_text(&limits),
                from(offer, &m.origin.to_string()),
            ])
        })
        .collect();
    let header = ["model", "sent as", "now", "limits", "from"].map(str::to_owned);
    let mut widths = [0; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::from(" ");
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, " {cell:<w$} ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out);
}

/// A model's name and its aliases.
fn names(name: &str, aliases: &[String]) -> String {
    match aliases {
        [] => name.to_owned(),
        _ => format!("{name} (also {})", aliases.join(", ")),
    }
}

/// `prompt 5000 · style 1000 · title 100 · description 400`.
fn limits_text(limits: &Limits) -> String {
    let parts = [
        ("prompt", limits.prompt),
        ("style", limits.style),
        ("title", limits.title),
        ("description", limits.description),
        ("outside custom mode", limits.non_custom_prompt),
    ];
    parts
        .iter()
        .filter_map(|(name, n)| Some(format!("{name} {}", (*n)?)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Where an offer came from, and its price where known.
fn from(offer: &Offer, model_origin: &str) -> String {
    let origin = offer.origin.to_string();
    let mut text = if origin == model_origin {
        origin
    } else {
        format!("{model_origin}; here {origin}")
    };
    if let Some(credits) = offer.credits {
        let _ = write!(text, "; {credits} credits");
    }
    text
}

/// The providers' settings and every model they take, as JSON.
fn json(catalogue: &Catalogue, providers: &[Provider]) -> String {
    let providers: serde_json::Map<String, serde_json::Value> = providers
        .iter()
        .map(|p| {
            let host = catalogue.provider(*p);
            let models: Vec<serde_json::Value> = catalogue
                .models()
                .iter()
                .filter_map(|m| {
                    let offer = m.offers.get(p)?;
                    Some(serde_json::json!({
                        "name": m.name,
                        "aliases": m.aliases,
                        "wire": offer.wire,
                        "listed": offer.listed,
                        "limits": offer.limits.over_all(host.limits, m.limits),
                        "credits": offer.credits.or(host.credits),
                        "source": m.source,
                        "from": offer.origin,
                    }))
                })
                .collect();
            let value = serde_json::json!({
                "default": host.default,
                "counts": host.counts,
                "limits": host.limits,
                "credits": host.credits,
                "source": host.source,
                "models": models,
            });
            (p.name().to_owned(), value)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({
        "format": crate::job::models::FORMAT,
        "providers": providers,
    }))
    .expect("the catalogue serializes");
    text.push('\n');
    text
}
