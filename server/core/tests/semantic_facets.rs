//! A conversation's relevance to a facet fuses relevance by words with relevance by meaning,
//! once the facets of the strategy in use have vectors: a conversation that says the same thing
//! in other words moves up, and vectors of another strategy version are never used.

use trellis_core::domain::{Conversation, RecordKey};
use trellis_core::engine::Engine;
use trellis_core::engine::model::ModelSettings;
use trellis_core::engine::semantic::{Embedding, SemanticSettings, embedding_text, text_hash};
use trellis_core::strategy::{Facet, FacetKind, Strategy};

const DIMENSION: usize = 3;

fn conversation(id: usize, text: &str) -> Conversation {
    Conversation {
        key: RecordKey::new("forum", format!("t{id}")),
        title: String::new(),
        body: text.to_owned(),
        open: true,
        ..Conversation::default()
    }
}

fn normalised(vector: [f32; DIMENSION]) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    vector.iter().map(|v| v / norm).collect()
}

fn strategy() -> Strategy {
    let facet = |id: &str, name: &str, description: &str| Facet {
        id: id.to_owned(),
        kind: FacetKind::Expertise,
        name: name.to_owned(),
        description: description.to_owned(),
        examples: Vec::new(),
        keywords: Vec::new(),
        weight: 1.0,
    };
    Strategy {
        name: "test".to_owned(),
        facets: vec![
            facet(
                "tracing",
                "Distributed tracing",
                "Following requests across services",
            ),
            facet("costs", "Cloud costs", "Keeping the monthly bill down"),
        ],
        ..Strategy::default()
    }
}

/// Forty conversations: half about tracing in the strategy's words, half about unrelated
/// chores; and one, `t99`, about tracing in other words ("spans", "hops") whose vector points
/// where the tracing facet's does.
fn engine() -> (Engine, RecordKey) {
    let mut engine = Engine::new(ModelSettings::default());
    engine.enable_semantic("test-model", DIMENSION, SemanticSettings::default());
    let mut embeddings = Vec::new();
    for id in 0..40 {
        let (text, vector) = if id % 2 == 0 {
            (
                "distributed tracing of requests across services",
                normalised([1.0, 0.1 * (id % 5) as f32, 0.2]),
            )
        } else {
            (
                "the garden needs water and the fence paint",
                normalised([0.1, 0.2, 1.0]),
            )
        };
        let conversation = conversation(id, text);
        engine.upsert_conversation(&conversation, None);
        embeddings.push(Embedding {
            key: conversation.key.clone(),
            text_hash: text_hash(&embedding_text(&conversation)),
            vector,
        });
    }
    let other_words = conversation(
        99,
        "our spans lose their parents somewhere between two hops",
    );
    engine.upsert_conversation(&other_words, None);
    embeddings.push(Embedding {
        key: other_words.key.clone(),
        text_hash: text_hash(&embedding_text(&other_words)),
        vector: normalised([1.0, 0.0, 0.1]),
    });
    assert_eq!(engine.insert_embeddings(embeddings), 41);
    engine.set_strategy(1, strategy());
    (engine, other_words.key)
}

fn relevance(engine: &Engine, key: &RecordKey, facet: &str) -> f32 {
    engine
        .score_conversation(key)
        .expect("a score")
        .facets
        .iter()
        .find(|score| score.facet_id == facet)
        .expect("the facet")
        .relevance
}

#[test]
fn meaning_lifts_a_conversation_that_says_it_in_other_words() {
    let (mut engine, other_words) = engine();
    let by_words = relevance(&engine, &other_words, "tracing");
    assert!(by_words < 0.05, "no shared words: {by_words}");
    // Vectors of an older strategy version are not used.
    engine.set_facet_vectors(
        0,
        vec![normalised([1.0, 0.0, 0.0]), normalised([0.0, 1.0, 0.0])],
    );
    assert_eq!(relevance(&engine, &other_words, "tracing"), by_words);

    engine.set_facet_vectors(
        1,
        vec![normalised([1.0, 0.0, 0.0]), normalised([0.0, 1.0, 0.0])],
    );
    let fused = relevance(&engine, &other_words, "tracing");
    assert!(fused > 0.3, "close in meaning to the facet: {fused}");
    assert!(
        relevance(&engine, &other_words, "costs") < 0.1,
        "far from the other facet"
    );
    // A conversation in the strategy's own words stays relevant, and an unrelated one does not
    // become so.
    let on_topic = RecordKey::new("forum", "t0");
    let off_topic = RecordKey::new("forum", "t1");
    let on = relevance(&engine, &on_topic, "tracing");
    let off = relevance(&engine, &off_topic, "tracing");
    assert!(on > 0.3 && off < 0.1, "on topic {on}, off topic {off}");
    let overall = engine
        .score_conversation(&other_words)
        .expect("a score")
        .overall;
    assert!(
        overall >= fused,
        "the overall relevance follows its best facet"
    );
}
