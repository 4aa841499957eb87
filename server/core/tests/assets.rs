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
    let context = engine.text_asset_context(title, body, &[], None);
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
        let context = engine.text_asset_context("", &query, &[], None);
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
        None,
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

/// A unit vector along `axis` of `dimension`, tilted by `tilt` towards the next axis.
fn direction(dimension: usize, axis: usize, tilt: f32) -> Vec<f32> {
    let mut vector = vec![0.0; dimension];
    vector[axis % dimension] = 1.0;
    vector[(axis + 1) % dimension] = tilt;
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    vector.iter().map(|value| value / norm).collect()
}

#[test]
fn assets_with_vectors_are_found_by_meaning_beside_their_words() {
    use trellis_core::engine::semantic::{
        Embedding, SemanticSettings, asset_embedding_text, text_hash,
    };
    const DIMENSION: usize = 8;
    let mut engine = Engine::new(ModelSettings::default());
    engine.enable_semantic("test-model", DIMENSION, SemanticSettings::default());
    // Thirty assets about unrelated things, spread over the other axes, and three that matter
    // to a question about slow requests: one shares its words, one only its meaning (another
    // vocabulary), and one shares both but is not the organisation's own.
    let mut assets: Vec<(Asset, Vec<f32>)> = (0..30)
        .map(|n| {
            (
                asset(
                    &format!("other-{n}"),
                    &format!("Notes {n}"),
                    "coffee weather music",
                    true,
                ),
                direction(DIMENSION, 1 + n % (DIMENSION - 1), 0.1 * (n / 7) as f32),
            )
        })
        .collect();
    assets.push((
        asset(
            "words",
            "Tail sampling",
            "Keep latency outliers with tail sampling.",
            true,
        ),
        direction(DIMENSION, 3, 0.0),
    ));
    assets.push((
        asset(
            "meaning",
            "When pages load late",
            "Users wait; find what holds them up.",
            true,
        ),
        direction(DIMENSION, 0, 0.05),
    ));
    assets.push((
        asset(
            "both",
            "Sampling slow requests",
            "Tail sampling keeps the slow requests.",
            false,
        ),
        direction(DIMENSION, 0, 0.1),
    ));
    for (asset, _) in &assets {
        engine.upsert_asset(asset, None);
    }
    assert_eq!(engine.asset_semantic().pending_count(), assets.len());
    let title = "Slow requests vanish from our traces";
    let body = "How should tail sampling keep them?";
    // Before any vector, by words only: the one with no shared word is not found.
    let context = engine.text_asset_context(title, body, &[], Some(direction(DIMENSION, 0, 0.0)));
    let found: Vec<String> = engine
        .rank_assets(&context, false, 5)
        .into_iter()
        .map(|hit| hit.key.external_id)
        .collect();
    assert!(!found.contains(&"meaning".to_owned()), "{found:?}");

    let embeddings: Vec<Embedding> = assets
        .iter()
        .map(|(asset, vector)| Embedding {
            key: asset.key.clone(),
            text_hash: text_hash(&asset_embedding_text(asset)),
            vector: vector.clone(),
        })
        .collect();
    assert_eq!(engine.insert_asset_embeddings(embeddings), assets.len());
    assert_eq!(engine.asset_semantic().pending_count(), 0);
    let ranked = engine.rank_assets(&context, false, 5);
    let found: Vec<&str> = ranked
        .iter()
        .map(|hit| hit.key.external_id.as_str())
        .collect();
    assert_eq!(
        found[0], "both",
        "close by words and by meaning: {ranked:?}"
    );
    assert!(
        found.contains(&"meaning"),
        "found by meaning alone: {ranked:?}"
    );
    assert!(found.contains(&"words"), "still found by words: {ranked:?}");
    let by_meaning = ranked
        .iter()
        .find(|hit| hit.key.external_id == "meaning")
        .unwrap();
    assert_eq!(by_meaning.raw, 0.0);
    let meaning = by_meaning.meaning.expect("how close it is by meaning");
    assert!(
        meaning.relevance > 0.5 && meaning.cosine > 0.99,
        "{meaning:?}"
    );
    assert!(ranked.iter().all(|hit| (0.0..1.0).contains(&hit.score)));
    // Only the organisation's own, by meaning too.
    let own: Vec<String> = engine
        .rank_assets(&context, true, 5)
        .into_iter()
        .map(|hit| hit.key.external_id)
        .collect();
    assert!(
        !own.contains(&"both".to_owned()) && own.contains(&"meaning".to_owned()),
        "{own:?}"
    );
    // Without a vector for the context, the ranking is by words, as before.
    let lexical = engine.text_asset_context(title, body, &[], None);
    assert!(
        engine
            .rank_assets(&lexical, false, 5)
            .iter()
            .all(|hit| hit.meaning.is_none() && hit.key.external_id != "meaning")
    );
    // An asset rewritten waits for its new vector and is found by its words meanwhile.
    let (old, _) = assets[assets.len() - 2].clone();
    let mut rewritten = old.clone();
    rewritten.text = "Users wait on slow requests; tail sampling shows why.".into();
    engine.upsert_asset(&rewritten, Some(&old));
    assert_eq!(engine.asset_semantic().pending_count(), 1);
    let hit = engine
        .rank_assets(&context, false, 40)
        .into_iter()
        .find(|hit| hit.key.external_id == "meaning")
        .expect("found by its new words");
    assert!(hit.meaning.is_none() && hit.raw > 0.0);
    engine.remove_asset(&rewritten.key);
    assert_eq!(engine.asset_semantic().pending_count(), 0);
}
