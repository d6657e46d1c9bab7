//! `service` blocks of a group or task, with their `check` blocks.

use std::collections::BTreeMap;

use hcl::Value;
use hcl::edit::structure::{Block, Structure};

use crate::jobspec::body::{
    BlockReader, Schema, block_offset, join_path, no_labels, value_to_string,
};
use crate::jobspec::error::JobspecError;
use crate::structs::{Service, ServiceCheck};

const SERVICE_SCHEMA: Schema = Schema {
    arguments: &[
        "address",
        "address_mode",
        "canary_tags",
        "meta",
        "name",
        "on_update",
        "port",
        "provider",
        "tags",
        "task",
    ],
    blocks: &["check", "meta"],
};

const CHECK_SCHEMA: Schema = Schema {
    arguments: &[
        "address_mode",
        "args",
        "command",
        "initial_status",
        "interval",
        "method",
        "name",
        "path",
        "port",
        "protocol",
        "task",
        "timeout",
        "type",
    ],
    blocks: &["header"],
};

/// Decodes the `service` blocks of `parent`; a service without a name is named `default_name`
/// (Nomad: `<job>-<group>` for a group's, `<job>-<group>-<task>` for a task's).
pub(super) fn decode_services(
    parent: &BlockReader<'_, '_>,
    default_name: &str,
) -> Result<Vec<Service>, JobspecError> {
    let mut services = Vec::new();
    for (service_idx, block) in parent.blocks("service").enumerate() {
        no_labels(parent, block)?;
        // Validation names a service by its name; the index keeps two unnamed ones apart here.
        let service = parent.child(
            block,
            format!("service of {}", parent.what),
            join_path(&parent.path, &format!("Services[#{service_idx}]")),
            SERVICE_SCHEMA,
        )?;
        let name = service
            .string("name", "Name")?
            .unwrap_or_else(|| default_name.to_owned());
        parent.decoder.mark(
            &join_path(&parent.path, &format!("Services[{name}]")),
            block_offset(block),
        );
        let mut decoded = Service {
            tags: service.strings("tags", "Tags")?.unwrap_or_default(),
            canary_tags: service
                .strings("canary_tags", "CanaryTags")?
                .unwrap_or_default(),
            port_label: service.string("port", "PortLabel")?.unwrap_or_default(),
            address_mode: service
                .string("address_mode", "AddressMode")?
                .unwrap_or_default(),
            address: service.string("address", "Address")?.unwrap_or_default(),
            provider: service.string("provider", "Provider")?.unwrap_or_default(),
            task_name: service.string("task", "TaskName")?.unwrap_or_default(),
            meta: service.string_map("meta", "Meta")?.unwrap_or_default(),
            on_update: service.string("on_update", "OnUpdate")?.unwrap_or_default(),
            checks: Vec::new(),
            name,
        };
        for check_block in service.blocks("check") {
            decoded
                .checks
                .push(decode_check(&service, check_block, &decoded.name)?);
        }
        services.push(decoded);
    }
    Ok(services)
}

fn decode_check(
    service: &BlockReader<'_, '_>,
    block: &Block,
    service_name: &str,
) -> Result<ServiceCheck, JobspecError> {
    no_labels(service, block)?;
    let check = service.child(
        block,
        format!("check of service {service_name:?}"),
        join_path(&service.path, "Checks"),
        CHECK_SCHEMA,
    )?;
    let name = check
        .string("name", "Name")?
        .unwrap_or_else(|| format!("service: {service_name:?} check"));
    let header = match check.unique_block("header")? {
        Some(header_block) => decode_header(&check, header_block)?,
        None => BTreeMap::new(),
    };
    Ok(ServiceCheck {
        check_type: check.string("type", "Type")?.unwrap_or_default(),
        command: check.string("command", "Command")?.unwrap_or_default(),
        args: check.strings("args", "Args")?.unwrap_or_default(),
        path: check.string("path", "Path")?.unwrap_or_default(),
        protocol: check.string("protocol", "Protocol")?.unwrap_or_default(),
        port_label: check.string("port", "PortLabel")?.unwrap_or_default(),
        address_mode: check
            .string("address_mode", "AddressMode")?
            .unwrap_or_default(),
        interval: check.duration("interval", "Interval")?.unwrap_or_default(),
        timeout: check.duration("timeout", "Timeout")?.unwrap_or_default(),
        method: check.string("method", "Method")?.unwrap_or_default(),
        initial_status: check
            .string("initial_status", "InitialStatus")?
            .unwrap_or_default(),
        task_name: check.string("task", "TaskName")?.unwrap_or_default(),
        header,
        name,
    })
}

/// `header { Authorization = ["Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="] }`: each header a list of values.
fn decode_header(
    check: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<BTreeMap<String, Vec<String>>, JobspecError> {
    no_labels(check, block)?;
    let mut header = BTreeMap::new();
    for structure in block.body.iter() {
        let Structure::Attribute(attribute) = structure else {
            return Err(check.error(
                block_offset(block),
                "header of a check holds only arguments: Name = [\"value\"]",
            ));
        };
        let value = check.decoder.eval.eval(&attribute.value)?;
        let values = match &value {
            Value::Array(items) => items
                .iter()
                .map(value_to_string)
                .collect::<Option<Vec<_>>>(),
            other => value_to_string(other).map(|text| vec![text]),
        };
        let values = values.ok_or_else(|| {
            check.decoder.eval.error(
                &attribute.value,
                format!(
                    "invalid value for header \"{}\" in {}: expected a list of strings",
                    attribute.key.as_str(),
                    check.what
                ),
            )
        })?;
        header.insert(attribute.key.as_str().to_owned(), values);
    }
    Ok(header)
}
