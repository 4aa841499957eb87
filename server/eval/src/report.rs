//! Judging rankings against the ground truth, and the comparison table.
//!
//! Each task is judged only when the rankings contain it; a missing task stays `None` in the
//! [`Report`] so that "not run" never reads as "scored zero". Within a task, every query the ground
//! truth evaluates counts: a query the rankings lack is an empty ranking (all zeros), so leaving
//! hard queries out cannot raise a score.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::metrics::{
    auc, average_precision, clean_ranking, mean, ndcg_at, precision_at, recall_at, reciprocal_rank,
};
use crate::{Protocol, Rankings};

/// Task A and A' (question routing): P@1, NDCG@3, R@10, MRR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutingScores {
    pub evaluated: usize,
    pub p_at_1: f64,
    pub ndcg_at_3: f64,
    pub r_at_10: f64,
    pub mrr: f64,
}

/// Task B (discussions for a person): P@5, R@10, MRR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiscussionScores {
    pub evaluated: usize,
    pub p_at_5: f64,
    pub r_at_10: f64,
    pub mrr: f64,
}

/// Task C for one facet. `None` when no test thread carries the facet's tags (undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct FacetScores {
    pub facet: String,
    pub relevant: usize,
    pub ap: Option<f64>,
    pub ndcg_at_20: Option<f64>,
}

/// Task C: per facet and the means over the facets that have relevant threads.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyReport {
    pub facets: Vec<FacetScores>,
    pub map: Option<f64>,
    pub mean_ndcg_at_20: Option<f64>,
}

/// Task D (supporting assets): R@10, MRR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetScores {
    pub evaluated: usize,
    pub r_at_10: f64,
    pub mrr: f64,
}

/// Task E (prospects): AP, P@20, R@50.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProspectScores {
    pub hits: usize,
    pub ap: f64,
    pub p_at_20: f64,
    pub r_at_50: f64,
}

/// The metrics of one set of rankings; `None` where the rankings lacked the task (or the task has
/// nothing to evaluate on this dump).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub a: Option<RoutingScores>,
    pub a_prime: Option<RoutingScores>,
    pub b: Option<DiscussionScores>,
    pub c: Option<StrategyReport>,
    /// AUC of `C_overall`: threads relevant to any facet against the rest.
    pub c_auc: Option<f64>,
    pub d: Option<AssetScores>,
    pub e: Option<ProspectScores>,
}

/// One cell of a report, in table order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRow {
    pub task: &'static str,
    pub metric: &'static str,
    pub value: Option<f64>,
}

impl Report {
    /// The headline metrics, in the order of the table in `EVALUATION.md`.
    pub fn rows(&self) -> Vec<MetricRow> {
        let row = |task, metric, value| MetricRow {
            task,
            metric,
            value,
        };
        let routing = |task: &'static str, scores: Option<RoutingScores>| {
            vec![
                row(task, "P@1", scores.map(|s| s.p_at_1)),
                row(task, "NDCG@3", scores.map(|s| s.ndcg_at_3)),
                row(task, "R@10", scores.map(|s| s.r_at_10)),
                row(task, "MRR", scores.map(|s| s.mrr)),
            ]
        };
        let mut rows = routing("A", self.a);
        rows.extend(routing("A'", self.a_prime));
        rows.extend([
            row("B", "P@5", self.b.map(|s| s.p_at_5)),
            row("B", "R@10", self.b.map(|s| s.r_at_10)),
            row("B", "MRR", self.b.map(|s| s.mrr)),
            row("C", "MAP", self.c.as_ref().and_then(|s| s.map)),
            row(
                "C",
                "mean NDCG@20",
                self.c.as_ref().and_then(|s| s.mean_ndcg_at_20),
            ),
            row("C", "AUC", self.c_auc),
            row("D", "R@10", self.d.map(|s| s.r_at_10)),
            row("D", "MRR", self.d.map(|s| s.mrr)),
            row("E", "AP", self.e.map(|s| s.ap)),
            row("E", "P@20", self.e.map(|s| s.p_at_20)),
            row("E", "R@50", self.e.map(|s| s.r_at_50)),
        ]);
        rows
    }

    /// The mean of several reports (the random baseline over its seeds); a metric is averaged over
    /// the reports that have it.
    pub fn mean_of(reports: &[Report]) -> Report {
        fn each<T: Copy>(reports: &[Report], get: impl Fn(&Report) -> Option<T>) -> Vec<T> {
            reports.iter().filter_map(get).collect()
        }
        fn avg<T>(items: &[T], get: impl Fn(&T) -> f64) -> f64 {
            mean(items.iter().map(get)).unwrap_or(0.0)
        }
        fn routing(items: &[RoutingScores]) -> Option<RoutingScores> {
            let first = items.first()?;
            Some(RoutingScores {
                evaluated: first.evaluated,
                p_at_1: avg(items, |s| s.p_at_1),
                ndcg_at_3: avg(items, |s| s.ndcg_at_3),
                r_at_10: avg(items, |s| s.r_at_10),
                mrr: avg(items, |s| s.mrr),
            })
        }
        let b = each(reports, |r| r.b);
        let d = each(reports, |r| r.d);
        let e = each(reports, |r| r.e);
        let c: Vec<&StrategyReport> = reports.iter().filter_map(|r| r.c.as_ref()).collect();
        let c_auc = each(reports, |r| r.c_auc);
        Report {
            a: routing(&each(reports, |r| r.a)),
            a_prime: routing(&each(reports, |r| r.a_prime)),
            b: b.first().map(|first| DiscussionScores {
                evaluated: first.evaluated,
                p_at_5: avg(&b, |s| s.p_at_5),
                r_at_10: avg(&b, |s| s.r_at_10),
                mrr: avg(&b, |s| s.mrr),
            }),
            c: c.first().map(|first| StrategyReport {
                facets: first
                    .facets
                    .iter()
                    .enumerate()
                    .map(|(index, facet)| FacetScores {
                        facet: facet.facet.clone(),
                        relevant: facet.relevant,
                        ap: mean(c.iter().filter_map(|s| s.facets.get(index)?.ap)),
                        ndcg_at_20: mean(c.iter().filter_map(|s| s.facets.get(index)?.ndcg_at_20)),
                    })
                    .collect(),
                map: mean(c.iter().filter_map(|s| s.map)),
                mean_ndcg_at_20: mean(c.iter().filter_map(|s| s.mean_ndcg_at_20)),
            }),
            c_auc: mean(c_auc),
            d: d.first().map(|first| AssetScores {
                evaluated: first.evaluated,
                r_at_10: avg(&d, |s| s.r_at_10),
                mrr: avg(&d, |s| s.mrr),
            }),
            e: e.first().map(|first| ProspectScores {
                hits: first.hits,
                ap: avg(&e, |s| s.ap),
                p_at_20: avg(&e, |s| s.p_at_20),
                r_at_50: avg(&e, |s| s.r_at_50),
            }),
        }
    }
}

/// Judges `rankings` by the protocol's ground truth.
pub fn evaluate(protocol: &Protocol, rankings: &Rankings) -> Report {
    let truth = protocol.ground_truth();
    let empty: Vec<i64> = Vec::new();

    let routing = |judged: &BTreeMap<i64, BTreeSet<i64>>| -> Option<RoutingScores> {
        let answers = rankings.a.as_ref()?;
        if judged.is_empty() {
            return None;
        }
        let cleaned: Vec<(Vec<i64>, &BTreeSet<i64>)> = judged
            .iter()
            .map(|(thread, relevant)| {
                let asker = protocol.test_thread(*thread).and_then(|t| t.asker);
                let ranking = answers.get(thread).unwrap_or(&empty);
                let ranking = clean_ranking(ranking, |user| {
                    protocol.is_candidate(user) && Some(user) != asker
                });
                (ranking, relevant)
            })
            .collect();
        let avg = |metric: &dyn Fn(&[i64], &BTreeSet<i64>) -> f64| {
            mean(cleaned.iter().map(|(r, rel)| metric(r, rel))).unwrap_or(0.0)
        };
        Some(RoutingScores {
            evaluated: cleaned.len(),
            p_at_1: avg(&|r, rel| precision_at(r, rel, 1)),
            ndcg_at_3: avg(&|r, rel| ndcg_at(r, rel, 3)),
            r_at_10: avg(&|r, rel| recall_at(r, rel, 10)),
            mrr: avg(&|r, rel| reciprocal_rank(r, rel)),
        })
    };

    let b = rankings.b.as_ref().and_then(|answers| {
        if truth.discussions.is_empty() {
            return None;
        }
        let cleaned: Vec<(Vec<i64>, &BTreeSet<i64>)> = truth
            .discussions
            .iter()
            .map(|(user, relevant)| {
                let ranking = answers.get(user).unwrap_or(&empty);
                let ranking = clean_ranking(ranking, |thread| {
                    protocol
                        .test_thread(thread)
                        .is_some_and(|t| t.asker != Some(*user))
                });
                (ranking, relevant)
            })
            .collect();
        let avg = |metric: &dyn Fn(&[i64], &BTreeSet<i64>) -> f64| {
            mean(cleaned.iter().map(|(r, rel)| metric(r, rel))).unwrap_or(0.0)
        };
        Some(DiscussionScores {
            evaluated: cleaned.len(),
            p_at_5: avg(&|r, rel| precision_at(r, rel, 5)),
            r_at_10: avg(&|r, rel| recall_at(r, rel, 10)),
            mrr: avg(&|r, rel| reciprocal_rank(r, rel)),
        })
    });

    let is_test_thread = |thread: i64| protocol.test_thread(thread).is_some();
    let c = rankings.c.as_ref().and_then(|answers| {
        if truth.facets.is_empty() {
            return None;
        }
        let facets: Vec<FacetScores> = truth
            .facets
            .iter()
            .map(|(facet, relevant)| {
                let ranking = answers.get(facet).unwrap_or(&empty);
                let ranking = clean_ranking(ranking, is_test_thread);
                let defined = !relevant.is_empty();
                FacetScores {
                    facet: facet.clone(),
                    relevant: relevant.len(),
                    ap: defined.then(|| average_precision(&ranking, relevant)),
                    ndcg_at_20: defined.then(|| ndcg_at(&ranking, relevant, 20)),
                }
            })
            .collect();
        Some(StrategyReport {
            map: mean(facets.iter().filter_map(|f| f.ap)),
            mean_ndcg_at_20: mean(facets.iter().filter_map(|f| f.ndcg_at_20)),
            facets,
        })
    });

    let c_auc = rankings.c_overall.as_ref().and_then(|scores| {
        let negatives: BTreeSet<i64> = protocol
            .test_threads()
            .iter()
            .map(|t| t.id)
            .filter(|id| !truth.strategic.contains(id))
            .collect();
        auc(scores, &truth.strategic, &negatives)
    });

    let d = rankings.d.as_ref().and_then(|answers| {
        if truth.assets.is_empty() {
            return None;
        }
        let cleaned: Vec<(Vec<i64>, &BTreeSet<i64>)> = truth
            .assets
            .iter()
            .map(|(thread, relevant)| {
                let ranking = answers.get(thread).unwrap_or(&empty);
                (
                    clean_ranking(ranking, |asset| protocol.is_asset(asset)),
                    relevant,
                )
            })
            .collect();
        Some(AssetScores {
            evaluated: cleaned.len(),
            r_at_10: mean(cleaned.iter().map(|(r, rel)| recall_at(r, rel, 10))).unwrap_or(0.0),
            mrr: mean(cleaned.iter().map(|(r, rel)| reciprocal_rank(r, rel))).unwrap_or(0.0),
        })
    });

    let e = rankings.e.as_ref().and_then(|ranking| {
        let relevant = &truth.prospects;
        if relevant.is_empty() {
            return None;
        }
        let ranking = clean_ranking(ranking, |user| protocol.is_candidate(user));
        Some(ProspectScores {
            hits: relevant.len(),
            ap: average_precision(&ranking, relevant),
            p_at_20: precision_at(&ranking, relevant, 20),
            r_at_50: recall_at(&ranking, relevant, 50),
        })
    });

    Report {
        a: routing(&truth.routing),
        a_prime: routing(&truth.routing_answerers),
        b,
        c,
        c_auc,
        d,
        e,
    }
}

/// The five baselines of `EVALUATION.md`, judged on the same split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaselineReports {
    /// The mean over seeds 0 to 9.
    pub random: Report,
    pub popularity: Report,
    /// `None` when BM25 was not run.
    pub bm25: Option<Report>,
    /// `None` when the Dense baseline was not run (no embedder).
    pub dense: Option<Report>,
    /// `None` unless both BM25 and Dense ran.
    pub hybrid: Option<Report>,
}

impl BaselineReports {
    /// Runs and judges the baselines: random, popularity and BM25 always (BM25 needs Python with
    /// `bm25s`; see [`baselines::bm25`](crate::baselines::bm25)), Dense and Hybrid when an
    /// embedder is given.
    pub fn compute(
        protocol: &Protocol,
        embedder: Option<&dyn crate::TextEmbedder>,
    ) -> Result<BaselineReports, crate::EvalError> {
        let popularity = crate::baselines::popularity(protocol);
        let bm25 = crate::baselines::bm25(protocol)?;
        let (dense, hybrid) = match embedder {
            Some(embedder) => {
                let dense = crate::dense::dense(protocol, embedder)?;
                let hybrid = crate::dense::hybrid(&bm25, &dense, &popularity);
                (
                    Some(evaluate(protocol, &dense)),
                    Some(evaluate(protocol, &hybrid)),
                )
            }
            None => (None, None),
        };
        Ok(BaselineReports {
            random: crate::baselines::random_report(protocol),
            popularity: evaluate(protocol, &popularity),
            bm25: Some(evaluate(protocol, &bm25)),
            dense,
            hybrid,
        })
    }

    /// Each baseline's name and report, in table order; those not run are left out.
    pub fn named(&self) -> Vec<(&'static str, &Report)> {
        let mut named = vec![("random", &self.random), ("popularity", &self.popularity)];
        for (name, report) in [
            ("BM25", &self.bm25),
            ("Dense", &self.dense),
            ("Hybrid", &self.hybrid),
        ] {
            if let Some(report) = report {
                named.push((name, report));
            }
        }
        named
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

/// One headline metric of Trellis against the best baseline on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub task: &'static str,
    pub metric: &'static str,
    pub trellis: Option<f64>,
    /// The best baseline's value and name; `None` when no baseline has the metric.
    pub best: Option<(f64, &'static str)>,
}

impl Comparison {
    /// Whether Trellis beats the best baseline (strictly).
    pub fn wins(&self) -> bool {
        matches!((self.trellis, self.best), (Some(value), Some((best, _))) if value > best)
    }

    /// Trellis divided by the best baseline.
    pub fn ratio(&self) -> Option<f64> {
        match (self.trellis, self.best) {
            (Some(value), Some((best, _))) if best > 0.0 => Some(value / best),
            _ => None,
        }
    }
}

/// Every headline metric of `trellis` against the best baseline on it, in table order.
pub fn compare(trellis: &Report, baselines: &BaselineReports) -> Vec<Comparison> {
    let named: Vec<(&'static str, Vec<MetricRow>)> = baselines
        .named()
        .into_iter()
        .map(|(name, report)| (name, report.rows()))
        .collect();
    trellis
        .rows()
        .iter()
        .enumerate()
        .map(|(index, row)| Comparison {
            task: row.task,
            metric: row.metric,
            trellis: row.value,
            best: named
                .iter()
                .filter_map(|(name, rows)| Some((rows[index].value?, *name)))
                .fold(
                    None,
                    |best: Option<(f64, &'static str)>, (value, name)| match best {
                        Some((top, _)) if top >= value => best,
                        _ => Some((value, name)),
                    },
                ),
        })
        .collect()
}

/// A Markdown table: task, metric, Trellis, each baseline that ran (random, popularity, BM25,
/// Dense, Hybrid), and Trellis divided by the best baseline on that metric (the bar is the best
/// baseline, whichever it is).
pub fn comparison_table(trellis: &Report, baselines: &BaselineReports) -> String {
    let named: Vec<(&'static str, Vec<MetricRow>)> = baselines
        .named()
        .into_iter()
        .map(|(name, report)| (name, report.rows()))
        .collect();
    let mut table = String::from("| task | metric | Trellis |");
    let mut rule = String::from("|---|---|---|");
    for (name, _) in &named {
        let _ = write!(table, " {name} |");
        rule.push_str("---|");
    }
    table.push_str(" Trellis / best baseline |\n");
    rule.push_str("---|\n");
    table.push_str(&rule);
    for (index, comparison) in compare(trellis, baselines).iter().enumerate() {
        let _ = write!(
            table,
            "| {} | {} | {} |",
            comparison.task,
            comparison.metric,
            cell(comparison.trellis)
        );
        for (_, rows) in &named {
            let _ = write!(table, " {} |", cell(rows[index].value));
        }
        let ratio = comparison
            .ratio()
            .map_or_else(|| "—".to_owned(), |ratio| format!("{ratio:.2}x"));
        let _ = writeln!(table, " {ratio} |");
    }
    table
}

/// How Trellis fares against the best baseline on one dump: the metrics it wins and those it
/// loses, as `task metric` with the ratio.
pub fn summary_line(name: &str, comparisons: &[Comparison]) -> String {
    let judged: Vec<&Comparison> = comparisons
        .iter()
        .filter(|c| c.trellis.is_some() && c.best.is_some())
        .collect();
    let wins = judged.iter().filter(|c| c.wins()).count();
    let losses: Vec<String> = judged
        .iter()
        .filter(|c| !c.wins())
        .map(|c| {
            let (_, best) = c.best.unwrap_or((0.0, "?"));
            match c.ratio() {
                Some(ratio) => format!("{} {} {ratio:.2}x ({best})", c.task, c.metric),
                None => format!("{} {} ({best})", c.task, c.metric),
            }
        })
        .collect();
    let mut line = format!(
        "{name}: beats the best baseline on {wins} of {}",
        judged.len()
    );
    if !losses.is_empty() {
        let _ = write!(line, "; short on {}", losses.join(", "));
    }
    line
}
