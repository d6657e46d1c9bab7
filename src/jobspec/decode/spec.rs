//! Table-driven decoding for the blocks caravan stores under Nomad's JSON names without reading
//! them itself (`connect`, `vault`, `scaling`, `multiregion`, a template's `wait`, ...).
//!
//! A [`Spec`] lists a block's arguments and nested blocks, each with its HCL name, its JSON name
//! in Nomad's API and its [`Kind`]. [`decode`] checks the block against the spec (unknown keys are
//! located errors with a suggestion, as everywhere in the jobspec), evaluates each argument with
//! the same typed getters as the hand-written readers, and builds the JSON object Nomad's API
//! would carry (durations in nanoseconds). [`decode_into`] then reads that object into the model's
//! typed struct, so a spec and its struct must agree; a test decodes every spec's example.

use hcl::Value;
use hcl::edit::structure::Block;
use serde_json::{Map, Value as Json};

use super::config::body_to_json;
use super::placement::{decode_affinities, decode_constraints};
use crate::jobspec::body::{BlockReader, Schema, block_offset, join_path, labels, no_labels};
use crate::jobspec::error::JobspecError;

/// What an entry of a block is, and how it becomes JSON.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Int,
    Bool,
    /// A Go duration string (`"30s"`), as integer nanoseconds.
    Duration,
    Strings,
    Ints,
    /// A map of strings, written as a block or as an argument.
    StringMap,
    /// A free-form block (an autoscaler policy, an Envoy config): its body as JSON.
    Free,
    /// One optional nested block.
    Block(&'static Spec),
    /// Any number of unlabelled blocks, as a list.
    List(&'static Spec),
    /// Any number of blocks with one label, as a list; the label fills the named JSON field.
    Labeled(&'static Spec, &'static str),
    /// Any number of blocks with one label, as a map keyed by the label.
    LabeledMap(&'static Spec),
    /// `constraint` blocks, decoded as everywhere else.
    Constraints,
    /// `affinity` blocks, decoded as everywhere else.
    Affinities,
}

impl Kind {
    fn is_argument(self) -> bool {
        matches!(
            self,
            Self::Str
                | Self::Int
                | Self::Bool
                | Self::Duration
                | Self::Strings
                | Self::Ints
                | Self::StringMap
        )
    }

    fn is_block(self) -> bool {
        !self.is_argument() || matches!(self, Self::StringMap)
    }
}

/// One argument or nested block: its HCL name, its JSON name, its kind.
pub(crate) struct Field {
    pub hcl: &'static str,
    pub json: &'static str,
    pub kind: Kind,
}

pub(crate) const fn field(hcl: &'static str, json: &'static str, kind: Kind) -> Field {
    Field { hcl, json, kind }
}

/// The entries a block accepts.
pub(crate) struct Spec {
    pub fields: &'static [Field],
}

/// Decodes `block` (a child of `parent`, without labels unless the caller checked them) by
/// `spec` into a JSON object under Nomad's names. `what` names the block in messages, `path` is
/// its field path for validation errors.
pub(crate) fn decode(
    parent: &BlockReader<'_, '_>,
    block: &Block,
    spec: &Spec,
    what: String,
    path: String,
) -> Result<Map<String, Json>, JobspecError> {
    let arguments: Vec<&str> = spec
        .fields
        .iter()
        .filter(|field| field.kind.is_argument())
        .map(|field| field.hcl)
        .collect();
    let blocks: Vec<&str> = spec
        .fields
        .iter()
        .filter(|field| field.kind.is_block())
        .map(|field| field.hcl)
        .collect();
    let reader = parent.child(
        block,
        what,
        path,
        Schema {
            arguments: &arguments,
            blocks: &blocks,
        },
    )?;
    let mut object = Map::new();
    for field in spec.fields {
        if let Some(value) = decode_field(&reader, field)? {
            object.insert(field.json.to_owned(), value);
        }
    }
    Ok(object)
}

fn decode_field(reader: &BlockReader<'_, '_>, field: &Field) -> Result<Option<Json>, JobspecError> {
    let (hcl, json) = (field.hcl, field.json);
    Ok(match field.kind {
        Kind::Str => reader.string(hcl, json)?.map(Json::from),
        Kind::Int => reader.int(hcl, json)?.map(Json::from),
        Kind::Bool => reader.bool(hcl, json)?.map(Json::from),
        Kind::Duration => reader
            .duration(hcl, json)?
            .map(|duration| Json::from(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))),
        Kind::Strings => reader.strings(hcl, json)?.map(Json::from),
        Kind::Ints => ints(reader, hcl, json)?,
        Kind::StringMap => reader
            .string_map(hcl, json)?
            .map(|map| Json::Object(map.into_iter().map(|(k, v)| (k, Json::from(v))).collect())),
        Kind::Free => match reader.unique_block(hcl)? {
            Some(block) => {
                no_labels(reader, block)?;
                reader
                    .decoder
                    .mark(&join_path(&reader.path, json), block_offset(block));
                Some(Json::Object(body_to_json(
                    &reader.decoder.eval,
                    &block.body,
                )?))
            }
            None => None,
        },
        Kind::Block(spec) => match reader.unique_block(hcl)? {
            Some(block) => {
                no_labels(reader, block)?;
                Some(Json::Object(decode(
                    reader,
                    block,
                    spec,
                    format!("{hcl} of {}", reader.what),
                    join_path(&reader.path, json),
                )?))
            }
            None => None,
        },
        Kind::List(spec) => {
            let mut items = Vec::new();
            for (idx, block) in reader.blocks(hcl).enumerate() {
                no_labels(reader, block)?;
                items.push(Json::Object(decode(
                    reader,
                    block,
                    spec,
                    format!("{hcl} of {}", reader.what),
                    join_path(&reader.path, &format!("{json}[{idx}]")),
                )?));
            }
            (!items.is_empty()).then_some(Json::Array(items))
        }
        Kind::Labeled(spec, label_field) => {
            let mut items = Vec::new();
            for block in reader.blocks(hcl) {
                let label = single(reader, block)?;
                let mut object = decode(
                    reader,
                    block,
                    spec,
                    format!("{hcl} {label:?} of {}", reader.what),
                    join_path(&reader.path, &format!("{json}[{label}]")),
                )?;
                object.insert(label_field.to_owned(), Json::from(label));
                items.push(Json::Object(object));
            }
            (!items.is_empty()).then_some(Json::Array(items))
        }
        Kind::LabeledMap(spec) => {
            let mut map = Map::new();
            for block in reader.blocks(hcl) {
                let label = single(reader, block)?;
                let object = decode(
                    reader,
                    block,
                    spec,
                    format!("{hcl} {label:?} of {}", reader.what),
                    join_path(&reader.path, &format!("{json}[{label}]")),
                )?;
                map.insert(label, Json::Object(object));
            }
            (!map.is_empty()).then_some(Json::Object(map))
        }
        Kind::Constraints => {
            let constraints = decode_constraints(reader)?;
            (!constraints.is_empty()).then(|| to_json(&constraints))
        }
        Kind::Affinities => {
            let affinities = decode_affinities(reader)?;
            (!affinities.is_empty()).then(|| to_json(&affinities))
        }
    })
}

fn single(reader: &BlockReader<'_, '_>, block: &Block) -> Result<String, JobspecError> {
    let mut found = labels(reader, block, &["name"])?;
    Ok(found.pop().unwrap_or_default())
}

fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

fn ints(reader: &BlockReader<'_, '_>, hcl: &str, json: &str) -> Result<Option<Json>, JobspecError> {
    let Some((value, expr)) = reader.value(hcl, json)? else {
        return Ok(None);
    };
    let numbers = match &value {
        Value::Array(items) => items
            .iter()
            .map(crate::jobspec::body::value_to_int)
            .collect::<Option<Vec<i64>>>(),
        _ => None,
    };
    match numbers {
        Some(numbers) => Ok(Some(Json::from(numbers))),
        None => Err(reader.decoder.eval.error(
            expr,
            format!(
                "invalid value for \"{hcl}\" in {}: expected a list of whole numbers",
                reader.what
            ),
        )),
    }
}

/// Decodes `block` by `spec` and reads the JSON into the model's type `T`. A value the type
/// cannot hold (a count out of range) is an error at the block.
pub(crate) fn decode_into<T: serde::de::DeserializeOwned>(
    parent: &BlockReader<'_, '_>,
    block: &Block,
    spec: &Spec,
    what: String,
    path: String,
) -> Result<T, JobspecError> {
    let object = decode(parent, block, spec, what.clone(), path)?;
    from_json(parent, block, Json::Object(object), &what)
}

/// Reads a decoded JSON value into `T`, reporting a mismatch at `block`.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    parent: &BlockReader<'_, '_>,
    block: &Block,
    value: Json,
    what: &str,
) -> Result<T, JobspecError> {
    serde_json::from_value(value).map_err(|error| {
        parent.error(
            block_offset(block),
            format!(
                "invalid {what}: {}",
                crate::jobspec::eval::one_line(&error.to_string())
            ),
        )
    })
}

/// The one `hcl` block of `parent`, if any, decoded by `spec` into `T`; `json` is its field.
pub(crate) fn optional_block<T: serde::de::DeserializeOwned>(
    parent: &BlockReader<'_, '_>,
    hcl: &str,
    json: &str,
    spec: &Spec,
) -> Result<Option<T>, JobspecError> {
    let Some(block) = parent.unique_block(hcl)? else {
        return Ok(None);
    };
    no_labels(parent, block)?;
    decode_into(
        parent,
        block,
        spec,
        format!("{hcl} of {}", parent.what),
        join_path(&parent.path, json),
    )
    .map(Some)
}

/// Every `hcl "<label>"` block of `parent`, decoded by `spec` into `T`, the label in the JSON
/// field `label_field`; `json` is the list's field.
pub(crate) fn labeled_blocks<T: serde::de::DeserializeOwned>(
    parent: &BlockReader<'_, '_>,
    hcl: &str,
    json: &str,
    spec: &Spec,
    label_field: &str,
) -> Result<Vec<T>, JobspecError> {
    let mut items = Vec::new();
    for block in parent.blocks_named(hcl) {
        let label = single(parent, block)?;
        let what = format!("{hcl} {label:?} of {}", parent.what);
        let mut object = decode(
            parent,
            block,
            spec,
            what.clone(),
            join_path(&parent.path, &format!("{json}[{label}]")),
        )?;
        object.insert(label_field.to_owned(), Json::from(label));
        items.push(from_json(parent, block, Json::Object(object), &what)?);
    }
    Ok(items)
}
