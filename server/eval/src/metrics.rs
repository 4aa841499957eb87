//! The ranking metrics of `EVALUATION.md`, on binary relevance.
//!
//! Every function takes a ranking that was first passed through [`clean_ranking`]: items outside
//! the task's pool dropped, repeats keeping their first place. A ranking may be partial; what it
//! leaves out counts as never retrieved, which is why recall and AP divide by the number of
//! relevant items, not by what was retrieved. Callers skip queries with no relevant item (their
//! metrics are undefined); the functions return 0 for them rather than dividing by zero.

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Keeps the items `in_pool` accepts, each at its first place.
pub fn clean_ranking(ranking: &[i64], in_pool: impl Fn(i64) -> bool) -> Vec<i64> {
    let mut seen = HashSet::new();
    ranking
        .iter()
        .copied()
        .filter(|item| in_pool(*item) && seen.insert(*item))
        .collect()
}

fn hits_in_top(ranking: &[i64], relevant: &BTreeSet<i64>, k: usize) -> usize {
    ranking
        .iter()
        .take(k)
        .filter(|item| relevant.contains(item))
        .count()
}

/// P@k: relevant items in the top k, divided by k (even when the ranking is shorter).
pub fn precision_at(ranking: &[i64], relevant: &BTreeSet<i64>, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    hits_in_top(ranking, relevant, k) as f64 / k as f64
}

/// R@k: relevant items in the top k, divided by the number of relevant items.
pub fn recall_at(ranking: &[i64], relevant: &BTreeSet<i64>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits_in_top(ranking, relevant, k) as f64 / relevant.len() as f64
}

/// AP over the whole ranking: the mean, over all relevant items, of the precision at the rank
/// where each was retrieved (0 for the ones never retrieved).
pub fn average_precision(ranking: &[i64], relevant: &BTreeSet<i64>) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let mut hits = 0usize;
    let mut sum = 0.0;
    for (index, item) in ranking.iter().enumerate() {
        if relevant.contains(item) {
            hits += 1;
            sum += hits as f64 / (index + 1) as f64;
        }
    }
    sum / relevant.len() as f64
}

/// NDCG@k with gain 1/log2(rank + 1) and an ideal list of min(k, relevant) hits.
pub fn ndcg_at(ranking: &[i64], relevant: &BTreeSet<i64>, k: usize) -> f64 {
    let gain = |index: usize| 1.0 / ((index + 2) as f64).log2();
    let ideal: f64 = (0..k.min(relevant.len())).map(gain).sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, item)| relevant.contains(item))
        .map(|(index, _)| gain(index))
        .sum();
    dcg / ideal
}

/// Reciprocal rank of the first relevant item (0 when none is retrieved).
pub fn reciprocal_rank(ranking: &[i64], relevant: &BTreeSet<i64>) -> f64 {
    ranking
        .iter()
        .position(|item| relevant.contains(item))
        .map_or(0.0, |index| 1.0 / (index + 1) as f64)
}

/// AUC: the probability that a positive outscores a negative, ties counting half. Items without a
/// score (or with NaN) rank below every scored item. `None` when either class is empty.
pub fn auc(
    scores: &BTreeMap<i64, f64>,
    positives: &BTreeSet<i64>,
    negatives: &BTreeSet<i64>,
) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let score = |item: &i64| {
        scores
            .get(item)
            .copied()
            .filter(|value| !value.is_nan())
            .unwrap_or(f64::NEG_INFINITY)
    };
    let negative_scores: Vec<f64> = negatives.iter().map(score).collect();
    let mut wins = 0.0;
    for positive in positives {
        let positive_score = score(positive);
        for negative_score in &negative_scores {
            if positive_score > *negative_score {
                wins += 1.0;
            } else if positive_score == *negative_score {
                wins += 0.5;
            }
        }
    }
    Some(wins / (positives.len() * negatives.len()) as f64)
}

/// The arithmetic mean; `None` for no values.
pub fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut count = 0usize;
    let mut sum = 0.0;
    for value in values {
        count += 1;
        sum += value;
    }
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[i64]) -> BTreeSet<i64> {
        items.iter().copied().collect()
    }

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn cleaning_drops_outsiders_and_repeats() {
        let pool = set(&[1, 2, 3, 4]);
        assert_eq!(
            clean_ranking(&[9, 2, 2, 1, 9, 2, 4], |item| pool.contains(&item)),
            vec![2, 1, 4]
        );
    }

    #[test]
    fn precision_divides_by_k() {
        let relevant = set(&[2, 5]);
        close(precision_at(&[1, 2, 3], &relevant, 1), 0.0);
        close(precision_at(&[2, 1, 5], &relevant, 1), 1.0);
        // 2 hits in the top 5 of a 3-item ranking: 2/5.
        close(precision_at(&[2, 1, 5], &relevant, 5), 0.4);
    }

    #[test]
    fn recall_divides_by_relevant() {
        let relevant = set(&[2, 5, 7]);
        close(recall_at(&[2, 1, 5], &relevant, 2), 1.0 / 3.0);
        close(recall_at(&[2, 1, 5], &relevant, 10), 2.0 / 3.0);
        close(recall_at(&[], &relevant, 10), 0.0);
    }

    #[test]
    fn average_precision_counts_missing_relevant_as_zero() {
        // Hits at ranks 1 and 3: (1/1 + 2/3) / 2.
        close(
            average_precision(&[4, 9, 5], &set(&[4, 5])),
            (1.0 + 2.0 / 3.0) / 2.0,
        );
        // One of two relevant never retrieved: (1/2) / 2.
        close(average_precision(&[9, 4], &set(&[4, 5])), 0.25);
    }

    #[test]
    fn ndcg_uses_log2_gains_and_a_truncated_ideal() {
        // Relevant at ranks 2 and 3 of k = 3, two relevant in all:
        // DCG = 1/log2(3) + 1/log2(4) = 0.63093 + 0.5; ideal = 1 + 1/log2(3).
        let expected = (1.0 / 3f64.log2() + 0.5) / (1.0 + 1.0 / 3f64.log2());
        close(ndcg_at(&[1, 2, 3], &set(&[2, 3]), 3), expected);
        // Five relevant but k = 3: the ideal has 3 hits; a perfect top 3 scores 1.
        close(ndcg_at(&[1, 2, 3, 4], &set(&[1, 2, 3, 4, 5]), 3), 1.0);
        // A single relevant item at rank 2: 1/log2(3).
        close(ndcg_at(&[7, 8], &set(&[8]), 3), 1.0 / 3f64.log2());
    }

    #[test]
    fn reciprocal_rank_of_first_hit() {
        close(reciprocal_rank(&[1, 2, 3, 4], &set(&[3, 4])), 1.0 / 3.0);
        close(reciprocal_rank(&[1, 2], &set(&[3])), 0.0);
    }

    #[test]
    fn auc_counts_ties_half_and_missing_scores_last() {
        let scores: BTreeMap<i64, f64> = [(1, 0.9), (2, 0.5), (3, 0.5), (4, 0.1)].into();
        // Positives 1, 2 vs negatives 3, 4 (and 5, unscored):
        // 1 beats 3, 4, 5 = 3; 2 ties 3 (0.5), beats 4, 5 = 2.5; total 5.5 / 6.
        close(
            auc(&scores, &set(&[1, 2]), &set(&[3, 4, 5])).unwrap(),
            5.5 / 6.0,
        );
        assert_eq!(auc(&scores, &set(&[]), &set(&[1])), None);
        // Two unscored items tie.
        close(auc(&BTreeMap::new(), &set(&[1]), &set(&[2])).unwrap(), 0.5);
    }

    #[test]
    fn mean_of_nothing_is_none() {
        assert_eq!(mean([]), None);
        close(mean([1.0, 2.0]).unwrap(), 1.5);
    }
}
