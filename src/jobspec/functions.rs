//! The HCL functions a job file may call, a subset of Nomad's (which are Terraform's and cty's
//! standard library): string, collection and conversion functions.
//!
//! Invariant: functions are pure, but for `file()` and `pathexpand()` (`file_function.rs`), which
//! work only when the CLI parses a job file from disk: `file()` reads beside it, `pathexpand()`
//! takes `HOME` from the parse's environment; none reads the process's environment.

use hcl::Value;
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};

pub(crate) fn declare_all(context: &mut Context<'_>) {
    let string = || ParamType::String;
    context.declare_func("upper", FuncDef::new(upper, [string()]));
    context.declare_func("lower", FuncDef::new(lower, [string()]));
    context.declare_func("trimspace", FuncDef::new(trimspace, [string()]));
    context.declare_func(
        "replace",
        FuncDef::new(replace, [string(), string(), string()]),
    );
    context.declare_func(
        "join",
        FuncDef::new(join, [string(), ParamType::array_of(ParamType::Any)]),
    );
    context.declare_func("split", FuncDef::new(split, [string(), string()]));
    context.declare_func(
        "concat",
        FuncDef::builder()
            .variadic_param(ParamType::array_of(ParamType::Any))
            .build(concat),
    );
    context.declare_func("length", FuncDef::new(length, [ParamType::Any]));
    context.declare_func("tostring", FuncDef::new(tostring, [ParamType::Any]));
    context.declare_func("tonumber", FuncDef::new(tonumber, [ParamType::Any]));
    context.declare_func(
        "contains",
        FuncDef::new(
            contains,
            [ParamType::array_of(ParamType::Any), ParamType::Any],
        ),
    );
    context.declare_func(
        "coalesce",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(coalesce),
    );
    context.declare_func(
        "min",
        FuncDef::builder()
            .variadic_param(ParamType::Number)
            .build(min),
    );
    context.declare_func(
        "max",
        FuncDef::builder()
            .variadic_param(ParamType::Number)
            .build(max),
    );
    context.declare_func(
        "merge",
        FuncDef::builder()
            .variadic_param(ParamType::object_of(ParamType::Any))
            .build(merge),
    );
    context.declare_func("base64encode", FuncDef::new(base64encode, [string()]));
    context.declare_func("base64decode", FuncDef::new(base64decode, [string()]));
    context.declare_func("trimprefix", FuncDef::new(trimprefix, [string(), string()]));
    context.declare_func("trimsuffix", FuncDef::new(trimsuffix, [string(), string()]));
    context.declare_func("keys", FuncDef::new(keys, [ParamType::Any]));
    context.declare_func("values", FuncDef::new(values, [ParamType::Any]));
    context.declare_func(
        "lookup",
        FuncDef::builder()
            .param(ParamType::Any)
            .param(string())
            .variadic_param(ParamType::Any)
            .build(lookup),
    );
    context.declare_func(
        "element",
        FuncDef::new(element, [ParamType::Any, ParamType::Number]),
    );
    context.declare_func("abs", FuncDef::new(abs, [ParamType::Number]));
    context.declare_func("uuidv5", FuncDef::new(uuidv5, [string(), string()]));
    context.declare_func("file", FuncDef::new(super::file_function::file, [string()]));
    context.declare_func(
        "pathexpand",
        FuncDef::new(super::file_function::pathexpand, [string()]),
    );
}

/// Argument `idx`; hcl-rs checks the count against the declaration before calling, so a
/// missing argument is an error here only as a second line of defence.
fn arg(args: &FuncArgs, idx: usize) -> Result<&Value, String> {
    args.get(idx)
        .ok_or_else(|| format!("missing argument {}", idx + 1))
}

fn string_arg(args: &FuncArgs, idx: usize) -> Result<&str, String> {
    arg(args, idx)?
        .as_str()
        .ok_or_else(|| format!("argument {} must be a string", idx + 1))
}

/// Charges a function's result to the evaluation's budget (see [`super::budget`]).
fn charged(value: Value) -> Result<Value, String> {
    super::budget::charge(super::budget::size_of(&value))?;
    Ok(value)
}

fn upper(args: FuncArgs) -> Result<Value, String> {
    let text = string_arg(&args, 0)?;
    // Case mapping at most triples a string's bytes.
    super::budget::charge(text.len().saturating_mul(3))?;
    charged(Value::from(text.to_uppercase()))
}

fn lower(args: FuncArgs) -> Result<Value, String> {
    let text = string_arg(&args, 0)?;
    super::budget::charge(text.len().saturating_mul(3))?;
    charged(Value::from(text.to_lowercase()))
}

fn trimspace(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(string_arg(&args, 0)?.trim()))
}

fn replace(args: FuncArgs) -> Result<Value, String> {
    let text = string_arg(&args, 0)?;
    let from = string_arg(&args, 1)?;
    let to = string_arg(&args, 2)?;
    // The result's size, known before it is made: each match of `from` becomes `to` (an empty
    // `from` matches between every character and at both ends).
    let matches = if from.is_empty() {
        text.chars().count().saturating_add(1)
    } else {
        text.matches(from).count()
    };
    let size = text
        .len()
        .saturating_sub(matches.saturating_mul(from.len()))
        .saturating_add(matches.saturating_mul(to.len()));
    super::budget::charge(size)?;
    Ok(Value::from(text.replace(from, to)))
}

fn scalar_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Null => Err("null value where a string was expected".to_owned()),
        Value::Array(_) | Value::Object(_) => {
            Err("collection where a string was expected".to_owned())
        }
    }
}

fn join(args: FuncArgs) -> Result<Value, String> {
    let separator = string_arg(&args, 0)?;
    let items = arg(&args, 1)?
        .as_array()
        .ok_or("argument 2 must be a list")?;
    let texts: Vec<String> = items.iter().map(scalar_text).collect::<Result<_, _>>()?;
    let size = texts
        .iter()
        .map(String::len)
        .fold(0, usize::saturating_add)
        .saturating_add(separator.len().saturating_mul(texts.len()));
    super::budget::charge(size)?;
    Ok(Value::from(texts.join(separator)))
}

fn split(args: FuncArgs) -> Result<Value, String> {
    let separator = string_arg(&args, 0)?;
    let text = string_arg(&args, 1)?;
    if separator.is_empty() {
        return Err("separator must not be empty".to_owned());
    }
    charged(Value::Array(
        text.split(separator).map(Value::from).collect(),
    ))
}

fn concat(args: FuncArgs) -> Result<Value, String> {
    let size = args
        .variadic_args()
        .map(super::budget::size_of)
        .fold(0, usize::saturating_add);
    super::budget::charge(size)?;
    let mut all = Vec::new();
    for list in args.variadic_args() {
        all.extend(
            list.as_array()
                .ok_or("arguments must be lists")?
                .iter()
                .cloned(),
        );
    }
    Ok(Value::Array(all))
}

fn length(args: FuncArgs) -> Result<Value, String> {
    let length = match arg(&args, 0)? {
        Value::String(text) => text.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => return Err("length needs a string, list or map".to_owned()),
    };
    Ok(Value::from(length as u64))
}

fn tostring(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(scalar_text(arg(&args, 0)?)?))
}

fn tonumber(args: FuncArgs) -> Result<Value, String> {
    match arg(&args, 0)? {
        Value::Number(number) => Ok(Value::Number(*number)),
        Value::String(text) => super::eval::parse_number(text)
            .map(Value::Number)
            .ok_or_else(|| format!("cannot convert {text:?} to a number")),
        _ => Err("tonumber needs a number or a string".to_owned()),
    }
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let items = arg(&args, 0)?
        .as_array()
        .ok_or("argument 1 must be a list")?;
    Ok(Value::Bool(items.contains(arg(&args, 1)?)))
}

fn coalesce(args: FuncArgs) -> Result<Value, String> {
    args.variadic_args()
        .find(|value| !value.is_null() && value.as_str() != Some(""))
        .cloned()
        .ok_or_else(|| "no non-null, non-empty argument".to_owned())
}

fn numbers(args: &FuncArgs) -> Result<Vec<f64>, String> {
    let numbers: Vec<f64> = args
        .variadic_args()
        .filter_map(|value| value.as_f64())
        .collect();
    if numbers.is_empty() {
        return Err("needs at least one number".to_owned());
    }
    Ok(numbers)
}

fn number_value(number: f64) -> Value {
    hcl::Number::from_f64(number).map_or(Value::Null, Value::Number)
}

fn min(args: FuncArgs) -> Result<Value, String> {
    Ok(number_value(
        numbers(&args)?.into_iter().fold(f64::INFINITY, f64::min),
    ))
}

fn max(args: FuncArgs) -> Result<Value, String> {
    Ok(number_value(
        numbers(&args)?
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max),
    ))
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let size = args
        .variadic_args()
        .map(super::budget::size_of)
        .fold(0, usize::saturating_add);
    super::budget::charge(size)?;
    let mut merged = hcl::Map::new();
    for object in args.variadic_args() {
        for (key, value) in object.as_object().ok_or("arguments must be maps")? {
            merged.insert(key.clone(), value.clone());
        }
    }
    Ok(Value::Object(merged))
}

/// A name-based (SHA-1) UUID, RFC 9562 version 5, as Nomad's `uuidv5(namespace, name)`: the
/// namespace is `dns`, `url`, `oid`, `x500` or a UUID.
fn uuidv5(args: FuncArgs) -> Result<Value, String> {
    use sha1::Digest as _;
    use uuid::Uuid;
    let namespace = match string_arg(&args, 0)? {
        "dns" => Uuid::NAMESPACE_DNS,
        "url" => Uuid::NAMESPACE_URL,
        "oid" => Uuid::NAMESPACE_OID,
        "x500" => Uuid::NAMESPACE_X500,
        other => Uuid::parse_str(other).map_err(|error| {
            format!("invalid uuidv5 namespace {other:?}: expected dns, url, oid, x500 or a UUID ({error})")
        })?,
    };
    let digest = sha1::Sha1::new()
        .chain_update(namespace.as_bytes())
        .chain_update(string_arg(&args, 1)?.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(Value::from(
        uuid::Builder::from_sha1_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string(),
    ))
}

fn base64encode(args: FuncArgs) -> Result<Value, String> {
    use base64::Engine as _;
    let text = string_arg(&args, 0)?;
    super::budget::charge(text.len().saturating_mul(4) / 3 + 4)?;
    Ok(Value::from(
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
    ))
}

fn base64decode(args: FuncArgs) -> Result<Value, String> {
    use base64::Engine as _;
    let text = string_arg(&args, 0)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|error| format!("invalid base64: {error}"))?;
    let decoded =
        String::from_utf8(bytes).map_err(|_| "the decoded bytes are not UTF-8".to_owned())?;
    charged(Value::from(decoded))
}

fn trimprefix(args: FuncArgs) -> Result<Value, String> {
    let text = string_arg(&args, 0)?;
    let prefix = string_arg(&args, 1)?;
    Ok(Value::from(text.strip_prefix(prefix).unwrap_or(text)))
}

fn trimsuffix(args: FuncArgs) -> Result<Value, String> {
    let text = string_arg(&args, 0)?;
    let suffix = string_arg(&args, 1)?;
    Ok(Value::from(text.strip_suffix(suffix).unwrap_or(text)))
}

fn object_arg(args: &FuncArgs, idx: usize) -> Result<&hcl::Map<String, Value>, String> {
    arg(args, idx)?
        .as_object()
        .ok_or_else(|| format!("argument {} must be a map", idx + 1))
}

/// A map's keys, sorted (as cty's `keys`).
fn keys(args: FuncArgs) -> Result<Value, String> {
    let mut keys: Vec<&String> = object_arg(&args, 0)?.keys().collect();
    keys.sort();
    charged(Value::Array(
        keys.into_iter()
            .map(|key| Value::from(key.as_str()))
            .collect(),
    ))
}

/// A map's values, in the order of its sorted keys.
fn values(args: FuncArgs) -> Result<Value, String> {
    let map = object_arg(&args, 0)?;
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    charged(Value::Array(
        keys.into_iter()
            .filter_map(|key| map.get(key).cloned())
            .collect(),
    ))
}

/// `lookup(map, key, default)`: the value at `key`, else the default.
fn lookup(args: FuncArgs) -> Result<Value, String> {
    let map = object_arg(&args, 0)?;
    let key = string_arg(&args, 1)?;
    match (map.get(key), args.variadic_args().next()) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(format!("no key {key:?} in the map and no default given")),
    }
}

/// `element(list, index)`: the item at `index`, wrapping around as cty's does.
fn element(args: FuncArgs) -> Result<Value, String> {
    let items = arg(&args, 0)?
        .as_array()
        .ok_or("argument 1 must be a list")?;
    let index = arg(&args, 1)?
        .as_i64()
        .filter(|index| *index >= 0)
        .ok_or("argument 2 must be a whole number, not negative")?;
    if items.is_empty() {
        return Err("cannot use element function with an empty list".to_owned());
    }
    let len = i64::try_from(items.len()).map_err(|_| "list too long".to_owned())?;
    let at = usize::try_from(index % len).map_err(|_| "index out of range".to_owned())?;
    items
        .get(at)
        .cloned()
        .ok_or_else(|| "index out of range".to_owned())
}

fn abs(args: FuncArgs) -> Result<Value, String> {
    let number = arg(&args, 0)?
        .as_f64()
        .ok_or("argument 1 must be a number")?;
    Ok(number_value(number.abs()))
}
