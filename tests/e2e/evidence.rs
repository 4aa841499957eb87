//! Evidence a community manager would believe, checked on the real development dumps synced
//! through the real StackExchange connector: for the 50 most active people and the 20 least
//! active with at least three posts, no interest, reason term or quoted sentence is a link, a
//! host name or a file name; no reason term is among the community's 50 most frequent words;
//! a person's suggestions rarely share the same reason terms; and their scores are what the
//! API documents (in [0, 1]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use trellis_conformance::built_library;
use trellis_core::text::Analyzer;

use super::evaluation::shared_data;
use super::{Server, on_postgres, test_dir};

/// The development dumps with a strategy of their own.
const DUMPS: &[&str] = &["sustainability", "ai", "quantumcomputing"];
const MOST_ACTIVE: usize = 50;
const LEAST_ACTIVE: usize = 20;
const SUGGESTIONS: usize = 10;

#[tokio::test(flavor = "multi_thread")]
async fn interests_reasons_and_evidence_read_as_a_person_would_write_them() {
    if on_postgres() {
        eprintln!("skipped on PostgreSQL: nothing here is about storage");
        return;
    }
    let data = shared_data();
    for dump in DUMPS {
        let folder = data.join("stackexchange").join(dump);
        if !folder.is_dir() {
            eprintln!("skipped {dump}: no dump at {}", folder.display());
            continue;
        }
        check_dump(
            dump,
            &folder,
            &data.join("strategies").join(format!("{dump}.toml")),
        )
        .await;
    }
}

async fn check_dump(name: &str, folder: &Path, strategy: &Path) {
    let dump = trellis_eval::Dump::load(folder).expect("the dump loads");
    let analyzer = Analyzer::new();
    // The community's 50 most frequent words (stems), counted here from the dump itself.
    let mut frequencies: HashMap<String, u64> = HashMap::new();
    let mut activity: HashMap<i64, u32> = HashMap::new();
    let texts = dump
        .posts
        .iter()
        .map(|post| (post.owner_user_id, trellis_eval::strip_html(&post.body)))
        .chain(
            dump.comments
                .iter()
                .map(|comment| (comment.user_id, comment.text.clone())),
        );
    for (author, text) in texts {
        for stem in analyzer.stems(&text) {
            *frequencies.entry(stem).or_default() += 1;
        }
        if let Some(author) = author.filter(|id| *id > 0) {
            *activity.entry(author).or_default() += 1;
        }
    }
    let mut frequent: Vec<(String, u64)> = frequencies.into_iter().collect();
    frequent.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let frequent: BTreeSet<String> = frequent
        .into_iter()
        .take(50)
        .map(|(stem, _)| stem)
        .collect();
    let mut people: Vec<(i64, u32)> = activity.into_iter().collect();
    people.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut chosen: Vec<i64> = people.iter().take(MOST_ACTIVE).map(|(id, _)| *id).collect();
    let quiet: Vec<i64> = people
        .iter()
        .rev()
        .filter(|(_, posts)| *posts >= 3)
        .take(LEAST_ACTIVE)
        .map(|(id, _)| *id)
        .collect();
    chosen.extend(
        quiet
            .into_iter()
            .filter(|id| !chosen.contains(id))
            .collect::<Vec<_>>(),
    );

    let dir = test_dir().expect("a temporary folder");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = built_library("trellis_connector_stackexchange");
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    let plugin_dirs = format!("[\"{}\"]", plugins.display());
    let server = Server::start_with(
        &dir.path().join("trellis.db"),
        &[
            ("TRELLIS__PLUGINS__DIRS", plugin_dirs.as_str()),
            ("TRELLIS__SEMANTIC__MODE", "off"),
            ("TRELLIS__LEARNING__BACKGROUND", "false"),
        ],
    )
    .await;
    server.cli_json(&["strategy", "put", &strategy.display().to_string()]);
    let config = serde_json::json!({ "path": folder.display().to_string() }).to_string();
    server.cli_json(&[
        "sources",
        "create",
        name,
        "--connector",
        "stackexchange",
        "--config",
        &config,
    ]);
    // A sync prints its progress as JSON lines, the outcome last.
    let sync = server.cli(&["sources", "sync", name]);
    let printed = String::from_utf8_lossy(&sync.stdout);
    let outcome: serde_json::Value = printed
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_default();
    assert!(
        sync.status.success() && outcome["status"] == "succeeded",
        "the sync of {name} failed: {printed}\n{}",
        String::from_utf8_lossy(&sync.stderr)
    );

    let mut problems: Vec<String> = Vec::new();
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for id in &chosen {
        let person = format!("{name}:{id}");
        let shown = server.cli_json(&["people", "show", &person]);
        for interest in shown["top_interests"].as_array().into_iter().flatten() {
            let word = interest["term"].as_str().unwrap_or_default();
            if let Some(why) = not_a_word(word) {
                problems.push(format!("{person}: interest {word:?} is {why}"));
            }
        }
        let suggested = server.cli_json(&[
            "suggest",
            "--person",
            &person,
            "--limit",
            &SUGGESTIONS.to_string(),
        ]);
        let join = suggested["join"].as_array().cloned().unwrap_or_default();
        let mut sets: BTreeMap<Vec<String>, usize> = BTreeMap::new();
        let mut scores: Vec<f64> = Vec::new();
        for suggestion in &join {
            let score = suggestion["score"].as_f64().unwrap_or(f64::NAN);
            if !(0.0..=1.0).contains(&score) {
                problems.push(format!(
                    "{person}: a suggestion scores {score}, outside [0, 1]"
                ));
            }
            scores.push(score);
            let mut terms: Vec<String> = Vec::new();
            for reason in suggestion["reasons"].as_array().into_iter().flatten() {
                let reason = reason.as_str().unwrap_or_default();
                let Some(list) = reason.strip_prefix("about what sets their writing apart: ")
                else {
                    continue;
                };
                for term in list.split(", ").map(|term| term.trim_matches('"')) {
                    if let Some(why) = not_a_word(term) {
                        problems.push(format!("{person}: reason term {term:?} is {why}"));
                    }
                    if analyzer
                        .stems(term)
                        .iter()
                        .any(|stem| frequent.contains(stem))
                    {
                        problems.push(format!(
                            "{person}: reason term {term:?} is among the community's 50 most frequent words"
                        ));
                    }
                    terms.push(term.to_owned());
                }
            }
            for evidence in suggestion["evidence"].as_array().into_iter().flatten() {
                let sentence = evidence["sentence"].as_str().unwrap_or_default();
                if sentence.contains("://") || sentence.contains("www.") {
                    problems.push(format!("{person}: evidence quotes a link: {sentence:?}"));
                }
                if sentence.trim_start().starts_with('>') {
                    problems.push(format!(
                        "{person}: evidence quotes a quotation: {sentence:?}"
                    ));
                }
            }
            if !terms.is_empty() {
                terms.sort();
                *sets.entry(terms).or_default() += 1;
            }
        }
        if join.len() >= 5 {
            let most = sets.values().copied().max().unwrap_or(0);
            if most * 5 > join.len() {
                problems.push(format!(
                    "{person}: {most} of {} suggestions give the same reason terms",
                    join.len()
                ));
            }
        }
        if let (Some(low), Some(high)) = (
            scores.iter().copied().reduce(f64::min),
            scores.iter().copied().reduce(f64::max),
        ) {
            spans.push((low, high));
        }
    }
    eprintln!(
        "{name}: {} people checked, {} problems; suggestion scores span {}",
        chosen.len(),
        problems.len(),
        spans
            .iter()
            .take(5)
            .map(|(low, high)| format!("{low:.2}-{high:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        problems.is_empty(),
        "{name}: {} problems, the first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(20)]
    );
}

/// Why a word shown as an interest or a reason is not a word a person writes about, if it is
/// not: a link, a host or file name, a number, code.
fn not_a_word(word: &str) -> Option<&'static str> {
    if word.contains("://") || word.starts_with("www") {
        return Some("a link");
    }
    if word.split(' ').any(|part| part.contains('.')) {
        return Some("a host or file name");
    }
    if word.chars().any(|c| c.is_ascii_digit()) {
        return Some("a number or an identifier");
    }
    if word.contains(['/', '_', '@', '=', '\\']) {
        return Some("code or a path");
    }
    if word.trim().is_empty() {
        return Some("empty");
    }
    None
}
