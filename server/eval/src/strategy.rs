//! The parts of a strategy file (`strategies/*.toml`) that evaluation needs: each facet's id and
//! `label_tags` (the ground truth of Tasks C and E), plus the plain-words `name`, `description` and
//! `keywords` that the BM25 baseline queries with. Every other field is ignored, so this reader
//! never has to change when the engine's strategy format grows.

use std::path::Path;

use serde::Deserialize;

use crate::EvalError;

/// One facet of a strategy, as evaluation sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelFacet {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The site's tags that mark a thread as belonging to this facet. Never shown to the engine.
    #[serde(default)]
    pub label_tags: Vec<String>,
}

impl LabelFacet {
    /// The facet's BM25 query: `name. description` (keywords appended when there are any).
    pub fn query_text(&self) -> String {
        let mut text = format!("{}. {}", self.name, self.description);
        for keyword in &self.keywords {
            text.push(' ');
            text.push_str(keyword);
        }
        text
    }
}

/// A strategy reduced to its facets.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelStrategy {
    #[serde(default)]
    pub facets: Vec<LabelFacet>,
}

impl LabelStrategy {
    /// Parses strategy TOML text; unknown fields are ignored.
    pub fn parse(text: &str) -> Result<LabelStrategy, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads and parses a strategy file.
    pub fn load(path: &Path) -> Result<LabelStrategy, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        LabelStrategy::parse(&text).map_err(|error| EvalError::Strategy {
            path: path.to_path_buf(),
            message: error.to_string(),
        })
    }

    /// The whole strategy as one BM25 query (Task C's AUC and Task E): every facet's
    /// [`query_text`](LabelFacet::query_text), one per line.
    pub fn query_text(&self) -> String {
        self.facets
            .iter()
            .map(LabelFacet::query_text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_facets_and_ignores_other_fields() {
        let strategy = LabelStrategy::parse(
            r#"
            name = "S"
            mission = "m"
            [[facets]]
            id = "a"
            kind = "job"
            name = "Alpha"
            description = "Does a."
            weight = 2.0
            label_tags = ["x", "y"]
            [[facets]]
            id = "b"
            name = "Beta"
            description = "Does b."
            keywords = ["k1", "k two"]
            "#,
        )
        .unwrap();
        assert_eq!(strategy.facets.len(), 2);
        assert_eq!(strategy.facets[0].label_tags, vec!["x", "y"]);
        assert!(strategy.facets[1].label_tags.is_empty());
        assert_eq!(strategy.facets[0].query_text(), "Alpha. Does a.");
        assert_eq!(strategy.facets[1].query_text(), "Beta. Does b. k1 k two");
        assert_eq!(
            strategy.query_text(),
            "Alpha. Does a.\nBeta. Does b. k1 k two"
        );
    }
}
