//! Action planning in the engine: which platforms a community talks on, how thin each facet's
//! conversation is there against its weight, and the order candidate actions are worth doing
//! in; and drafts that keep within each platform's limits.

use trellis_core::domain::{Conversation, PlatformKind, RecordKey};
use trellis_core::drafts::{fit_tags, shorten, with_link};
use trellis_core::engine::Engine;
use trellis_core::engine::model::ModelSettings;
use trellis_core::engine::people::PeopleSettings;
use trellis_core::engine::plan::{ActionKind, FacetNeed, order_actions};
use trellis_core::strategy::{Facet, FacetKind, Strategy};

const TRACING_TITLE: &str = "Distributed tracing spans lost across services";
const TRACING_BODY: &str = "Our distributed tracing drops spans between services; sampling keeps too few traces and context propagation breaks.";
const DASHBOARDS_TITLE: &str = "Dashboards and alerts in version control";
const DASHBOARDS_BODY: &str = "Should dashboards and alerts be kept in version control and reviewed in pull requests like code?";

fn facet(id: &str, name: &str, description: &str, weight: f64) -> Facet {
    Facet {
        id: id.into(),
        kind: FacetKind::Expertise,
        name: name.into(),
        description: description.into(),
        examples: vec![],
        keywords: vec![],
        weight,
    }
}

fn strategy() -> Strategy {
    Strategy {
        name: "observability".into(),
        mission: String::new(),
        facets: vec![
            facet(
                "tracing",
                "Distributed tracing",
                "Distributed tracing across services with spans, sampling and context propagation.",
                1.0,
            ),
            facet(
                "dashboards",
                "Dashboards as code",
                "Dashboards and alerts kept in version control and reviewed in pull requests.",
                1.0,
            ),
        ],
        exclusions: vec![],
    }
}

fn conversation(
    engine: &mut Engine,
    id: &str,
    platform: PlatformKind,
    title: &str,
    body: &str,
) -> Conversation {
    let conversation = Conversation {
        key: RecordKey::new("src", id),
        platform: Some(platform),
        url: format!("https://example.org/{id}"),
        title: title.into(),
        body: body.into(),
        open: true,
        ..Conversation::default()
    };
    engine.upsert_conversation(&conversation, None);
    conversation
}

/// Four forum threads (three on tracing, one on dashboards) and one chat thread on tracing.
fn community() -> Engine {
    let mut engine = Engine::with_people(ModelSettings::default(), PeopleSettings::default());
    for id in ["f1", "f2", "f3"] {
        conversation(
            &mut engine,
            id,
            PlatformKind::QaForum,
            TRACING_TITLE,
            TRACING_BODY,
        );
    }
    conversation(
        &mut engine,
        "f4",
        PlatformKind::QaForum,
        DASHBOARDS_TITLE,
        DASHBOARDS_BODY,
    );
    conversation(
        &mut engine,
        "c1",
        PlatformKind::Chat,
        TRACING_TITLE,
        TRACING_BODY,
    );
    engine.set_strategy(1, strategy());
    engine
}

fn need<'a>(
    needs: &'a [(PlatformKind, Vec<FacetNeed>)],
    platform: PlatformKind,
    facet: &str,
) -> &'a FacetNeed {
    needs
        .iter()
        .find(|(kind, _)| *kind == platform)
        .and_then(|(_, needs)| needs.iter().find(|need| need.facet_id == facet))
        .unwrap_or_else(|| panic!("a need for {facet} on {platform:?}"))
}

#[test]
fn the_platforms_are_those_conversations_are_on_in_a_fixed_order() {
    let engine = community();
    assert_eq!(
        engine.conversation_platforms(),
        [(PlatformKind::QaForum, 4), (PlatformKind::Chat, 1)]
    );
    assert_eq!(
        engine.conversation_platform(&RecordKey::new("src", "c1")),
        Some(PlatformKind::Chat)
    );
    assert_eq!(
        engine.conversation_platform(&RecordKey::new("src", "nope")),
        None
    );
}

#[test]
fn a_conversation_moved_to_another_platform_counts_there() {
    let mut engine = community();
    let previous = Conversation {
        key: RecordKey::new("src", "c1"),
        platform: Some(PlatformKind::Chat),
        url: "https://example.org/c1".into(),
        title: TRACING_TITLE.into(),
        body: TRACING_BODY.into(),
        open: true,
        ..Conversation::default()
    };
    let moved = Conversation {
        platform: Some(PlatformKind::Blog),
        ..previous.clone()
    };
    engine.upsert_conversation(&moved, Some(&previous));
    assert_eq!(
        engine.conversation_platforms(),
        [(PlatformKind::Blog, 1), (PlatformKind::QaForum, 4)]
    );
}

#[test]
fn a_facet_is_thin_where_its_share_falls_short_of_its_weight() {
    let engine = community();
    let needs = engine.facet_needs(&[
        PlatformKind::QaForum,
        PlatformKind::Chat,
        PlatformKind::Blog,
    ]);
    assert_eq!(needs.len(), 3);

    // The forum: three of four connected threads are on tracing, one on dashboards.
    let tracing = need(&needs, PlatformKind::QaForum, "tracing");
    let dashboards = need(&needs, PlatformKind::QaForum, "dashboards");
    assert_eq!((tracing.conversations, dashboards.conversations), (3, 1));
    assert!((tracing.share - 0.75).abs() < 1e-6, "{tracing:?}");
    assert!((dashboards.fair_share - 0.5).abs() < 1e-6);
    assert_eq!(tracing.thinness, 0.0);
    assert!((dashboards.thinness - 0.5).abs() < 1e-6, "{dashboards:?}");
    assert!(dashboards.need > tracing.need);

    // Chat has nothing on dashboards: as thin as it gets.
    let chat = need(&needs, PlatformKind::Chat, "dashboards");
    assert_eq!(chat.conversations, 0);
    assert!((chat.thinness - 1.0).abs() < 1e-6);
    assert!((chat.need - 1.0).abs() < 1e-6);

    // A platform with no conversation at all: every facet is thin there.
    for facet in ["tracing", "dashboards"] {
        assert!((need(&needs, PlatformKind::Blog, facet).thinness - 1.0).abs() < 1e-6);
    }
}

#[test]
fn a_conversation_on_a_thin_facet_makes_it_less_thin_there_only() {
    let mut engine = community();
    let before = engine.facet_needs(&[PlatformKind::Chat, PlatformKind::QaForum]);
    conversation(
        &mut engine,
        "c2",
        PlatformKind::Chat,
        DASHBOARDS_TITLE,
        DASHBOARDS_BODY,
    );
    let after = engine.facet_needs(&[PlatformKind::Chat, PlatformKind::QaForum]);
    assert!(
        need(&after, PlatformKind::Chat, "dashboards").thinness
            < need(&before, PlatformKind::Chat, "dashboards").thinness
    );
    assert_eq!(
        need(&after, PlatformKind::QaForum, "dashboards"),
        need(&before, PlatformKind::QaForum, "dashboards")
    );
}

#[test]
fn a_heavier_facet_needs_more_at_the_same_thinness() {
    let mut engine = Engine::with_people(ModelSettings::default(), PeopleSettings::default());
    let mut heavy = strategy();
    heavy.facets[0].weight = 3.0;
    engine.set_strategy(1, heavy);
    let needs = engine.facet_needs(&[PlatformKind::Blog]);
    let tracing = need(&needs, PlatformKind::Blog, "tracing");
    let dashboards = need(&needs, PlatformKind::Blog, "dashboards");
    assert!((tracing.fair_share - 0.75).abs() < 1e-6);
    assert!((tracing.weight - 1.0).abs() < 1e-6);
    assert!((dashboards.weight - 1.0 / 3.0).abs() < 1e-6);
    assert!(tracing.need > dashboards.need);
}

#[test]
fn without_a_strategy_there_is_nothing_to_plan() {
    let engine = Engine::with_people(ModelSettings::default(), PeopleSettings::default());
    assert!(engine.facet_needs(&[PlatformKind::Blog]).is_empty());
}

#[test]
fn a_plan_spreads_over_platforms_and_kinds() {
    let candidates: Vec<(PlatformKind, ActionKind, f32)> = (0..6)
        .map(|i| {
            (
                PlatformKind::Bookmarking,
                ActionKind::ShareAsset,
                1.0 - i as f32 * 0.01,
            )
        })
        .chain([(PlatformKind::Chat, ActionKind::ShortPost, 0.7)])
        .collect();
    let order = order_actions(&candidates, 4);
    assert_eq!(order.len(), 4);
    assert_eq!(order[0], 0, "the worthiest first");
    assert!(
        order.contains(&6),
        "another platform gets in before the fourth share: {order:?}"
    );
}

#[test]
fn drafts_keep_within_every_platform_and_keep_links_whole() {
    let link = "https://forum.example/t/1";
    let text =
        "Distributed tracing with almost no overhead — sampling, span and overhead: ".repeat(20);
    for kind in PlatformKind::ALL {
        let limits = kind.limits();
        let draft = with_link(&text, link, limits.short_post_chars);
        assert!(draft.chars().count() <= limits.short_post_chars, "{kind:?}");
        assert!(draft.ends_with(link), "{kind:?}: {draft}");
        if limits.title_chars > 0 {
            assert!(shorten(&text, limits.title_chars).chars().count() <= limits.title_chars);
        }
        let tags = fit_tags(
            [
                "OpenTelemetry",
                "context propagation",
                "sampling",
                "spans",
                "a",
                "b",
                "c",
                "d",
                "e",
            ],
            &limits,
        );
        assert!(tags.len() <= limits.max_tags, "{kind:?}: {tags:?}");
        assert!(
            tags.iter()
                .all(|tag| tag.chars().count() <= limits.tag_chars)
        );
    }
}
