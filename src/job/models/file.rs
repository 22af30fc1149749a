//! Reading a models file (the built-in one, or a user's) onto a
//! [`Catalogue`]: its format is documented at the top of `built_in.toml`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Catalogue, Counting, FORMAT, Limits, Model, ModelsError, Offer, Origin, SHORT_FORM, everywhere,
};
use crate::job::{Provider, parse_model_name};

impl Catalogue {
    /// This catalogue with the file `text` (read from `path`) over it.
    pub(super) fn with_text(
        &self,
        text: &str,
        path: &Path,
        built_in: bool,
    ) -> Result<Catalogue, ModelsError> {
        let reading = Reading {
            text,
            path,
            built_in,
        };
        let file: FileDe = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => reading.at(span, e.message().to_owned()),
            None => ModelsError {
                path: path.to_owned(),
                line: None,
                message: e.message().to_owned(),
            },
        })?;
        reading.check_format(file.format.as_ref())?;
        let mut out = self.clone();
        for (name, table) in &file.provider {
            reading.apply_provider(&mut out, name, table)?;
        }
        for entry in &file.model {
            reading.apply_model(&mut out, entry)?;
        }
        for (name, table) in &file.provider {
            reading.check_default(&out, name, table)?;
        }
        out.settle();
        Ok(out)
    }
}

/// A models file being read: where its errors and entries come from.
struct Reading<'a> {
    text: &'a str,
    path: &'a Path,
    built_in: bool,
}

impl Reading<'_> {
    /// An error at `span` of the file, by its line.
    fn at(&self, span: Range<usize>, message: String) -> ModelsError {
        let start = span.start.min(self.text.len());
        ModelsError {
            path: self.path.to_owned(),
            line: Some(self.text[..start].matches('\n').count() + 1),
            message,
        }
    }

    /// Where an entry at `span` comes from.
    fn origin(&self, span: Range<usize>) -> Origin {
        match self.built_in {
            true => Origin::BuiltIn,
            false => Origin::File {
                path: self.path.to_owned(),
                line: self.text[..span.start].matches('\n').count() + 1,
            },
        }
    }

    /// A format this release reads, or none (the first).
    fn check_format(&self, format: Option<&Spanned<u32>>) -> Result<(), ModelsError> {
        match format {
            Some(f) if *f.get_ref() > FORMAT => Err(self.at(
                f.span(),
                format!(
                    "format {} is newer than this batchgen reads ({FORMAT}): update batchgen",
                    f.get_ref()
                ),
            )),
            Some(f) if *f.get_ref() == 0 => {
                Err(self.at(f.span(), format!("format 0 is not one; write {FORMAT}")))
            }
            _ => Ok(()),
        }
    }

    /// A `[provider.NAME]` table over the provider's settings.
    fn apply_provider(
        &self,
        out: &mut Catalogue,
        name: &str,
        table: &Spanned<ProviderDe>,
    ) -> Result<(), ModelsError> {
        let span = table.span();
        let provider = Provider::parse(name).map_err(|e| self.at(span.clone(), e))?;
        let table = table.get_ref();
        table.limits.check().map_err(|e| self.at(span.clone(), e))?;
        let slot = out.providers.entry(provider).or_default();
        if let Some(default) = &table.default {
            slot.default = Some(default.clone());
        }
        if let Some(counts) = table.counts {
            slot.counts = counts;
        }
        slot.limits = table.limits.over(slot.limits);
        slot.credits = table.credits.or(slot.credits);
        slot.source = table.source.clone().or(slot.source.take());
        Ok(())
    }

    /// A `[[model]]` entry: a new model, or over the one it names.
    fn apply_model(
        &self,
        out: &mut Catalogue,
        entry: &Spanned<ModelDe>,
    ) -> Result<(), ModelsError> {
        let span = entry.span();
        let entry = entry.get_ref();
        let name = parse_model_name(&entry.name).map_err(|e| self.at(span.clone(), e))?;
        let limits = entry.limits.unwrap_or_default();
        limits.check().map_err(|e| self.at(span.clone(), e))?;
        let origin = self.origin(span.clone());
        let index = out.index.get(&name).copied();
        let mut model = match index {
            Some(i) => out.models[i].clone(),
            None => Model {
                name: name.clone(),
                aliases: Vec::new(),
                limits: SHORT_FORM,
                offers: BTreeMap::new(),
                source: None,
                origin: origin.clone(),
            },
        };
        model.limits = limits.over(model.limits);
        model.source = entry.source.clone().or(model.source.take());
        if index.is_some() {
            model.origin = origin.clone();
        }
        for alias in &entry.aliases {
            let alias = parse_model_name(alias).map_err(|e| self.at(span.clone(), e))?;
            match out.index.get(&alias) {
                Some(&i) if Some(i) != index => {
                    return Err(self.at(
                        span.clone(),
                        format!(
                            "alias {alias:?} already names model {:?}",
                            out.models[i].name
                        ),
                    ));
                }
                _ if alias == name || model.aliases.contains(&alias) => {}
                _ => model.aliases.push(alias),
            }
        }
        match &entry.offers {
            None if index.is_none() => model.offers = everywhere(&name, &origin),
            None => {}
            Some(offers) => self.apply_offers(&mut model, &name, offers, &span, &origin)?,
        }
        match index {
            Some(i) => {
                for alias in &model.aliases {
                    out.index.insert(alias.clone(), i);
                }
                out.models[i] = model;
            }
            None => out.push(model),
        }
        Ok(())
    }

    /// A model's `offers` tables over what it offered; a new offer's wire
    /// name is `name` as the entry wrote it, unless it says otherwise.
    fn apply_offers(
        &self,
        model: &mut Model,
        name: &str,
        offers: &BTreeMap<String, Spanned<OfferDe>>,
        span: &Range<usize>,
        origin: &Origin,
    ) -> Result<(), ModelsError> {
        for (provider, offer) in offers {
            let provider = Provider::parse(provider).map_err(|e| self.at(offer.span(), e))?;
            let offer = offer.get_ref();
            let limits = offer.limits.unwrap_or_default();
            limits.check().map_err(|e| self.at(span.clone(), e))?;
            let slot = model.offers.entry(provider).or_insert_with(|| Offer {
                wire: name.to_owned(),
                listed: true,
                limits: Limits::default(),
                credits: None,
                origin: origin.clone(),
            });
            if let Some(wire) = &offer.wire {
                slot.wire = parse_model_name(wire).map_err(|e| self.at(span.clone(), e))?;
            }
            slot.listed = offer.listed.unwrap_or(slot.listed);
            slot.limits = limits.over(slot.limits);
            slot.credits = offer.credits.or(slot.credits);
            slot.origin = origin.clone();
        }
        Ok(())
    }

    /// A provider's `default` must be a model it takes.
    fn check_default(
        &self,
        out: &Catalogue,
        name: &str,
        table: &Spanned<ProviderDe>,
    ) -> Result<(), ModelsError> {
        let provider = Provider::parse(name).expect("parsed above");
        let Some(default) = &out.provider(provider).default else {
            return Ok(());
        };
        let offered = out
            .find(default)
            .is_some_and(|m| m.offers.contains_key(&provider));
        if offered {
            return Ok(());
        }
        Err(self.at(
            table.span(),
            format!(
                "default {default:?} is not a model {provider} takes: add an `offers.{provider}` to it"
            ),
        ))
    }
}

/// A models file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDe {
    format: Option<Spanned<u32>>,
    #[serde(default)]
    provider: BTreeMap<String, Spanned<ProviderDe>>,
    #[serde(default)]
    model: Vec<Spanned<ModelDe>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderDe {
    default: Option<String>,
    counts: Option<Counting>,
    #[serde(default)]
    limits: Limits,
    credits: Option<u32>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelDe {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    limits: Option<Limits>,
    offers: Option<BTreeMap<String, Spanned<OfferDe>>>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferDe {
    wire: Option<String>,
    listed: Option<bool>,
    limits: Option<Limits>,
    credits: Option<u32>,
}
