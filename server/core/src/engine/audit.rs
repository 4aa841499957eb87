//! Design-time check of a community's mission statement against the strategy: which facets it
//! speaks to, which it leaves out, and what words would bring the missing ones in.
//!
//! A mission is short, so corpus statistics say little about it; coverage is judged on the
//! facet's own vocabulary (its expansion included, since members' words count too), each
//! term weighted by how specific it is in the corpus.

use super::index::{CorpusIndex, is_pair_term};
use super::model::StrategyModel;
use crate::strategy::FacetKind;
use crate::text::Analyzer;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FacetCoverage {
    pub facet_id: String,
    pub facet_name: String,
    pub kind: FacetKind,
    pub coverage: f32,
    pub served: bool,
    pub matched_terms: Vec<String>,
    pub suggestion: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Audit {
    pub alignment: f32,
    pub facets: Vec<FacetCoverage>,
    pub findings: Vec<String>,
}

/// Coverage at which a facet counts as served by the mission.
pub const SERVED: f32 = 0.25;

pub fn audit(
    analyzer: &Analyzer,
    index: &CorpusIndex,
    model: &StrategyModel,
    mission: &str,
) -> Audit {
    let tokens = analyzer.tokens(mission);
    let mission_stems: std::collections::HashSet<&str> =
        tokens.iter().map(|token| &*token.stem).collect();
    let surface_of = |stem: &str| -> Option<String> {
        tokens
            .iter()
            .find(|token| &*token.stem == stem)
            .map(|token| mission[token.span.clone()].to_lowercase())
    };
    let mut facets = Vec::new();
    for facet in &model.facets {
        // The strategist's words count fully, expansion words at their (smaller) weight.
        let weighted: Vec<(&str, f32, bool)> = facet
            .query
            .terms
            .iter()
            .filter(|term| !is_pair_term(&term.term))
            .map(|term| {
                let own = facet.base.weight_of(&term.term) > 0.0;
                (
                    term.term.as_str(),
                    term.weight * index.idf_of(&term.term),
                    own,
                )
            })
            .collect();
        let total: f32 = weighted.iter().map(|(_, weight, _)| weight).sum();
        // Half the facet's weighted vocabulary is an unreachable bar for a one-paragraph
        // mission; a third of its most specific words reads as full coverage.
        let bar = total / 3.0;
        let mut matched: Vec<(&str, f32)> = weighted
            .iter()
            .filter(|(stem, _, _)| mission_stems.contains(stem))
            .map(|(stem, weight, _)| (*stem, *weight))
            .collect();
        matched.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hit: f32 = matched.iter().map(|(_, weight)| weight).sum();
        let coverage = if bar > 0.0 { (hit / bar).min(1.0) } else { 0.0 };
        let served = coverage >= SERVED;
        let matched_terms: Vec<String> = matched
            .iter()
            .filter_map(|(stem, _)| surface_of(stem))
            .take(8)
            .collect();
        let suggestion = if served {
            String::new()
        } else {
            let mut missing: Vec<(&str, f32)> = weighted
                .iter()
                .filter(|(stem, _, own)| *own && !mission_stems.contains(stem))
                .map(|(stem, weight, _)| (*stem, *weight))
                .collect();
            missing.sort_by(|a, b| b.1.total_cmp(&a.1));
            let words: Vec<&str> = missing
                .iter()
                .filter_map(|(stem, _)| facet.surface.get(*stem).map(String::as_str))
                .take(5)
                .collect();
            format!(
                "add a sentence on \"{}\" ({}), using words such as: {}",
                facet.name,
                kind_phrase(facet.kind),
                words.join(", ")
            )
        };
        facets.push(FacetCoverage {
            facet_id: facet.id.clone(),
            facet_name: facet.name.clone(),
            kind: facet.kind,
            coverage,
            served,
            matched_terms,
            suggestion,
        });
    }
    let weight_total: f32 = model.facets.iter().map(|facet| facet.weight).sum();
    let served_weight: f32 = model
        .facets
        .iter()
        .zip(&facets)
        .filter(|(_, coverage)| coverage.served)
        .map(|(facet, _)| facet.weight)
        .sum();
    let alignment = if weight_total > 0.0 {
        served_weight / weight_total
    } else {
        0.0
    };
    let findings = findings(&facets, alignment);
    Audit {
        alignment,
        facets,
        findings,
    }
}

fn kind_phrase(kind: FacetKind) -> &'static str {
    match kind {
        FacetKind::Job => "a job customers hire you for",
        FacetKind::Advantage => "where you are most competitive",
        FacetKind::Expertise => "an area of expertise",
        FacetKind::Message => "a key message",
        FacetKind::Category => "the product category",
    }
}

fn findings(facets: &[FacetCoverage], alignment: f32) -> Vec<String> {
    let served: Vec<&str> = facets
        .iter()
        .filter(|facet| facet.served)
        .map(|facet| facet.facet_name.as_str())
        .collect();
    let missing: Vec<&FacetCoverage> = facets.iter().filter(|facet| !facet.served).collect();
    let mut findings = vec![format!(
        "the mission serves {} of {} facets ({:.0}% of the strategy's weight)",
        served.len(),
        facets.len(),
        alignment * 100.0
    )];
    if !served.is_empty() {
        findings.push(format!("it speaks to: {}", quote_list(&served)));
    }
    for kind in [FacetKind::Advantage, FacetKind::Expertise, FacetKind::Job] {
        let left_out: Vec<&str> = missing
            .iter()
            .filter(|facet| facet.kind == kind)
            .map(|facet| facet.facet_name.as_str())
            .collect();
        if !left_out.is_empty() {
            findings.push(format!(
                "it leaves out {}: {}",
                match kind {
                    FacetKind::Advantage => "where the organisation is most competitive",
                    FacetKind::Expertise => "areas of expertise",
                    _ => "jobs customers hire the organisation for",
                },
                quote_list(&left_out)
            ));
        }
    }
    for facet in &missing {
        findings.push(facet.suggestion.clone());
    }
    findings
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
