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

/// A compiled config schema.
#[derive(Debug)]
pub struct ConfigSchema {
    validator: jsonschema::Validator,
    secrets: Vec<SecretField>,
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
        Ok(Self {
            validator,
            secrets: secret_fields(schema),
        })
    }

    /// The fields the schema marks as secrets.
    pub fn secrets(&self) -> &[SecretField] {
        &self.secrets
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
