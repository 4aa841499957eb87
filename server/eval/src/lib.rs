//! `trellis-eval` owns the evaluation protocol of `design/EVALUATION.md`: reading a StackExchange
//! dump, the time split, what the engine may see, the ground truth of tasks A, A', B, C, D and E,
//! the metrics, and the random / popularity / BM25 / Dense / Hybrid baselines the engine is compared
//! against.
//!
//! It is deliberately independent of the Trellis engine: the engine's answers come in as a
//! [`Rankings`] value (the JSON "rankings file" that `trellis eval` produces through the public API),
//! so the same code judges Trellis and the baselines, and nothing in the engine can peek at the
//! labels. The protocol must give the same numbers whoever implements it, which is why the baselines
//! are checked against the published table of the development dump, and why BM25 runs the
//! independent `bm25s` Python package as it comes (see [`baselines`]) rather than a re-implementation.
//!
//! The flow is: [`Dump::load`] → [`Protocol::new`] (split, history, candidates, assets, ground
//! truth) → rankings from the engine or from [`baselines`] → [`evaluate`] → [`Report`] →
//! [`comparison_table`].

pub mod baselines;
pub mod dense;
mod dump;
mod error;
mod html;
pub mod metrics;
mod protocol;
pub mod published;
mod rankings;
mod report;
pub mod scale;
mod strategy;

pub use dense::TextEmbedder;
pub use dump::{Comment, Dump, Post, PostLink, PostType, Timestamp, User};
pub use error::EvalError;
pub use html::strip_html;
pub use protocol::{AssetDoc, Counts, GroundTruth, HistoryItem, ItemKind, Protocol, TestThread};
pub use rankings::Rankings;
pub use report::{
    AssetScores, BaselineReports, Comparison, DiscussionScores, FacetScores, MetricRow,
    ProspectScores, Report, RoutingScores, StrategyReport, compare, comparison_table, evaluate,
    summary_line,
};
pub use scale::{
    Community, PeopleSample, ScaleSpec, Scaled, ScaledPerson, ScaledPost, ScaledThread,
};
pub use strategy::{LabelFacet, LabelStrategy};
