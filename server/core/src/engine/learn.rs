//! Rankings that each community learns from its own past.
//!
//! Every ranking the engine serves combines named signals (how well a person's writing matches
//! a question, whether they answered questions like it, how active they have been lately...).
//! How much each signal is worth differs between communities: in one, the few who answered
//! the most last month answer everything; in another, topic decides. So the combination is
//! not written down: it is a [`RankingModel`], a linear function of the named features, fitted
//! on the community's own history (see `service::learn` for how examples are drawn from it
//! without any evaluation label) and served with what it learned.
//!
//! Until a community has enough history, a default model applies: the hand-set fusion the
//! engine used before models were learned, expressed over the same features, and it says so.
//!
//! Fitting is L2-regularised logistic regression (`linfa-logistic`, whose L-BFGS comes from
//! `argmin`) on standardised features. The regularisation strength is chosen per community on
//! held-back history, from a fixed grid; a model is kept only when it ranks that held-back
//! history better than the model it would replace.

use std::collections::BTreeSet;

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use crate::domain::Millis;

/// What a model ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankingKind {
    /// People to bring into a conversation (and, read by person, where each person stands).
    Participants,
    /// Conversations a person should join.
    Discussions,
}

impl RankingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RankingKind::Participants => "participants",
            RankingKind::Discussions => "discussions",
        }
    }
}

/// How a model turns its linear score into the score it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The weighted sum itself (the default fusions: sums of reciprocal ranks, never negative).
    Identity,
    /// The logistic function of the weighted sum: a probability of taking part.
    Logistic,
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelOrigin {
    /// The built-in combination; `reason` says why nothing learned replaces it.
    Default { reason: String },
    /// Fitted on the community's history.
    Learned(Training),
}

/// What a fit saw and how the model did on history held back from it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Training {
    /// When the fit finished (the community's clock, not the wall clock).
    pub fitted_at: Millis,
    /// Queries (conversations, people...) with at least one observed outcome, and the examples
    /// (candidate rows) they gave.
    pub queries: usize,
    pub examples: usize,
    /// Positive examples among them.
    pub positives: usize,
    /// The time splits the examples were drawn at.
    pub splits: usize,
    /// The L2 strength chosen on the held-back split.
    pub regularisation: f64,
    /// The metric compared on held-back history ("MRR"), this model's value, and the value of
    /// the model it replaced (the default or an earlier fit) on the same queries.
    pub metric: &'static str,
    pub validated: f64,
    pub replaced: f64,
    /// Held-back queries the comparison ran on.
    pub validation_queries: usize,
    /// The gain over the replaced model in standard errors of the paired differences: the
    /// model serves only when it is at least [`MIN_GAIN_IN_STANDARD_ERRORS`].
    pub gain_in_standard_errors: f64,
}

impl Training {
    /// Whether the fit ranks held-back history clearly better than the model it would replace.
    pub fn is_better(&self) -> bool {
        self.validated > self.replaced
            && self.gain_in_standard_errors >= MIN_GAIN_IN_STANDARD_ERRORS
    }
}

/// A linear ranking model over named features: `score = link(bias + Σ wᵢ (xᵢ - meanᵢ) / scaleᵢ)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RankingModel {
    pub kind: RankingKind,
    /// Increases with every model installed for this kind in this engine.
    pub version: u64,
    pub features: Vec<&'static str>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
    pub link: Link,
    pub origin: ModelOrigin,
    /// What its linear score means as a probability, fitted on the community's history (see
    /// [`calibrate`]); `None` while there is too little history to say.
    pub calibration: Option<Calibration>,
}

/// Platt scaling of a model's linear score: `P(takes part) = σ(slope · linear + intercept)`,
/// fitted on every candidate of the community's replayed history, so a shown 0.3 is right
/// about three times in ten on that history, whatever the model's own scale.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Calibration {
    pub slope: f32,
    pub intercept: f32,
    /// Candidates it was fitted on, and how many of them took part.
    pub examples: usize,
    pub positives: usize,
}

impl RankingModel {
    /// A fixed combination: `weights` on the raw features (no centring, no scaling).
    pub fn fixed(
        kind: RankingKind,
        features: &[&'static str],
        weights: &[f32],
        reason: impl Into<String>,
    ) -> Self {
        debug_assert_eq!(features.len(), weights.len());
        Self {
            kind,
            version: 0,
            features: features.to_vec(),
            mean: vec![0.0; features.len()],
            scale: vec![1.0; features.len()],
            weights: weights.to_vec(),
            bias: 0.0,
            link: Link::Identity,
            origin: ModelOrigin::Default {
                reason: reason.into(),
            },
            calibration: None,
        }
    }

    /// The linear score before the link.
    pub fn linear(&self, features: &[f32]) -> f32 {
        debug_assert_eq!(features.len(), self.weights.len());
        self.bias
            + features
                .iter()
                .zip(&self.weights)
                .zip(self.mean.iter().zip(&self.scale))
                .map(|((value, weight), (mean, scale))| weight * (value - mean) / scale)
                .sum::<f32>()
    }

    /// The served score: never negative, higher is better.
    pub fn score(&self, features: &[f32]) -> f32 {
        let linear = self.linear(features);
        match self.link {
            Link::Identity => linear.max(0.0),
            Link::Logistic => 1.0 / (1.0 + (-linear).exp()),
        }
    }

    pub fn is_learned(&self) -> bool {
        matches!(self.origin, ModelOrigin::Learned(_))
    }

    /// The probability of taking part the model's calibration gives `features`, when it has one.
    /// It orders candidates as [`RankingModel::score`] does (the slope is positive).
    pub fn probability(&self, features: &[f32]) -> Option<f32> {
        self.calibration.map(|calibration| {
            logistic(
                f64::from(calibration.slope) * f64::from(self.linear(features))
                    + f64::from(calibration.intercept),
            ) as f32
        })
    }

    /// Each feature with its weight per standard deviation, strongest first: what the model
    /// learned, in a form a person can read.
    pub fn summary(&self) -> Vec<(&'static str, f32)> {
        let mut summary: Vec<(&'static str, f32)> = self
            .features
            .iter()
            .copied()
            .zip(self.weights.iter().copied())
            .collect();
        summary.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(b.0)));
        summary
    }
}

/// One query of the training history: the candidates' feature rows and whether each took part.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which time split it was drawn at (0 is the oldest).
    pub split: usize,
    pub rows: Vec<Vec<f32>>,
    pub relevant: Vec<bool>,
}

impl Query {
    pub fn has_positive(&self) -> bool {
        self.relevant.iter().any(|relevant| *relevant)
    }
}

/// Mean reciprocal rank of the first relevant candidate when each query is ranked by `score`
/// (ties: the earlier row first, as rows come in a stable order). Queries without a relevant
/// candidate are left out.
pub fn mean_reciprocal_rank<'a>(
    queries: impl IntoIterator<Item = &'a Query>,
    score: impl Fn(&[f32]) -> f32,
) -> Option<f64> {
    let ranks = reciprocal_ranks(queries, score);
    (!ranks.is_empty()).then(|| ranks.iter().sum::<f64>() / ranks.len() as f64)
}

/// The reciprocal rank of the first relevant candidate of each query with one, in order.
pub fn reciprocal_ranks<'a>(
    queries: impl IntoIterator<Item = &'a Query>,
    score: impl Fn(&[f32]) -> f32,
) -> Vec<f64> {
    let mut ranks = Vec::new();
    for query in queries {
        if !query.has_positive() {
            continue;
        }
        let scores: Vec<f32> = query.rows.iter().map(|row| score(row)).collect();
        let best_relevant = (0..scores.len())
            .filter(|index| query.relevant[*index])
            .map(|index| {
                // Rank of this row: rows scoring higher, and equal rows before it.
                1 + (0..scores.len())
                    .filter(|other| {
                        scores[*other] > scores[index]
                            || (scores[*other] == scores[index] && *other < index)
                    })
                    .count()
            })
            .min()
            .unwrap_or(usize::MAX);
        ranks.push(1.0 / best_relevant as f64);
    }
    ranks
}

/// How many standard errors a fitted model must gain over the model it would replace, on the
/// held-back queries, paired query by query: a gain smaller than the noise of a few hundred
/// queries is not a reason to change how a community is ranked.
pub const MIN_GAIN_IN_STANDARD_ERRORS: f64 = 1.0;

/// The mean of paired differences and its standard error.
fn paired_gain(learned: &[f64], replaced: &[f64]) -> (f64, f64) {
    let differences: Vec<f64> = learned
        .iter()
        .zip(replaced)
        .map(|(learned, replaced)| learned - replaced)
        .collect();
    let count = differences.len().max(1) as f64;
    let mean = differences.iter().sum::<f64>() / count;
    let variance = differences
        .iter()
        .map(|difference| (difference - mean).powi(2))
        .sum::<f64>()
        / (count - 1.0).max(1.0);
    (mean, (variance / count).sqrt())
}

/// The L2 strengths tried on held-back history (linfa's `alpha`, the inverse of scikit-learn's
/// `C`): strong regularisation is the rule with a few hundred queries of correlated features.
pub const REGULARISATION_GRID: [f64; 5] = [30.0, 100.0, 300.0, 1_000.0, 3_000.0];

/// Why a fit did not produce a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error(
        "too little history: {queries} conversations with an outcome to learn from (at least {needed} needed)"
    )]
    TooLittle { queries: usize, needed: usize },
    #[error("the history holds no split to validate on")]
    NoValidation,
    #[error("the solver failed: {0}")]
    Solver(String),
}

/// The fewest queries with an outcome a fit accepts, in all and in the held-back split.
pub const MIN_QUERIES: usize = 30;
pub const MIN_VALIDATION_QUERIES: usize = 10;

/// Standardisation of a set of rows: means and standard deviations per feature (1 where a
/// feature never varies).
fn standardisation(rows: &[&Vec<f32>], width: usize) -> (Vec<f32>, Vec<f32>) {
    let count = rows.len().max(1) as f64;
    let mut mean = vec![0.0f64; width];
    for row in rows {
        for (total, value) in mean.iter_mut().zip(row.iter()) {
            *total += f64::from(*value);
        }
    }
    for value in &mut mean {
        *value /= count;
    }
    let mut variance = vec![0.0f64; width];
    for row in rows {
        for ((total, value), mean) in variance.iter_mut().zip(row.iter()).zip(&mean) {
            let centred = f64::from(*value) - mean;
            *total += centred * centred;
        }
    }
    let scale = variance
        .iter()
        .map(|total| {
            let deviation = (total / count).sqrt();
            if deviation > 1e-9 {
                deviation as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.into_iter().map(|value| value as f32).collect(), scale)
}

/// Fits a logistic model on `queries` with L2 strength `alpha`.
fn fit_logistic(
    kind: RankingKind,
    features: &[&'static str],
    queries: &[&Query],
    alpha: f64,
) -> Result<RankingModel, FitError> {
    let width = features.len();
    let rows: Vec<&Vec<f32>> = queries.iter().flat_map(|query| &query.rows).collect();
    let labels: Vec<bool> = queries
        .iter()
        .flat_map(|query| query.relevant.iter().copied())
        .collect();
    let (mean, scale) = standardisation(&rows, width);
    let mut matrix = Array2::<f64>::zeros((rows.len(), width));
    for (index, row) in rows.iter().enumerate() {
        for (column, value) in row.iter().enumerate() {
            matrix[(index, column)] =
                (f64::from(*value) - f64::from(mean[column])) / f64::from(scale[column]);
        }
    }
    let targets: Array1<&'static str> = labels
        .iter()
        .map(|relevant| if *relevant { "yes" } else { "no" })
        .collect();
    let dataset = Dataset::new(matrix, targets);
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(100)
        .gradient_tolerance(1e-3)
        .fit(&dataset)
        .map_err(|error| FitError::Solver(error.to_string()))?;
    // linfa orders the two labels itself; flip the sign when "yes" is its negative class.
    let sign = if fitted.labels().pos.class == "yes" {
        1.0
    } else {
        -1.0
    };
    Ok(RankingModel {
        kind,
        version: 0,
        features: features.to_vec(),
        mean,
        scale,
        weights: fitted
            .params()
            .iter()
            .map(|weight| (sign * weight) as f32)
            .collect(),
        bias: (sign * fitted.intercept()) as f32,
        link: Link::Logistic,
        origin: ModelOrigin::Default {
            reason: String::new(),
        },
        calibration: None,
    })
}

fn logistic(value: f64) -> f64 {
    1.0 / (1.0 + (-value).exp())
}

/// How a calibration fares on history it was not fitted on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Reliability {
    pub candidates: usize,
    /// The mean probability given, and the share that took part.
    pub predicted: f64,
    pub observed: f64,
    /// Expected calibration error: over ten bins of equal size by probability given, the mean
    /// distance between the probability given and the share that took part, weighed by size.
    pub error: f64,
}

/// The [`Reliability`] of `model`'s calibration on `queries`; `None` without a calibration or
/// without candidates.
pub fn reliability<'a>(
    queries: impl IntoIterator<Item = &'a Query>,
    model: &RankingModel,
) -> Option<Reliability> {
    model.calibration?;
    let mut points: Vec<(f64, bool)> = Vec::new();
    for query in queries {
        for (row, relevant) in query.rows.iter().zip(&query.relevant) {
            points.push((f64::from(model.probability(row)?), *relevant));
        }
    }
    if points.is_empty() {
        return None;
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = points.len();
    let rate = |points: &[(f64, bool)]| {
        let size = points.len() as f64;
        (
            points.iter().map(|(p, _)| p).sum::<f64>() / size,
            points.iter().filter(|(_, relevant)| *relevant).count() as f64 / size,
        )
    };
    let (predicted, observed) = rate(&points);
    const BINS: usize = 10;
    let error = (0..BINS)
        .map(|bin| &points[bin * count / BINS..(bin + 1) * count / BINS])
        .filter(|bin| !bin.is_empty())
        .map(|bin| {
            let (given, taken) = rate(bin);
            (given - taken).abs() * bin.len() as f64 / count as f64
        })
        .sum();
    Some(Reliability {
        candidates: count,
        predicted,
        observed,
        error,
    })
}

/// The fewest candidates that took part, and that did not, a calibration is fitted on.
pub const MIN_CALIBRATION_OUTCOMES: usize = 30;

/// Platt scaling of `model` on every candidate of `queries` (none thinned: the share of
/// candidates that took part is part of what is calibrated): the slope and intercept that make
/// `σ(slope · linear + intercept)` the best probability of taking part under log loss, found by
/// Newton's method with a whisper of L2 so that separable history stays finite. `None` when
/// there are fewer than [`MIN_CALIBRATION_OUTCOMES`] of either outcome, when the model's
/// linear score does not vary, or when a higher score does not mean a likelier outcome.
pub fn calibrate(queries: &[Query], model: &RankingModel) -> Option<Calibration> {
    let mut points: Vec<(f64, bool)> = Vec::new();
    for query in queries {
        for (row, relevant) in query.rows.iter().zip(&query.relevant) {
            points.push((f64::from(model.linear(row)), *relevant));
        }
    }
    let positives = points.iter().filter(|(_, relevant)| *relevant).count();
    let negatives = points.len() - positives;
    if positives < MIN_CALIBRATION_OUTCOMES || negatives < MIN_CALIBRATION_OUTCOMES {
        return None;
    }
    // Standardised scores keep Newton's steps well scaled.
    let count = points.len() as f64;
    let mean = points.iter().map(|(x, _)| x).sum::<f64>() / count;
    let deviation = (points.iter().map(|(x, _)| (x - mean).powi(2)).sum::<f64>() / count).sqrt();
    if deviation.is_nan() || deviation <= 1e-9 {
        return None;
    }
    const RIDGE: f64 = 1e-6;
    let base = (positives as f64 / count).ln() - (negatives as f64 / count).ln();
    let (mut a, mut b) = (0.0f64, base);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (RIDGE * a, 0.0, RIDGE, 0.0, 0.0);
        for (x, relevant) in &points {
            let z = (x - mean) / deviation;
            let p = logistic(a * z + b);
            let residual = p - if *relevant { 1.0 } else { 0.0 };
            let weight = (p * (1.0 - p)).max(1e-12);
            ga += residual * z;
            gb += residual;
            haa += weight * z * z;
            hab += weight * z;
            hbb += weight;
        }
        let determinant = haa * hbb - hab * hab;
        if determinant.is_nan() || determinant.abs() <= 1e-12 {
            break;
        }
        let step_a = (hbb * ga - hab * gb) / determinant;
        let step_b = (haa * gb - hab * ga) / determinant;
        a -= step_a;
        b -= step_b;
        if step_a.abs() < 1e-9 && step_b.abs() < 1e-9 {
            break;
        }
    }
    // Back to the model's own scale: a·(x - mean)/deviation + b.
    let slope = a / deviation;
    let intercept = b - a * mean / deviation;
    (slope.is_finite() && intercept.is_finite() && slope > 0.0).then_some(Calibration {
        slope: slope as f32,
        intercept: intercept as f32,
        examples: points.len(),
        positives,
    })
}

/// The newest splits held back in turn to judge a fit: each is ranked by a model fitted on the
/// splits before it (forward chaining, so no model is judged on history older than what it
/// learned from), and the judgments are pooled.
pub const VALIDATION_SPLITS: usize = 3;

/// Negative rows kept per query when fitting, at most (evenly spread over the candidates): the
/// pool of a conversation holds hundreds of people who did not take part, and a few dozen say
/// as much about them at a fraction of the cost. Uniform thinning within a query moves only the
/// bias, never the order a model ranks in.
pub const MAX_NEGATIVES_PER_QUERY: usize = 100;

/// A query thinned to its positives and at most [`MAX_NEGATIVES_PER_QUERY`] negatives.
fn thinned(query: &Query) -> Query {
    let negatives = query.relevant.iter().filter(|relevant| !**relevant).count();
    let step = negatives.div_ceil(MAX_NEGATIVES_PER_QUERY).max(1);
    let mut kept = Query {
        split: query.split,
        rows: Vec::new(),
        relevant: Vec::new(),
    };
    let mut seen_negatives = 0usize;
    for (row, relevant) in query.rows.iter().zip(&query.relevant) {
        if !relevant {
            seen_negatives += 1;
            if !(seen_negatives - 1).is_multiple_of(step) {
                continue;
            }
        }
        kept.rows.push(row.clone());
        kept.relevant.push(*relevant);
    }
    kept
}

/// Fits a model of `kind` on history (see the module doc): each strength of the grid is judged
/// on the newest [`VALIDATION_SPLITS`] splits in turn, fitted on the splits before each; the
/// best strength is fitted again on every split; and `incumbent` is judged on the same held-back
/// queries. Returns the model (learned, with its training record) or why there is none; the
/// caller keeps the incumbent unless the learned model's `validated` beats its `replaced`.
pub fn fit(
    kind: RankingKind,
    features: &[&'static str],
    queries: &[Query],
    incumbent: &RankingModel,
    fitted_at: Millis,
) -> Result<RankingModel, FitError> {
    let usable: Vec<Query> = queries
        .iter()
        .filter(|query| query.has_positive())
        .map(thinned)
        .collect();
    if usable.len() < MIN_QUERIES {
        return Err(FitError::TooLittle {
            queries: usable.len(),
            needed: MIN_QUERIES,
        });
    }
    let splits: Vec<usize> = usable
        .iter()
        .map(|query| query.split)
        .collect::<BTreeSet<usize>>()
        .into_iter()
        .collect();
    // Held-back splits, newest last, each with enough history before it to fit on.
    let held_back: Vec<usize> = splits
        .iter()
        .rev()
        .take(VALIDATION_SPLITS)
        .copied()
        .filter(|split| {
            usable.iter().filter(|query| query.split < *split).count() >= MIN_QUERIES / 2
        })
        .collect();
    let validation: Vec<&Query> = usable
        .iter()
        .filter(|query| held_back.contains(&query.split))
        .collect();
    if held_back.is_empty() || validation.len() < MIN_VALIDATION_QUERIES {
        return Err(FitError::NoValidation);
    }
    // The held-back queries' rankings under each strength, pooled over the held-back splits,
    // in the order of `validation`.
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    for alpha in REGULARISATION_GRID {
        let mut ranks = Vec::with_capacity(validation.len());
        let mut converged = true;
        for split in &held_back {
            let before: Vec<&Query> = usable.iter().filter(|query| query.split < *split).collect();
            let judged: Vec<&Query> = usable
                .iter()
                .filter(|query| query.split == *split)
                .collect();
            let Ok(model) = fit_logistic(kind, features, &before, alpha) else {
                converged = false;
                break;
            };
            ranks.extend(reciprocal_ranks(judged.iter().copied(), |row| {
                model.linear(row)
            }));
        }
        if !converged || ranks.is_empty() {
            continue;
        }
        let value = ranks.iter().sum::<f64>() / ranks.len() as f64;
        if best.as_ref().is_none_or(|(top, _, _)| value > *top) {
            best = Some((value, alpha, ranks));
        }
    }
    let (validated, alpha, learned_ranks) =
        best.ok_or_else(|| FitError::Solver("no strength of the grid converged".into()))?;
    let held_back_queries: Vec<&Query> = held_back
        .iter()
        .flat_map(|split| usable.iter().filter(move |query| query.split == *split))
        .collect();
    let replaced_ranks = reciprocal_ranks(held_back_queries.iter().copied(), |row| {
        incumbent.score(row)
    });
    let replaced = replaced_ranks.iter().sum::<f64>() / replaced_ranks.len().max(1) as f64;
    let (gain, standard_error) = paired_gain(&learned_ranks, &replaced_ranks);
    let gain_in_standard_errors = if standard_error > 0.0 {
        gain / standard_error
    } else if gain > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let all: Vec<&Query> = usable.iter().collect();
    let mut model = fit_logistic(kind, features, &all, alpha)?;
    model.origin = ModelOrigin::Learned(Training {
        fitted_at,
        queries: usable.len(),
        examples: usable.iter().map(|query| query.rows.len()).sum(),
        positives: usable
            .iter()
            .map(|query| query.relevant.iter().filter(|r| **r).count())
            .sum(),
        splits: splits.len(),
        regularisation: alpha,
        metric: "MRR",
        validated,
        replaced,
        validation_queries: validation.len(),
        gain_in_standard_errors,
    });
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queries where the first feature decides who takes part and the second is noise.
    fn synthetic(splits: usize, per_split: usize) -> Vec<Query> {
        let mut queries = Vec::new();
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32) / (u32::MAX >> 1) as f32
        };
        for split in 0..splits {
            for _ in 0..per_split {
                let rows: Vec<Vec<f32>> = (0..20).map(|_| vec![next(), next()]).collect();
                let best = rows
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1[0].total_cmp(&b.1[0]))
                    .map(|(index, _)| index)
                    .unwrap();
                let relevant = (0..rows.len()).map(|index| index == best).collect();
                queries.push(Query {
                    split,
                    rows,
                    relevant,
                });
            }
        }
        queries
    }

    #[test]
    fn a_fit_finds_the_signal_and_beats_a_model_that_reads_noise() {
        let queries = synthetic(4, 20);
        let noise = RankingModel::fixed(
            RankingKind::Participants,
            &["signal", "noise"],
            &[0.0, 1.0],
            "test",
        );
        let model = fit(
            RankingKind::Participants,
            &["signal", "noise"],
            &queries,
            &noise,
            0,
        )
        .expect("a fit");
        let ModelOrigin::Learned(training) = &model.origin else {
            panic!("learned");
        };
        assert_eq!(training.splits, 4);
        assert_eq!(training.queries, 80);
        // The newest three splits are held back in turn, each judged by a fit on those before.
        assert_eq!(training.validation_queries, 60);
        assert!(training.validated > 0.9, "{training:?}");
        assert!(training.is_better(), "{training:?}");
        assert!(training.gain_in_standard_errors > 3.0, "{training:?}");
        assert!(model.weights[0] > 0.0 && model.weights[0] > 5.0 * model.weights[1].abs());
        assert_eq!(model.summary()[0].0, "signal");
        let score = model.score(&[0.9, 0.5]);
        assert!(score > model.score(&[0.1, 0.5]) && (0.0..=1.0).contains(&score));
    }

    #[test]
    fn a_fit_no_better_than_the_serving_model_is_not_taken() {
        // The serving model already reads the signal: a fit can at best tie it.
        let queries = synthetic(4, 20);
        let serving = RankingModel::fixed(
            RankingKind::Participants,
            &["signal", "noise"],
            &[1.0, 0.0],
            "test",
        );
        let model = fit(
            RankingKind::Participants,
            &["signal", "noise"],
            &queries,
            &serving,
            0,
        )
        .expect("a fit");
        let ModelOrigin::Learned(training) = &model.origin else {
            panic!("learned");
        };
        assert!((training.replaced - 1.0).abs() < 1e-12, "{training:?}");
        assert!(!training.is_better(), "{training:?}");
    }

    #[test]
    fn too_little_history_is_refused_with_the_count() {
        let queries = synthetic(2, 5);
        let incumbent =
            RankingModel::fixed(RankingKind::Participants, &["a", "b"], &[1.0, 0.0], "test");
        let error = fit(
            RankingKind::Participants,
            &["a", "b"],
            &queries,
            &incumbent,
            0,
        )
        .unwrap_err();
        assert_eq!(
            error,
            FitError::TooLittle {
                queries: 10,
                needed: MIN_QUERIES
            }
        );
    }

    #[test]
    fn reciprocal_rank_counts_ties_in_row_order() {
        let query = Query {
            split: 0,
            rows: vec![vec![1.0], vec![1.0], vec![0.5]],
            relevant: vec![false, true, false],
        };
        let mrr = mean_reciprocal_rank([&query], |row| row[0]).unwrap();
        assert!((mrr - 0.5).abs() < 1e-12);
        let none = Query {
            split: 0,
            rows: vec![vec![1.0]],
            relevant: vec![false],
        };
        assert_eq!(mean_reciprocal_rank([&none], |row| row[0]), None);
    }

    #[test]
    fn a_fixed_model_is_the_weighted_sum_and_never_negative() {
        let model =
            RankingModel::fixed(RankingKind::Participants, &["a", "b"], &[1.0, 2.0], "test");
        assert_eq!(model.score(&[1.0, 1.0]), 3.0);
        assert_eq!(model.score(&[-5.0, 0.0]), 0.0);
        assert!(!model.is_learned());
    }

    /// History drawn from a known chance of taking part, `σ(2x - 3)` for a candidate at `x`.
    fn drawn(candidates: usize) -> Vec<Query> {
        let mut state = 11u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            f64::from((state >> 40) as u32) / f64::from(1u32 << 24)
        };
        (0..candidates / 50)
            .map(|_| {
                let rows: Vec<Vec<f32>> = (0..50).map(|_| vec![(next() * 4.0) as f32]).collect();
                let relevant = rows
                    .iter()
                    .map(|row| next() < logistic(2.0 * f64::from(row[0]) - 3.0))
                    .collect();
                Query {
                    split: 0,
                    rows,
                    relevant,
                }
            })
            .collect()
    }

    #[test]
    fn calibration_recovers_the_chance_of_taking_part_on_the_models_own_scale() {
        let history = drawn(40_000);
        // A model whose linear score is five times the feature: the chance is σ(0.4 s - 3).
        let model = RankingModel::fixed(RankingKind::Discussions, &["x"], &[5.0], "test");
        let calibration = calibrate(&history, &model).expect("enough of both outcomes");
        assert!(
            (calibration.slope - 0.4).abs() < 0.03,
            "slope {}",
            calibration.slope
        );
        assert!(
            (calibration.intercept + 3.0).abs() < 0.15,
            "intercept {}",
            calibration.intercept
        );
        assert_eq!(calibration.examples, 40_000);
        let mut calibrated = model.clone();
        calibrated.calibration = Some(calibration);
        // The chance at x = 1.5 is one half; the order is the model's.
        let middle = calibrated.probability(&[1.5]).unwrap();
        assert!((middle - 0.5).abs() < 0.03, "{middle}");
        assert!(calibrated.probability(&[0.5]).unwrap() < middle);
        assert!(calibrated.probability(&[3.0]).unwrap() > 0.9);
        assert_eq!(model.probability(&[1.5]), None);
    }

    #[test]
    fn no_calibration_without_both_outcomes_or_when_a_higher_score_means_less() {
        let history = drawn(40_000);
        let few: Vec<Query> = history[..1].to_vec();
        let model = RankingModel::fixed(RankingKind::Discussions, &["x"], &[1.0], "test");
        assert_eq!(calibrate(&few, &model), None, "fewer than 30 who took part");
        let backwards = RankingModel::fixed(RankingKind::Discussions, &["x"], &[-1.0], "test");
        assert_eq!(calibrate(&history, &backwards), None);
        let flat = RankingModel::fixed(RankingKind::Discussions, &["x"], &[0.0], "test");
        assert_eq!(calibrate(&history, &flat), None);
    }

    #[test]
    fn reliability_says_how_far_given_chances_are_from_what_happened() {
        let history = drawn(40_000);
        let (fitted, held) = history.split_at(600);
        let mut model = RankingModel::fixed(RankingKind::Discussions, &["x"], &[1.0], "test");
        assert_eq!(
            reliability(held, &model),
            None,
            "no calibration, nothing to judge"
        );
        model.calibration = calibrate(fitted, &model);
        let judged = reliability(held, &model).expect("a calibration and candidates");
        assert_eq!(judged.candidates, held.len() * 50);
        assert!(
            (judged.predicted - judged.observed).abs() < 0.02,
            "{judged:?}"
        );
        assert!(judged.error < 0.03, "{judged:?}");
        // A calibration that says the opposite of what happened is far off.
        let mut wrong = model.clone();
        wrong.calibration = Some(Calibration {
            slope: 2.0,
            intercept: 1.0,
            examples: 0,
            positives: 0,
        });
        assert!(reliability(held, &wrong).unwrap().error > 0.3);
    }
}
