//! Prospects in the engine: people outside the community whose interests meet the strategy,
//! ranked by convergence, activity and reach together; never someone with no interest in the
//! strategy however busy, never a forgotten person; and an invitation to an open conversation
//! they are not in yet.

use trellis_core::domain::{Conversation, Person, Post, RecordKey};
use trellis_core::engine::Engine;
use trellis_core::engine::model::ModelSettings;
use trellis_core::engine::people::PeopleSettings;
use trellis_core::engine::prospects::ProspectPool;
use trellis_core::strategy::{Facet, FacetKind, Strategy};

const DAY: i64 = 86_400_000;
const START: i64 = 1_767_225_600_000; // 2026-01-01

fn facet(id: &str, name: &str, description: &str) -> Facet {
    Facet {
        id: id.into(),
        kind: FacetKind::Expertise,
        name: name.into(),
        description: description.into(),
        examples: vec![],
        keywords: vec![],
        weight: 1.0,
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
                "Tracing requests across services with spans, sampling and context propagation.",
            ),
            facet(
                "dashboards",
                "Dashboards as code",
                "Dashboards and alerts kept in version control and reviewed in pull requests.",
            ),
        ],
        exclusions: vec![],
    }
}

fn person(id: &str, member: bool, bio: &str) -> Person {
    Person {
        key: RecordKey::new("forum", id),
        display_name: id.to_uppercase(),
        bio: bio.into(),
        member,
        ..Person::default()
    }
}

struct Community {
    engine: Engine,
    posts: u32,
}

impl Community {
    fn new() -> Self {
        let mut engine = Engine::with_people(ModelSettings::default(), PeopleSettings::default());
        engine.set_strategy(1, strategy());
        Self { engine, posts: 0 }
    }

    fn person(&mut self, person: Person) {
        self.engine.upsert_person(&person, None);
    }

    fn conversation(
        &mut self,
        id: &str,
        author: &str,
        title: &str,
        body: &str,
        open: bool,
        day: i64,
    ) {
        self.engine.upsert_conversation(
            &Conversation {
                key: RecordKey::new("forum", id),
                url: format!("https://forum.example/{id}"),
                title: title.into(),
                body: body.into(),
                author: Some(author.into()),
                open,
                created_at: Some(START + day * DAY),
                last_activity_at: Some(START + day * DAY),
                ..Conversation::default()
            },
            None,
        );
    }

    fn reply(&mut self, conversation: &str, author: &str, text: &str, day: i64) {
        self.posts += 1;
        self.engine.upsert_post(
            &Post {
                key: RecordKey::new("forum", format!("p{}", self.posts)),
                conversation: conversation.into(),
                author: Some(author.into()),
                created_at: Some(START + day * DAY),
                text: text.into(),
                ..Post::default()
            },
            None,
        );
    }
}

/// Members and outsiders: `tracer` (outsider, writes a lot about tracing, lately), `casual`
/// (outsider, wrote once about tracing, long ago), `boards` (outsider, dashboards), `baker`
/// (outsider, very active, only about bread), `member` (a member who writes about tracing).
fn community() -> Community {
    let mut community = Community::new();
    community.person(person(
        "tracer",
        false,
        "I work on distributed tracing and sampling.",
    ));
    community.person(person("casual", false, ""));
    community.person(person(
        "boards",
        false,
        "Dashboards and alerts in version control.",
    ));
    community.person(person("baker", false, "Sourdough, rye and baguettes."));
    community.person(person("member", true, "Tracing spans all day."));
    community.person(person("asker", true, ""));
    let tracing = "How do we propagate trace context across services? Spans are lost and sampling drops the slow requests.";
    for i in 0..6 {
        let id = format!("t{i}");
        community.conversation(&id, "asker", "Tracing across services", tracing, false, i);
        community.reply(
            &id,
            "tracer",
            "Propagate the context in headers so the spans join; sample by tail latency.",
            300 + i,
        );
        community.reply(
            &id,
            "member",
            "Spans need the trace context from the parent span.",
            300 + i,
        );
    }
    community.reply(
        "t0",
        "casual",
        "Sampling traces lost our slow spans once.",
        1,
    );
    for i in 0..3 {
        let id = format!("d{i}");
        community.conversation(
            &id,
            "asker",
            "Dashboards in git?",
            "Should dashboards and alerts live in version control with reviews?",
            false,
            10 + i,
        );
        community.reply(
            &id,
            "boards",
            "Yes: dashboards as code, every alert reviewed in a pull request.",
            300 + i,
        );
    }
    for i in 0..10 {
        let id = format!("b{i}");
        community.conversation(
            &id,
            "asker",
            "Bread",
            "My sourdough does not rise in a cold kitchen.",
            false,
            20 + i,
        );
        community.reply(
            &id,
            "baker",
            "Keep the starter warm, feed it rye flour and wait for bubbles.",
            300 + i,
        );
    }
    // Open conversations to invite people to.
    community.conversation("open-tracing", "asker", "Trace context lost in the queue consumer", "Our spans break at the message queue; how do we propagate the trace context and keep sampling consistent?", true, 310);
    community.conversation(
        "open-bread",
        "asker",
        "Rye or wheat?",
        "Which flour makes the best sourdough starter?",
        true,
        310,
    );
    community.engine.recompile();
    community
}

fn ids(found: &[trellis_core::engine::prospects::ProspectMatch]) -> Vec<&str> {
    found
        .iter()
        .map(|prospect| prospect.person.external_id.as_str())
        .collect()
}

#[test]
fn outsiders_with_interest_in_the_strategy_are_prospects_ranked_by_convergence_activity_and_reach()
{
    let community = community();
    let found = community
        .engine
        .find_prospects(None, ProspectPool::Outsiders, None, 10);
    let ranked = ids(&found);
    assert_eq!(ranked.first(), Some(&"tracer"), "{ranked:?}");
    assert!(ranked.contains(&"boards"), "{ranked:?}");
    assert!(
        !ranked.contains(&"member"),
        "members are not prospects by default: {ranked:?}"
    );
    assert!(
        !ranked.contains(&"baker"),
        "busy but with no interest in the strategy: {ranked:?}"
    );
    let position = |id: &str| ranked.iter().position(|other| *other == id);
    assert!(
        position("casual") > position("tracer"),
        "one old comment ranks below steady recent work: {ranked:?}"
    );
    assert!((found[0].score - 1.0).abs() < 1e-6);
    assert!(found.windows(2).all(|pair| pair[0].score >= pair[1].score));
    let tracer = &found[0];
    assert_eq!(tracer.facet_id, "tracing");
    assert!(tracer.convergence > 0.0 && tracer.convergence < 1.0);
    assert!(tracer.activity > 0.0);
    assert_eq!(tracer.reach, 6);
    assert!(!tracer.matched_terms.is_empty());
    assert!(!tracer.member);

    let boards = found
        .iter()
        .find(|prospect| prospect.person.external_id == "boards")
        .expect("boards is a prospect");
    assert_eq!(boards.facet_id, "dashboards");
}

#[test]
fn members_join_on_request_a_facet_narrows_and_the_limit_holds() {
    let community = community();
    let everyone = community
        .engine
        .find_prospects(None, ProspectPool::Everyone, None, 10);
    assert!(ids(&everyone).contains(&"member"), "{:?}", ids(&everyone));
    let two = community
        .engine
        .find_prospects(None, ProspectPool::Everyone, None, 2);
    assert_eq!(ids(&two), ids(&everyone)[..2].to_vec());

    let dashboards =
        community
            .engine
            .find_prospects(Some("dashboards"), ProspectPool::Outsiders, None, 10);
    assert_eq!(ids(&dashboards).first(), Some(&"boards"));
    assert!(
        dashboards
            .iter()
            .all(|prospect| prospect.facet_id == "dashboards")
    );
    assert!(
        community
            .engine
            .find_prospects(None, ProspectPool::Everyone, None, 0)
            .is_empty()
    );
}

#[test]
fn forgotten_people_and_a_workspace_without_strategy_give_no_prospects() {
    let mut community = community();
    community
        .engine
        .set_forgotten(vec![RecordKey::new("forum", "tracer")]);
    let found = community
        .engine
        .find_prospects(None, ProspectPool::Outsiders, None, 10);
    assert!(!ids(&found).contains(&"tracer"), "{:?}", ids(&found));

    let bare = Engine::with_people(ModelSettings::default(), PeopleSettings::default());
    assert!(
        bare.find_prospects(None, ProspectPool::Everyone, None, 10)
            .is_empty()
    );
}

#[test]
fn the_invitation_is_an_open_conversation_on_their_facet_that_they_are_not_in() {
    let community = community();
    let found = community
        .engine
        .find_prospects(None, ProspectPool::Outsiders, None, 10);
    let tracer = found
        .iter()
        .find(|prospect| prospect.person.external_id == "tracer")
        .expect("tracer");
    let invitation = community.engine.invitation_for(tracer, true);
    assert_eq!(
        invitation.conversation,
        Some(RecordKey::new("forum", "open-tracing"))
    );
}
