//! The report as one self-contained HTML page: inline CSS, charts drawn as inline SVG, and a
//! few lines of script that check the charts laid out and mark the page `data-rendered="ok"`
//! (what the headless-browser test reads). Nothing is fetched: the page opens offline.
//! Every number carries a `data-` attribute with the value the API returned, so a reader (or a
//! test) can check the page against the API.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{PersonRow, Report};

/// Facet colours, cycled: distinguishable, and readable on white.
const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

const CSS: &str = r#"
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430; margin: 0; background: #f6f7f9; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 64px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; border-bottom: 2px solid #e4e7ec; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.meta { color: #5b6472; margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; font-size: 14px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e9ecf1; vertical-align: top; }
th { background: #f1f3f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
ul.reasons { margin: 0; padding-left: 18px; color: #3d4654; }
.draft { font-style: italic; color: #2d3a4f; }
.chart { width: 100%; height: auto; max-height: 360px; margin: 8px 0; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; }
.passage { color: #3d4654; }
.empty { color: #5b6472; font-style: italic; }
.note { color: #5b6472; font-size: 0.85em; }
"#;

const SCRIPT: &str = r#"
(function () {
  var problems = [];
  window.addEventListener('error', function (event) { problems.push(String(event.message)); });
  var charts = document.querySelectorAll('svg.chart');
  for (var i = 0; i < charts.length; i++) {
    var box = charts[i].getBBox();
    if (!(box.width > 0 && box.height > 0)) { problems.push('chart ' + charts[i].id + ' is empty'); }
  }
  document.body.setAttribute('data-charts', String(charts.length));
  document.body.setAttribute('data-rendered', problems.length ? 'problems' : 'ok');
  if (problems.length) { document.body.setAttribute('data-problems', problems.join('; ')); }
})();
"#;

fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

fn percent(value: f64) -> String {
    format!("{:.0}%", value * 100.0)
}

/// Effort and share of strategic conversations per platform, as paired horizontal bars.
fn effort_chart(report: &Report) -> Markup {
    let row = 34.0;
    let label_width = 150.0;
    let bar_width = 520.0;
    let height = 30.0 + row * report.mix.platforms.len().max(1) as f64;
    html! {
        svg.chart id="effort-chart" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {} {height}", label_width + bar_width + 90.0)) {
            title { "Recommended effort and share of strategic conversations per platform" }
            line x1=(label_width) y1="4" x2=(label_width) y2=(height - 4.0) stroke="#9aa3b2" {}
            text x=(label_width + 4.0) y="14" font-size="12" fill="#5b6472" { "effort (dark) · share of strategic conversations (light)" }
            @for (index, platform) in report.mix.platforms.iter().enumerate() {
                @let y = 24.0 + row * index as f64;
                g.bar data-platform=(platform.platform)
                    data-effort=(format!("{:.3}", platform.recommended_effort))
                    data-share=(format!("{:.3}", platform.share)) {
                    text x=(label_width - 8.0) y=(y + 15.0) text-anchor="end" font-size="13" { (platform.platform) }
                    rect x=(label_width) y=(y) height="12" width=(format!("{:.1}", bar_width * platform.recommended_effort)) fill="#2f5d8a" {}
                    rect x=(label_width) y=(y + 13.0) height="8" width=(format!("{:.1}", bar_width * platform.share)) fill="#9cc0e4" {}
                    text x=(label_width + bar_width * platform.recommended_effort + 6.0) y=(y + 11.0) font-size="12" { (percent(platform.recommended_effort)) }
                }
            }
        }
    }
}

/// One facet's part of a period's column: (facet index, conversations, y, height).
type Segment = (usize, u32, f64, f64);

/// Strategic conversations started per period, stacked by facet.
fn coverage_chart(report: &Report) -> Markup {
    let periods = &report.mix.coverage;
    let width = 760.0;
    let height = 240.0;
    let left = 40.0;
    let bottom = height - 40.0;
    let top = 14.0;
    let most = periods
        .iter()
        .map(|period| period.conversations.iter().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let column = (width - left - 10.0) / periods.len().max(1) as f64;
    let scale = (bottom - top) / most;
    // (x, segments) per period: the stacks, bottom up.
    let stacks: Vec<(f64, Vec<Segment>)> = periods
        .iter()
        .enumerate()
        .map(|(index, period)| {
            let x = left + column * index as f64 + column * 0.15;
            let mut base = bottom;
            let mut segments = Vec::new();
            for (facet, count) in period.conversations.iter().enumerate() {
                if *count > 0 {
                    let h = scale * f64::from(*count);
                    base -= h;
                    segments.push((facet, *count, base, h));
                }
            }
            (x, segments)
        })
        .collect();
    html! {
        svg.chart id="coverage-chart" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {width} {height}")) {
            title { "Strategic conversations started per period, by facet" }
            line x1=(left) y1=(top) x2=(left) y2=(bottom) stroke="#9aa3b2" {}
            line x1=(left) y1=(bottom) x2=(width - 10.0) y2=(bottom) stroke="#9aa3b2" {}
            text x=(left - 6.0) y=(top + 4.0) text-anchor="end" font-size="11" { (most) }
            text x=(left - 6.0) y=(bottom) text-anchor="end" font-size="11" { "0" }
            @for (period, (x, segments)) in periods.iter().zip(&stacks) {
                g.period data-start=(period.start) data-end=(period.end)
                    data-total=(period.conversations.iter().sum::<u32>()) {
                    @for (facet, count, y, h) in segments {
                        rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{:.1}", column * 0.7)) height=(format!("{h:.1}"))
                            fill=(colour(*facet)) data-facet=(report.strategy.facets.get(*facet).map_or("", |f| f.id.as_str())) data-conversations=(count) {}
                    }
                    text x=(format!("{:.1}", x + column * 0.35)) y=(bottom + 16.0) text-anchor="middle" font-size="11" { (period.end) }
                }
            }
        }
        p.legend {
            @for (index, facet) in report.strategy.facets.iter().enumerate() {
                span { i style=(format!("background:{}", colour(index))) {} (facet.name) }
            }
        }
    }
}

fn reasons(lines: &[String]) -> Markup {
    html! {
        ul.reasons { @for line in lines { li { (line) } } }
    }
}

fn link(title: &str, url: &str) -> Markup {
    let title = super::shown_title(title);
    html! {
        @if url.is_empty() { (title) } @else { a href=(url) { (title) } }
    }
}

fn people_table(rows: &[PersonRow], empty: &str, kind: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { (empty) }
        } @else {
            table {
                tr { th.num { "score" } th { "person" } th.num { "convergence" } th { "why" } th { "invitation" } }
                @for row in rows {
                    tr data-kind=(kind) data-person=(row.person) data-score=(format!("{:.3}", row.score)) {
                        td.num { (format!("{:.2}", row.score)) }
                        td { @if row.name.is_empty() { (row.person) } @else { (row.name) br; small { (row.person) } } }
                        td.num { (format!("{:.2}", row.convergence)) }
                        td { (reasons(&row.reasons)) }
                        td.draft { (row.invitation) }
                    }
                }
            }
            p.note { (super::PEOPLE_SCORES) }
        }
    }
}

pub fn render(report: &Report) -> String {
    let facet_name = |id: &str| -> String {
        report
            .strategy
            .facets
            .iter()
            .find(|facet| facet.id == id)
            .map_or(id.to_owned(), |facet| facet.name.clone())
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Trellis report: " (report.strategy.name) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { "Trellis report: " (report.strategy.name) }
                    p.meta {
                        "Workspace " code { (report.workspace) } ", strategy version "
                        (report.strategy.version) ", generated " (report.generated_at) "."
                    }

                    h2 id="mix" { "Platform mix" }
                    (effort_chart(report))
                    table {
                        tr {
                            th { "platform" } th.num { "effort" } th.num { "strategic" } th.num { "share" }
                            th.num { "engagement" } th.num { "members" } th.num { "prospects" }
                            th.num { "assets" } th.num { "trend" } th { "why" }
                        }
                        @for platform in &report.mix.platforms {
                            tr data-platform=(platform.platform) data-strategic=(platform.strategic_conversations) {
                                td { (platform.platform) }
                                td.num { (percent(platform.recommended_effort)) }
                                td.num { (platform.strategic_conversations) }
                                td.num { (percent(platform.share)) }
                                td.num { (format!("{:.2}", platform.engagement)) }
                                td.num { (platform.members_reached) }
                                td.num { (platform.prospects_reached) }
                                td.num { (platform.supporting_assets) }
                                td.num { (format!("{:+.0}%", platform.trend * 100.0)) }
                                td { (reasons(&platform.reasons)) }
                            }
                        }
                    }
                    @if !report.mix.findings.is_empty() {
                        h3 { "Findings" }
                        (reasons(&report.mix.findings))
                    }
                    @if !report.mix.sensitivities.is_empty() {
                        h3 { "What would change this" }
                        (reasons(&report.mix.sensitivities))
                    }

                    h2 id="coverage" { "Facet coverage over time" }
                    p.meta { "Strategic conversations started per " (report.mix.period_days) "-day period, by the facet each serves best." }
                    (coverage_chart(report))

                    h2 id="conversations" { "Conversations to nourish" }
                    @if report.conversations.is_empty() {
                        p.empty { "No conversation connects to the strategy yet." }
                    } @else {
                        table {
                            tr { th.num { "priority" } th { "conversation" } th { "platform" } th { "facet" } th { "why" } }
                            @for conversation in &report.conversations {
                                tr data-conversation=(conversation.conversation) data-priority=(format!("{:.3}", conversation.priority)) {
                                    td.num { (format!("{:.2}", conversation.priority)) }
                                    td { (link(&conversation.title, &conversation.url)) }
                                    td { (conversation.platform) }
                                    td { (conversation.facet.as_deref().map(facet_name).unwrap_or_default()) }
                                    td { (reasons(&conversation.reasons)) }
                                }
                            }
                        }
                    }

                    h2 id="people" { "People to engage" }
                    (people_table(&report.people, "No member's interests meet the strategy yet.", "member"))

                    h2 id="prospects" { "Prospects" }
                    (people_table(&report.prospects, "Nobody outside the community whose interests meet the strategy yet.", "prospect"))

                    h2 id="actions" { "Next actions" }
                    @if report.actions.is_empty() {
                        p.empty { "Nothing to do yet: no strategy facet needs work on any platform." }
                    } @else {
                        table {
                            tr { th { "platform" } th { "action" } th { "facet" } th { "draft" } th { "why now" } }
                            @for action in &report.actions {
                                tr data-action=(action.kind) data-platform=(action.platform) data-target=(action.target) {
                                    td { (action.platform) }
                                    td { (action.kind.replace('_', " ")) }
                                    td { (facet_name(&action.facet_id)) }
                                    td.draft {
                                        (action.draft_text)
                                        @if !action.tags.is_empty() { br; small { "tags: " (action.tags.join(", ")) } }
                                    }
                                    td { (action.why_now) }
                                }
                            }
                        }
                    }

                    h2 id="assets" { "Assets that support the message" }
                    @for facet in &report.assets {
                        h3 { (facet.facet_name) }
                        @if facet.assets.is_empty() {
                            p.empty { "No asset supports it yet." }
                        } @else {
                            ul {
                                @for asset in &facet.assets {
                                    li data-facet=(facet.facet_id) data-asset=(asset.asset) data-score=(format!("{:.3}", asset.score)) {
                                        (link(&asset.title, &asset.url))
                                        " (" (format!("{:.2}", asset.score))
                                        @if asset.bookmark_count > 0 { ", " (asset.bookmark_count) " bookmarks" }
                                        @if asset.share_count > 0 { ", " (asset.share_count) " shares" }
                                        ")"
                                        @if !asset.passage.is_empty() { br; span.passage { "“" (asset.passage) "”" } }
                                    }
                                }
                            }
                        }
                    }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    page.into_string()
}
