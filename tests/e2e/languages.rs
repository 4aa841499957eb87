//! Communities in several languages, through the API: a strategy with a facet in each of
//! Chinese, Japanese, Korean, Spanish, German and Russian finds its own language's
//! conversations by their words; interests, evidence and topics to start are words of the
//! language, never function characters; an unrelated Chinese text that only shares a character
//! with a facet scores as unrelated; and health and scores say which languages Trellis cannot
//! analyse.

use trellis_grpc::pb;

use super::{Server, TestDir, ingest, reference, score_texts, score_texts_with, test_dir};

/// One facet per language: (id, language code, name, description).
const FACETS: &[(&str, &str, &str, &str)] = &[
    (
        "kpop",
        "zh",
        "韩国流行音乐",
        "韩国的流行音乐、偶像团体、演唱会和粉丝文化。",
    ),
    (
        "anime",
        "ja",
        "アニメとマンガ",
        "日本のアニメやマンガ、声優、コミックマーケットについての話題。",
    ),
    (
        "food",
        "ko",
        "한국 음식",
        "김치와 비빔밥 같은 한국 음식의 요리법과 맛있는 식당 이야기.",
    ),
    (
        "recycling",
        "es",
        "Reciclaje de plásticos",
        "Cómo separar y reciclar los envases de plástico en casa y en el barrio.",
    ),
    (
        "energy",
        "de",
        "Energiewende zu Hause",
        "Solaranlagen, Wärmepumpen und Stromspeicher für das eigene Haus.",
    ),
    (
        "quantum",
        "ru",
        "Квантовые вычисления",
        "Программирование квантовых компьютеров: кубиты, квантовые схемы и алгоритмы.",
    ),
];

/// Conversations: (id, author, title, body), in the facets' order, then a second one in Spanish
/// and in German, one in Thai and one in English.
const CONVERSATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "zh-1",
        "li",
        "首尔演唱会门票",
        "我下个月要去首尔看韩国偶像团体的演唱会，大家知道门票在哪里买吗？粉丝应援应该准备什么？",
    ),
    (
        "ja-1",
        "sato",
        "今期のおすすめアニメ",
        "今期のアニメでおすすめはありますか？原作のマンガも読みたいです。声優のイベントにも行きたい。",
    ),
    (
        "ko-1",
        "kim",
        "집에서 김치 담그는 법",
        "처음으로 김치를 담그려고 합니다. 배추와 고춧가루는 얼마나 필요할까요? 비빔밥에도 잘 어울리는 김치 요리법을 알려주세요.",
    ),
    (
        "es-1",
        "ana",
        "¿Dónde reciclar envases de plástico?",
        "En mi barrio no hay contenedor amarillo. ¿Cómo separáis los envases de plástico en casa para reciclarlos?",
    ),
    (
        "de-1",
        "jonas",
        "Wärmepumpe im Altbau",
        "Lohnt sich eine Wärmepumpe in einem alten Haus? Wir überlegen auch, eine Solaranlage mit Stromspeicher auf das Dach zu bauen.",
    ),
    (
        "ru-1",
        "ivan",
        "С чего начать программирование квантовых компьютеров",
        "Хочу научиться программированию квантовых компьютеров. Какие книги о кубитах и квантовых алгоритмах посоветуете?",
    ),
    // A second conversation in Spanish and in German: the other facets carry less of the
    // community's strategic conversation than their weight asks, so topics can be suggested.
    (
        "es-2",
        "lucia",
        "Compostaje y reciclaje en el barrio",
        "En nuestro barrio separamos los envases de plástico y el vidrio. ¿Qué hacéis con el plástico que no se puede reciclar?",
    ),
    (
        "de-2",
        "lena",
        "Stromspeicher für die Solaranlage",
        "Welcher Stromspeicher passt zu einer kleinen Solaranlage auf dem Haus? Die Wärmepumpe soll auch mit Solarstrom laufen.",
    ),
    (
        "th-1",
        "somchai",
        "การรีไซเคิลขวดพลาสติก",
        "การรีไซเคิลขวดพลาสติกที่บ้านทำได้อย่างไรบ้างครับ",
    ),
    (
        "en-1",
        "sam",
        "Recycling plastic packaging at home",
        "How do you sort plastic packaging at home so that the recycling plant takes it?",
    ),
];

/// Replies: (id, conversation, author, text).
const POSTS: &[(&str, &str, &str, &str)] = &[
    (
        "zh-p1",
        "zh-1",
        "li",
        "我是韩国流行音乐的粉丝，每年都去看偶像团体的演唱会。门票最好在官方网站买，应援棒和灯牌一定要带。",
    ),
    (
        "zh-p2",
        "zh-1",
        "li",
        "上次演唱会的舞台效果很好，粉丝们一起唱歌，偶像团体的表演非常精彩。",
    ),
    (
        "ja-p1",
        "ja-1",
        "sato",
        "マンガ原作のアニメが好きです。声優のイベントやコミックマーケットにもよく行きます。",
    ),
    (
        "ru-p1",
        "ru-1",
        "ivan",
        "Я читаю книги о квантовых алгоритмах и пишу программы для квантовых компьютеров на кубитах.",
    ),
];

fn strategy() -> pb::Strategy {
    pb::Strategy {
        name: "A community in six languages".into(),
        facets: FACETS
            .iter()
            .map(|(id, _, name, description)| pb::Facet {
                id: (*id).into(),
                kind: pb::FacetKind::Expertise.into(),
                name: (*name).into(),
                description: (*description).into(),
                weight: Some(1.0),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn community() -> (TestDir, Server) {
    let dir = test_dir().expect("a temporary folder");
    let server = Server::start(&dir.path().join("t.db")).await;
    server
        .strategies()
        .put_strategy(pb::PutStrategyRequest {
            workspace: String::new(),
            strategy: Some(strategy()),
        })
        .await
        .expect("the strategy is accepted");
    let mut records = Vec::new();
    for (id, author, title, body) in CONVERSATIONS {
        records.push(pb::IngestRequest {
            workspace: String::new(),
            record: Some(pb::ingest_request::Record::Conversation(pb::Conversation {
                r#ref: reference("forum", id),
                platform: pb::PlatformKind::QaForum.into(),
                title: (*title).into(),
                body: (*body).into(),
                author: (*author).into(),
                open: true,
                ..Default::default()
            })),
        });
    }
    for (id, conversation, author, text) in POSTS {
        records.push(pb::IngestRequest {
            workspace: String::new(),
            record: Some(pb::ingest_request::Record::Post(pb::Post {
                r#ref: reference("forum", id),
                conversation: (*conversation).into(),
                author: (*author).into(),
                text: (*text).into(),
                ..Default::default()
            })),
        });
    }
    let response = ingest(&server, records).await;
    assert!(response.errors.is_empty(), "{response:?}");
    (dir, server)
}

/// Function words and the single characters the English-only analyser made interests of.
const FUNCTION_WORDS: &[&str] = &[
    "的", "我", "了", "是", "一", "在", "国", "韩", "の", "を", "は", "에", "의", "de", "los",
    "en", "und", "die", "das", "и", "в", "на",
];

fn assert_words(what: &str, terms: &[String]) {
    assert!(!terms.is_empty(), "{what}: no words at all");
    for term in terms {
        assert!(
            !FUNCTION_WORDS.contains(&term.to_lowercase().as_str()),
            "{what}: the function word {term:?} among {terms:?}"
        );
    }
}

#[tokio::test]
async fn each_language_finds_its_own_conversations_by_its_words() {
    let (_dir, server) = community().await;
    let texts: Vec<(&str, &str)> = CONVERSATIONS
        .iter()
        .take(FACETS.len())
        .map(|(_, _, title, body)| (*title, *body))
        .collect();
    // Evidence for every facet, connected or not: each language's is checked.
    let scores = score_texts_with(&server, &texts, true).await;
    for ((facet, code, _, _), score) in FACETS.iter().zip(&scores) {
        let best = score
            .facets
            .iter()
            .max_by(|a, b| a.relevance.total_cmp(&b.relevance))
            .expect("facet scores");
        assert_eq!(best.facet_id, *facet, "{code}: {score:?}");
        assert!(best.relevance > 0.1, "{code}: {best:?}");
        let terms: Vec<String> = best
            .evidence
            .iter()
            .flat_map(|evidence| evidence.terms.iter().map(|term| term.term.clone()))
            .collect();
        assert_words(&format!("{code} evidence"), &terms);
        let sentence = best
            .evidence
            .as_ref()
            .map(|evidence| evidence.sentence.clone())
            .unwrap_or_default();
        assert!(
            !sentence.is_empty(),
            "{code}: evidence quotes a sentence: {best:?}"
        );
    }

    // Domestic economic news shares the character 国 with 韩国 and nothing else.
    let news = score_texts(
        &server,
        &[(
            "国内经济新闻",
            "央行宣布降息，国内股市上涨，物价保持稳定，经济学家认为今年的增长目标可以实现。",
        )],
    )
    .await;
    let kpop = news[0]
        .facets
        .iter()
        .find(|facet| facet.facet_id == "kpop")
        .expect("the kpop facet is scored");
    assert!(kpop.relevance < 0.05, "{kpop:?}");
    assert_eq!(
        news[0].class,
        i32::from(pb::ConnectionClass::OffStrategy),
        "{:?}",
        news[0]
    );
    assert_eq!((news[0].language.as_str(), news[0].analysed), ("zh", true));

    // A Thai text scores nothing, and says that this is because Thai is not analysed.
    let thai = score_texts(
        &server,
        &[(
            "การรีไซเคิลขวดพลาสติก",
            "การรีไซเคิลขวดพลาสติกที่บ้านทำได้อย่างไรบ้างครับ",
        )],
    )
    .await;
    assert_eq!(
        (thai[0].language.as_str(), thai[0].analysed),
        ("th", false),
        "{:?}",
        thai[0]
    );
}

#[tokio::test]
async fn interests_and_topics_to_start_are_words_of_the_language() {
    let (_dir, server) = community().await;
    let mut topics = 0;
    for (person, code) in [("li", "zh"), ("sato", "ja"), ("ivan", "ru"), ("kim", "ko")] {
        let profile = server
            .people()
            .get_person(pb::GetPersonRequest {
                workspace: String::new(),
                r#ref: reference("forum", person),
            })
            .await
            .expect("the person is known")
            .into_inner()
            .profile
            .expect("a profile");
        let interests: Vec<String> = profile
            .top_interests
            .iter()
            .map(|interest| interest.term.clone())
            .collect();
        assert_words(&format!("{code} interests of {person}"), &interests);
        if code == "zh" {
            assert!(
                interests
                    .iter()
                    .any(|term| term == "演唱会" || term == "偶像"),
                "{interests:?}"
            );
        }
        let suggestions = server
            .insight()
            .suggest_discussions(pb::SuggestDiscussionsRequest {
                workspace: String::new(),
                person: reference("forum", person),
                limit: 10,
                as_of: None,
            })
            .await
            .expect("discussions")
            .into_inner();
        for topic in &suggestions.start {
            let words: Vec<String> = topic
                .suggested_title
                .split_once(": ")
                .map(|(_, words)| {
                    words
                        .split(['、', ',', ' '])
                        .filter(|word| !word.is_empty() && *word != "and")
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            assert_words(&format!("{code} topic for {person}"), &words);
            topics += 1;
        }
    }
    assert!(topics > 0, "some topic to start was suggested and checked");
}

#[tokio::test]
async fn health_counts_languages_and_names_what_it_cannot_analyse() {
    let (_dir, server) = community().await;
    let status = pb::server_service_client::ServerServiceClient::new(server.channel.clone())
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let workspace = status
        .workspaces
        .iter()
        .find(|workspace| workspace.workspace.is_empty() || workspace.workspace == "default")
        .expect("the default workspace");
    let count = |code: &str| {
        workspace
            .languages
            .iter()
            .find(|language| language.code == code)
            .unwrap_or_else(|| panic!("{code} is counted: {:?}", workspace.languages))
    };
    for (code, conversations, posts) in [
        ("zh", 1, 2),
        ("ja", 1, 1),
        ("ko", 1, 0),
        ("es", 2, 0),
        ("de", 2, 0),
        ("ru", 1, 1),
        ("en", 1, 0),
    ] {
        let language = count(code);
        assert_eq!(
            (language.conversations, language.posts),
            (conversations, posts),
            "{language:?}"
        );
        assert!(language.analysed, "{language:?}");
    }
    let thai = count("th");
    assert_eq!(thai.conversations, 1);
    assert!(!thai.analysed, "{thai:?}");
    assert!(thai.analysis.contains("not analysed"), "{thai:?}");
    assert_eq!(
        count("zh").analysis,
        "jieba word segmentation and stop words"
    );

    // The CLI says the same.
    let health = server.cli_json(&["health"]);
    let languages = health["workspaces"][0]["languages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        languages
            .iter()
            .any(|language| language["code"] == "th" && language["analysed"] == false),
        "{health}"
    );
}
