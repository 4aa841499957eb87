//! `trellis report` end to end: the real binary writes the report of the example community;
//! its JSON carries exactly what the API answers; the HTML page needs nothing from the network,
//! renders in a real headless Chromium (Debian's `chromium`) with its charts laid out and no
//! script error, and shows the API's numbers.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{Server, fresh, ingest_example, pb, put_example_strategy};

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|output| output.status.success())
        })
        .map(str::to_owned)
}

/// The page's DOM after load, as headless Chromium serialises it.
fn rendered_dom(browser: &str, page: &Path, profile: &Path) -> String {
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

fn ids(values: &Value, key: &str) -> Vec<String> {
    values
        .as_array()
        .expect("a list")
        .iter()
        .map(|value| value[key].as_str().expect("an id").to_owned())
        .collect()
}

fn person_id(prospect: &pb::Prospect) -> String {
    let reference = prospect
        .person
        .as_ref()
        .and_then(|person| person.r#ref.as_ref())
        .expect("a person ref");
    format!("{}:{}", reference.source, reference.external_id)
}

async fn api_view(server: &Server) -> (pb::RecommendPlatformMixResponse, Vec<String>, Vec<String>) {
    let mut insight = server.insight();
    let mix = insight
        .recommend_platform_mix(pb::RecommendPlatformMixRequest::default())
        .await
        .expect("the mix")
        .into_inner();
    let prospects = insight
        .find_prospects(pb::FindProspectsRequest {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("prospects")
        .into_inner()
        .prospects
        .iter()
        .map(person_id)
        .collect();
    let conversations = insight
        .list_strategic_conversations(pb::ListStrategicConversationsRequest {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("conversations")
        .into_inner()
        .conversations
        .iter()
        .map(|conversation| {
            let reference = conversation.conversation.as_ref().expect("a ref");
            format!("{}:{}", reference.source, reference.external_id)
        })
        .collect();
    (mix, prospects, conversations)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_matches_the_api_and_renders_offline_in_a_real_browser() {
    let (dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);
    let out = dir.path().join("report");
    let written = server.cli_json(&["report", "--out", out.to_str().expect("UTF-8")]);
    for (key, file) in [
        ("html", "report.html"),
        ("markdown", "report.md"),
        ("json", "report.json"),
    ] {
        assert_eq!(
            written[key].as_str().map(Path::new),
            Some(out.join(file).as_path())
        );
        assert!(out.join(file).is_file(), "{file} written");
    }

    // The JSON is the API's answer.
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    let (mix, prospects, conversations) = api_view(&server).await;
    let platforms = report["mix"]["platforms"].as_array().expect("platforms");
    assert_eq!(platforms.len(), mix.platforms.len());
    for (row, stats) in platforms.iter().zip(&mix.platforms) {
        assert_eq!(
            row["recommended_effort"].as_f64(),
            Some((f64::from(stats.recommended_effort) * 1000.0).round() / 1000.0)
        );
        assert_eq!(
            row["strategic_conversations"].as_u64(),
            Some(u64::from(stats.strategic_conversations))
        );
    }
    assert_eq!(ids(&report["prospects"], "person"), prospects);
    assert_eq!(ids(&report["conversations"], "conversation"), conversations);
    let coverage: Vec<u64> = report["mix"]["coverage"]
        .as_array()
        .expect("coverage")
        .iter()
        .map(|period| {
            period["conversations"]
                .as_array()
                .expect("counts")
                .iter()
                .filter_map(Value::as_u64)
                .sum()
        })
        .collect();
    let api_coverage: Vec<u64> = mix
        .coverage
        .iter()
        .map(|period| {
            period
                .facets
                .iter()
                .map(|f| u64::from(f.conversations))
                .sum()
        })
        .collect();
    assert_eq!(coverage, api_coverage);
    assert!(coverage.iter().sum::<u64>() > 0);
    let members: Vec<String> = ids(&report["people"], "person");
    assert!(!members.is_empty(), "members to engage");
    assert!(members.iter().all(|member| member.starts_with("forum:u-")));

    // The Markdown has every section and the same people.
    let markdown = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for heading in [
        "## Platform mix",
        "## Facet coverage over time",
        "## Conversations to nourish",
        "## People to engage",
        "## Prospects",
        "## Assets that support the message",
        "## Next actions",
    ] {
        assert!(markdown.contains(heading), "{heading} in the Markdown");
    }
    assert!(markdown.contains(&prospects[0]));
    let actions = report["actions"].as_array().expect("actions");
    assert!(!actions.is_empty(), "the example community has work to do");
    assert!(
        actions
            .iter()
            .all(|action| !action["draft_text"].as_str().unwrap_or("").is_empty())
    );

    // The page needs nothing from the network.
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    for external in ["<script src", "<link", "@import", "src=\"http", "url(http"] {
        assert!(!html.contains(external), "the page loads {external}");
    }

    let Some(browser) = chromium() else {
        let ci = std::env::var("CI").is_ok_and(|value| value == "true");
        assert!(
            !ci,
            "CI=true but no chromium: install Debian's chromium package"
        );
        eprintln!("skipped the browser check: no chromium (install Debian's chromium package)");
        return;
    };
    let dom = rendered_dom(
        &browser,
        &out.join("report.html"),
        &dir.path().join("profile"),
    );
    assert!(
        dom.contains("data-rendered=\"ok\""),
        "the page's own check failed: {}",
        dom.lines()
            .find(|line| line.contains("<body"))
            .unwrap_or("no body")
    );
    assert!(dom.contains("data-charts=\"2\""));
    for stats in &mix.platforms {
        let name = trellis_grpc::convert::platform_name(stats.platform);
        let expected = format!(
            "data-platform=\"{name}\" data-effort=\"{:.3}\" data-share=\"{:.3}\"",
            stats.recommended_effort, stats.share
        );
        assert!(dom.contains(&expected), "{expected} in the rendered page");
    }
    for prospect in &prospects {
        assert!(
            dom.contains(&format!(
                "data-kind=\"prospect\" data-person=\"{prospect}\""
            )),
            "{prospect} in the rendered page"
        );
    }
    for conversation in &conversations {
        assert!(dom.contains(&format!("data-conversation=\"{conversation}\"")));
    }
    let first_action = &report["actions"][0];
    assert!(
        dom.contains(&format!(
            "data-action=\"{}\" data-platform=\"{}\"",
            first_action["kind"].as_str().expect("a kind"),
            first_action["platform"].as_str().expect("a platform")
        )),
        "the first action is on the page"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_needs_a_strategy_and_a_writable_folder() {
    let (dir, server) = fresh().await;
    ingest_example(&server);
    let out = dir.path().join("report");
    let output = server.cli(&["report", "--out", out.to_str().expect("UTF-8")]);
    assert!(!output.status.success(), "no strategy yet");
    assert!(!out.join("report.html").exists());

    put_example_strategy(&server).await;
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a folder").expect("a file");
    let output = server.cli(&["report", "--out", blocker.to_str().expect("UTF-8")]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot create"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
