//! The conformance kit: drives a connector plugin through the whole contract, the way the server
//! will, and reports each rule as passed, failed or skipped. It loads the library with the same
//! host code as the server (`trellis_plugin_sdk::host`) and validates records with the same rules
//! as every ingest path (`trellis_core::domain::Record::validate`), so a plugin that passes here
//! behaves the same in production.
//!
//! The rules checked, in order (later ones are skipped when an earlier one they need failed):
//! handshake and refusal of an unknown ABI major; spec (fields, streams, a valid JSON Schema that
//! the given config satisfies); check (accepts the config, rejects a bad one with a config error);
//! discover (streams with cursor and key); a full read of valid records in declared streams;
//! resuming from every checkpoint reproduces the rest of the read with no gap and no duplicate;
//! the final state yields nothing new; cancel is honoured within a bound; a panic comes back as
//! an error, poisons the instance, and the host goes on.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use trellis_core::domain::{FieldLimits, Record as CoreRecord};
use trellis_plugin_sdk::abi::{TRELLIS_ABI_MAJOR, TRELLIS_ABI_MINOR};
use trellis_plugin_sdk::egress::{EgressPolicy, HostSettings};
use trellis_plugin_sdk::export::CONFORMANCE_PANIC_KEY;
use trellis_plugin_sdk::host::convert::{record_kind, record_to_core};
use trellis_plugin_sdk::host::{HostError, Instance, Plugin};
use trellis_plugin_sdk::pb::connector::{RecordKind, SpecResponse, StreamSpec, batch_item};
use trellis_plugin_sdk::{ConfigSchema, ErrorKind, State};

/// The file name the platform gives the shared library of crate `crate_name` (in snake case, as
/// in `trellis_connector_template`): `libtrellis_connector_template.so` on Linux,
/// `libtrellis_connector_template.dylib` on macOS, `trellis_connector_template.dll` on Windows.
pub fn library_file_name(crate_name: &str) -> String {
    format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The shared library of connector crate `crate_name` (snake case, as in
/// `trellis_connector_template`) that cargo built for the running test or benchmark.
///
/// Cargo puts a test's or a benchmark's executable in `target/<profile>/deps`, and the libraries
/// of the crate under test and of its dev-dependencies in that folder or the one above it; this
/// looks in both, next to [`std::env::current_exe`]. Use it in a connector's own tests (its
/// library is built with them when the crate has `crate-type = ["cdylib", "rlib"]`) and in any
/// crate that lists the connector as a dev-dependency:
///
/// ```no_run
/// use trellis_conformance::{Options, built_library, run};
///
/// let library = built_library("trellis_connector_template");
/// let report = run(&Options::new(library, r#"{"path": "examples/community.jsonl"}"#));
/// assert!(report.passed(), "{report}");
/// ```
///
/// # Panics
///
/// When the library is in neither folder, with a message naming the file, the folder and the
/// cargo command that builds it: a test cannot go on without its plugin.
pub fn built_library(crate_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running test has a path");
    let deps = exe
        .parent()
        .expect("a test or benchmark runs from target/<profile>/deps");
    find_library(deps, crate_name).unwrap_or_else(|| {
        panic!(
            "{} is not built next to {}; build it with cargo build -p {} (or list that crate as a dev-dependency)",
            library_file_name(crate_name),
            exe.display(),
            crate_name.replace('_', "-")
        )
    })
}

/// The library of `crate_name` in `deps` or the folder above it, if either has it.
fn find_library(deps: &Path, crate_name: &str) -> Option<PathBuf> {
    let name = library_file_name(crate_name);
    [deps.join(&name), deps.join("..").join(&name)]
        .into_iter()
        .find(|path| path.is_file())
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The plugin library (`.so`, `.dylib`, `.dll`).
    pub library: PathBuf,
    /// A config that works, as JSON.
    pub config_json: String,
    /// A config the plugin must refuse with a config error; derived from the schema when `None`.
    pub bad_config_json: Option<String>,
    /// The source id records are keyed with, as a host would.
    pub source: String,
    /// Resume from at most this many checkpoints, spread evenly over the read (the last one
    /// always included); `usize::MAX` for every checkpoint.
    pub max_resumes: usize,
    /// How long a cancelled read may take to stop.
    pub cancel_bound: Duration,
    /// A read that produces more batches than this is reported as not terminating.
    pub max_batches: usize,
    /// The egress policy handed to the plugin with every config, as the server hands it its
    /// operator's: by default no loopback or private address, so a plugin under test against a
    /// local server needs [`EgressPolicy::allowing_private`] or an `allow` entry.
    pub egress: EgressPolicy,
}

impl Options {
    pub fn new(library: impl Into<PathBuf>, config_json: impl Into<String>) -> Self {
        Self {
            library: library.into(),
            config_json: config_json.into(),
            bad_config_json: None,
            source: "conformance".to_owned(),
            max_resumes: usize::MAX,
            cancel_bound: Duration::from_secs(5),
            max_batches: 1_000_000,
            egress: EgressPolicy::default(),
        }
    }

    /// The options with the host's settings put in every config, as the server sends them.
    fn as_sent(&self) -> Self {
        let sent = |config_json: &str| match serde_json::from_str::<Value>(config_json) {
            Ok(mut config @ Value::Object(_)) => {
                HostSettings {
                    egress: self.egress.clone(),
                }
                .put(&mut config);
                config.to_string()
            }
            _ => config_json.to_owned(),
        };
        Self {
            config_json: sent(&self.config_json),
            bad_config_json: self.bad_config_json.as_deref().map(sent),
            ..self.clone()
        }
    }
}

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed(String),
    Failed(String),
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// Every rule's outcome, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub plugin: String,
    pub results: Vec<CheckResult>,
}

impl Report {
    /// True when nothing failed (skips do not fail a report).
    pub fn passed(&self) -> bool {
        !self
            .results
            .iter()
            .any(|result| matches!(result.outcome, Outcome::Failed(_)))
    }

    pub fn failures(&self) -> Vec<&CheckResult> {
        self.results
            .iter()
            .filter(|result| matches!(result.outcome, Outcome::Failed(_)))
            .collect()
    }

    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|result| result.name == name)
            .map(|result| &result.outcome)
    }

    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.results.push(CheckResult {
            name,
            outcome: Outcome::Passed(detail.into()),
        });
    }

    fn fail(&mut self, name: &'static str, detail: impl Into<String>) {
        self.results.push(CheckResult {
            name,
            outcome: Outcome::Failed(detail.into()),
        });
    }

    fn skip(&mut self, name: &'static str, detail: impl Into<String>) {
        self.results.push(CheckResult {
            name,
            outcome: Outcome::Skipped(detail.into()),
        });
    }

    fn record(&mut self, name: &'static str, result: Result<String, String>) -> bool {
        match result {
            Ok(detail) => {
                self.pass(name, detail);
                true
            }
            Err(detail) => {
                self.fail(name, detail);
                false
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance of {}", self.plugin)?;
        for result in &self.results {
            let (mark, detail) = match &result.outcome {
                Outcome::Passed(detail) => ("pass", detail),
                Outcome::Failed(detail) => ("FAIL", detail),
                Outcome::Skipped(detail) => ("skip", detail),
            };
            writeln!(f, "  [{mark}] {:<18} {detail}", result.name)?;
        }
        let failed = self.failures().len();
        if failed == 0 {
            write!(f, "result: PASS ({} checks)", self.results.len())
        } else {
            write!(
                f,
                "result: FAIL ({failed} of {} checks failed)",
                self.results.len()
            )
        }
    }
}

/// One event of a read, in order.
#[derive(Debug, Clone)]
enum Event {
    /// A record: its stream, kind and external id.
    Record(RecordId),
    /// A checkpoint: the full state after committing it.
    Checkpoint(State),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RecordId {
    kind: i32,
    external_id: String,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = RecordKind::try_from(self.kind).map_or("unknown", |kind| kind.as_str_name());
        write!(f, "{kind} {:?}", self.external_id)
    }
}

/// Runs every rule against the plugin.
pub fn run(options: &Options) -> Report {
    let mut report = Report {
        plugin: options.library.display().to_string(),
        ..Report::default()
    };
    let Some(plugin) = handshake(options, &mut report) else {
        return report;
    };
    let instance = match plugin.instance() {
        Ok(instance) => instance,
        Err(error) => {
            report.fail("instance", format!("instance_new failed: {error}"));
            return report;
        }
    };
    let Some((spec, schema)) = spec(options, &instance, &mut report) else {
        return report;
    };
    // The schema saw the config as a source gives it; the plugin gets it as the server sends it.
    let options = &options.as_sent();
    check(options, &instance, &spec, &mut report);
    let streams = discover(options, &instance, &mut report);
    let full = full_read(options, &instance, &streams, &mut report);
    match &full {
        Some(events) => {
            resume(options, &instance, events, &mut report);
            final_state(options, &instance, events, &mut report);
        }
        None => {
            report.skip("resume", "needs a full read");
            report.skip("final state", "needs a full read");
        }
    }
    cancel(options, &instance, &mut report);
    panic_hook(options, &plugin, &spec, &schema, &mut report);
    report
}

fn handshake(options: &Options, report: &mut Report) -> Option<Arc<Plugin>> {
    let plugin = match Plugin::load(&options.library) {
        Ok(plugin) => plugin,
        Err(error) => {
            report.fail("handshake", error.to_string());
            return None;
        }
    };
    let (major, minor) = plugin.abi_version();
    report.pass("handshake", format!("ABI {major}.{minor}"));
    let newer_minor = plugin.handshake(TRELLIS_ABI_MAJOR, TRELLIS_ABI_MINOR + 7);
    let wrong_major = plugin.handshake(TRELLIS_ABI_MAJOR + 1, 0);
    let result = match (newer_minor, wrong_major) {
        (Ok(()), Err(reason)) => Ok(format!(
            "accepts a host of ABI {TRELLIS_ABI_MAJOR}.{}; refuses ABI {}.0 ({reason})",
            TRELLIS_ABI_MINOR + 7,
            TRELLIS_ABI_MAJOR + 1
        )),
        (Err(reason), _) => Err(format!(
            "refuses a host of a newer minor version ABI {TRELLIS_ABI_MAJOR}.{}: {reason}; a plugin must accept any minor of its major",
            TRELLIS_ABI_MINOR + 7
        )),
        (Ok(()), Ok(())) => Err(format!(
            "accepts a host of ABI {}.0, a major version it cannot speak; the entry symbol must return null for it",
            TRELLIS_ABI_MAJOR + 1
        )),
    };
    report.record("version refusal", result);
    Some(plugin)
}

fn parse_config(json: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(json).map_err(|error| format!("the {what} is not JSON: {error}"))
}

fn spec(
    options: &Options,
    instance: &Instance,
    report: &mut Report,
) -> Option<(SpecResponse, ConfigSchema)> {
    let spec = match instance.spec() {
        Ok(spec) => spec,
        Err(error) => {
            report.fail("spec", error.to_string());
            return None;
        }
    };
    let mut problems = Vec::new();
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        problems.push(format!(
            "name {:?} must be non-empty lowercase a-z, 0-9, '-' or '_'",
            spec.name
        ));
    }
    if spec.version.is_empty() {
        problems.push("version is empty".to_owned());
    }
    if spec.platform == 0 {
        problems.push("platform is unspecified; choose the platform kind".to_owned());
    }
    problems.extend(stream_problems(&spec.streams, "spec"));
    let schema = match ConfigSchema::from_json(&spec.config_schema_json) {
        Ok(schema) => Some(schema),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    if !problems.is_empty() {
        report.fail("spec", problems.join("; "));
        return None;
    }
    let schema = schema?;
    report.pass(
        "spec",
        format!(
            "{} {} ({} streams, schema valid)",
            spec.name,
            spec.version,
            spec.streams.len()
        ),
    );
    let validated = parse_config(&options.config_json, "config")
        .and_then(|config| schema.validate(&config).map_err(|error| error.to_string()))
        .map(|()| "the given config satisfies the schema".to_owned());
    if !report.record("config schema", validated) {
        return None;
    }
    Some((spec, schema))
}

fn stream_problems(streams: &[StreamSpec], origin: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if streams.is_empty() {
        problems.push(format!("{origin} lists no streams"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for stream in streams {
        if stream.name.is_empty() {
            problems.push(format!("{origin}: a stream has no name"));
        } else if !seen.insert(stream.name.as_str()) {
            problems.push(format!(
                "{origin}: stream {:?} is listed twice",
                stream.name
            ));
        }
        if stream.kind == 0 || RecordKind::try_from(stream.kind).is_err() {
            problems.push(format!(
                "{origin}: stream {:?} has no record kind",
                stream.name
            ));
        }
        if stream.cursor_field.is_empty() {
            problems.push(format!(
                "{origin}: stream {:?} has no cursor field",
                stream.name
            ));
        }
        if stream.primary_key.is_empty() {
            problems.push(format!(
                "{origin}: stream {:?} has no primary key",
                stream.name
            ));
        }
    }
    problems
}

/// A config the schema refuses: the good one without its first required field, or with its
/// first typed property set to a value of another type.
pub fn derive_bad_config(schema_json: &str, good_config: &Value) -> Option<Value> {
    let schema: Value = serde_json::from_str(schema_json).ok()?;
    let mut bad = good_config.as_object()?.clone();
    if let Some(required) = schema
        .get("required")
        .and_then(Value::as_array)
        .and_then(|required| required.first())
        .and_then(Value::as_str)
    {
        bad.remove(required);
        return Some(Value::Object(bad));
    }
    let properties = schema.get("properties")?.as_object()?;
    for (name, property) in properties {
        let wrong = match property.get("type").and_then(Value::as_str) {
            Some("string") => Value::from(12345),
            Some("integer" | "number" | "boolean" | "array" | "object") => {
                Value::from("not of the declared type")
            }
            _ => continue,
        };
        bad.insert(name.clone(), wrong);
        return Some(Value::Object(bad));
    }
    None
}

fn check(options: &Options, instance: &Instance, spec: &SpecResponse, report: &mut Report) {
    let good = instance
        .check(&options.config_json)
        .map(|message| format!("accepted: {message}"))
        .map_err(|error| format!("the good config was refused: {error}"));
    report.record("check", good);
    let bad = match &options.bad_config_json {
        Some(bad) => Some(bad.clone()),
        None => parse_config(&options.config_json, "config")
            .ok()
            .and_then(|good| derive_bad_config(&spec.config_schema_json, &good))
            .map(|bad| bad.to_string()),
    };
    let Some(bad) = bad else {
        report.skip(
            "check bad config",
            "could not derive a bad config from the schema; pass one with --bad-config",
        );
        return;
    };
    let result = match instance.check(&bad) {
        Ok(message) => Err(format!("the bad config {bad} was accepted ({message})")),
        Err(HostError::Plugin(error)) if error.kind == ErrorKind::Config => {
            Ok(format!("refused with a config error: {}", error.message))
        }
        Err(error) => Err(format!(
            "the bad config {bad} was refused, but not with a config error: {error}"
        )),
    };
    report.record("check bad config", result);
}

fn discover(options: &Options, instance: &Instance, report: &mut Report) -> Vec<StreamSpec> {
    match instance.discover(&options.config_json) {
        Ok(streams) => {
            let problems = stream_problems(&streams, "discover");
            let names = streams
                .iter()
                .map(|stream| {
                    format!(
                        "{} (cursor {}, key {})",
                        stream.name,
                        stream.cursor_field,
                        stream.primary_key.join("+")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            if problems.is_empty() {
                report.pass("discover", names);
            } else {
                report.fail("discover", problems.join("; "));
            }
            streams
        }
        Err(error) => {
            report.fail("discover", error.to_string());
            Vec::new()
        }
    }
}

/// Reads to the end from `state`, returning the events; record problems go to `problems`.
fn read_all(
    options: &Options,
    instance: &Instance,
    state: &State,
    streams: &[StreamSpec],
    problems: &mut Vec<String>,
) -> Result<Vec<Event>, String> {
    let mut session = instance
        .read(&options.config_json, state)
        .map_err(|error| format!("read_open failed: {error}"))?;
    let mut events = Vec::new();
    let mut state = state.clone();
    let limits = FieldLimits::default();
    let kinds: BTreeMap<&str, i32> = streams
        .iter()
        .map(|stream| (stream.name.as_str(), stream.kind))
        .collect();
    let mut batches = 0;
    while let Some(batch) = session
        .next_batch()
        .map_err(|error| format!("read_next failed after {batches} batches: {error}"))?
    {
        batches += 1;
        if batches > options.max_batches {
            return Err(format!(
                "the read did not end after {} batches",
                options.max_batches
            ));
        }
        for item in batch.items {
            match item.item {
                Some(batch_item::Item::Record(record)) => {
                    let kind = record_kind(&record) as i32;
                    let at = format!("record {} (stream {:?})", events.len(), record.stream);
                    match kinds.get(record.stream.as_str()) {
                        None if problems.len() < 20 => {
                            problems.push(format!("{at}: the stream is not one discover listed"))
                        }
                        Some(expected) if *expected != kind && problems.len() < 20 => {
                            problems.push(format!("{at}: its kind differs from its stream's"));
                        }
                        _ => {}
                    }
                    let external_id = match record_to_core(&options.source, record) {
                        Ok(core) => {
                            if let Err(violations) = core.validate(&limits)
                                && problems.len() < 20
                            {
                                let list = violations
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join("; ");
                                problems.push(format!("{at} ({}): {list}", core.key()));
                            }
                            external_id_of(&core)
                        }
                        Err(violation) => {
                            if problems.len() < 20 {
                                problems.push(format!("{at}: {violation}"));
                            }
                            String::new()
                        }
                    };
                    events.push(Event::Record(RecordId { kind, external_id }));
                }
                Some(batch_item::Item::Checkpoint(checkpoint)) => {
                    if serde_json::from_str::<Value>(&checkpoint.state_json).is_err()
                        && problems.len() < 20
                    {
                        problems.push(format!(
                            "checkpoint of {:?}: its state is not JSON",
                            checkpoint.stream
                        ));
                    }
                    state.set(&checkpoint.stream, &checkpoint.state_json);
                    events.push(Event::Checkpoint(state.clone()));
                }
                None => problems.push("a batch item is empty".to_owned()),
            }
        }
    }
    Ok(events)
}

fn external_id_of(record: &CoreRecord) -> String {
    record.key().external_id.clone()
}

fn records_of(events: &[Event]) -> Vec<RecordId> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Record(id) => Some(id.clone()),
            Event::Checkpoint(_) => None,
        })
        .collect()
}

fn full_read(
    options: &Options,
    instance: &Instance,
    streams: &[StreamSpec],
    report: &mut Report,
) -> Option<Vec<Event>> {
    let mut problems = Vec::new();
    let started = Instant::now();
    let events = match read_all(options, instance, &State::new(), streams, &mut problems) {
        Ok(events) => events,
        Err(error) => {
            report.fail("full read", error);
            return None;
        }
    };
    let records = records_of(&events).len();
    let checkpoints = events.len() - records;
    if records == 0 {
        problems.push("the read produced no records; give a config with data".to_owned());
    }
    if checkpoints == 0 {
        problems.push("the read produced no checkpoint; a read must end with one".to_owned());
    } else if !matches!(events.last(), Some(Event::Checkpoint(_))) {
        problems.push(
            "records follow the last checkpoint; end the read with a checkpoint so that a resume does not repeat them"
                .to_owned(),
        );
    }
    if problems.is_empty() {
        report.pass(
            "full read",
            format!(
                "{records} valid records, {checkpoints} checkpoints in {} ms",
                started.elapsed().as_millis()
            ),
        );
        Some(events)
    } else {
        report.fail("full read", problems.join("; "));
        None
    }
}

/// Compares what a resume produced with what the full read produced after the checkpoint.
fn compare(expected: &[RecordId], got: &[RecordId]) -> Result<(), String> {
    let count = |ids: &[RecordId]| {
        let mut counts: BTreeMap<RecordId, i64> = BTreeMap::new();
        for id in ids {
            *counts.entry(id.clone()).or_default() += 1;
        }
        counts
    };
    let expected_counts = count(expected);
    let got_counts = count(got);
    if let Some((id, _)) = expected_counts
        .iter()
        .find(|(id, n)| got_counts.get(*id).copied().unwrap_or(0) < **n)
    {
        return Err(format!("gap: {id} is missing"));
    }
    if let Some((id, _)) = got_counts
        .iter()
        .find(|(id, n)| expected_counts.get(*id).copied().unwrap_or(0) < **n)
    {
        return Err(format!(
            "duplicate: {id} was already emitted before the checkpoint, or is new"
        ));
    }
    Ok(())
}

fn resume(options: &Options, instance: &Instance, events: &[Event], report: &mut Report) {
    let checkpoints: Vec<usize> = events
        .iter()
        .enumerate()
        .filter_map(|(index, event)| matches!(event, Event::Checkpoint(_)).then_some(index))
        .collect();
    let chosen: Vec<usize> = if checkpoints.len() <= options.max_resumes {
        checkpoints.clone()
    } else {
        let step = checkpoints.len() as f64 / options.max_resumes.max(1) as f64;
        let mut chosen: Vec<usize> = (0..options.max_resumes.max(1))
            .map(|i| checkpoints[(i as f64 * step) as usize])
            .collect();
        chosen.push(*checkpoints.last().expect("non-empty"));
        chosen.dedup();
        chosen
    };
    let streams: Vec<StreamSpec> = instance.discover(&options.config_json).unwrap_or_default();
    for &index in &chosen {
        let Event::Checkpoint(state) = &events[index] else {
            continue;
        };
        let expected = records_of(&events[index + 1..]);
        let mut problems = Vec::new();
        let got = match read_all(options, instance, state, &streams, &mut problems) {
            Ok(got) => records_of(&got),
            Err(error) => {
                report.fail(
                    "resume",
                    format!("resuming from checkpoint at event {index}: {error}"),
                );
                return;
            }
        };
        if let Err(problem) = compare(&expected, &got) {
            report.fail(
                "resume",
                format!(
                    "resuming from the checkpoint after {} records: {problem} (expected {} records, got {})",
                    records_of(&events[..index]).len(),
                    expected.len(),
                    got.len()
                ),
            );
            return;
        }
    }
    let every = if chosen.len() == checkpoints.len() {
        "every one of"
    } else {
        "a spread of"
    };
    report.pass(
        "resume",
        format!(
            "no gap, no duplicate from {every} {} checkpoints ({} resumed)",
            checkpoints.len(),
            chosen.len()
        ),
    );
}

fn final_state(options: &Options, instance: &Instance, events: &[Event], report: &mut Report) {
    let Some(Event::Checkpoint(state)) = events
        .iter()
        .rev()
        .find(|event| matches!(event, Event::Checkpoint(_)))
    else {
        report.skip("final state", "the read had no checkpoint");
        return;
    };
    let mut problems = Vec::new();
    let result = read_all(options, instance, state, &[], &mut problems).and_then(|events| {
        let records = records_of(&events);
        match records.first() {
            None => Ok("a read from the final state yields no record".to_owned()),
            Some(first) => Err(format!(
                "a read from the final state yields {} records again, starting with {first}",
                records.len()
            )),
        }
    });
    report.record("final state", result);
}

fn cancel(options: &Options, instance: &Instance, report: &mut Report) {
    let mut session = match instance.read(&options.config_json, &State::new()) {
        Ok(session) => session,
        Err(error) => {
            report.fail("cancel", format!("read_open failed: {error}"));
            return;
        }
    };
    // A first batch, so that the read is under way; then a cancel from another thread, as the
    // server sends when a sync is stopped. The next pull must stop within the bound, with a
    // cancelled error (or the end, when the first batch was the last) and no more records.
    let first = match session.next_batch() {
        Ok(batch) => batch,
        Err(error) => {
            report.fail("cancel", format!("the first batch failed: {error}"));
            return;
        }
    };
    let already_ended = first.is_none_or(|batch| batch.end);
    let canceller = session.canceller();
    let cancelled_at = std::thread::spawn(move || {
        canceller.cancel();
        Instant::now()
    })
    .join()
    .expect("the cancelling thread does not panic");
    let outcome = session.next_batch();
    let took = cancelled_at.elapsed();
    let result = match outcome {
        Err(HostError::Plugin(error)) if error.kind == ErrorKind::Cancelled => Ok("cancelled"),
        Ok(None) => Ok("ended"),
        Ok(Some(batch))
            if already_ended
                || (batch.end
                    && batch
                        .items
                        .iter()
                        .all(|item| !matches!(item.item, Some(batch_item::Item::Record(_))))) =>
        {
            Ok("ended")
        }
        Ok(Some(_)) => {
            Err("the pull after the cancel returned a batch; return a cancelled error".to_owned())
        }
        Err(error) => Err(format!(
            "the pull after the cancel failed instead of cancelling: {error}"
        )),
    };
    let result = result.and_then(|how| {
        if took <= options.cancel_bound {
            Ok(format!(
                "{how} {} ms after a cancel from another thread (bound {} ms)",
                took.as_millis(),
                options.cancel_bound.as_millis()
            ))
        } else {
            Err(format!(
                "{how} only {} ms after the cancel; the bound is {} ms; check the cancel token inside long work",
                took.as_millis(),
                options.cancel_bound.as_millis()
            ))
        }
    });
    report.record("cancel", result);
}

fn panic_hook(
    options: &Options,
    plugin: &Arc<Plugin>,
    spec: &SpecResponse,
    _schema: &ConfigSchema,
    report: &mut Report,
) {
    if !spec.conformance_hooks {
        report.skip(
            "panic",
            "the plugin was built without the conformance-hooks feature of trellis-plugin-sdk (a plugin not written in Rust cannot panic)",
        );
        return;
    }
    let Ok(Value::Object(mut config)) = serde_json::from_str::<Value>(&options.config_json) else {
        report.skip("panic", "the config is not a JSON object");
        return;
    };
    let mut problems = Vec::new();
    for call in ["check", "read_next"] {
        let instance = match plugin.instance() {
            Ok(instance) => instance,
            Err(error) => {
                problems.push(format!("a new instance failed: {error}"));
                continue;
            }
        };
        config.insert(CONFORMANCE_PANIC_KEY.to_owned(), Value::from(call));
        let hooked = Value::Object(config.clone()).to_string();
        let outcome = match call {
            "check" => instance.check(&hooked).map(|_| ()),
            _ => instance
                .read(&hooked, &State::new())
                .and_then(|mut session| session.next_batch().map(|_| ())),
        };
        match outcome {
            Err(HostError::Plugin(error))
                if error.kind == ErrorKind::System && error.message.contains("panicked") => {}
            Err(error) => problems.push(format!(
                "a panic in {call} came back as {error}, not as a system error"
            )),
            Ok(()) => problems.push(format!("a panic requested in {call} did not happen")),
        }
        match instance.spec() {
            Err(HostError::Plugin(error)) if error.kind == ErrorKind::System => {}
            other => problems.push(format!(
                "after a panic in {call} the instance is not poisoned: spec answered {other:?}"
            )),
        }
    }
    let fresh = plugin
        .instance()
        .and_then(|instance| instance.check(&options.config_json));
    if let Err(error) = fresh {
        problems.push(format!("a new instance after the panics fails: {error}"));
    }
    if problems.is_empty() {
        report.pass(
            "panic",
            "panics in check and read_next came back as system errors, poisoned their instance, and a new instance works",
        );
    } else {
        report.fail("panic", problems.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_library_is_found_in_deps_or_the_folder_above() {
        let target = tempfile::tempdir().unwrap();
        let deps = target.path().join("deps");
        std::fs::create_dir(&deps).unwrap();
        assert_eq!(find_library(&deps, "trellis_connector_x"), None);
        let above = target.path().join(library_file_name("trellis_connector_x"));
        std::fs::write(&above, b"").unwrap();
        assert_eq!(
            find_library(&deps, "trellis_connector_x"),
            Some(
                deps.join("..")
                    .join(library_file_name("trellis_connector_x"))
            )
        );
        std::fs::write(deps.join(library_file_name("trellis_connector_x")), b"").unwrap();
        assert_eq!(
            find_library(&deps, "trellis_connector_x"),
            Some(deps.join(library_file_name("trellis_connector_x")))
        );
        assert!(library_file_name("x").contains('x'));
        assert!(library_file_name("x").ends_with(std::env::consts::DLL_SUFFIX));
    }

    #[test]
    fn a_bad_config_drops_the_first_required_field() {
        let schema = json!({"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}});
        let bad = derive_bad_config(&schema.to_string(), &json!({"path": "x", "n": 1})).unwrap();
        assert_eq!(bad, json!({"n": 1}));
    }

    #[test]
    fn without_required_fields_a_type_is_broken() {
        let schema = json!({"type": "object", "properties": {"count": {"type": "integer"}}});
        let bad = derive_bad_config(&schema.to_string(), &json!({"count": 3})).unwrap();
        assert_eq!(bad, json!({"count": "not of the declared type"}));
        assert!(derive_bad_config(&json!({"type": "object"}).to_string(), &json!({})).is_none());
    }

    fn id(external_id: &str) -> RecordId {
        RecordId {
            kind: 2,
            external_id: external_id.to_owned(),
        }
    }

    #[test]
    fn gaps_and_duplicates_are_told_apart() {
        let expected = [id("a"), id("b")];
        assert!(compare(&expected, &[id("b"), id("a")]).is_ok());
        assert!(
            compare(&expected, &[id("a")])
                .unwrap_err()
                .starts_with("gap")
        );
        assert!(
            compare(&expected, &[id("a"), id("b"), id("b")])
                .unwrap_err()
                .starts_with("duplicate")
        );
    }
}
