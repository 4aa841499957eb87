//! JSON Schema for connector configs: the SDK validates every config against the connector's
//! own schema before the connector sees it, and the host validates a source's config the same way
//! before saving it, so both refuse the same configs with the same messages.
//!
//! A schema marks the fields that hold secrets (API keys, tokens, passwords) with
//! [`SECRET_KEYWORD`] (`"writeOnly": true`, the JSON Schema annotation for values that are sent
//! but never read back) or [`SECRET_EXTENSION`] (`"x-secret": true`). The host keeps those fields
//! out of every answer and log and seals them at rest; a refusal never quotes their value.

use serde_json::Value;

use crate::error::ConnectorError;

/// The standard JSON Schema keyword that marks a config field as a secret: `"writeOnly": true`.
pub const SECRET_KEYWORD: &str = "writeOnly";
/// The extension keyword that marks a config field as a secret as well: `"x-secret": true`.
pub const SECRET_EXTENSION: &str = "x-secret";

/// The extension keyword that marks a config field as a local file or folder the plugin opens:
/// `"x-path": true`, or `"x-path": "or-url"` for a field that takes a path or an http(s) URL.
/// The host refuses a path outside the folders its operator lets connectors read, and hands the
/// plugin the path it checked, with every symbolic link resolved.
pub const PATH_EXTENSION: &str = "x-path";

/// A compiled config schema.
#[derive(Debug)]
pub struct ConfigSchema {
    validator: jsonschema::Validator,
    secrets: Vec<SecretField>,
    paths: Vec<PathField>,
}

/// One step from a config's root toward a path field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Step {
    /// A property of an object.
    Key(String),
    /// Every item of an array.
    Items,
}

/// A config field the schema marks as a local path ([`PATH_EXTENSION`]), at any depth, in
/// objects and in the items of arrays.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathField {
    steps: Vec<Step>,
    /// The field also takes http(s) URLs, which are not paths.
    or_url: bool,
}

impl PathField {
    /// Visits every value of the field in `config` that is a path (a string, and for an
    /// `or-url` field not an http(s) URL), with its name as errors give it (`path`,
    /// `files[2].path`); `visit` may replace it.
    pub fn visit(&self, config: &mut Value, visit: &mut dyn FnMut(&str, &mut String)) {
        fn go(
            steps: &[Step],
            value: &mut Value,
            name: &str,
            or_url: bool,
            visit: &mut dyn FnMut(&str, &mut String),
        ) {
            match steps.split_first() {
                None => {
                    if let Value::String(text) = value {
                        let trimmed = text.trim_start();
                        let url = trimmed.starts_with("http://") || trimmed.starts_with("https://");
                        if !(or_url && url) {
                            visit(name, text);
                        }
                    }
                }
                Some((Step::Key(key), rest)) => {
                    if let Some(inner) =
                        value.as_object_mut().and_then(|object| object.get_mut(key))
                    {
                        let name = if name.is_empty() {
                            key.clone()
                        } else {
                            format!("{name}.{key}")
                        };
                        go(rest, inner, &name, or_url, visit);
                    }
                }
                Some((Step::Items, rest)) => {
                    if let Some(items) = value.as_array_mut() {
                        for (index, item) in items.iter_mut().enumerate() {
                            go(rest, item, &format!("{name}[{index}]"), or_url, visit);
                        }
                    }
                }
            }
        }
        go(&self.steps, config, "", self.or_url, visit);
    }
}

/// The fields `schema` marks as local paths.
pub fn path_fields(schema: &Value) -> Vec<PathField> {
    fn walk(schema: &Value, steps: &mut Vec<Step>, found: &mut Vec<PathField>) {
        match schema.get(PATH_EXTENSION) {
            Some(Value::Bool(true)) => {
                found.push(PathField {
                    steps: steps.clone(),
                    or_url: false,
                });
                return;
            }
            Some(Value::String(kind)) if kind == "or-url" => {
                found.push(PathField {
                    steps: steps.clone(),
                    or_url: true,
                });
                return;
            }
            _ => {}
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                steps.push(Step::Key(name.clone()));
                walk(property, steps, found);
                steps.pop();
            }
        }
        if let Some(items) = schema.get("items").filter(|items| items.is_object()) {
            steps.push(Step::Items);
            walk(items, steps, found);
            steps.pop();
        }
    }
    let mut found = Vec::new();
    walk(schema, &mut Vec::new(), &mut found);
    found.sort();
    found
}

/// A config field the schema marks as a secret: its path of property names from the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretField {
    path: Vec<String>,
}

impl SecretField {
    /// The property names from the config's root down to the field.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The field's name as errors and answers give it: its path joined by dots, e.g. `api_key`
    /// or `auth.token`.
    pub fn name(&self) -> String {
        self.path.join(".")
    }

    /// The field's value in `config`, if set.
    pub fn get<'a>(&self, config: &'a Value) -> Option<&'a Value> {
        self.path
            .iter()
            .try_fold(config, |value, key| value.as_object()?.get(key))
    }

    /// Takes the field's value out of `config`.
    pub fn take(&self, config: &mut Value) -> Option<Value> {
        let (last, parents) = self.path.split_last()?;
        let parent = parents
            .iter()
            .try_fold(config, |value, key| value.as_object_mut()?.get_mut(key))?;
        parent.as_object_mut()?.remove(last)
    }

    /// Sets the field in `config` to `value`, making the objects on its path when missing.
    /// Does nothing when something on the path is not an object (the schema refuses that).
    pub fn put(&self, config: &mut Value, value: Value) {
        let Some((last, parents)) = self.path.split_last() else {
            return;
        };
        let mut at = config;
        for key in parents {
            let Some(object) = at.as_object_mut() else {
                return;
            };
            at = object
                .entry(key.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
        if let Some(object) = at.as_object_mut() {
            object.insert(last.clone(), value);
        }
    }

    /// Whether the field at `pointer` (a JSON pointer into the config) is this one or inside it.
    fn covers(&self, pointer: &str) -> bool {
        let mut segments = pointer.split('/').skip(1);
        self.path.iter().all(|key| {
            segments
                .next()
                .is_some_and(|segment| segment.replace("~1", "/").replace("~0", "~") == *key)
        })
    }
}

/// The fields `schema` marks as secrets, in the properties of its root object and of the objects
/// nested in them (a secret inside an array is not supported: the host could not replace it alone).
pub fn secret_fields(schema: &Value) -> Vec<SecretField> {
    fn walk(schema: &Value, path: &mut Vec<String>, found: &mut Vec<SecretField>) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, property) in properties {
            path.push(name.clone());
            let marked = [SECRET_KEYWORD, SECRET_EXTENSION]
                .iter()
                .any(|keyword| property.get(keyword).and_then(Value::as_bool) == Some(true));
            if marked {
                found.push(SecretField { path: path.clone() });
            } else {
                walk(property, path, found);
            }
            path.pop();
        }
    }
    let mut found = Vec::new();
    walk(schema, &mut Vec::new(), &mut found);
    found.sort();
    found
}

impl ConfigSchema {
    /// Compiles `schema`; the error says why it is not a usable JSON Schema.
    pub fn new(schema: &Value) -> Result<Self, String> {
        check_schema(schema)?;
        let validator = jsonschema::validator_for(schema)
            .map_err(|error| format!("the config schema does not compile: {error}"))?;
        let paths = path_fields(schema);
        for field in &paths {
            if field.steps.is_empty() {
                return Err(format!(
                    "the config schema marks its root as {PATH_EXTENSION}; mark the field that holds the path"
                ));
            }
        }
        Ok(Self {
            validator,
            secrets: secret_fields(schema),
            paths,
        })
    }

    /// The fields the schema marks as secrets.
    pub fn secrets(&self) -> &[SecretField] {
        &self.secrets
    }

    /// The fields the schema marks as local paths.
    pub fn paths(&self) -> &[PathField] {
        &self.paths
    }

    /// Parses and compiles a schema given as JSON text.
    pub fn from_json(schema: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(schema)
            .map_err(|error| format!("the config schema is not JSON: {error}"))?;
        Self::new(&value)
    }

    /// Checks `config`; the error is a config error naming the first field at fault (as a JSON
    /// pointer without the leading slash, e.g. `path` or `feeds/0/url`) and listing every problem.
    /// A problem with a secret field never quotes its value.
    pub fn validate(&self, config: &Value) -> Result<(), ConnectorError> {
        if config.get(crate::egress::HOST_KEY).is_some() {
            // The host hands the plugin its settings there; a source may not give its own.
            return Err(ConnectorError::config(
                crate::egress::HOST_KEY,
                format!(
                    "config.{}: the key is reserved for the server's own settings (its egress policy); remove it from the source's config",
                    crate::egress::HOST_KEY
                ),
            ));
        }
        // A problem about an enclosing object (`anyOf`, `not`...) may quote the whole config.
        let hidden: Vec<String> = self
            .secrets
            .iter()
            .filter_map(|secret| secret.get(config))
            .map(|value| match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .filter(|text| text.chars().count() >= 4)
            .collect();
        let problems: Vec<(String, String)> = self
            .validator
            .iter_errors(config)
            .map(|error| {
                let pointer = error.instance_path().as_str().to_owned();
                let field = pointer.trim_start_matches('/').to_owned();
                let secret = self.secrets.iter().any(|secret| secret.covers(&pointer));
                let problem = if secret {
                    format!(
                        "is not valid for the connector's schema ({}; the value is not shown: it is a secret)",
                        error.kind().keyword()
                    )
                } else {
                    hidden
                        .iter()
                        .fold(error.to_string(), |text, value| text.replace(value, "<secret>"))
                };
                (field, problem)
            })
            .collect();
        let Some((first_field, _)) = problems.first() else {
            return Ok(());
        };
        let message = problems
            .iter()
            .map(|(field, problem)| {
                if field.is_empty() {
                    format!("config: {problem}")
                } else {
                    format!("config.{}: {problem}", field.replace('/', "."))
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(ConnectorError::config(
            first_field.replace('/', "."),
            format!("{message}; fix the source's config to match the connector's schema"),
        ))
    }
}

/// Whether `schema` is a valid JSON Schema of an object config (its meta-schema is the one named
/// by `$schema`, draft 2020-12 by default).
pub fn check_schema(schema: &Value) -> Result<(), String> {
    jsonschema::meta::validate(schema)
        .map_err(|error| format!("the config schema is not a valid JSON Schema: {error}"))?;
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(
            "the config schema must describe an object: set \"type\": \"object\" at its root"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    fn schema() -> ConfigSchema {
        ConfigSchema::new(&json!({
            "type": "object",
            "required": ["path"],
            "properties": {"path": {"type": "string"}, "batch_size": {"type": "integer", "minimum": 1}},
            "additionalProperties": false
        }))
        .unwrap()
    }

    #[test]
    fn a_good_config_passes() {
        schema().validate(&json!({"path": "a.jsonl"})).unwrap();
    }

    #[test]
    fn a_bad_field_is_named() {
        let error = schema()
            .validate(&json!({"path": "a", "batch_size": 0}))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert_eq!(error.field.as_deref(), Some("batch_size"));
        assert!(error.message.contains("config.batch_size"), "{error}");
    }

    #[test]
    fn a_config_may_not_give_the_hosts_own_settings_even_where_the_schema_is_open() {
        let open = ConfigSchema::new(&json!({"type": "object"})).unwrap();
        let config = json!({"$trellis": {"egress": {"allow_private": true}}});
        for schema in [open, schema()] {
            let error = schema.validate(&config).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config);
            assert_eq!(error.field.as_deref(), Some("$trellis"));
            assert!(error.message.contains("reserved"), "{error}");
        }
    }

    #[test]
    fn a_missing_field_is_reported() {
        let error = schema().validate(&json!({})).unwrap_err();
        assert!(error.message.contains("path"), "{error}");
    }

    fn secret_schema() -> ConfigSchema {
        ConfigSchema::new(&json!({
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "api_key": {"type": "string", "writeOnly": true, "pattern": "^k-"},
                "auth": {"type": "object", "properties": {
                    "password": {"type": "string", "x-secret": true},
                    "user": {"type": "string"}
                }}
            },
            "not": {"required": ["forbidden"]}
        }))
        .unwrap()
    }

    #[test]
    fn path_fields_are_visited_in_objects_and_arrays_and_urls_are_left_alone() {
        let schema = ConfigSchema::new(&json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "x-path": true},
                "files": {"type": "array", "items": {"type": "object", "properties": {
                    "path": {"type": "string", "x-path": true},
                    "format": {"type": "string"}
                }}},
                "feeds": {"type": "array", "items": {"type": "string", "x-path": "or-url"}},
                "name": {"type": "string"}
            }
        }))
        .unwrap();
        let mut config = json!({
            "path": "a.jsonl",
            "files": [{"path": "b.html"}, {"format": "pocket"}, {"path": "c.csv"}],
            "feeds": ["https://example.org/feed", "d.xml"],
            "name": "not a path"
        });
        let mut seen = Vec::new();
        for field in schema.paths() {
            field.visit(&mut config, &mut |name, value| {
                seen.push(format!("{name}={value}"));
                value.insert_str(0, "/root/");
            });
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "feeds[1]=d.xml",
                "files[0].path=b.html",
                "files[2].path=c.csv",
                "path=a.jsonl"
            ]
        );
        assert_eq!(config["files"][2]["path"], "/root/c.csv");
        assert_eq!(config["feeds"][0], "https://example.org/feed");
        assert_eq!(config["name"], "not a path");
    }

    #[test]
    fn secret_fields_are_found_at_any_depth_by_either_keyword() {
        let schema = secret_schema();
        let names: Vec<String> = schema.secrets().iter().map(SecretField::name).collect();
        assert_eq!(names, ["api_key", "auth.password"]);
    }

    #[test]
    fn secret_fields_are_taken_out_and_put_back() {
        let schema = secret_schema();
        let mut config =
            json!({"url": "u", "api_key": "k-1", "auth": {"password": "p", "user": "me"}});
        let taken: Vec<Option<Value>> = schema
            .secrets()
            .iter()
            .map(|secret| secret.take(&mut config))
            .collect();
        assert_eq!(config, json!({"url": "u", "auth": {"user": "me"}}));
        assert_eq!(taken, [Some(json!("k-1")), Some(json!("p"))]);
        let mut fresh = json!({});
        schema.secrets()[1].put(&mut fresh, json!("p2"));
        assert_eq!(fresh, json!({"auth": {"password": "p2"}}));
    }

    #[test]
    fn a_refusal_never_quotes_a_secret() {
        let schema = secret_schema();
        let error = schema
            .validate(&json!({"api_key": "sup3r-secret-value"}))
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("api_key"));
        assert!(!error.message.contains("sup3r"), "{error}");
        assert!(error.message.contains("config.api_key"), "{error}");
        let error = schema
            .validate(&json!({"api_key": "k-sup3r-secret", "forbidden": 1}))
            .unwrap_err();
        assert!(!error.message.contains("sup3r"), "{error}");
    }

    #[test]
    fn a_broken_schema_is_refused() {
        assert!(
            ConfigSchema::new(&json!({"type": "object", "properties": {"a": {"type": 5}}}))
                .is_err()
        );
        assert!(ConfigSchema::new(&json!({"type": "string"})).is_err());
    }
}
