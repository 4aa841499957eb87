//! JSON Schema for connector configs: the SDK validates every config against the connector's
//! own schema before the connector sees it, and the host validates a source's config the same way
//! before saving it, so both refuse the same configs with the same messages.

use serde_json::Value;

use crate::error::ConnectorError;

/// A compiled config schema.
#[derive(Debug)]
pub struct ConfigSchema {
    validator: jsonschema::Validator,
}

impl ConfigSchema {
    /// Compiles `schema`; the error says why it is not a usable JSON Schema.
    pub fn new(schema: &Value) -> Result<Self, String> {
        check_schema(schema)?;
        let validator = jsonschema::validator_for(schema)
            .map_err(|error| format!("the config schema does not compile: {error}"))?;
        Ok(Self { validator })
    }

    /// Parses and compiles a schema given as JSON text.
    pub fn from_json(schema: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(schema)
            .map_err(|error| format!("the config schema is not JSON: {error}"))?;
        Self::new(&value)
    }

    /// Checks `config`; the error is a config error naming the first field at fault (as a JSON
    /// pointer without the leading slash, e.g. `path` or `feeds/0/url`) and listing every problem.
    pub fn validate(&self, config: &Value) -> Result<(), ConnectorError> {
        let problems: Vec<(String, String)> = self
            .validator
            .iter_errors(config)
            .map(|error| {
                let field = error
                    .instance_path()
                    .as_str()
                    .trim_start_matches('/')
                    .to_owned();
                (field, error.to_string())
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

    #[test]
    fn a_broken_schema_is_refused() {
        assert!(
            ConfigSchema::new(&json!({"type": "object", "properties": {"a": {"type": 5}}}))
                .is_err()
        );
        assert!(ConfigSchema::new(&json!({"type": "string"})).is_err());
    }
}
