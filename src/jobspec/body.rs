//! Reading one HCL block body: the arguments and nested blocks a block may have, each typed.
//!
//! A [`BlockReader`] is made for every block the decoder visits. Making it checks the body against
//! the block's schema (the arguments and block types Nomad allows there), so an unknown key is an
//! error naming the key, the block and what was expected, at the key's position. Each typed getter
//! evaluates the argument, converts it as HCL converts values (a number-like string is a number,
//! `"true"` is a bool) and records where the argument was so that validation errors can point at it.

use std::collections::BTreeMap;
use std::time::Duration;

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Block, Body, Structure};

use super::decode::Decoder;
use super::error::JobspecError;
use super::eval::{Evaluator, kind_of};
use crate::structs::duration::parse_go_duration;

/// The arguments and block types a block accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schema<'s> {
    pub arguments: &'s [&'s str],
    pub blocks: &'s [&'s str],
}

pub(crate) struct BlockReader<'a, 'src> {
    pub decoder: &'a Decoder<'src>,
    pub body: &'a Body,
    /// How error messages name the block: `group "cache"`.
    pub what: String,
    /// The field path of the decoded value, as `Job::validate` names it: `TaskGroups[cache]`.
    pub path: String,
    /// Where the block starts.
    pub offset: usize,
}

impl<'a, 'src> BlockReader<'a, 'src> {
    pub fn new(
        decoder: &'a Decoder<'src>,
        body: &'a Body,
        offset: usize,
        what: String,
        path: String,
        schema: Schema<'_>,
    ) -> Result<Self, JobspecError> {
        let reader = Self {
            decoder,
            body,
            what,
            path,
            offset,
        };
        reader.check_schema(schema)?;
        decoder.mark(&reader.path, offset);
        Ok(reader)
    }

    /// A reader for a nested block; the caller has checked its labels.
    pub fn child(
        &self,
        block: &'a Block,
        what: String,
        path: String,
        schema: Schema<'_>,
    ) -> Result<BlockReader<'a, 'src>, JobspecError> {
        BlockReader::new(
            self.decoder,
            &block.body,
            block_offset(block),
            what,
            path,
            schema,
        )
    }

    fn check_schema(&self, schema: Schema<'_>) -> Result<(), JobspecError> {
        let source = &self.decoder.eval.source;
        let mut seen_arguments: BTreeMap<&str, usize> = BTreeMap::new();
        for structure in self.body.iter() {
            match structure {
                Structure::Attribute(attribute) => {
                    let name = attribute.key.as_str();
                    let offset = attribute_offset(attribute);
                    if !schema.arguments.contains(&name) {
                        let message = if schema.blocks.contains(&name) {
                            format!(
                                "\"{name}\" in {} is a block: write {name} {{ ... }}",
                                self.what
                            )
                        } else {
                            format!(
                                "unsupported argument \"{name}\" in {}{}; {}",
                                self.what,
                                suggestion(name, schema),
                                expected_list(schema.arguments, "arguments")
                            )
                        };
                        return Err(source.error(offset, message));
                    }
                    if let Some(previous) = seen_arguments.insert(name, offset) {
                        let previous = source.location(previous);
                        return Err(source.error(
                            offset,
                            format!(
                                "duplicate argument \"{name}\" in {}; it was already set at {}:{}",
                                self.what, previous.line, previous.column
                            ),
                        ));
                    }
                }
                Structure::Block(block) => {
                    let name = block.ident.as_str();
                    if !schema.blocks.contains(&name) {
                        let message = if schema.arguments.contains(&name) {
                            format!(
                                "\"{name}\" in {} is an argument: write {name} = ...",
                                self.what
                            )
                        } else {
                            format!(
                                "unsupported block \"{name}\" in {}{}; {}",
                                self.what,
                                suggestion(name, schema),
                                expected_list(schema.blocks, "blocks")
                            )
                        };
                        return Err(source.error(block_offset(block), message));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn error(&self, offset: usize, message: impl Into<String>) -> JobspecError {
        self.decoder.eval.source.error(offset, message)
    }

    fn eval(&self) -> &Evaluator<'src> {
        &self.decoder.eval
    }

    pub fn attribute(&self, name: &str) -> Option<&'a Attribute> {
        self.body.get_attribute(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.body.has_attribute(name)
    }

    /// The evaluated value of argument `name`, if set; `field` is the API field it fills.
    pub fn value(
        &self,
        name: &str,
        field: &str,
    ) -> Result<Option<(Value, &'a Expression)>, JobspecError> {
        let Some(attribute) = self.attribute(name) else {
            return Ok(None);
        };
        if !field.is_empty() {
            self.decoder
                .mark(&join_path(&self.path, field), attribute_offset(attribute));
        }
        let value = self.eval().eval(&attribute.value)?;
        Ok(Some((value, &attribute.value)))
    }

    fn invalid(&self, name: &str, expr: &Expression, expected: &str, got: &Value) -> JobspecError {
        self.eval().error(
            expr,
            format!(
                "invalid value for \"{name}\" in {}: expected {expected}, got {}",
                self.what,
                kind_of(got)
            ),
        )
    }

    pub fn string(&self, name: &str, field: &str) -> Result<Option<String>, JobspecError> {
        let Some((value, expr)) = self.value(name, field)? else {
            return Ok(None);
        };
        value_to_string(&value)
            .map(Some)
            .ok_or_else(|| self.invalid(name, expr, "a string", &value))
    }

    pub fn int(&self, name: &str, field: &str) -> Result<Option<i64>, JobspecError> {
        let Some((value, expr)) = self.value(name, field)? else {
            return Ok(None);
        };
        value_to_int(&value)
            .map(Some)
            .ok_or_else(|| self.invalid(name, expr, "a whole number", &value))
    }

    /// An integer that must fit the field's type (`i32`, `u8`, ...).
    pub fn int_in<T: TryFrom<i64>>(
        &self,
        name: &str,
        field: &str,
    ) -> Result<Option<T>, JobspecError> {
        let Some(number) = self.int(name, field)? else {
            return Ok(None);
        };
        T::try_from(number).map(Some).map_err(|_| {
            let offset = self.attribute(name).map_or(self.offset, value_offset);
            self.error(
                offset,
                format!(
                    "invalid value for \"{name}\" in {}: {number} is out of range",
                    self.what
                ),
            )
        })
    }

    pub fn bool(&self, name: &str, field: &str) -> Result<Option<bool>, JobspecError> {
        let Some((value, expr)) = self.value(name, field)? else {
            return Ok(None);
        };
        value_to_bool(&value)
            .map(Some)
            .ok_or_else(|| self.invalid(name, expr, "a bool", &value))
    }

    pub fn duration(&self, name: &str, field: &str) -> Result<Option<Duration>, JobspecError> {
        let Some((value, expr)) = self.value(name, field)? else {
            return Ok(None);
        };
        let Value::String(text) = &value else {
            return Err(self.invalid(name, expr, "a duration string such as \"30s\"", &value));
        };
        parse_go_duration(text).map(Some).map_err(|message| {
            self.eval().error(
                expr,
                format!(
                    "invalid duration for \"{name}\" in {}: {message}; expected a duration such as \"30s\" or \"1m30s\"",
                    self.what
                ),
            )
        })
    }

    pub fn strings(&self, name: &str, field: &str) -> Result<Option<Vec<String>>, JobspecError> {
        let Some((value, expr)) = self.value(name, field)? else {
            return Ok(None);
        };
        let Value::Array(items) = &value else {
            return Err(self.invalid(name, expr, "a list of strings", &value));
        };
        items
            .iter()
            .map(|item| {
                value_to_string(item)
                    .ok_or_else(|| self.invalid(name, expr, "a list of strings", item))
            })
            .collect::<Result<Vec<String>, JobspecError>>()
            .map(Some)
    }

    /// A map of strings written either as a block (`env { A = "1" }`) or as an argument
    /// (`env = { "A.B" = "1" }`), once.
    pub fn string_map(
        &self,
        name: &str,
        field: &str,
    ) -> Result<Option<BTreeMap<String, String>>, JobspecError> {
        let mut map = BTreeMap::new();
        let mut found = false;
        if let Some((value, expr)) = self.value(name, field)? {
            found = true;
            let Value::Object(object) = &value else {
                return Err(self.invalid(name, expr, "a map of strings", &value));
            };
            for (key, item) in object {
                let text = value_to_string(item).ok_or_else(|| {
                    self.invalid(&format!("{name}.{key}"), expr, "a string", item)
                })?;
                map.insert(key.clone(), text);
            }
        }
        let block = self.unique_block(name)?;
        if let (Some(block), Some(attribute)) = (block, self.attribute(name)) {
            let attribute_location = self
                .decoder
                .eval
                .source
                .location(attribute_offset(attribute));
            return Err(self.error(
                block_offset(block),
                format!(
                    "{name} in {} is given both as a block and as an argument (at {}:{}); use one",
                    self.what, attribute_location.line, attribute_location.column
                ),
            ));
        }
        if let Some(block) = block {
            found = true;
            if !field.is_empty() {
                self.decoder
                    .mark(&join_path(&self.path, field), block_offset(block));
            }
            no_labels(self, block)?;
            for structure in block.body.iter() {
                match structure {
                    Structure::Attribute(attribute) => {
                        let value = self.eval().eval(&attribute.value)?;
                        let key = attribute.key.as_str();
                        let text = value_to_string(&value).ok_or_else(|| {
                            self.invalid(
                                &format!("{name}.{key}"),
                                &attribute.value,
                                "a string",
                                &value,
                            )
                        })?;
                        map.insert(key.to_owned(), text);
                    }
                    Structure::Block(inner) => {
                        return Err(self.error(
                            block_offset(inner),
                            format!(
                                "unsupported block \"{}\" in {name} of {}; {name} holds only string arguments",
                                inner.ident.as_str(),
                                self.what
                            ),
                        ));
                    }
                }
            }
        }
        Ok(found.then_some(map))
    }

    pub fn blocks(&self, name: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.body.get_blocks(name)
    }

    /// The blocks of type `name`, in order (for names that are not `'a`).
    pub fn blocks_named(&self, name: &str) -> Vec<&'a Block> {
        self.body
            .blocks()
            .filter(|block| block.has_ident(name))
            .collect()
    }

    /// The one block of type `name`, if any; a second one is an error.
    pub fn unique_block(&self, name: &str) -> Result<Option<&'a Block>, JobspecError> {
        let mut blocks = self.body.blocks().filter(|block| block.has_ident(name));
        let first = blocks.next();
        if let (Some(first), Some(second)) = (first, blocks.next()) {
            let first_location = self.decoder.eval.source.location(block_offset(first));
            return Err(self.error(
                block_offset(second),
                format!(
                    "duplicate block \"{name}\" in {}; only one is allowed (the first is at {}:{})",
                    self.what, first_location.line, first_location.column
                ),
            ));
        }
        Ok(first)
    }
}

/// `parent.field`, or `field` at the top of the job.
pub(crate) fn join_path(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// ` (did you mean "count"?)` when a known key is a likely typo of `name`, else nothing.
fn suggestion(name: &str, schema: Schema<'_>) -> String {
    let closest = schema
        .arguments
        .iter()
        .chain(schema.blocks)
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(distance, known)| *distance <= 2 && *distance < known.len())
        .min();
    match closest {
        Some((_, known)) => format!(" (did you mean \"{known}\"?)"),
        None => String::new(),
    }
}

/// Levenshtein distance, counting a swap of two neighbours as one edit.
fn edit_distance(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    let width = right.len() + 1;
    let mut table = vec![0usize; (left.len() + 1) * width];
    for left_idx in 0..=left.len() {
        for right_idx in 0..=right.len() {
            let cell = left_idx * width + right_idx;
            table[cell] = if left_idx == 0 {
                right_idx
            } else if right_idx == 0 {
                left_idx
            } else {
                let cost = usize::from(left[left_idx - 1] != right[right_idx - 1]);
                let mut best = (table[cell - width] + 1)
                    .min(table[cell - 1] + 1)
                    .min(table[cell - width - 1] + cost);
                if left_idx > 1
                    && right_idx > 1
                    && left[left_idx - 1] == right[right_idx - 2]
                    && left[left_idx - 2] == right[right_idx - 1]
                {
                    best = best.min(table[cell - 2 * width - 2] + 1);
                }
                best
            };
        }
    }
    table[left.len() * width + right.len()]
}

fn expected_list(names: &[&str], kind: &str) -> String {
    if names.is_empty() {
        format!("it takes no {kind}")
    } else {
        format!("expected one of {}", names.join(", "))
    }
}

pub(crate) fn block_offset(block: &Block) -> usize {
    block
        .ident
        .span()
        .or_else(|| block.span())
        .map_or(0, |span| span.start)
}

pub(crate) fn attribute_offset(attribute: &Attribute) -> usize {
    attribute
        .key
        .span()
        .or_else(|| attribute.span())
        .map_or(0, |span| span.start)
}

pub(crate) fn value_offset(attribute: &Attribute) -> usize {
    Evaluator::offset_of(&attribute.value)
}

/// The labels of `block`, which must number exactly `count`; `label_names` says what they are
/// for the error message (`"name"`).
pub(crate) fn labels(
    reader: &BlockReader<'_, '_>,
    block: &Block,
    label_names: &[&str],
) -> Result<Vec<String>, JobspecError> {
    let ident = block.ident.as_str();
    if block.labels.len() != label_names.len() {
        let expected = if label_names.is_empty() {
            format!("block \"{ident}\" takes no labels")
        } else {
            let placeholders: Vec<String> = label_names
                .iter()
                .map(|label| format!("\"<{label}>\""))
                .collect();
            format!(
                "block \"{ident}\" needs {} label{}: {ident} {} {{ ... }}",
                label_names.len(),
                if label_names.len() == 1 { "" } else { "s" },
                placeholders.join(" ")
            )
        };
        let problem = if block.labels.len() < label_names.len() {
            "missing label"
        } else {
            "too many labels"
        };
        return Err(reader.error(
            block_offset(block),
            format!("{problem} in {}: {expected}", reader.what),
        ));
    }
    Ok(block
        .labels
        .iter()
        .map(|label| label.as_str().to_owned())
        .collect())
}

/// The one label of `block`, which names what the label is for in the error message.
pub(crate) fn single_label(
    reader: &BlockReader<'_, '_>,
    block: &Block,
    label_name: &str,
) -> Result<String, JobspecError> {
    let mut labels = labels(reader, block, &[label_name])?;
    // `labels` has checked there is exactly one.
    Ok(labels.pop().unwrap_or_default())
}

pub(crate) fn no_labels(reader: &BlockReader<'_, '_>, block: &Block) -> Result<(), JobspecError> {
    labels(reader, block, &[]).map(|_| ())
}

pub(crate) fn value_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

pub(crate) fn value_to_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.fract() == 0.0 && float.abs() < 9e15)
                .map(|float| float as i64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn value_to_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
