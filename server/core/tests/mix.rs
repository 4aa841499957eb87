//! The platform mix in the engine: strategic conversations counted per platform and facet, the
//! trend of the latest period against the one before, the window asked about, and an effort
//! split that follows where the strategic conversation is.

use trellis_core::domain::{Conversation, PlatformKind, RecordKey};
use trellis_core::engine::Engine;
use trellis_core::engine::model::ModelSettings;
use trellis_core::engine::people::PeopleSettings;
use trellis_core::strategy::{Facet, FacetKind, Strategy};

const DAY: i64 = 86_400_000;
const START: i64 = 1_767_225_600_000; // 2026-01-01

fn strategy() -> Strategy {
    Strategy {
        name: "observability".into(),
        mission: String::new(),
        facets: vec![Facet {
            id: "tracing".into(),
            kind: FacetKind::Expertise,
            name: "Distributed tracing".into(),
            description: "Tracing requests across services with spans and context propagation."
                .into(),
            examples: vec![],
            keywords: vec![],
            weight: 1.0,
        }],
        exclusions: vec![],
    }
}

fn add(engine: &mut Engine, id: &str, platform: PlatformKind, on_topic: bool, day: i64) {
    let (title, body) = if on_topic {
        (
            "Tracing spans across services",
            "How do we propagate the trace context so spans from every service join one trace?",
        )
    } else {
        (
            "Weekend plans",
            "Anyone going hiking in the hills this weekend? The weather looks fine.",
        )
    };
    engine.upsert_conversation(
        &Conversation {
            key: RecordKey::new(platform.as_str(), id),
            platform: Some(platform),
            title: title.into(),
            body: body.into(),
            open: true,
            created_at: Some(START + day * DAY),
            last_activity_at: Some(START + day * DAY),
            ..Conversation::default()
        },
        None,
    );
}

/// The forum: six strategic conversations, two of them in the last 30 days. Chat: three, all in
/// the last 30 days. Both have off-topic chatter too. The corpus ends on day 100.
fn engine() -> Engine {
    let mut engine = Engine::with_people(ModelSettings::default(), PeopleSettings::default());
    for (i, day) in [10, 20, 40, 45, 80, 95].into_iter().enumerate() {
        add(
            &mut engine,
            &format!("f{i}"),
            PlatformKind::QaForum,
            true,
            day,
        );
    }
    for (i, day) in [75, 90, 100].into_iter().enumerate() {
        add(&mut engine, &format!("c{i}"), PlatformKind::Chat, true, day);
    }
    for i in 0..8 {
        add(
            &mut engine,
            &format!("x{i}"),
            PlatformKind::Chat,
            false,
            50 + i,
        );
        add(
            &mut engine,
            &format!("y{i}"),
            PlatformKind::QaForum,
            false,
            50 + i,
        );
    }
    engine.set_strategy(1, strategy());
    engine
}

#[test]
fn strategic_conversations_are_counted_per_platform_with_their_trend() {
    let mix = engine().platform_mix(None);
    assert_eq!(mix.period_days, 30);
    let forum = mix
        .platforms
        .iter()
        .find(|stats| stats.platform == PlatformKind::QaForum)
        .expect("the forum");
    let chat = mix
        .platforms
        .iter()
        .find(|stats| stats.platform == PlatformKind::Chat)
        .expect("chat");
    assert_eq!(forum.strategic_conversations, 6);
    assert_eq!(chat.strategic_conversations, 3);
    assert!((forum.share - 6.0 / 9.0).abs() < 1e-5);
    assert_eq!(forum.facets, vec![("tracing".to_owned(), 6, 1.0)]);
    // Days 71-100 against 41-70.
    assert_eq!((forum.recent, forum.previous), (2, 1));
    assert!((forum.trend - 1.0).abs() < 1e-6);
    assert_eq!((chat.recent, chat.previous), (3, 0));
    assert!((chat.trend - 3.0).abs() < 1e-6);
    let total: f32 = mix
        .platforms
        .iter()
        .map(|stats| stats.recommended_effort)
        .sum();
    assert!((total - 1.0).abs() < 1e-5);
    assert!(mix.platforms.iter().all(|stats| !stats.reasons.is_empty()));
    assert!(!mix.findings.is_empty() && !mix.sensitivities.is_empty());

    // Coverage: six 30-day periods ending on day 100, strategic conversations by creation.
    assert_eq!(mix.coverage.len(), 6);
    assert_eq!(mix.coverage[5].end, START + 100 * DAY);
    let counts: Vec<u32> = mix
        .coverage
        .iter()
        .map(|period| period.per_facet[0].1)
        .collect();
    // Days (-80,-50], (-50,-20], (-20,10], (10,40], (40,70], (70,100].
    assert_eq!(counts, vec![0, 0, 1, 2, 1, 5]);
}

#[test]
fn a_window_keeps_only_conversations_active_in_it_and_halves_it_for_the_trend() {
    let since = START + 60 * DAY;
    let mix = engine().platform_mix(Some(since));
    assert_eq!(mix.period_days, 20);
    let count = |platform: PlatformKind| {
        mix.platforms
            .iter()
            .find(|stats| stats.platform == platform)
            .map_or(0, |stats| stats.strategic_conversations)
    };
    assert_eq!(count(PlatformKind::QaForum), 2);
    assert_eq!(count(PlatformKind::Chat), 3);
    assert_eq!(
        mix.platforms[0].platform,
        PlatformKind::Chat,
        "chat carries most now"
    );
}

#[test]
fn without_a_strategy_there_is_no_mix() {
    let mut engine = Engine::with_people(ModelSettings::default(), PeopleSettings::default());
    add(&mut engine, "f0", PlatformKind::QaForum, true, 1);
    assert!(engine.platform_mix(None).platforms.is_empty());
}
