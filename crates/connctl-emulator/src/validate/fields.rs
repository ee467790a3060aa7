//! The field-table checker: a payload's shape as a [`Ty`] tree of [`F`] fields, and [`check`],
//! which walks a JSON value against it and reports each problem with the field's path.

use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Ty {
    Str,
    Bool,
    Port,
    StrList,
    List,
    AnyObj,
    OneOf(&'static [&'static str]),
    Const(&'static str),
    BoolConst(bool),
    Catalog,
    Obj(Vec<F>),
}

#[derive(Debug, Clone)]
pub struct F {
    name: &'static str,
    ty: Ty,
    required: bool,
}

impl F {
    pub fn new(name: &'static str, ty: Ty, required: bool) -> F {
        F { name, ty, required }
    }
}

pub(super) fn r(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: true,
    }
}
pub(super) fn o(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: false,
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Check `v` against `ty`, pushing `path: problem` messages.
pub fn check(v: &Value, path: &str, ty: &Ty, errs: &mut Vec<String>) {
    let wrong = |want: &str, errs: &mut Vec<String>| {
        errs.push(format!("{path}: expected {want}, got {}", type_name(v)));
    };
    match ty {
        Ty::Str => match v {
            Value::String(s) if s.trim().is_empty() => errs.push(format!("{path}: must not be empty")),
            Value::String(_) => {}
            _ => wrong("string", errs),
        },
        Ty::Bool => {
            if !v.is_boolean() {
                wrong("boolean", errs)
            }
        }
        Ty::Port => match v.as_u64() {
            Some(p) if p <= 65535 => {}
            Some(_) => errs.push(format!("{path}: must be between 0 and 65535")),
            None if v.is_number() => errs.push(format!("{path}: must be an integer between 0 and 65535")),
            None => wrong("integer", errs),
        },
        Ty::StrList => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(item, &format!("{path}[{i}]"), &Ty::Str, errs);
                }
            }
            _ => wrong("array of strings", errs),
        },
        Ty::List => {
            if !v.is_array() {
                wrong("array", errs)
            }
        }
        Ty::AnyObj => {
            if !v.is_object() {
                wrong("object", errs)
            }
        }
        Ty::OneOf(options) => match v.as_str() {
            Some(s) if options.contains(&s) => {}
            Some(s) => errs.push(format!(
                "{path}: unknown value '{s}' (expected one of: {})",
                options.join(", ")
            )),
            None => wrong("string", errs),
        },
        Ty::Const(c) => match v.as_str() {
            Some(s) if s == *c => {}
            Some(s) => errs.push(format!("{path}: must be \"{c}\", got \"{s}\"")),
            None => wrong("string", errs),
        },
        Ty::BoolConst(b) => match v.as_bool() {
            Some(x) if x == *b => {}
            Some(_) => errs.push(format!("{path}: must be {b}")),
            None => wrong("boolean", errs),
        },
        Ty::Catalog => match v.as_str() {
            Some(s) => {
                let ok = !s.is_empty()
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !s.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    errs.push(format!(
                        "{path}: the catalog name may only contain letters, numbers, and underscores and \
                         cannot start with a number (got '{s}')"
                    ));
                }
            }
            None => wrong("string", errs),
        },
        Ty::Obj(fields) => {
            let Some(map) = v.as_object() else {
                wrong("object", errs);
                return;
            };
            for f in fields {
                match map.get(f.name) {
                    None if f.required => errs.push(format!("{}: required", join(path, f.name))),
                    None => {}
                    Some(x) => check(x, &join(path, f.name), &f.ty, errs),
                }
            }
            for k in map.keys() {
                if !fields.iter().any(|f| f.name == k) {
                    let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    errs.push(format!(
                        "{}: unknown field (known: {})",
                        join(path, k),
                        known.join(", ")
                    ));
                }
            }
        }
    }
}
