//! The report as Markdown: the same sections and numbers as the HTML page, as tables and lists.

use std::fmt::Write;

use super::Report;

/// A table cell: pipes and line breaks would break the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn link(title: &str, url: &str) -> String {
    let title = super::shown_title(title);
    if url.is_empty() {
        cell(title)
    } else {
        format!("[{}](<{}>)", cell(title).replace(['[', ']'], ""), url)
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let facet_name = |id: &str| {
        report
            .strategy
            .facets
            .iter()
            .find(|facet| facet.id == id)
            .map_or(id.to_owned(), |facet| facet.name.clone())
    };
    let _ = writeln!(out, "# Trellis report: {}\n", report.strategy.name);
    let _ = writeln!(
        out,
        "Workspace `{}`, strategy version {}, generated {}.\n",
        report.workspace, report.strategy.version, report.generated_at
    );

    let _ = writeln!(out, "## Platform mix\n");
    let _ = writeln!(
        out,
        "| platform | recommended effort | strategic conversations | share | engagement | members reached | prospects reached | supporting assets | trend |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for platform in &report.mix.platforms {
        let _ = writeln!(
            out,
            "| {} | {:.0}% | {} | {:.0}% | {:.2} | {} | {} | {} | {:+.0}% |",
            platform.platform,
            platform.recommended_effort * 100.0,
            platform.strategic_conversations,
            platform.share * 100.0,
            platform.engagement,
            platform.members_reached,
            platform.prospects_reached,
            platform.supporting_assets,
            platform.trend * 100.0
        );
    }
    out.push('\n');
    for platform in &report.mix.platforms {
        let _ = writeln!(
            out,
            "- **{}**: {}",
            platform.platform,
            platform.reasons.join("; ")
        );
    }
    for (title, lines) in [
        ("Findings", &report.mix.findings),
        ("What would change this", &report.mix.sensitivities),
    ] {
        if !lines.is_empty() {
            let _ = writeln!(out, "\n### {title}\n");
            for line in lines {
                let _ = writeln!(out, "- {line}");
            }
        }
    }

    let _ = writeln!(
        out,
        "\n## Facet coverage over time\n\nStrategic conversations started per {}-day period, by the facet each serves best.\n",
        report.mix.period_days
    );
    let _ = write!(out, "| period |");
    for facet in &report.strategy.facets {
        let _ = write!(out, " {} |", cell(&facet.name));
    }
    out.push('\n');
    let _ = write!(out, "|---|");
    for _ in &report.strategy.facets {
        out.push_str("---:|");
    }
    out.push('\n');
    for period in &report.mix.coverage {
        let _ = write!(out, "| {} to {} |", period.start, period.end);
        for count in &period.conversations {
            let _ = write!(out, " {count} |");
        }
        out.push('\n');
    }

    let _ = writeln!(out, "\n## Conversations to nourish\n");
    let _ = writeln!(out, "| priority | conversation | platform | facet | why |");
    let _ = writeln!(out, "|---:|---|---|---|---|");
    for conversation in &report.conversations {
        let _ = writeln!(
            out,
            "| {:.2} | {} | {} | {} | {} |",
            conversation.priority,
            link(&conversation.title, &conversation.url),
            conversation.platform,
            cell(
                &conversation
                    .facet
                    .as_deref()
                    .map(facet_name)
                    .unwrap_or_default()
            ),
            cell(&conversation.reasons.join("; "))
        );
    }

    for (title, rows, empty) in [
        (
            "People to engage",
            &report.people,
            "No member's interests meet the strategy yet.",
        ),
        (
            "Prospects",
            &report.prospects,
            "Nobody outside the community whose interests meet the strategy yet.",
        ),
    ] {
        let _ = writeln!(out, "\n## {title}\n");
        if rows.is_empty() {
            let _ = writeln!(out, "{empty}");
            continue;
        }
        let _ = writeln!(out, "| score | person | convergence | why | invitation |");
        let _ = writeln!(out, "|---:|---|---:|---|---|");
        for row in rows {
            let name = if row.name.is_empty() {
                row.person.clone()
            } else {
                format!("{} ({})", row.name, row.person)
            };
            let _ = writeln!(
                out,
                "| {:.2} | {} | {:.2} | {} | {} |",
                row.score,
                cell(&name),
                row.convergence,
                cell(&row.reasons.join("; ")),
                cell(&row.invitation)
            );
        }
        let _ = writeln!(out, "\n{}", super::PEOPLE_SCORES);
    }

    let _ = writeln!(out, "\n## Next actions\n");
    if report.actions.is_empty() {
        let _ = writeln!(
            out,
            "Nothing to do yet: no strategy facet needs work on any platform."
        );
    } else {
        let _ = writeln!(out, "| platform | action | facet | draft | why now |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for action in &report.actions {
            let tags = if action.tags.is_empty() {
                String::new()
            } else {
                format!(" (tags: {})", action.tags.join(", "))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}{} | {} |",
                action.platform,
                action.kind.replace('_', " "),
                cell(&facet_name(&action.facet_id)),
                cell(&action.draft_text),
                cell(&tags),
                cell(&action.why_now)
            );
        }
    }

    let _ = writeln!(out, "\n## Assets that support the message\n");
    for facet in &report.assets {
        let _ = writeln!(out, "### {}\n", facet.facet_name);
        if facet.assets.is_empty() {
            let _ = writeln!(out, "No asset supports it yet.\n");
            continue;
        }
        for asset in &facet.assets {
            let mut counts = Vec::new();
            if asset.bookmark_count > 0 {
                counts.push(format!("{} bookmarks", asset.bookmark_count));
            }
            if asset.share_count > 0 {
                counts.push(format!("{} shares", asset.share_count));
            }
            let _ = writeln!(
                out,
                "- {} ({:.2}{}{}): \"{}\"",
                link(&asset.title, &asset.url),
                asset.score,
                if counts.is_empty() { "" } else { ", " },
                counts.join(", "),
                asset.passage.replace(['\n', '\r'], " ")
            );
        }
        out.push('\n');
    }
    out
}
