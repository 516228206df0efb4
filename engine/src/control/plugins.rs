//! The registry of decision algorithms: which are on offer, and their parameters as clients see
//! and set them.
//!
//! Each algorithm describes its parameters once, as [`ParamSpec`]s; both the JSON Schema shown
//! to clients and the validation of `ControlSettings.params` are made from them, so the two
//! cannot drift.

use hearth_proto::control::PluginInfo;
use serde_json::{Map, Value, json};

use super::algorithm::{Algorithm, Params};
use super::anticipate::Anticipate;
use super::hysteresis::Hysteresis;
use super::predictive::Predictive;

static HYSTERESIS: Hysteresis = Hysteresis;
static PREDICTIVE: Predictive = Predictive;
static ANTICIPATE: Anticipate = Anticipate;

/// Every algorithm on offer.
pub(crate) fn all() -> [&'static dyn Algorithm; 3] {
    [&HYSTERESIS, &PREDICTIVE, &ANTICIPATE]
}

/// The algorithm that stands in for an unknown id (settings are checked before they are
/// stored, so this only guards against a database edited by hand).
pub(crate) fn default_algorithm() -> &'static dyn Algorithm {
    &HYSTERESIS
}

pub(crate) fn find(id: &str) -> Option<&'static dyn Algorithm> {
    all().into_iter().find(|a| a.id() == id)
}

/// The algorithm as `GET /v1/plugins` shows it.
pub(crate) fn info(a: &dyn Algorithm) -> PluginInfo {
    let mut properties = Map::new();
    for p in a.params() {
        let number = |v: f64| if p.integer { json!(v as i64) } else { json!(v) };
        properties.insert(
            p.key.to_owned(),
            json!({
                "title": p.title,
                "description": p.description,
                "type": if p.integer { "integer" } else { "number" },
                "minimum": number(p.min),
                "maximum": number(p.max),
                "default": number(p.default),
            }),
        );
    }
    PluginInfo {
        id: a.id().to_owned(),
        name: a.name().to_owned(),
        description: a.description().to_owned(),
        params_schema: json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        }),
    }
}

/// Check `params` against the algorithm's specs; returns them with the defaults filled in.
pub(crate) fn check_params(a: &dyn Algorithm, params: &Value) -> Result<Value, String> {
    // Left out of a body, `params` is an empty object (`#[serde(default)]`); null is refused
    // like any other non-object, as the schema says.
    let given = match params {
        Value::Object(map) => map,
        other => return Err(format!("params field must be an object, got {other}")),
    };
    let specs = a.params();
    for key in given.keys() {
        if !specs.iter().any(|p| p.key == key) {
            let known: Vec<&str> = specs.iter().map(|p| p.key).collect();
            return Err(format!(
                "params.{key} field is not a parameter of {} (it has: {})",
                a.id(),
                known.join(", ")
            ));
        }
    }
    let mut out = Map::new();
    for p in specs {
        let v = match given.get(p.key) {
            None | Some(Value::Null) => p.default,
            Some(v) => {
                let Some(n) = v.as_f64() else {
                    return Err(format!("params.{} field must be a number, got {v}", p.key));
                };
                if p.integer && n.fract() != 0.0 {
                    return Err(format!("params.{} field must be a whole number, got {n}", p.key));
                }
                if !(p.min..=p.max).contains(&n) {
                    return Err(format!(
                        "params.{} field must be between {} and {}, got {n}",
                        p.key, p.min, p.max
                    ));
                }
                n
            }
        };
        let v = if p.integer { json!(v as i64) } else { json!(v) };
        out.insert(p.key.to_owned(), v);
    }
    Ok(Value::Object(out))
}

/// The parameters for a decision: valid values as given, defaults for the rest (settings are
/// checked when stored; this never fails).
pub(crate) fn params_or_defaults(a: &dyn Algorithm, params: &Value) -> Params {
    a.params()
        .iter()
        .map(|p| {
            let v = params
                .get(p.key)
                .and_then(Value::as_f64)
                .filter(|v| (p.min..=p.max).contains(v))
                .unwrap_or(p.default);
            (p.key, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_carry_the_same_defaults_and_bounds_as_validation() {
        for a in all() {
            let info = info(a);
            assert_eq!(info.params_schema["type"], "object");
            let filled = check_params(a, &json!({})).unwrap_or_else(|e| panic!("{e}"));
            let props = info.params_schema["properties"].as_object().cloned().unwrap_or_default();
            assert_eq!(props.len(), a.params().len(), "{}", a.id());
            for (key, prop) in &props {
                for field in ["title", "description", "type", "minimum", "maximum", "default"] {
                    assert!(prop.get(field).is_some(), "{}.{key} lacks {field}", a.id());
                }
                assert_eq!(prop["default"], filled[key], "{}.{key}", a.id());
                // The schema's bounds are exactly what validation accepts.
                let min = prop["minimum"].as_f64().unwrap_or(f64::NAN);
                let max = prop["maximum"].as_f64().unwrap_or(f64::NAN);
                assert!(check_params(a, &json!({ key: min })).is_ok(), "{key} min");
                assert!(check_params(a, &json!({ key: max })).is_ok(), "{key} max");
                assert!(check_params(a, &json!({ key: min - 1.0 })).is_err(), "{key} < min");
                assert!(check_params(a, &json!({ key: max + 1.0 })).is_err(), "{key} > max");
            }
        }
    }

    #[test]
    fn params_errors_name_the_field() {
        let h = find("hysteresis").unwrap_or_else(|| panic!("no hysteresis"));
        let cases = [
            (
                json!({"hysteresis_c": 9}),
                "params.hysteresis_c field must be between 0.1 and 3, got 9",
            ),
            (json!({"hysteresis_c": "x"}), "params.hysteresis_c field must be a number, got \"x\""),
            (
                json!({"gain": 1}),
                "params.gain field is not a parameter of hysteresis (it has: hysteresis_c)",
            ),
            (json!([1]), "params field must be an object, got [1]"),
        ];
        for (params, message) in cases {
            assert_eq!(check_params(h, &params), Err(message.to_owned()));
        }
        let p = find("predictive").unwrap_or_else(|| panic!("no predictive"));
        assert_eq!(
            check_params(p, &json!({"max_lead_min": 30.5})),
            Err("params.max_lead_min field must be a whole number, got 30.5".to_owned())
        );
        // Left out, the parameters take their defaults (an empty object); null is not an
        // object, as the schema says.
        assert_eq!(check_params(h, &json!({})), Ok(json!({"hysteresis_c": 0.3})));
        assert_eq!(
            check_params(h, &Value::Null),
            Err("params field must be an object, got null".to_owned())
        );
    }
}
