//! The task `config` block: free-form, checked by the driver, not here.
//!
//! Arguments become JSON values; nested blocks become lists of objects, as Nomad's HCL1 heritage
//! has them (`mount { ... } mount { ... }` is `"mount": [{...}, {...}]`), and a labelled block
//! nests its body under its labels (`auth "x" { ... }` is `"auth": [{"x": {...}}]`).

use hcl::edit::structure::{Block, Body, Structure};

use crate::jobspec::body::{BlockReader, no_labels};
use crate::jobspec::error::JobspecError;
use crate::jobspec::eval::Evaluator;

type JsonMap = serde_json::Map<String, serde_json::Value>;

pub(super) fn decode_config(
    task: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<JsonMap, JobspecError> {
    no_labels(task, block)?;
    task.decoder.mark(
        &crate::jobspec::body::join_path(&task.path, "Config"),
        crate::jobspec::body::block_offset(block),
    );
    body_to_json(&task.decoder.eval, &block.body)
}

pub(super) fn body_to_json(eval: &Evaluator<'_>, body: &Body) -> Result<JsonMap, JobspecError> {
    let mut map = JsonMap::new();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attribute) => {
                let value = eval.eval(&attribute.value)?;
                let json = serde_json::to_value(&value).map_err(|error| {
                    eval.error(&attribute.value, format!("cannot represent value: {error}"))
                })?;
                map.insert(attribute.key.as_str().to_owned(), json);
            }
            Structure::Block(inner) => {
                let mut object = serde_json::Value::Object(body_to_json(eval, &inner.body)?);
                for label in inner.labels.iter().rev() {
                    let mut labelled = JsonMap::new();
                    labelled.insert(label.as_str().to_owned(), object);
                    object = serde_json::Value::Object(labelled);
                }
                let entry = map
                    .entry(inner.ident.as_str().to_owned())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                match entry {
                    serde_json::Value::Array(items) => items.push(object),
                    other => *other = serde_json::Value::Array(vec![other.take(), object]),
                }
            }
        }
    }
    Ok(map)
}
