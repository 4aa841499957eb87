//! Property tests of the engine's ranking invariants: scores are deterministic and orders
//! stable, relevance stays in [0, 1), evidence never lowers a score, ingest order does not
//! matter, and delta indexing is exact.
//!
//! Corpora are generated from a small vocabulary that mixes the strategy's own words with
//! everyday filler, so that facets match some conversations strongly, some weakly, and some not
//! at all; sizes cross 20 conversations, where query expansion and calibration start to use the
//! corpus.

use proptest::prelude::*;
use trellis_core::domain::{Conversation, Post, RecordKey};
use trellis_core::engine::{ConversationScore, EngagementSettings, Engine};
use trellis_core::strategy::{Facet, FacetKind, Strategy as TrellisStrategy};

const TOLERANCE: f32 = 1e-4;

/// Words of the strategy, and words of nothing in particular.
const VOCABULARY: &[&str] = &[
    "tracing",
    "span",
    "spans",
    "sampling",
    "overhead",
    "agent",
    "latency",
    "trace",
    "request",
    "dashboards",
    "alerts",
    "slo",
    "version",
    "control",
    "review",
    "code",
    "deploy",
    "incident",
    "outage",
    "root",
    "cause",
    "on-call",
    "alert",
    "restore",
    "production",
    "opentelemetry",
    "instrumentation",
    "collector",
    "context",
    "propagation",
    "kitchen",
    "bread",
    "garden",
    "weather",
    "holiday",
    "football",
    "music",
    "coffee",
    "train",
    "slow",
    "fast",
    "team",
    "service",
    "the",
    "and",
    "we",
    "our",
    "how",
    "why",
    "is",
];
/// The stop words at the end of [`VOCABULARY`].
const STOP_WORDS: usize = 7;

fn facet(
    id: &str,
    kind: FacetKind,
    name: &str,
    description: &str,
    keywords: &[&str],
    weight: f64,
) -> Facet {
    Facet {
        id: id.into(),
        kind,
        name: name.into(),
        description: description.into(),
        examples: Vec::new(),
        keywords: keywords
            .iter()
            .map(|keyword| (*keyword).to_owned())
            .collect(),
        weight,
    }
}

fn strategy() -> TrellisStrategy {
    TrellisStrategy {
        name: "Lumen".into(),
        mission: String::new(),
        facets: vec![
            facet(
                "tracing",
                FacetKind::Advantage,
                "Distributed tracing with low overhead",
                "Our agent samples spans at high request rates with almost no overhead.",
                &["distributed tracing", "sampling", "span"],
                1.0,
            ),
            facet(
                "dashboards",
                FacetKind::Message,
                "Dashboards as code",
                "Dashboards, alerts and SLOs belong in version control and code review.",
                &["dashboards", "slo", "version control"],
                0.5,
            ),
            facet(
                "incidents",
                FacetKind::Job,
                "Find the root cause of an incident",
                "When production has an outage, on-call engineers want the root cause fast to restore service.",
                &["root cause", "outage", "on-call"],
                2.0,
            ),
            facet(
                "opentelemetry",
                FacetKind::Expertise,
                "OpenTelemetry instrumentation",
                "We add instrumentation, context propagation and a collector to services.",
                &["opentelemetry", "context propagation", "collector"],
                1.0,
            ),
        ],
        exclusions: vec!["football and music".into()],
    }
}

/// A text of `min..max` words drawn from the vocabulary.
fn words(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(VOCABULARY), min..max)
        .prop_map(|words| words.join(" "))
}

/// (title, body) of a conversation. The body opens with a word that is not a stop word: a
/// conversation of stop words alone has nothing to index (see `stop_words_alone_are_not_indexed`).
fn document() -> impl Strategy<Value = (String, String)> {
    (
        words(0, 6),
        proptest::sample::select(&VOCABULARY[..VOCABULARY.len() - STOP_WORDS]),
        words(0, 40),
    )
        .prop_map(|(title, first, rest)| (title, format!("{first} {rest}")))
}

fn corpus() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(document(), 1..45)
}

fn key(index: usize) -> RecordKey {
    RecordKey::new("forum", format!("c{index:03}"))
}

fn conversation(index: usize, (title, body): &(String, String)) -> Conversation {
    Conversation {
        key: key(index),
        title: title.clone(),
        body: body.clone(),
        open: !index.is_multiple_of(3),
        created_at: Some(1_700_000_000_000 + index as i64 * 3_600_000),
        ..Default::default()
    }
}

/// An engine that indexed `docs` in `order`, then got the strategy (as after a restart).
fn built(docs: &[(String, String)], order: impl IntoIterator<Item = usize>) -> Engine {
    let mut engine = Engine::new(Default::default());
    for index in order {
        engine.upsert_conversation(&conversation(index, &docs[index]), None);
    }
    engine.set_strategy(1, strategy());
    engine
}

/// An engine that got the strategy first, then indexed `docs` in `order` (as a live server).
fn live(docs: &[(String, String)], order: impl IntoIterator<Item = usize>) -> Engine {
    let mut engine = Engine::new(Default::default());
    engine.set_strategy(1, strategy());
    for index in order {
        engine.upsert_conversation(&conversation(index, &docs[index]), None);
    }
    engine
}

fn all_scores(
    engine: &Engine,
    count: usize,
    probes: &[(String, String)],
) -> Vec<ConversationScore> {
    let mut scores: Vec<ConversationScore> = (0..count)
        .map(|index| {
            engine
                .score_conversation(&key(index))
                .expect("every conversation is indexed")
        })
        .collect();
    scores.extend(
        probes
            .iter()
            .map(|(title, body)| engine.score_text(title, body).expect("a strategy is set")),
    );
    scores
}

fn assert_close(
    a: &[ConversationScore],
    b: &[ConversationScore],
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for (index, (a, b)) in a.iter().zip(b).enumerate() {
        prop_assert!(
            (a.overall - b.overall).abs() <= TOLERANCE,
            "{}: overall of item {} differs: {} vs {}",
            what,
            index,
            a.overall,
            b.overall
        );
        for (fa, fb) in a.facets.iter().zip(&b.facets) {
            prop_assert_eq!(&fa.facet_id, &fb.facet_id);
            prop_assert!(
                (fa.relevance - fb.relevance).abs() <= TOLERANCE,
                "{}: facet {} of item {} differs: {} vs {}",
                what,
                fa.facet_id,
                index,
                fa.relevance,
                fb.relevance
            );
        }
    }
    Ok(())
}

fn shuffled_corpus() -> impl Strategy<Value = (Vec<(String, String)>, Vec<usize>)> {
    corpus().prop_flat_map(|docs| {
        let order: Vec<usize> = (0..docs.len()).collect();
        (Just(docs), Just(order).prop_shuffle())
    })
}

fn delta_indexing(
    docs: &[(String, String)],
    replacement: (String, String),
    target: usize,
    probes: &[(String, String)],
) -> Result<(), TestCaseError> {
    let mut engine = built(docs, 0..docs.len());
    let original = all_scores(&engine, docs.len(), probes);
    let old = conversation(target, &docs[target]);
    let new = conversation(target, &replacement);
    engine.upsert_conversation(&new, Some(&old));
    engine.upsert_conversation(&old, Some(&new));
    assert_close(
        &original,
        &all_scores(&engine, docs.len(), probes),
        "after an update and back",
    )?;

    engine.upsert_conversation(&new, Some(&old));
    engine.recompile();
    let mut changed = docs.to_vec();
    changed[target] = replacement;
    let fresh = built(&changed, 0..changed.len());
    assert_close(
        &all_scores(&engine, docs.len(), probes),
        &all_scores(&fresh, docs.len(), probes),
        "updated in place vs indexed fresh",
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// (a) The same input gives bit-identical scores, and rankings are sorted with ties broken
    /// by key, the same every time.
    #[test]
    fn scoring_is_deterministic_and_rankings_are_stable(docs in corpus(), probe in document()) {
        let first = built(&docs, 0..docs.len());
        let second = built(&docs, 0..docs.len());
        let probes = [probe];
        prop_assert_eq!(all_scores(&first, docs.len(), &probes), all_scores(&second, docs.len(), &probes));
        prop_assert_eq!(all_scores(&first, docs.len(), &probes), all_scores(&first, docs.len(), &probes));
        for facet in &strategy().facets {
            let ranked = first.rank_facet(&facet.id).expect("a facet of the strategy");
            prop_assert_eq!(&ranked, &first.rank_facet(&facet.id).expect("a facet"));
            prop_assert_eq!(&ranked, &second.rank_facet(&facet.id).expect("a facet"));
            for pair in ranked.windows(2) {
                let ordered = pair[0].1 > pair[1].1 || (pair[0].1 == pair[1].1 && pair[0].0 < pair[1].0);
                prop_assert!(ordered, "score descending, then key ascending: {:?}", pair);
            }
        }
        let settings = EngagementSettings::default();
        let top = first.strategic_conversations(None, &settings, 0.0, None, 100);
        prop_assert_eq!(&top, &first.strategic_conversations(None, &settings, 0.0, None, 100));
        prop_assert_eq!(&top, &second.strategic_conversations(None, &settings, 0.0, None, 100));
        for pair in top.windows(2) {
            let ordered = pair[0].priority > pair[1].priority
                || (pair[0].priority == pair[1].priority && pair[0].key < pair[1].key);
            prop_assert!(ordered, "priority descending, then key ascending");
        }
    }

    /// (b) Relevance is finite and in [0, 1), for stored conversations and texts, however
    /// much a text repeats the strategy's words.
    #[test]
    fn relevance_is_finite_and_below_one(docs in corpus(), probe in document(), repeat in 1usize..400) {
        let engine = built(&docs, 0..docs.len());
        let flood = "distributed tracing sampling span root cause outage dashboards slo ".repeat(repeat);
        let probes = [probe, (flood.clone(), flood)];
        for score in all_scores(&engine, docs.len(), &probes) {
            prop_assert!(score.overall.is_finite() && (0.0..1.0).contains(&score.overall), "overall {}", score.overall);
            for facet in &score.facets {
                prop_assert!(
                    facet.relevance.is_finite() && (0.0..1.0).contains(&facet.relevance),
                    "facet {} relevance {}",
                    facet.facet_id,
                    facet.relevance
                );
                prop_assert!(facet.raw.is_finite() && facet.raw >= 0.0, "raw {}", facet.raw);
            }
        }
        for facet in &strategy().facets {
            for (_, raw) in engine.rank_facet(&facet.id).expect("a facet") {
                prop_assert!(raw.is_finite() && raw >= 0.0);
            }
        }
    }

    /// (c) Appending a sentence made of a facet's own name and keywords to a text never lowers
    /// that facet's relevance.
    #[test]
    fn evidence_never_lowers_a_score(docs in corpus(), (title, body) in document(), facet_index in 0usize..4) {
        let engine = built(&docs, 0..docs.len());
        let facet = &strategy().facets[facet_index];
        let sentence = format!("{}. {}.", facet.name, facet.keywords.join(", "));
        let before = engine.score_text(&title, &body).expect("a strategy is set");
        let after = engine.score_text(&title, &format!("{body} {sentence}")).expect("a strategy is set");
        let relevance = |score: &ConversationScore| {
            score.facets.iter().find(|f| f.facet_id == facet.id).map(|f| f.relevance).expect("the facet is scored")
        };
        prop_assert!(
            relevance(&after) >= relevance(&before) - 1e-6,
            "facet {}: {} before, {} after appending {:?} to title {:?} body {:?}",
            facet.id,
            relevance(&before),
            relevance(&after),
            sentence,
            title,
            body
        );
    }

    /// (c) The same for a stored conversation: a reply made of a facet's own words never
    /// lowers that facet's relevance for the conversation it joins.
    #[test]
    fn a_reply_with_evidence_never_lowers_a_stored_score(docs in corpus(), pick in any::<prop::sample::Index>(), facet_index in 0usize..4) {
        let mut engine = built(&docs, 0..docs.len());
        let target = key(pick.index(docs.len()));
        let facet = &strategy().facets[facet_index];
        let relevance = |engine: &Engine| {
            engine
                .score_conversation(&target)
                .and_then(|score| score.facets.into_iter().find(|f| f.facet_id == facet.id))
                .map(|f| f.relevance)
                .expect("the conversation and facet are scored")
        };
        let before = relevance(&engine);
        let reply = Post {
            key: RecordKey::new("forum", "reply"),
            conversation: target.external_id.clone(),
            text: format!("{}. {}.", facet.name, facet.keywords.join(", ")),
            ..Default::default()
        };
        engine.upsert_post(&reply, None);
        let after = relevance(&engine);
        prop_assert!(after >= before - 1e-6, "facet {}: {} before the reply, {} after", facet.id, before, after);
    }

    /// (d) The same conversations ingested in another order give the same scores.
    #[test]
    fn ingest_order_does_not_matter((docs, order) in shuffled_corpus(), probe in document()) {
        let probes = [probe];
        let in_order = built(&docs, 0..docs.len());
        let shuffled = built(&docs, order.iter().copied());
        assert_close(
            &all_scores(&in_order, docs.len(), &probes),
            &all_scores(&shuffled, docs.len(), &probes),
            "strategy set after ingest",
        )?;
        for facet in &strategy().facets {
            let a: Vec<RecordKey> = in_order.rank_facet(&facet.id).expect("a facet").into_iter().map(|(key, _)| key).collect();
            let b: Vec<RecordKey> = shuffled.rank_facet(&facet.id).expect("a facet").into_iter().map(|(key, _)| key).collect();
            let mut sorted_a = a.clone();
            sorted_a.sort();
            let mut sorted_b = b.clone();
            sorted_b.sort();
            prop_assert_eq!(sorted_a, sorted_b, "the same conversations match facet {}", facet.id);
        }
    }

    /// (e) Updating a conversation to new text and back restores every stored conversation's
    /// score; and a conversation updated in place scores as if it had been indexed with its new
    /// text.
    #[test]
    fn delta_indexing_is_exact(docs in corpus(), replacement in document(), pick in any::<prop::sample::Index>()) {
        delta_indexing(&docs, replacement, pick.index(docs.len()), &[])?;
    }

    /// Raw scores kept for stored conversations are not served once the corpus changed: an
    /// engine that scored everything before an update scores, after it, exactly like one that
    /// had scored nothing.
    #[test]
    fn kept_scores_follow_the_corpus(docs in corpus(), pick in any::<prop::sample::Index>(), other in any::<prop::sample::Index>()) {
        let (target, source) = (pick.index(docs.len()), other.index(docs.len()));
        let mut warm = built(&docs, 0..docs.len());
        let mut cold = built(&docs, 0..docs.len());
        all_scores(&warm, docs.len(), &[]);
        // The target takes another conversation's words: no term is new to the vocabulary, so
        // only document frequencies and lengths move.
        let old = conversation(target, &docs[target]);
        let new = conversation(target, &docs[source]);
        warm.upsert_conversation(&new, Some(&old));
        cold.upsert_conversation(&new, Some(&old));
        prop_assert_eq!(
            all_scores(&warm, docs.len(), &[]),
            all_scores(&cold, docs.len(), &[])
        );
    }

    /// (e) The same for raw texts scored against the corpus statistics.
    ///
    /// Fails today: a term that left the corpus stays in the vocabulary with df 0, and
    /// `CorpusIndex::idf_of` gives such a term a higher idf (df 0) than a term never seen
    /// (counted as df 1), so a text containing it scores higher after the update and back.
    /// Minimal case: corpus ["tracing"], update it to "tracing span" and back; the text
    /// "tracing span" goes from 0.0515 to 0.0807 overall.
    #[test]
    fn delta_indexing_is_exact_for_texts(docs in corpus(), replacement in document(), pick in any::<prop::sample::Index>(), probe in document()) {
        delta_indexing(&docs, replacement, pick.index(docs.len()), &[probe])?;
    }

    /// A conversation of stop words alone has no indexed text, so it cannot be scored by key
    /// (the service reports this as "no indexed text yet; retry once its ingest has finished").
    #[test]
    fn stop_words_alone_are_not_indexed(docs in corpus()) {
        let mut engine = built(&docs, 0..docs.len());
        let empty = conversation(docs.len(), &(String::new(), "the and we our how why is".to_owned()));
        engine.upsert_conversation(&empty, None);
        prop_assert!(engine.score_conversation(&empty.key).is_none());
    }

    /// A live engine (strategy first, then conversations as they arrive), once recompiled,
    /// scores like one rebuilt from storage (conversations first, then the strategy).
    #[test]
    fn a_recompiled_live_engine_scores_like_a_rebuilt_one((docs, order) in shuffled_corpus(), probe in document()) {
        let probes = [probe];
        let mut live_engine = live(&docs, order.iter().copied());
        live_engine.recompile();
        assert_close(
            &all_scores(&live_engine, docs.len(), &probes),
            &all_scores(&built(&docs, 0..docs.len()), docs.len(), &probes),
            "live and recompiled vs rebuilt",
        )?;
    }

    /// Without the recompile, a live engine's scores depend on when its model was last
    /// compiled: expansion and calibration are recomputed only when the corpus has grown by a
    /// quarter (plus ten) since, so from 20 conversations on a live server and the same server
    /// after a restart (which recompiles) score the same conversations differently, and two
    /// live servers that received the same conversations in different orders disagree.
    #[test]
    #[ignore = "engine design: the live model is only recompiled when the corpus grows by a quarter, a restart recompiles"]
    fn a_live_engine_scores_like_a_rebuilt_one((docs, order) in shuffled_corpus(), probe in document()) {
        let probes = [probe];
        assert_close(
            &all_scores(&live(&docs, order.iter().copied()), docs.len(), &probes),
            &all_scores(&built(&docs, 0..docs.len()), docs.len(), &probes),
            "live vs rebuilt",
        )?;
    }
}

// ---------------------------------------------------------------------------------------------
// People

fn person_key(index: usize) -> RecordKey {
    RecordKey::new("forum", format!("u{index}"))
}

/// Conversations opened by people 0..5 in turn, each with a reply by the next person.
fn community(docs: &[(String, String)]) -> Vec<(Conversation, Post)> {
    docs.iter()
        .enumerate()
        .map(|(index, doc)| {
            let mut opened = conversation(index, doc);
            opened.author = Some(format!("u{}", index % 5));
            let reply = Post {
                key: RecordKey::new("forum", format!("p{index:03}")),
                conversation: opened.key.external_id.clone(),
                author: Some(format!("u{}", (index + 1) % 5)),
                parent: None,
                created_at: opened.created_at.map(|at| at + 60_000),
                text: doc.1.clone(),
                reactions: 0,
            };
            (opened, reply)
        })
        .collect()
}

fn people_engine(
    items: &[(Conversation, Post)],
    order: &[usize],
    merges: &[trellis_core::domain::Merge],
) -> Engine {
    let mut engine = Engine::new(Default::default());
    engine.set_merges(merges);
    for &index in order {
        engine.upsert_conversation(&items[index].0, None);
    }
    for &index in order {
        engine.upsert_post(&items[index].1, None);
    }
    engine.set_strategy(1, strategy());
    engine
}

fn participant_scores(engine: &Engine, probe: &(String, String)) -> Vec<(RecordKey, f32)> {
    let bag = engine.text_bag(&probe.0, &probe.1);
    let mut scores: Vec<(RecordKey, f32)> = engine
        .suggest_participants(&bag, None, None, Some(1_800_000_000_000), 100)
        .into_iter()
        .map(|found| (found.person, found.score))
        .collect();
    scores.sort_by(|a, b| a.0.cmp(&b.0));
    scores
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Who is suggested, and how strongly, does not depend on the order records arrived in.
    #[test]
    fn participant_suggestions_do_not_depend_on_ingest_order((docs, order) in shuffled_corpus(), probe in document()) {
        let items = community(&docs);
        let in_order: Vec<usize> = (0..docs.len()).collect();
        let a = participant_scores(&people_engine(&items, &in_order, &[]), &probe);
        let b = participant_scores(&people_engine(&items, &order, &[]), &probe);
        prop_assert_eq!(a.len(), b.len());
        for ((person_a, score_a), (person_b, score_b)) in a.iter().zip(&b) {
            prop_assert_eq!(person_a, person_b);
            prop_assert!((score_a - score_b).abs() <= TOLERANCE, "{}: {} vs {}", person_a, score_a, score_b);
        }
    }

    /// An engine started from a store in a bulk load (postings built once at the end) answers
    /// exactly as one fed record by record: the same scores, the same participants with the same
    /// scores to the bit, the same discussions suggested.
    #[test]
    fn a_bulk_loaded_engine_answers_as_one_fed_record_by_record((docs, order) in shuffled_corpus(), probe in document()) {
        let items = community(&docs);
        let fed = people_engine(&items, &order, &[]);
        let mut loaded = Engine::new(Default::default());
        loaded.begin_load();
        // In the order `people_engine` feeds them: term ids, and so the order of sums, follow it.
        for &index in &order {
            loaded.upsert_conversation(&items[index].0, None);
        }
        for &index in &order {
            loaded.upsert_post(&items[index].1, None);
        }
        loaded.finish_load();
        loaded.set_strategy(1, strategy());
        let bits = |scores: Vec<ConversationScore>| -> Vec<(u32, Vec<u32>)> {
            scores
                .iter()
                .map(|score| {
                    let facets = score.facets.iter().map(|facet| facet.relevance.to_bits()).collect();
                    (score.overall.to_bits(), facets)
                })
                .collect()
        };
        let probes = std::slice::from_ref(&probe);
        prop_assert_eq!(bits(all_scores(&loaded, docs.len(), probes)), bits(all_scores(&fed, docs.len(), probes)));
        let exact = |engine: &Engine| -> Vec<(RecordKey, u32)> {
            participant_scores(engine, &probe).into_iter().map(|(person, score)| (person, score.to_bits())).collect()
        };
        prop_assert_eq!(exact(&loaded), exact(&fed));
        for person in 0..5 {
            let suggested = |engine: &Engine| -> Vec<(RecordKey, u32)> {
                engine
                    .suggest_discussions(&person_key(person), Some(1_800_000_000_000), 5)
                    .into_iter()
                    .map(|found| (found.conversation, found.score.to_bits()))
                    .collect()
            };
            prop_assert_eq!(suggested(&loaded), suggested(&fed));
        }
    }

    /// A record merged into a person speaks for them: the alias is never suggested on its own,
    /// and the merged person has every contribution of both records.
    #[test]
    fn merged_records_count_as_one_person(docs in corpus(), probe in document()) {
        let items = community(&docs);
        let order: Vec<usize> = (0..docs.len()).collect();
        let merge = trellis_core::domain::Merge {
            id: "m".into(),
            target: person_key(0),
            others: vec![person_key(1)],
            confidence: 1.0,
            reasons: vec![],
            automatic: false,
            created_at: 0,
            undone_at: None,
        };
        let apart = people_engine(&items, &order, &[]);
        let merged = people_engine(&items, &order, std::slice::from_ref(&merge));
        let suggested = participant_scores(&merged, &probe);
        prop_assert!(suggested.iter().all(|(person, _)| *person != person_key(1)));
        let now = 1_800_000_000_000;
        let count = |engine: &Engine, person: usize| {
            engine.people().summary(&person_key(person), now).map_or(0, |summary| summary.contributions)
        };
        prop_assert_eq!(count(&merged, 0), count(&apart, 0) + count(&apart, 1));
        prop_assert_eq!(merged.people().canonical(&person_key(1)), Some(&person_key(0)));
        // An undone merge is no merge at all.
        let undone = trellis_core::domain::Merge { undone_at: Some(1), ..merge };
        let unmerged = people_engine(&items, &order, &[undone]);
        prop_assert_eq!(participant_scores(&unmerged, &probe), participant_scores(&apart, &probe));
    }

    /// Editing a reply and editing it back leaves the author's profile as it was.
    #[test]
    fn editing_a_reply_back_restores_the_profile(docs in corpus(), replacement in document(), pick in any::<prop::sample::Index>()) {
        let items = community(&docs);
        let order: Vec<usize> = (0..docs.len()).collect();
        let mut engine = people_engine(&items, &order, &[]);
        let target = pick.index(items.len());
        let author = RecordKey::new("forum", items[target].1.author.clone().expect("an author"));
        // Every term, so that near-ties cannot reorder which ones make the cut.
        let before: std::collections::BTreeMap<String, f32> = engine.interests(&author, 10_000).into_iter().collect();
        let original = items[target].1.clone();
        let edited = Post { text: replacement.1.clone(), ..original.clone() };
        engine.upsert_post(&edited, Some(&original));
        engine.upsert_post(&original, Some(&edited));
        let after: std::collections::BTreeMap<String, f32> = engine.interests(&author, 10_000).into_iter().collect();
        prop_assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
        for (term, weight_a) in &before {
            let weight_b = after[term];
            prop_assert!((weight_a - weight_b).abs() <= TOLERANCE, "{}: {} vs {}", term, weight_a, weight_b);
        }
    }
}
