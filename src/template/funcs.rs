//! consul-template's functions that caravan can serve, with consul-template's names and argument
//! orders (the piped value comes last, so `{{ .Tags | join "," }}` works as it does there).
//!
//! | function | what it gives |
//! |----------|---------------|
//! | `env NAME`, `envOrDefault NAME DEFAULT` | the task's environment variable |
//! | `nomadService "[tag.]name"` | the instances of a Nomad service in the task's namespace (`ID`, `Name`, `Namespace`, `Node`, `Datacenter`, `JobID`, `AllocID`, `Tags`, `Address`, `Port`), optionally only those with the tag |
//! | `nomadServices` | the namespace's services (`Name`, `Tags`) |
//! | `nomadVar "path"` | the items of the variable at the path in the task's namespace, a map (`{{ .key }}`), as the task's workload identity may read them |
//! | `byTag SERVICES` | services grouped by tag |
//! | `base64Encode`, `base64Decode`, `base64URLEncode`, `base64URLDecode` | (standard, URL-safe) base64 |
//! | `toJSON`, `toJSONPretty`, `parseJSON` | JSON out and in |
//! | `toLower`, `toUpper`, `toTitle`, `trimSpace`, `trimPrefix P S`, `trimSuffix X S` | strings |
//! | `split SEP S`, `join SEP LIST`, `replaceAll OLD NEW S`, `indent N S` | strings |
//! | `contains V LIST_OR_STRING`, `in LIST_OR_STRING V`, `containsAny`, `containsAll` | membership |
//! | `regexMatch RE S`, `regexReplaceAll RE REPL S` | regular expressions (Rust's `regex` syntax) |
//! | `parseInt`, `parseUint`, `parseFloat`, `parseBool` | numbers from strings |
//! | `add B A`, `subtract B A`, `multiply B A`, `divide B A`, `modulo B A`, `minimum`, `maximum` | arithmetic (`A op B`) |
//! | `loop N`, `loop START END` | the integers to range over |
//! | `timestamp [LAYOUT]` | the time now: RFC 3339, `"unix"`, or a Go layout (`2006-01-02`) |
//! | `sha256Hex S` | hex SHA-256 |
//! | `default DEFAULT VALUE` | sprig's: `VALUE` unless empty |
//!
//! Go's built-ins (`printf`, `print`, `len`, `index`, `slice`, `eq`, `and`, ...) come with the
//! engine.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use gotmpl::{TemplateError, Value};
use sha2::{Digest, Sha256};

use super::{Dependencies, Inputs};
use crate::structs::ServiceRegistration;

type FuncResult = Result<Value, TemplateError>;

/// The functions of one render: those reading `inputs` record what they read in `recorder`.
pub(super) fn function_map(
    inputs: &Arc<Inputs>,
    recorder: &Arc<Mutex<Dependencies>>,
) -> gotmpl::FuncMap {
    let mut map = gotmpl::FuncMap::new();
    let mut add = |name: &str, f: gotmpl::ValueFunc| {
        map.insert(name.into(), f);
    };
    let env = Arc::clone(inputs);
    add(
        "env",
        Arc::new(move |args| {
            arity("env", args, 1)?;
            let name = string("env", args, 0)?;
            Ok(Value::from(env.env.get(name).map_or("", String::as_str)))
        }),
    );
    let env = Arc::clone(inputs);
    add(
        "envOrDefault",
        Arc::new(move |args| {
            arity("envOrDefault", args, 2)?;
            let name = string("envOrDefault", args, 0)?;
            let default = string("envOrDefault", args, 1)?;
            Ok(Value::from(
                env.env
                    .get(name)
                    .filter(|value| !value.is_empty())
                    .map_or(default, String::as_str),
            ))
        }),
    );
    let (services, seen) = (Arc::clone(inputs), Arc::clone(recorder));
    add(
        "nomadService",
        Arc::new(move |args| nomad_service(&services, &seen, args)),
    );
    let (services, seen) = (Arc::clone(inputs), Arc::clone(recorder));
    add(
        "nomadServices",
        Arc::new(move |args| {
            arity("nomadServices", args, 0)?;
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.service_list = true;
            let Some(list) = &services.service_list else {
                seen.missing = true;
                return Ok(Value::from(Vec::new()));
            };
            Ok(Value::from(
                list.iter()
                    .map(|service| {
                        map_value([
                            ("Name", Value::from(service.service_name.as_str())),
                            ("Tags", strings(&service.tags)),
                        ])
                    })
                    .collect::<Vec<_>>(),
            ))
        }),
    );
    let (variables, seen) = (Arc::clone(inputs), Arc::clone(recorder));
    add(
        "nomadVar",
        Arc::new(move |args| nomad_var(&variables, &seen, args)),
    );
    for (name, f) in pure_functions() {
        add(name, f);
    }
    map
}

/// `nomadService "[tag.]name"`.
fn nomad_service(inputs: &Inputs, recorder: &Mutex<Dependencies>, args: &[Value]) -> FuncResult {
    if args.len() == 3 {
        return Err(exec(
            "nomadService: the sharding form (count, key, name) is not supported",
        ));
    }
    arity("nomadService", args, 1)?;
    let query = string("nomadService", args, 0)?;
    if query.contains('@') {
        return Err(exec(format!(
            "nomadService {query:?}: other regions are not supported"
        )));
    }
    let (tag, name) = match query.rsplit_once('.') {
        Some((tag, name)) => (Some(tag), name),
        None => (None, query),
    };
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '/' | '=' | ':' | '.'))
    };
    if !valid(name) || tag.is_some_and(|tag| !valid(tag)) {
        return Err(exec(format!(
            "nomadService: invalid service query {query:?} (want \"name\" or \"tag.name\")"
        )));
    }
    let mut seen = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    seen.services.insert(name.to_owned());
    let Some(instances) = inputs.services.get(name) else {
        seen.missing = true;
        return Ok(Value::from(Vec::new()));
    };
    Ok(Value::from(
        instances
            .iter()
            .filter(|instance| tag.is_none_or(|tag| instance.tags.iter().any(|t| t == tag)))
            .map(service_value)
            .collect::<Vec<_>>(),
    ))
}

/// `nomadVar "path"`: the variable's items as a map; another namespace (`path@namespace`) is
/// refused, since a task reads only its own.
fn nomad_var(inputs: &Inputs, recorder: &Mutex<Dependencies>, args: &[Value]) -> FuncResult {
    arity("nomadVar", args, 1)?;
    let path = string("nomadVar", args, 0)?;
    if path.contains('@') {
        return Err(exec(format!(
            "nomadVar {path:?}: a task reads variables of its own namespace only"
        )));
    }
    crate::structs::check_variable_path(path)
        .map_err(|error| exec(format!("nomadVar {path:?}: {error}")))?;
    let mut seen = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    seen.variables.insert(path.to_owned());
    let Some(items) = inputs.variables.get(path) else {
        seen.missing = true;
        return Ok(Value::from(BTreeMap::<String, Value>::new()));
    };
    Ok(Value::from(
        items
            .iter()
            .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
            .collect::<BTreeMap<String, Value>>(),
    ))
}

/// One instance as consul-template's `NomadService`.
fn service_value(instance: &ServiceRegistration) -> Value {
    map_value([
        ("ID", Value::from(instance.id.as_str())),
        ("Name", Value::from(instance.service_name.as_str())),
        ("Namespace", Value::from(instance.namespace.as_str())),
        ("Node", Value::from(instance.node_id.to_string())),
        ("Datacenter", Value::from(instance.datacenter.as_str())),
        ("JobID", Value::from(instance.job_id.to_string())),
        ("AllocID", Value::from(instance.alloc_id.to_string())),
        ("Tags", strings(&instance.tags)),
        ("Address", Value::from(instance.address.as_str())),
        ("Port", Value::Int(i64::from(instance.port))),
    ])
}

/// The functions that read nothing but their arguments (and the clock).
pub fn pure_functions() -> Vec<(&'static str, gotmpl::ValueFunc)> {
    fn f(g: impl Fn(&[Value]) -> FuncResult + Send + Sync + 'static) -> gotmpl::ValueFunc {
        Arc::new(g)
    }
    vec![
        ("base64Encode", f(|a| b64_encode("base64Encode", a, &STD))),
        ("base64Decode", f(|a| b64_decode("base64Decode", a, &STD))),
        (
            "base64URLEncode",
            f(|a| b64_encode("base64URLEncode", a, &URL)),
        ),
        (
            "base64URLDecode",
            f(|a| b64_decode("base64URLDecode", a, &URL)),
        ),
        ("toJSON", f(|a| to_json("toJSON", a, false))),
        ("toJSONPretty", f(|a| to_json("toJSONPretty", a, true))),
        ("parseJSON", f(parse_json)),
        (
            "toLower",
            f(|a| map_string("toLower", a, str::to_lowercase)),
        ),
        (
            "toUpper",
            f(|a| map_string("toUpper", a, str::to_uppercase)),
        ),
        ("toTitle", f(|a| map_string("toTitle", a, title))),
        (
            "trimSpace",
            f(|a| map_string("trimSpace", a, |s| s.trim().to_owned())),
        ),
        (
            "trimPrefix",
            f(|a| {
                arity("trimPrefix", a, 2)?;
                let (prefix, s) = (string("trimPrefix", a, 0)?, string("trimPrefix", a, 1)?);
                Ok(Value::from(s.strip_prefix(prefix).unwrap_or(s)))
            }),
        ),
        (
            "trimSuffix",
            f(|a| {
                arity("trimSuffix", a, 2)?;
                let (suffix, s) = (string("trimSuffix", a, 0)?, string("trimSuffix", a, 1)?);
                Ok(Value::from(s.strip_suffix(suffix).unwrap_or(s)))
            }),
        ),
        (
            "split",
            f(|a| {
                arity("split", a, 2)?;
                let (sep, s) = (string("split", a, 0)?, string("split", a, 1)?);
                if s.is_empty() {
                    return Ok(Value::from(Vec::new()));
                }
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::from(c.to_string())).collect()
                } else {
                    s.split(sep).map(Value::from).collect()
                };
                Ok(Value::from(parts))
            }),
        ),
        (
            "join",
            f(|a| {
                arity("join", a, 2)?;
                let sep = string("join", a, 0)?;
                let items = list("join", a, 1)?
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.to_string()),
                        other => Err(exec(format!(
                            "join: the list must hold strings, not {}",
                            other.type_name()
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::from(items.join(sep)))
            }),
        ),
        (
            "replaceAll",
            f(|a| {
                arity("replaceAll", a, 3)?;
                let old = string("replaceAll", a, 0)?;
                let new = string("replaceAll", a, 1)?;
                let s = string("replaceAll", a, 2)?;
                Ok(Value::from(s.replace(old, new)))
            }),
        ),
        (
            "indent",
            f(|a| {
                arity("indent", a, 2)?;
                let spaces = usize::try_from(int("indent", a, 0)?)
                    .ok()
                    .filter(|n| *n <= 1024)
                    .ok_or_else(|| exec("indent: spaces must be between 0 and 1024"))?;
                let pad = " ".repeat(spaces);
                let s = string("indent", a, 1)?;
                let lines: Vec<String> = s.split('\n').map(|line| format!("{pad}{line}")).collect();
                Ok(Value::from(lines.join("\n")))
            }),
        ),
        (
            "contains",
            f(|a| {
                arity("contains", a, 2)?;
                contained("contains", &a[1], &a[0]).map(Value::Bool)
            }),
        ),
        (
            "in",
            f(|a| {
                arity("in", a, 2)?;
                contained("in", &a[0], &a[1]).map(Value::Bool)
            }),
        ),
        (
            "containsAny",
            f(|a| {
                arity("containsAny", a, 2)?;
                let wanted = list("containsAny", a, 0)?;
                for item in wanted.iter() {
                    if contained("containsAny", &a[1], item)? {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }),
        ),
        (
            "containsAll",
            f(|a| {
                arity("containsAll", a, 2)?;
                let wanted = list("containsAll", a, 0)?;
                for item in wanted.iter() {
                    if !contained("containsAll", &a[1], item)? {
                        return Ok(Value::Bool(false));
                    }
                }
                Ok(Value::Bool(true))
            }),
        ),
        (
            "regexMatch",
            f(|a| {
                arity("regexMatch", a, 2)?;
                let re = regex("regexMatch", string("regexMatch", a, 0)?)?;
                Ok(Value::Bool(re.is_match(string("regexMatch", a, 1)?)))
            }),
        ),
        (
            "regexReplaceAll",
            f(|a| {
                arity("regexReplaceAll", a, 3)?;
                let re = regex("regexReplaceAll", string("regexReplaceAll", a, 0)?)?;
                let replacement = string("regexReplaceAll", a, 1)?;
                let s = string("regexReplaceAll", a, 2)?;
                Ok(Value::from(re.replace_all(s, replacement).into_owned()))
            }),
        ),
        (
            "parseInt",
            f(|a| {
                let s = one_string("parseInt", a)?;
                s.trim()
                    .parse::<i64>()
                    .map(Value::Int)
                    .map_err(|err| exec(format!("parseInt: {s:?} is not an integer: {err}")))
            }),
        ),
        (
            "parseUint",
            f(|a| {
                let s = one_string("parseUint", a)?;
                s.trim().parse::<u64>().map(Value::Uint).map_err(|err| {
                    exec(format!(
                        "parseUint: {s:?} is not an unsigned integer: {err}"
                    ))
                })
            }),
        ),
        (
            "parseFloat",
            f(|a| {
                let s = one_string("parseFloat", a)?;
                s.trim()
                    .parse::<f64>()
                    .map(Value::Float)
                    .map_err(|err| exec(format!("parseFloat: {s:?} is not a number: {err}")))
            }),
        ),
        (
            "parseBool",
            f(|a| {
                let s = one_string("parseBool", a)?;
                match s.trim() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
                    _ => Err(exec(format!("parseBool: {s:?} is not a boolean"))),
                }
            }),
        ),
        ("add", f(|a| arithmetic("add", a, Op::Add))),
        ("subtract", f(|a| arithmetic("subtract", a, Op::Subtract))),
        ("multiply", f(|a| arithmetic("multiply", a, Op::Multiply))),
        ("divide", f(|a| arithmetic("divide", a, Op::Divide))),
        ("modulo", f(|a| arithmetic("modulo", a, Op::Modulo))),
        ("minimum", f(|a| arithmetic("minimum", a, Op::Minimum))),
        ("maximum", f(|a| arithmetic("maximum", a, Op::Maximum))),
        (
            "loop",
            f(|a| {
                let (start, end) = match a.len() {
                    1 => (0, int("loop", a, 0)?),
                    2 => (int("loop", a, 0)?, int("loop", a, 1)?),
                    got => {
                        return Err(TemplateError::ArgCount {
                            name: "loop".to_owned(),
                            expected: 1,
                            got,
                        });
                    }
                };
                if end.saturating_sub(start) > 1_000_000 {
                    return Err(exec("loop: more than 1000000 iterations"));
                }
                Ok(Value::from(
                    (start..end).map(Value::Int).collect::<Vec<_>>(),
                ))
            }),
        ),
        ("timestamp", f(timestamp)),
        (
            "sha256Hex",
            f(|a| {
                map_string("sha256Hex", a, |s| {
                    hex::encode(Sha256::digest(s.as_bytes()))
                })
            }),
        ),
        (
            "default",
            f(|a| {
                arity("default", a, 2)?;
                Ok(if a[1].is_truthy() {
                    a[1].clone()
                } else {
                    a[0].clone()
                })
            }),
        ),
        ("byTag", f(by_tag)),
    ]
}

const STD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE;

fn exec(message: impl Into<String>) -> TemplateError {
    TemplateError::Exec(message.into())
}

fn arity(name: &str, args: &[Value], expected: usize) -> Result<(), TemplateError> {
    if args.len() == expected {
        Ok(())
    } else {
        Err(TemplateError::ArgCount {
            name: name.to_owned(),
            expected,
            got: args.len(),
        })
    }
}

fn string<'a>(name: &str, args: &'a [Value], index: usize) -> Result<&'a str, TemplateError> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(exec(format!(
            "{name}: argument {} must be a string, not {}",
            index + 1,
            other.type_name()
        ))),
        None => Err(TemplateError::ArgCount {
            name: name.to_owned(),
            expected: index + 1,
            got: args.len(),
        }),
    }
}

fn one_string<'a>(name: &str, args: &'a [Value]) -> Result<&'a str, TemplateError> {
    arity(name, args, 1)?;
    string(name, args, 0)
}

fn int(name: &str, args: &[Value], index: usize) -> Result<i64, TemplateError> {
    match args.get(index) {
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::Uint(n)) => {
            i64::try_from(*n).map_err(|_| exec(format!("{name}: {n} is too large")))
        }
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| exec(format!("{name}: {s:?} is not an integer"))),
        Some(other) => Err(exec(format!(
            "{name}: argument {} must be an integer, not {}",
            index + 1,
            other.type_name()
        ))),
        None => Err(TemplateError::ArgCount {
            name: name.to_owned(),
            expected: index + 1,
            got: args.len(),
        }),
    }
}

fn list<'a>(name: &str, args: &'a [Value], index: usize) -> Result<&'a [Value], TemplateError> {
    match args.get(index) {
        Some(Value::List(items)) => Ok(items),
        Some(other) => Err(exec(format!(
            "{name}: argument {} must be a list, not {}",
            index + 1,
            other.type_name()
        ))),
        None => Err(TemplateError::ArgCount {
            name: name.to_owned(),
            expected: index + 1,
            got: args.len(),
        }),
    }
}

fn map_string(name: &str, args: &[Value], f: impl Fn(&str) -> String) -> FuncResult {
    Ok(Value::from(f(one_string(name, args)?)))
}

fn map_value<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::from(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect::<BTreeMap<String, Value>>(),
    )
}

fn strings(items: &[String]) -> Value {
    Value::from(
        items
            .iter()
            .map(|s| Value::from(s.as_str()))
            .collect::<Vec<_>>(),
    )
}

/// Go's `strings.Title`: the first letter of each word in upper case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric() && c != '_' && c != '\'';
    }
    out
}

fn b64_encode(name: &str, args: &[Value], engine: &base64::engine::GeneralPurpose) -> FuncResult {
    Ok(Value::from(engine.encode(one_string(name, args)?)))
}

fn b64_decode(name: &str, args: &[Value], engine: &base64::engine::GeneralPurpose) -> FuncResult {
    let bytes = engine
        .decode(one_string(name, args)?.trim())
        .map_err(|err| exec(format!("{name}: {err}")))?;
    String::from_utf8(bytes)
        .map(Value::from)
        .map_err(|_| exec(format!("{name}: the decoded data is not UTF-8")))
}

/// `haystack` holds `needle`: an element of a list, a key of a map, a substring of a string.
fn contained(name: &str, haystack: &Value, needle: &Value) -> Result<bool, TemplateError> {
    match haystack {
        Value::List(items) => Ok(items.iter().any(|item| item == needle)),
        Value::Map(entries) => Ok(needle.as_str().is_some_and(|key| entries.contains_key(key))),
        Value::String(s) => match needle {
            Value::String(needle) => Ok(s.contains(&**needle)),
            other => Err(exec(format!(
                "{name}: cannot look for a {} in a string",
                other.type_name()
            ))),
        },
        Value::Nil => Ok(false),
        other => Err(exec(format!(
            "{name}: cannot look into a {}",
            other.type_name()
        ))),
    }
}

fn regex(name: &str, pattern: &str) -> Result<regex::Regex, TemplateError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| exec(format!("{name}: invalid regular expression: {err}")))
}

fn to_json(name: &str, args: &[Value], pretty: bool) -> FuncResult {
    arity(name, args, 1)?;
    let json = json_of(&args[0]).map_err(|err| exec(format!("{name}: {err}")))?;
    let text = if pretty {
        serde_json::to_string_pretty(&json)
    } else {
        serde_json::to_string(&json)
    }
    .map_err(|err| exec(format!("{name}: {err}")))?;
    Ok(Value::from(text))
}

/// A template value as JSON.
pub fn json_of(value: &Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(n) => serde_json::Value::from(*n),
        Value::Uint(n) => serde_json::Value::from(*n),
        Value::Float(x) => serde_json::Number::from_f64(*x)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{x} has no JSON form"))?,
        Value::String(s) => serde_json::Value::from(&**s),
        Value::List(items) => {
            serde_json::Value::Array(items.iter().map(json_of).collect::<Result<_, _>>()?)
        }
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(key, value)| Ok((key.to_string(), json_of(value)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("a {} has no JSON form", other.type_name())),
    })
}

fn parse_json(args: &[Value]) -> FuncResult {
    let text = one_string("parseJSON", args)?;
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|err| exec(format!("parseJSON: {err}")))?;
    gotmpl::to_value(&json)
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Minimum,
    Maximum,
}

/// consul-template's arithmetic: `{{ 10 | subtract 3 }}` is `10 - 3`, so the second argument is
/// the left operand. Integers stay integers (overflow is an error); a float makes both floats.
fn arithmetic(name: &str, args: &[Value], op: Op) -> FuncResult {
    arity(name, args, 2)?;
    let (b, a) = (&args[0], &args[1]);
    let as_int = |v: &Value| match v {
        Value::Int(n) => Some(*n),
        Value::Uint(n) => i64::try_from(*n).ok(),
        _ => None,
    };
    if let (Some(a), Some(b)) = (as_int(a), as_int(b)) {
        let result = match op {
            Op::Add => a.checked_add(b),
            Op::Subtract => a.checked_sub(b),
            Op::Multiply => a.checked_mul(b),
            Op::Divide | Op::Modulo if b == 0 => {
                return Err(exec(format!("{name}: division by zero")));
            }
            Op::Divide => a.checked_div(b),
            Op::Modulo => a.checked_rem(b),
            Op::Minimum => Some(a.min(b)),
            Op::Maximum => Some(a.max(b)),
        };
        return result
            .map(Value::Int)
            .ok_or_else(|| exec(format!("{name}: integer overflow")));
    }
    let as_float = |v: &Value| match v {
        Value::Float(x) => Ok(*x),
        other => as_int(other).map(|n| n as f64).ok_or_else(|| {
            exec(format!(
                "{name}: cannot compute with a {}",
                other.type_name()
            ))
        }),
    };
    let (a, b) = (as_float(a)?, as_float(b)?);
    Ok(Value::Float(match op {
        Op::Add => a + b,
        Op::Subtract => a - b,
        Op::Multiply => a * b,
        Op::Divide if b == 0.0 => return Err(exec(format!("{name}: division by zero"))),
        Op::Divide => a / b,
        Op::Modulo => return Err(exec(format!("{name}: modulo needs integers"))),
        Op::Minimum => a.min(b),
        Op::Maximum => a.max(b),
    }))
}

/// `timestamp`: now in RFC 3339, `timestamp "unix"`: seconds since the epoch, `timestamp LAYOUT`:
/// formatted with a Go layout. Local time, as consul-template's.
fn timestamp(args: &[Value]) -> FuncResult {
    let now = chrono::Local::now();
    match args.len() {
        0 => Ok(Value::from(
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )),
        1 => {
            let layout = string("timestamp", args, 0)?;
            if layout == "unix" {
                return Ok(Value::from(now.timestamp().to_string()));
            }
            Ok(Value::from(now.format(&go_layout(layout)).to_string()))
        }
        got => Err(TemplateError::ArgCount {
            name: "timestamp".to_owned(),
            expected: 1,
            got,
        }),
    }
}

/// A Go time layout (`Mon Jan 2 15:04:05 MST 2006`) as a chrono format string.
pub fn go_layout(layout: &str) -> String {
    const TOKENS: &[(&str, &str)] = &[
        ("January", "%B"),
        ("Monday", "%A"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".000", "%.3f"),
        ("-0700", "%z"),
        ("2006", "%Y"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("_2", "%e"),
        ("01", "%m"),
        ("02", "%d"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("15", "%H"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("1", "%-m"),
        ("2", "%-d"),
        ("3", "%-I"),
        ("4", "%-M"),
        ("5", "%-S"),
    ];
    let mut out = String::with_capacity(layout.len() * 2);
    let mut rest = layout;
    'outer: while let Some(c) = rest.chars().next() {
        for (token, format) in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                out.push_str(format);
                rest = after;
                continue 'outer;
            }
        }
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `byTag`: services (maps with `Tags`) grouped by each of their tags.
fn by_tag(args: &[Value]) -> FuncResult {
    arity("byTag", args, 1)?;
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for service in list("byTag", args, 0)?.iter() {
        let Some(Value::List(tags)) = service.field("Tags") else {
            return Err(exec("byTag: the list must hold services (with Tags)"));
        };
        for tag in tags.iter() {
            if let Some(tag) = tag.as_str() {
                groups
                    .entry(tag.to_owned())
                    .or_default()
                    .push(service.clone());
            }
        }
    }
    Ok(Value::from(
        groups
            .into_iter()
            .map(|(tag, services)| (tag, Value::from(services)))
            .collect::<BTreeMap<String, Value>>(),
    ))
}
