//! The asset index: kept current in deltas it ranks exactly as one rebuilt from the final
//! records; `own_only` keeps only the organisation's own; every passage is a real piece of the
//! asset's text; and each context (facet, text) finds the asset written about it.

use proptest::prelude::*;
use trellis_core::domain::{Asset, AssetKind, RecordKey};
use trellis_core::engine::Engine;
use trellis_core::engine::model::ModelSettings;
use trellis_core::strategy::{Facet, FacetKind, Strategy as TrellisStrategy};

const WORDS: &[&str] = &[
    "tracing",
    "spans",
    "sampling",
    "latency",
    "dashboards",
    "alerts",
    "deploy",
    "incident",
    "outage",
    "review",
    "budget",
    "coffee",
    "weather",
    "garden",
    "music",
    "the",
    "and",
    "with",
];

fn asset(id: &str, title: &str, text: &str, own: bool) -> Asset {
    Asset {
        key: RecordKey::new("blog", id),
        url: format!("https://example.org/{id}"),
        title: title.to_owned(),
        text: text.to_owned(),
        kind: AssetKind::Article,
        own,
        ..Asset::default()
    }
}

fn sentence_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::collection::vec(prop::sample::select(WORDS), 1..12),
            prop::sample::select(&[". ", "! ", "\n", ", ", ".  \n"][..]),
        ),
        1..6,
    )
    .prop_map(|sentences| {
        sentences
            .into_iter()
            .map(|(words, end)| format!("{}{end}", words.join(" ")))
            .collect()
    })
}

fn ranking(engine: &Engine, title: &str, body: &str, own_only: bool) -> Vec<(RecordKey, f32)> {
    let context = engine.text_asset_context(title, body, &[]);
    engine
        .rank_assets(&context, own_only, 100)
        .into_iter()
        .map(|hit| (hit.key, hit.raw))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn incremental_index_ranks_as_a_rebuilt_one(
        versions in prop::collection::vec((0..6usize, sentence_text(), sentence_text(), any::<bool>()), 1..30),
        query in sentence_text(),
    ) {
        let mut incremental = Engine::new(ModelSettings::default());
        let mut latest: std::collections::BTreeMap<usize, Asset> = Default::default();
        for (id, title, text, own) in versions {
            let next = asset(&format!("a{id}"), &title, &text, own);
            incremental.upsert_asset(&next, latest.get(&id));
            latest.insert(id, next);
        }
        let mut rebuilt = Engine::new(ModelSettings::default());
        for asset in latest.values() {
            rebuilt.upsert_asset(asset, None);
        }
        for own_only in [false, true] {
            let left = ranking(&incremental, "", &query, own_only);
            let right = ranking(&rebuilt, "", &query, own_only);
            prop_assert_eq!(left.len(), right.len());
            for ((left_key, left_raw), (right_key, right_raw)) in left.iter().zip(&right) {
                prop_assert!((left_raw - right_raw).abs() <= 1e-3 * right_raw.max(1.0));
                if (left_raw - right_raw).abs() <= 1e-6 {
                    prop_assert_eq!(left_key, right_key);
                }
            }
        }
    }

    #[test]
    fn every_passage_is_a_piece_of_the_asset(
        texts in prop::collection::vec((sentence_text(), sentence_text()), 1..12),
        query in sentence_text(),
    ) {
        let mut engine = Engine::new(ModelSettings::default());
        let assets: Vec<Asset> = texts
            .iter()
            .enumerate()
            .map(|(index, (title, text))| asset(&format!("a{index}"), title, text, index % 2 == 0))
            .collect();
        for asset in &assets {
            engine.upsert_asset(asset, None);
        }
        let context = engine.text_asset_context("", &query, &[]);
        for hit in engine.rank_assets(&context, false, 100) {
            prop_assert!(hit.score > 0.0 && hit.score < 1.0);
            let asset = assets.iter().find(|asset| asset.key == hit.key).unwrap();
            let explanation = engine.explain_asset(&context, asset);
            prop_assert!(!explanation.passage.is_empty(), "a ranked asset has a passage");
            prop_assert!(
                asset.text.contains(&explanation.passage) || asset.title.contains(&explanation.passage),
                "{:?} is not in {:?}", explanation.passage, asset
            );
            prop_assert_eq!(explanation.passage.trim(), explanation.passage.as_str());
        }
        for hit in engine.rank_assets(&context, true, 100) {
            let asset = assets.iter().find(|asset| asset.key == hit.key).unwrap();
            prop_assert!(asset.own, "own_only ranked {:?}", asset.key);
        }
    }
}

fn library() -> Vec<Asset> {
    vec![
        asset(
            "sampling",
            "Sampling traces without losing the outliers",
            "Head sampling drops the slow requests you wanted. Tail sampling keeps every trace \
             whose latency is above the budget. We explain how to configure it.",
            true,
        ),
        asset(
            "garden",
            "Our team garden",
            "We planted tomatoes behind the office. The weather was kind this year.",
            true,
        ),
        asset(
            "alerts",
            "Alerts that wake nobody for nothing",
            "Page on symptoms, not causes. An alert should point to a dashboard and a runbook.",
            false,
        ),
    ]
}

#[test]
fn own_only_keeps_the_organisations_assets() {
    let mut engine = Engine::new(ModelSettings::default());
    for asset in library() {
        engine.upsert_asset(&asset, None);
    }
    let everything = ranking(&engine, "alerts and sampling", "", false);
    let own = ranking(&engine, "alerts and sampling", "", true);
    assert!(
        everything
            .iter()
            .any(|(key, _)| key.external_id == "alerts")
    );
    assert!(own.iter().all(|(key, _)| key.external_id != "alerts"));
    assert_eq!(own[0].0.external_id, "sampling");
}

#[test]
fn a_text_finds_its_asset_with_the_sentence_that_supports_it() {
    let mut engine = Engine::new(ModelSettings::default());
    for asset in library() {
        engine.upsert_asset(&asset, None);
    }
    let context = engine.text_asset_context(
        "Our traces miss the slow requests",
        "How should we configure tail sampling so latency outliers are kept?",
        &[],
    );
    let ranked = engine.rank_assets(&context, false, 10);
    assert_eq!(ranked[0].key.external_id, "sampling");
    assert!(ranked.iter().all(|hit| hit.key.external_id != "garden"));
    let explanation = engine.explain_asset(&context, &library()[0]);
    assert_eq!(
        explanation.passage,
        "Tail sampling keeps every trace whose latency is above the budget."
    );
    let words: Vec<String> = explanation
        .evidence
        .terms
        .iter()
        .map(|term| term.term.to_lowercase())
        .collect();
    assert!(words.iter().any(|word| word == "sampling"), "{words:?}");
}

#[test]
fn a_facet_finds_the_assets_about_it_and_a_changed_asset_moves() {
    let mut engine = Engine::new(ModelSettings::default());
    let mut assets = library();
    for asset in &assets {
        engine.upsert_asset(asset, None);
    }
    engine.set_strategy(
        1,
        TrellisStrategy {
            name: "observability".into(),
            mission: String::new(),
            facets: vec![Facet {
                id: "quiet-alerts".into(),
                kind: FacetKind::Message,
                name: "Alerts worth waking up for".into(),
                description: "Alerts on symptoms, each with a runbook.".into(),
                examples: vec![],
                keywords: vec![],
                weight: 1.0,
            }],
            exclusions: vec![],
        },
    );
    assert!(engine.facet_asset_context("no-such-facet").is_none());
    let context = engine.facet_asset_context("quiet-alerts").unwrap();
    let ranked = engine.rank_assets(&context, false, 10);
    assert_eq!(ranked[0].key.external_id, "alerts");
    let explanation = engine.explain_asset(&context, &assets[2]);
    assert_eq!(explanation.evidence.facet_id, "quiet-alerts");
    assert!(
        explanation
            .evidence
            .terms
            .iter()
            .any(|term| term.from_strategy)
    );

    // The garden post is rewritten about alerts: the index follows the change, and forgets the
    // tomatoes.
    let previous = assets[1].clone();
    assets[1].text = "Every alert we keep has a runbook; symptoms page, causes do not.".into();
    engine.upsert_asset(&assets[1], Some(&previous));
    let ranked = engine.rank_assets(&context, false, 10);
    assert!(ranked.iter().any(|hit| hit.key.external_id == "garden"));
    assert!(ranking(&engine, "tomatoes", "", false).is_empty());
    engine.remove_asset(&assets[1].key);
    assert_eq!(engine.assets().len(), 2);
}
