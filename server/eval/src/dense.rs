//! The Dense and Hybrid baselines of `EVALUATION.md`.
//!
//! - [`dense`]: cosine similarity of all-MiniLM-L6-v2 sentence embeddings. Threads, assets,
//!   facets and the strategy are embedded from the texts BM25 uses; a candidate is the normalised
//!   mean of the vectors of their history items and their `AboutMe`, each embedded on its own.
//!   Each task then scores like BM25, with cosine in place of BM25.
//! - [`hybrid`]: reciprocal rank fusion (k = 60) of the BM25 and Dense rankings of each query,
//!   plus the popularity ranking where people are ranked (A, A' and E). The fused score is also
//!   the score of Task C's AUC.
//!
//! The model runs behind [`TextEmbedder`], which the caller provides (the `trellis` binary wires
//! the same model files the semantic tier uses): this crate stays free of any neural-network
//! runtime, and nothing here shares code with the engine's rankings.

use std::collections::{BTreeMap, HashMap};

use crate::{EvalError, LabelStrategy, Protocol, Rankings};

/// Turns texts into L2-normalised sentence embeddings, one per text, in order.
pub trait TextEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// The `k` of reciprocal rank fusion in the Hybrid baseline.
pub const FUSION_K: f64 = 60.0;

fn dot(left: &[f32], right: &[f32]) -> f64 {
    left.iter()
        .zip(right)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum()
}

fn normalised(mut vector: Vec<f64>) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        for value in &mut vector {
            *value /= norm;
        }
    }
    vector.into_iter().map(|v| v as f32).collect()
}

/// Embeds each distinct text once; many comments repeat word for word.
fn embed_all<'a>(
    embedder: &dyn TextEmbedder,
    texts: &[&'a str],
) -> Result<HashMap<&'a str, Vec<f32>>, EvalError> {
    let mut distinct: Vec<&str> = texts.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let vectors = embedder
        .embed(&distinct)
        .map_err(|message| EvalError::Embedding { message })?;
    if vectors.len() != distinct.len() {
        return Err(EvalError::Embedding {
            message: format!(
                "the embedder returned {} vectors for {} texts",
                vectors.len(),
                distinct.len()
            ),
        });
    }
    Ok(distinct.into_iter().zip(vectors).collect())
}

/// Ids by descending score, ties by ascending id.
fn ranked(mut scored: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

fn ids(scored: Vec<(i64, f64)>) -> Vec<i64> {
    scored.into_iter().map(|(id, _)| id).collect()
}

/// The Dense baseline (see the module doc).
pub fn dense(protocol: &Protocol, embedder: &dyn TextEmbedder) -> Result<Rankings, EvalError> {
    let thread_texts: Vec<String> = protocol.test_threads().iter().map(|t| t.text()).collect();
    let facet_texts: Vec<String> = protocol
        .facets()
        .iter()
        .map(crate::LabelFacet::query_text)
        .collect();
    let strategy_text = LabelStrategy {
        facets: protocol.facets().to_vec(),
    }
    .query_text();
    let mut items_of: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for item in protocol.history_items() {
        if let Some(author) = item.author.filter(|a| protocol.is_candidate(*a)) {
            items_of.entry(author).or_default().push(&item.text);
        }
    }
    for user in protocol.candidates() {
        if let Some(about) = protocol.about_me_of(*user) {
            items_of.entry(*user).or_default().push(about);
        }
    }

    let mut texts: Vec<&str> = Vec::new();
    texts.extend(thread_texts.iter().map(String::as_str));
    texts.extend(protocol.assets().iter().map(|a| a.text.as_str()));
    texts.extend(facet_texts.iter().map(String::as_str));
    texts.push(&strategy_text);
    texts.extend(items_of.values().flatten().copied());
    let vectors = embed_all(embedder, &texts)?;
    let vector = |text: &str| -> &[f32] { vectors.get(text).map_or(&[], Vec::as_slice) };

    let threads: Vec<(i64, &[f32])> = protocol
        .test_threads()
        .iter()
        .zip(&thread_texts)
        .map(|(thread, text)| (thread.id, vector(text)))
        .collect();
    let assets: Vec<(i64, &[f32])> = protocol
        .assets()
        .iter()
        .map(|asset| (asset.thread_id, vector(&asset.text)))
        .collect();
    let candidates: Vec<(i64, Vec<f32>)> = protocol
        .candidates()
        .iter()
        .map(|user| {
            let items = items_of.get(user).map_or(&[][..], Vec::as_slice);
            let mut sum = vec![0.0f64; vectors.values().next().map_or(0, Vec::len)];
            for text in items {
                for (total, value) in sum.iter_mut().zip(vector(text)) {
                    *total += f64::from(*value);
                }
            }
            (*user, normalised(sum))
        })
        .collect();
    let strategy = vector(&strategy_text);

    let mut a = BTreeMap::new();
    let mut d = BTreeMap::new();
    for (thread, (id, thread_vector)) in protocol.test_threads().iter().zip(&threads) {
        let people = candidates
            .iter()
            .filter(|(user, _)| Some(*user) != thread.asker)
            .map(|(user, person)| (*user, dot(thread_vector, person)))
            .collect();
        a.insert(*id, ids(ranked(people)));
        let supporting = assets
            .iter()
            .map(|(asset, asset_vector)| (*asset, dot(thread_vector, asset_vector)))
            .collect();
        d.insert(*id, ids(ranked(supporting)));
    }
    let mut b = BTreeMap::new();
    for (user, person) in &candidates {
        let discussions = protocol
            .test_threads()
            .iter()
            .zip(&threads)
            .filter(|(thread, _)| thread.asker != Some(*user))
            .map(|(_, (id, thread_vector))| (*id, dot(person, thread_vector)))
            .collect();
        b.insert(*user, ids(ranked(discussions)));
    }
    let by_threads = |query: &[f32]| -> Vec<(i64, f64)> {
        ranked(
            threads
                .iter()
                .map(|(id, thread_vector)| (*id, dot(query, thread_vector)))
                .collect(),
        )
    };
    let c = protocol
        .facets()
        .iter()
        .zip(&facet_texts)
        .map(|(facet, text)| (facet.id.clone(), ids(by_threads(vector(text)))))
        .collect();
    let c_overall = by_threads(strategy).into_iter().collect();
    let e = ids(ranked(
        candidates
            .iter()
            .map(|(user, person)| (*user, dot(strategy, person)))
            .collect(),
    ));
    Ok(Rankings {
        a: Some(a),
        b: Some(b),
        c: Some(c),
        c_overall: Some(c_overall),
        d: Some(d),
        e: Some(e),
    })
}

/// Reciprocal rank fusion of `lists` (each best first, ranks from 1): ids by descending fused
/// score, ties by ascending id.
pub fn reciprocal_rank_fusion(lists: &[&[i64]]) -> Vec<(i64, f64)> {
    let mut fused: HashMap<i64, f64> = HashMap::new();
    for list in lists {
        for (index, id) in list.iter().enumerate() {
            *fused.entry(*id).or_default() += 1.0 / (FUSION_K + index as f64 + 1.0);
        }
    }
    ranked(fused.into_iter().collect())
}

/// Ids of a score map by descending score, ties by ascending id.
fn order_of(scores: &BTreeMap<i64, f64>) -> Vec<i64> {
    ids(ranked(scores.iter().map(|(id, s)| (*id, *s)).collect()))
}

/// The Hybrid baseline (see the module doc), from the BM25, Dense and popularity rankings of
/// the same protocol.
pub fn hybrid(bm25: &Rankings, dense: &Rankings, popularity: &Rankings) -> Rankings {
    fn per_query<K: Ord + Clone>(
        lists: &[Option<&BTreeMap<K, Vec<i64>>>],
    ) -> Option<BTreeMap<K, Vec<i64>>> {
        let first = lists.first().copied().flatten()?;
        Some(
            first
                .keys()
                .map(|key| {
                    let members: Vec<&[i64]> = lists
                        .iter()
                        .filter_map(|list| Some(list.as_ref()?.get(key)?.as_slice()))
                        .collect();
                    (key.clone(), ids(reciprocal_rank_fusion(&members)))
                })
                .collect(),
        )
    }
    let c_overall = match (&bm25.c_overall, &dense.c_overall) {
        (Some(lexical), Some(semantic)) => Some(
            reciprocal_rank_fusion(&[&order_of(lexical), &order_of(semantic)])
                .into_iter()
                .collect(),
        ),
        _ => None,
    };
    let e = match (&bm25.e, &dense.e, &popularity.e) {
        (Some(lexical), Some(semantic), Some(popular)) => {
            Some(ids(reciprocal_rank_fusion(&[lexical, semantic, popular])))
        }
        _ => None,
    };
    Rankings {
        a: per_query(&[bm25.a.as_ref(), dense.a.as_ref(), popularity.a.as_ref()]),
        b: per_query(&[bm25.b.as_ref(), dense.b.as_ref()]),
        c: per_query(&[bm25.c.as_ref(), dense.c.as_ref()]),
        c_overall,
        d: per_query(&[bm25.d.as_ref(), dense.d.as_ref()]),
        e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_adds_reciprocal_ranks_and_breaks_ties_by_id() {
        let fused = reciprocal_rank_fusion(&[&[3, 1, 2], &[1, 3, 2]]);
        let order: Vec<i64> = fused.iter().map(|(id, _)| *id).collect();
        // 1 and 3 tie (first once, second once): the lower id first.
        assert_eq!(order, vec![1, 3, 2]);
        let expected = 1.0 / 61.0 + 1.0 / 62.0;
        assert!((fused[0].1 - expected).abs() < 1e-12);
        // An id one list lacks gets only the other's share.
        let fused = reciprocal_rank_fusion(&[&[5], &[6, 5]]);
        assert_eq!(fused[0], (5, 1.0 / 61.0 + 1.0 / 62.0));
        assert_eq!(fused[1], (6, 1.0 / 61.0));
    }

    #[test]
    fn hybrid_fuses_people_with_popularity_and_the_rest_without() {
        let one = |list: Vec<i64>| Some(BTreeMap::from([(7_i64, list)]));
        let bm25 = Rankings {
            a: one(vec![1, 2, 3]),
            b: one(vec![10, 11]),
            e: Some(vec![1, 2, 3]),
            c_overall: Some(BTreeMap::from([(10, 2.0), (11, 1.0)])),
            ..Rankings::default()
        };
        let dense = Rankings {
            a: one(vec![2, 1, 3]),
            b: one(vec![11, 10]),
            e: Some(vec![2, 1, 3]),
            c_overall: Some(BTreeMap::from([(10, 0.1), (11, 0.9)])),
            ..Rankings::default()
        };
        let popularity = Rankings {
            a: one(vec![3, 2, 1]),
            b: one(vec![11, 10]),
            e: Some(vec![3, 2, 1]),
            ..Rankings::default()
        };
        let fused = hybrid(&bm25, &dense, &popularity);
        // A and E: 2 is 2nd, 1st, 2nd; the best sum.
        assert_eq!(fused.a.unwrap()[&7], vec![2, 1, 3]);
        assert_eq!(fused.e.unwrap(), vec![2, 1, 3]);
        // B ignores popularity: a tie between 10 and 11, broken by id.
        assert_eq!(fused.b.unwrap()[&7], vec![10, 11]);
        let overall = fused.c_overall.unwrap();
        assert_eq!(overall[&10], overall[&11]);
        assert!(fused.d.is_none());
    }
}
