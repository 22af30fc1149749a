//! An error and its causes on one line, the one way batchgen prints them.
//!
//! `error sending request` alone says nothing; its sources say why
//! (`tcp connect error: Connection refused`). Many errors also repeat a
//! source in their own text (`cannot write x: No space left on device`
//! over the same `io::Error`), so a source already said is not said again.

use std::error::Error;

/// `e`, then each source not already contained in what came before,
/// joined with `": "`.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(String, #[source] Option<Box<Layer>>);

    fn layers(texts: &[&str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |inner, text| {
                Some(Layer(text.to_string(), inner.map(Box::new)))
            })
            .unwrap()
    }

    #[test]
    fn each_cause_is_said_once() {
        assert_eq!(
            chain(&layers(&[
                "error sending request",
                "client error (Connect)",
                "Connection refused"
            ])),
            "error sending request: client error (Connect): Connection refused"
        );
        assert_eq!(
            chain(&layers(&["cannot write x: disk full", "disk full"])),
            "cannot write x: disk full"
        );
        assert_eq!(chain(&layers(&["alone"])), "alone");
    }
}
