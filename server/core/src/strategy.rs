//! The strategy model: what the organisation is hired for, where it competes, what it knows,
//! what it wants said, and the category it belongs to. Validation lives here so that every
//! entry point (API, CLI file, start-up file) enforces the same rules and reports every problem
//! at once.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::domain::Millis;
use crate::error::{CoreError, Violation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FacetKind {
    /// A job customers hire the organisation for: "when …, I want to …, so I can …".
    Job,
    /// Where the organisation is most competitive.
    Advantage,
    /// An area of expertise.
    Expertise,
    /// A key message.
    Message,
    /// The broad product category and how it is used.
    Category,
}

impl FacetKind {
    pub const ALL: [FacetKind; 5] = [
        FacetKind::Job,
        FacetKind::Advantage,
        FacetKind::Expertise,
        FacetKind::Message,
        FacetKind::Category,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FacetKind::Job => "job",
            FacetKind::Advantage => "advantage",
            FacetKind::Expertise => "expertise",
            FacetKind::Message => "message",
            FacetKind::Category => "category",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

pub const MIN_WEIGHT: f64 = 0.0;
pub const MAX_WEIGHT: f64 = 10.0;
pub const MAX_FACETS: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facet {
    pub id: String,
    pub kind: FacetKind,
    pub name: String,
    pub description: String,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Strategy {
    pub name: String,
    pub mission: String,
    pub facets: Vec<Facet>,
    /// Topics to stay away from, in plain words.
    pub exclusions: Vec<String>,
}

/// A stored strategy: every put makes a new version.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyVersion {
    pub version: u32,
    pub created_at: Millis,
    pub strategy: Strategy,
}

impl Strategy {
    /// Checks every rule and returns every violation, with the field path and the fix.
    pub fn validate(&self) -> Result<(), CoreError> {
        let mut violations = Vec::new();
        crate::limits::check_name(
            &mut violations,
            "name",
            &self.name,
            "name the strategy, e.g. \"Quantum SDK and training\"",
        );
        if self.mission.len() > 10_000 {
            violations.push(Violation::new(
                "mission",
                "is longer than 10000 bytes; shorten it",
            ));
        }
        if self.facets.is_empty() {
            violations.push(Violation::new(
                "facets",
                "is empty; add at least one facet (a job, advantage, expertise, message or category)",
            ));
        }
        if self.facets.len() > MAX_FACETS {
            violations.push(Violation::new(
                "facets",
                format!(
                    "has {} facets; keep at most {MAX_FACETS}",
                    self.facets.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (index, facet) in self.facets.iter().enumerate() {
            let field = |name: &str| format!("facets[{index}].{name}");
            let id_ok = !facet.id.is_empty()
                && facet.id.len() <= 64
                && facet
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !id_ok {
                violations.push(Violation::new(
                    field("id"),
                    format!(
                        "{:?} is not a facet id; use 1 to 64 characters of a-z, 0-9, '-' or '_', e.g. circuit-design",
                        facet.id
                    ),
                ));
            } else if !seen.insert(facet.id.as_str()) {
                violations.push(Violation::new(
                    field("id"),
                    format!(
                        "{:?} is used by an earlier facet; give each facet its own id",
                        facet.id
                    ),
                ));
            }
            crate::limits::check_name(
                &mut violations,
                &field("name"),
                &facet.name,
                "name the facet in a few words",
            );
            if facet.description.trim().is_empty() {
                violations.push(Violation::new(
                    field("description"),
                    "is empty; describe the facet in plain words, as a strategist would",
                ));
            }
            if facet.description.len() > 10_000 {
                violations.push(Violation::new(
                    field("description"),
                    "is longer than 10000 bytes; shorten it",
                ));
            }
            if !(MIN_WEIGHT..=MAX_WEIGHT).contains(&facet.weight) || facet.weight.is_nan() {
                violations.push(Violation::new(
                    field("weight"),
                    format!(
                        "is {}; use a weight from {MIN_WEIGHT} to {MAX_WEIGHT} (1.0 is neutral)",
                        facet.weight
                    ),
                ));
            }
            for (list_name, list) in [("keywords", &facet.keywords), ("examples", &facet.examples)]
            {
                if list.len() > 100 {
                    violations.push(Violation::new(
                        field(list_name),
                        "has more than 100 items; keep the best 100",
                    ));
                }
                for (item_index, item) in list.iter().enumerate() {
                    if item.trim().is_empty() {
                        violations.push(Violation::new(
                            format!("facets[{index}].{list_name}[{item_index}]"),
                            "is empty; remove it or write the phrase",
                        ));
                    } else if item.len() > 1000 {
                        violations.push(Violation::new(
                            format!("facets[{index}].{list_name}[{item_index}]"),
                            "is longer than 1000 bytes; shorten it",
                        ));
                    }
                }
            }
        }
        let text_bytes = self.name.len()
            + self.mission.len()
            + self.exclusions.iter().map(String::len).sum::<usize>()
            + self
                .facets
                .iter()
                .map(|facet| {
                    facet.id.len()
                        + facet.name.len()
                        + facet.description.len()
                        + facet.keywords.iter().map(String::len).sum::<usize>()
                        + facet.examples.iter().map(String::len).sum::<usize>()
                })
                .sum::<usize>();
        if text_bytes > crate::limits::STRATEGY_TEXT_BYTES {
            violations.push(Violation::new(
                "facets",
                format!(
                    "the strategy holds {text_bytes} bytes of text; the limit is {} bytes, keep the descriptions, keywords and examples that matter most",
                    crate::limits::STRATEGY_TEXT_BYTES
                ),
            ));
        }
        crate::limits::check_items(
            &mut violations,
            "exclusions",
            self.exclusions.len(),
            crate::limits::EXCLUSIONS,
        );
        for (index, exclusion) in self.exclusions.iter().enumerate() {
            if crate::limits::visible(exclusion).is_empty() {
                violations.push(Violation::new(
                    format!("exclusions[{index}]"),
                    "is empty; remove it or name the topic to stay away from",
                ));
            }
            crate::limits::check_chars(
                &mut violations,
                &format!("exclusions[{index}]"),
                exclusion,
                crate::limits::EXCLUSION_CHARS,
            );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(CoreError::Invalid(violations))
        }
    }

    pub fn facet(&self, id: &str) -> Option<&Facet> {
        self.facets.iter().find(|facet| facet.id == id)
    }
}

/// The strategy file format (TOML), as `EVALUATION.md` describes it. `label_tags` and any other
/// evaluation-only fields are read and dropped here, so they can never reach the engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyFile {
    name: String,
    #[serde(default)]
    mission: String,
    #[serde(default)]
    exclusions: Vec<String>,
    #[serde(default)]
    facets: Vec<FacetFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FacetFile {
    id: String,
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default = "default_weight")]
    weight: f64,
    #[serde(default, rename = "label_tags")]
    _label_tags: Vec<String>,
}

fn default_weight() -> f64 {
    1.0
}

/// Parses and validates a strategy file. Errors name the TOML field and the fix.
pub fn parse_strategy_toml(text: &str) -> Result<Strategy, CoreError> {
    let file: StrategyFile = toml::from_str(text).map_err(|error| {
        CoreError::invalid(
            "strategy file",
            format!(
                "is not a valid strategy: {}",
                error.to_string().trim().replace('\n', " ")
            ),
        )
    })?;
    let mut violations = Vec::new();
    let facets = file
        .facets
        .into_iter()
        .enumerate()
        .map(|(index, facet)| {
            // An unknown kind is reported, and the facet kept in place so that the
            // violations of later facets keep their indices.
            let kind = FacetKind::parse(&facet.kind).unwrap_or_else(|| {
                violations.push(Violation::new(
                    format!("facets[{index}].kind"),
                    format!(
                        "{:?} is not a facet kind; use one of job, advantage, expertise, message, category",
                        facet.kind
                    ),
                ));
                FacetKind::Category
            });
            Facet {
                id: facet.id,
                kind,
                name: facet.name,
                description: facet.description,
                examples: facet.examples,
                keywords: facet.keywords,
                weight: facet.weight,
            }
        })
        .collect();
    let strategy = Strategy {
        name: file.name,
        mission: file.mission,
        facets,
        exclusions: file.exclusions,
    };
    if let Err(CoreError::Invalid(more)) = strategy.validate() {
        violations.extend(more);
    }
    if violations.is_empty() {
        Ok(strategy)
    } else {
        Err(CoreError::Invalid(violations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "Example"
mission = "We help people"
[[facets]]
id = "a"
kind = "job"
name = "Do the job"
description = "When x, I want y."
label_tags = ["secret-tag"]
"#;

    #[test]
    fn label_tags_are_dropped() {
        let strategy = parse_strategy_toml(EXAMPLE).expect("valid");
        assert_eq!(strategy.facets.len(), 1);
        assert!(!format!("{strategy:?}").contains("secret-tag"));
        assert_eq!(strategy.facets[0].weight, 1.0);
    }

    #[test]
    fn every_problem_is_reported() {
        let text = r#"
name = ""
[[facets]]
id = "A b"
kind = "wish"
name = "x"
description = "y"
[[facets]]
id = "dup"
kind = "job"
name = ""
description = ""
weight = 11.0
[[facets]]
id = "dup"
kind = "category"
name = "z"
description = "z"
"#;
        let Err(CoreError::Invalid(violations)) = parse_strategy_toml(text) else {
            panic!("expected invalid");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "facets[0].kind",
                "name",
                "facets[0].id",
                "facets[1].name",
                "facets[1].description",
                "facets[1].weight",
                "facets[2].id"
            ]
        );
    }
}
