//! The three baselines of `EVALUATION.md`, each producing a full [`Rankings`] for the protocol:
//!
//! - [`random`]: a fresh order per query; the table reports the mean over seeds 0–9
//!   ([`random_report`]).
//! - [`popularity`]: most history items first (a thread by its asker's, an asset by its thread's),
//!   ties by ascending id.
//! - [`bm25`]: the independent `bm25s` Python package, run as a child process on
//!   `eval/bm25_baseline.py` (embedded in this crate, so an installed binary does not need the
//!   source tree). Re-implementing BM25 in Rust would defeat the point: the baseline must be
//!   somebody else's code so that it cannot drift towards the engine.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::report::{Report, evaluate};
use crate::{EvalError, Protocol, Rankings};

/// The seeds whose mean is the random baseline.
pub const RANDOM_SEEDS: std::ops::RangeInclusive<u64> = 0..=9;

/// Sorts `items` by descending `score`, ties by ascending id.
fn by_score(mut items: Vec<i64>, score: impl Fn(i64) -> usize) -> Vec<i64> {
    items.sort_by_key(|item| (std::cmp::Reverse(score(*item)), *item));
    items
}

/// Popularity: rank by history item counts (see the module doc).
pub fn popularity(protocol: &Protocol) -> Rankings {
    let person = |user: i64| protocol.history_count_of_person(user);
    let asker_count = |thread: i64| {
        protocol
            .test_thread(thread)
            .and_then(|t| t.asker)
            .map_or(0, person)
    };
    let test_ids: Vec<i64> = protocol.test_threads().iter().map(|t| t.id).collect();
    let asset_ids: Vec<i64> = protocol.assets().iter().map(|a| a.thread_id).collect();
    let by_asker = by_score(test_ids.clone(), asker_count);
    let by_thread_size = by_score(asset_ids, |thread| protocol.history_count_of_thread(thread));
    Rankings {
        a: Some(
            test_ids
                .iter()
                .map(|thread| (*thread, by_score(protocol.routing_pool(*thread), person)))
                .collect(),
        ),
        b: Some(
            protocol
                .candidates()
                .iter()
                .map(|user| {
                    (
                        *user,
                        by_score(protocol.discussion_pool(*user), asker_count),
                    )
                })
                .collect(),
        ),
        c: Some(
            protocol
                .facets()
                .iter()
                .map(|facet| (facet.id.clone(), by_asker.clone()))
                .collect(),
        ),
        c_overall: Some(
            test_ids
                .iter()
                .map(|thread| (*thread, asker_count(*thread) as f64))
                .collect(),
        ),
        d: Some(
            test_ids
                .iter()
                .map(|thread| (*thread, by_thread_size.clone()))
                .collect(),
        ),
        e: Some(by_score(protocol.candidates().to_vec(), person)),
    }
}

/// The random generator: ChaCha8 seeded with `seed_from_u64(seed)`, one per seed, shared by all
/// queries in turn. Indices are drawn the way `rand` 0.8's `gen_range(0..bound)` draws a `u32`:
/// a widening multiply, rejecting draws whose low half exceeds the zone
/// `(bound << bound.leading_zeros()) - 1`. Lists are shuffled as `rand` 0.8's
/// `SliceRandom::shuffle` does (Fisher–Yates from the end). Spelling the procedure out here keeps
/// the baseline stable whatever `rand` version the workspace moves to; this exact procedure
/// reproduces the published Task E random cells.
#[derive(Debug, Clone)]
struct Shuffler(ChaCha8Rng);

impl Shuffler {
    fn new(seed: u64) -> Shuffler {
        Shuffler(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..bound`, for `bound` in `1..=u32::MAX`.
    fn below(&mut self, bound: u32) -> u32 {
        let zone = (bound << bound.leading_zeros()).wrapping_sub(1);
        loop {
            let product = u64::from(self.0.next_u32()) * u64::from(bound);
            let (high, low) = ((product >> 32) as u32, product as u32);
            if low <= zone {
                return high;
            }
        }
    }

    fn shuffle(&mut self, items: &mut [i64]) {
        for index in (1..items.len()).rev() {
            let bound = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let other = self.below(bound) as usize;
            items.swap(index, other);
        }
    }

    fn shuffled(&mut self, items: &[i64]) -> Vec<i64> {
        let mut items = items.to_vec();
        self.shuffle(&mut items);
        items
    }
}

/// Random: for one seed, a fresh order of each evaluated query's whole pool, drawn in turn from
/// one generator (see `Shuffler`): Task A's threads, then B's candidates, C's facets, D's threads
/// (each in ascending id order, C in strategy order), then E, then the `C_overall` order. Pools are
/// every candidate, every test thread and every asset in ascending id order; the asker of a thread
/// and the threads a person asked are left in and dropped when judged, as the protocol drops items
/// outside a pool. Only evaluated queries are ranked: the others are never judged.
pub fn random(protocol: &Protocol, seed: u64) -> Rankings {
    let mut shuffler = Shuffler::new(seed);
    let truth = protocol.ground_truth();
    let candidates = protocol.candidates();
    let test_ids: Vec<i64> = protocol.test_threads().iter().map(|t| t.id).collect();
    let asset_ids: Vec<i64> = protocol.assets().iter().map(|a| a.thread_id).collect();
    let mut a = BTreeMap::new();
    for thread in truth.routing.keys() {
        a.insert(*thread, shuffler.shuffled(candidates));
    }
    let mut b = BTreeMap::new();
    for user in truth.discussions.keys() {
        b.insert(*user, shuffler.shuffled(&test_ids));
    }
    let mut c = BTreeMap::new();
    for facet in protocol.facets() {
        c.insert(facet.id.clone(), shuffler.shuffled(&test_ids));
    }
    let mut d = BTreeMap::new();
    for thread in truth.assets.keys() {
        d.insert(*thread, shuffler.shuffled(&asset_ids));
    }
    let e = shuffler.shuffled(candidates);
    let overall = shuffler.shuffled(&test_ids);
    let count = overall.len();
    let c_overall = overall
        .into_iter()
        .enumerate()
        .map(|(index, thread)| (thread, (count - index) as f64))
        .collect();
    Rankings {
        a: Some(a),
        b: Some(b),
        c: Some(c),
        c_overall: Some(c_overall),
        d: Some(d),
        e: Some(e),
    }
}

/// The random baseline's report: the mean over [`RANDOM_SEEDS`].
pub fn random_report(protocol: &Protocol) -> Report {
    let reports: Vec<Report> = RANDOM_SEEDS
        .map(|seed| evaluate(protocol, &random(protocol, seed)))
        .collect();
    Report::mean_of(&reports)
}

/// The runner script, embedded so that an installed binary does not depend on the source tree.
pub const BM25_RUNNER: &str = include_str!("../../../eval/bm25_baseline.py");

/// How to run the BM25 runner.
#[derive(Debug, Clone, Default)]
pub struct Bm25Options {
    /// The Python interpreter; default `$TRELLIS_PYTHON`, else `python3`.
    pub python: Option<String>,
    /// A runner script to use instead of the embedded copy.
    pub script: Option<PathBuf>,
}

impl Bm25Options {
    fn python(&self) -> String {
        self.python
            .clone()
            .or_else(|| {
                std::env::var("TRELLIS_PYTHON")
                    .ok()
                    .filter(|p| !p.is_empty())
            })
            .unwrap_or_else(|| "python3".to_owned())
    }
}

#[derive(Debug, Serialize)]
struct Bm25Job<'a> {
    k1: f64,
    b: f64,
    corpora: Vec<Bm25Corpus<'a>>,
}

#[derive(Debug, Serialize)]
struct Bm25Corpus<'a> {
    name: &'static str,
    doc_ids: Vec<i64>,
    doc_texts: Vec<&'a str>,
    queries: Vec<(String, &'a str)>,
}

#[derive(Debug, Deserialize)]
struct Bm25Ranking {
    ids: Vec<i64>,
    scores: Vec<f64>,
}

type Bm25Output = BTreeMap<String, BTreeMap<String, Bm25Ranking>>;

/// Checks that the interpreter runs and imports `bm25s`, with the same error [`bm25`] would give.
pub fn bm25_available(options: &Bm25Options) -> Result<(), EvalError> {
    let python = options.python();
    let output = Command::new(&python)
        .args(["-c", "import bm25s, numpy"])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| EvalError::PythonUnavailable {
            python: python.clone(),
            message: error.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EvalError::PythonUnavailable {
            python,
            message: last_line(&output.stderr),
        })
    }
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_owned()
}

/// BM25 with the embedded runner and the default interpreter.
pub fn bm25(protocol: &Protocol) -> Result<Rankings, EvalError> {
    bm25_with(protocol, &Bm25Options::default())
}

/// BM25 (see the module doc). Documents and queries, as `EVALUATION.md` sets them:
/// - A and E: a candidate's document is their history items in time order, then their
///   `AboutMe`; A's query is the test thread's title and body, E's the whole strategy.
/// - B: the candidate's document is the query, against the test threads' title and body.
/// - C: each facet's `name. description` against the test threads; C's AUC uses the whole
///   strategy as the query and the BM25 score as the strategic-relevance score.
/// - D: the test thread is the query against the assets.
pub fn bm25_with(protocol: &Protocol, options: &Bm25Options) -> Result<Rankings, EvalError> {
    let mut documents: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for item in protocol.history_items() {
        if let Some(author) = item.author.filter(|a| protocol.is_candidate(*a)) {
            documents.entry(author).or_default().push(&item.text);
        }
    }
    let candidate_docs: Vec<String> = protocol
        .candidates()
        .iter()
        .map(|user| {
            let mut parts = documents.remove(user).unwrap_or_default();
            if let Some(about) = protocol.about_me_of(*user) {
                parts.push(about);
            }
            parts.join("\n")
        })
        .collect();
    let thread_texts: Vec<String> = protocol.test_threads().iter().map(|t| t.text()).collect();
    let strategy_query = crate::LabelStrategy {
        facets: protocol.facets().to_vec(),
    }
    .query_text();
    let facet_queries: Vec<(String, String)> = protocol
        .facets()
        .iter()
        .map(|facet| (format!("f:{}", facet.id), facet.query_text()))
        .collect();
    let test_ids: Vec<i64> = protocol.test_threads().iter().map(|t| t.id).collect();

    let thread_queries = || -> Vec<(String, &str)> {
        test_ids
            .iter()
            .zip(&thread_texts)
            .map(|(id, text)| (format!("t:{id}"), text.as_str()))
            .collect()
    };
    let mut candidate_queries = thread_queries();
    candidate_queries.push(("strategy".to_owned(), &strategy_query));
    let mut test_thread_queries: Vec<(String, &str)> = protocol
        .candidates()
        .iter()
        .zip(&candidate_docs)
        .map(|(user, text)| (format!("u:{user}"), text.as_str()))
        .collect();
    test_thread_queries.extend(
        facet_queries
            .iter()
            .map(|(id, text)| (id.clone(), text.as_str())),
    );
    test_thread_queries.push(("strategy".to_owned(), &strategy_query));

    let job = Bm25Job {
        k1: 1.5,
        b: 0.75,
        corpora: vec![
            Bm25Corpus {
                name: "candidates",
                doc_ids: protocol.candidates().to_vec(),
                doc_texts: candidate_docs.iter().map(String::as_str).collect(),
                queries: candidate_queries,
            },
            Bm25Corpus {
                name: "test_threads",
                doc_ids: test_ids.clone(),
                doc_texts: thread_texts.iter().map(String::as_str).collect(),
                queries: test_thread_queries,
            },
            Bm25Corpus {
                name: "assets",
                doc_ids: protocol.assets().iter().map(|a| a.thread_id).collect(),
                doc_texts: protocol.assets().iter().map(|a| a.text.as_str()).collect(),
                queries: thread_queries(),
            },
        ],
    };
    let mut output = run_runner(options, &serde_json::to_vec(&job)?)?;

    let mut take = |corpus: &str, query: &str| -> Result<Bm25Ranking, EvalError> {
        output
            .get_mut(corpus)
            .and_then(|rankings| rankings.remove(query))
            .ok_or_else(|| EvalError::Runner {
                message: format!("no ranking for query `{query}` of corpus `{corpus}`"),
            })
    };
    let mut a = BTreeMap::new();
    let mut d = BTreeMap::new();
    for thread in protocol.test_threads() {
        let asker = thread.asker;
        let ranking = take("candidates", &format!("t:{}", thread.id))?;
        let ids = ranking.ids.into_iter().filter(|user| Some(*user) != asker);
        a.insert(thread.id, ids.collect());
        d.insert(thread.id, take("assets", &format!("t:{}", thread.id))?.ids);
    }
    let mut b = BTreeMap::new();
    for user in protocol.candidates() {
        let ranking = take("test_threads", &format!("u:{user}"))?;
        let ids = ranking.ids.into_iter().filter(|thread| {
            protocol
                .test_thread(*thread)
                .is_some_and(|t| t.asker != Some(*user))
        });
        b.insert(*user, ids.collect());
    }
    let mut c = BTreeMap::new();
    for facet in protocol.facets() {
        c.insert(
            facet.id.clone(),
            take("test_threads", &format!("f:{}", facet.id))?.ids,
        );
    }
    let overall = take("test_threads", "strategy")?;
    let c_overall = overall.ids.into_iter().zip(overall.scores).collect();
    let e = take("candidates", "strategy")?.ids;
    Ok(Rankings {
        a: Some(a),
        b: Some(b),
        c: Some(c),
        c_overall: Some(c_overall),
        d: Some(d),
        e: Some(e),
    })
}

/// Runs the runner script on `job` and parses its output.
fn run_runner(options: &Bm25Options, job: &[u8]) -> Result<Bm25Output, EvalError> {
    let python = options.python();
    // Keep the temporary script alive until the child has finished.
    let (_temporary, script) = match &options.script {
        Some(path) => (None, path.clone()),
        None => {
            let mut file = tempfile::Builder::new()
                .prefix("trellis-bm25-")
                .suffix(".py")
                .tempfile()
                .map_err(|error| EvalError::Runner {
                    message: format!("cannot write the runner script to a temporary file: {error}"),
                })?;
            file.write_all(BM25_RUNNER.as_bytes())
                .map_err(|error| EvalError::Runner {
                    message: format!("cannot write the runner script to a temporary file: {error}"),
                })?;
            let path = file.path().to_path_buf();
            (Some(file), path)
        }
    };
    let mut child = Command::new(&python)
        .arg(&script)
        .env("DISABLE_TQDM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| EvalError::PythonUnavailable {
            python: python.clone(),
            message: error.to_string(),
        })?;
    let mut stdin = child.stdin.take().ok_or_else(|| EvalError::Runner {
        message: "cannot open the runner's standard input".to_owned(),
    })?;
    // Write from another thread: the runner may fill its stdout pipe before reading all input.
    let job = job.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&job));
    let output = child
        .wait_with_output()
        .map_err(|error| EvalError::Runner {
            message: format!("waiting for `{python}`: {error}"),
        })?;
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked")));
    match output.status.code() {
        Some(0) => {}
        Some(3) => {
            return Err(EvalError::PythonUnavailable {
                python,
                message: last_line(&output.stderr),
            });
        }
        _ => {
            return Err(EvalError::Runner {
                message: format!(
                    "`{python} {}` exited with {}: {}",
                    script.display(),
                    output.status,
                    last_line(&output.stderr)
                ),
            });
        }
    }
    if let Err(error) = written {
        return Err(EvalError::Runner {
            message: format!("cannot send the job to the runner: {error}"),
        });
    }
    serde_json::from_slice(&output.stdout).map_err(|error| EvalError::Runner {
        message: format!("the runner's output is not the expected JSON: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_exactly_like_rand_0_8_with_chacha8() {
        // `rand` 0.8: `(0..10).collect::<Vec<_>>().shuffle(&mut ChaCha8Rng::seed_from_u64(0))`.
        let mut items: Vec<i64> = (0..10).collect();
        Shuffler::new(0).shuffle(&mut items);
        assert_eq!(items, vec![3, 8, 5, 2, 7, 1, 0, 4, 9, 6]);
        // The generator is shared: a second shuffle continues the stream.
        let mut shuffler = Shuffler::new(0);
        let _ = shuffler.shuffled(&[0, 1, 2]);
        assert_eq!(
            shuffler.shuffled(&(0..10).collect::<Vec<_>>()),
            vec![3, 8, 9, 2, 7, 1, 0, 4, 6, 5]
        );
    }

    #[test]
    fn by_score_breaks_ties_by_ascending_id() {
        let scores: BTreeMap<i64, usize> = [(5, 2), (3, 1), (9, 2), (1, 1)].into();
        assert_eq!(
            by_score(vec![1, 3, 5, 9], |id| scores[&id]),
            vec![5, 9, 1, 3]
        );
    }

    #[test]
    fn a_missing_python_names_the_fix() {
        let options = Bm25Options {
            python: Some("/nonexistent/python3".to_owned()),
            script: None,
        };
        let error = bm25_available(&options).unwrap_err();
        assert!(matches!(error, EvalError::PythonUnavailable { .. }));
        assert!(
            error
                .to_string()
                .contains("pip install -r eval/requirements.txt"),
            "{error}"
        );
    }
}
