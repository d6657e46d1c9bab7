//! `service` blocks of a group or task, with their `check` blocks.

use std::collections::BTreeMap;

use hcl::Value;
use hcl::edit::structure::{Block, Structure};

use super::spec::optional_block;
use super::specs;
use super::task::decode_identity;
use crate::jobspec::body::{
    BlockReader, Schema, block_offset, join_path, no_labels, value_to_string,
};
use crate::jobspec::error::JobspecError;
use crate::structs::{CheckRestart, Service, ServiceCheck};

const SERVICE_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "address",
        "address_mode",
        "canary_meta",
        "canary_tags",
        "cluster",
        "enable_tag_override",
        "kind",
        "meta",
        "name",
        "on_update",
        "port",
        "provider",
        "tagged_addresses",
        "tags",
        "task",
    ],
    blocks: &[
        "canary_meta",
        "check",
        "check_restart",
        "connect",
        "identity",
        "meta",
        "tagged_addresses",
        "weights",
    ],
};

const CHECK_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "address_mode",
        "advertise",
        "args",
        "body",
        "command",
        "expose",
        "failures_before_critical",
        "failures_before_warning",
        "grpc_service",
        "grpc_use_tls",
        "initial_status",
        "interval",
        "method",
        "name",
        "notes",
        "on_update",
        "path",
        "port",
        "protocol",
        "success_before_passing",
        "task",
        "timeout",
        "tls_server_name",
        "tls_skip_verify",
        "type",
    ],
    blocks: &["check_restart", "header"],
};

const CHECK_RESTART_SCHEMA: Schema<'static> = Schema {
    arguments: &["grace", "ignore_warnings", "limit"],
    blocks: &[],
};

/// Decodes the `service` blocks of `parent`; a service without a name is named `default_name`
/// (Nomad: `<job>-<group>` for a group's, `<job>-<group>-<task>` for a task's).
pub(super) fn decode_services(
    parent: &BlockReader<'_, '_>,
    default_name: &str,
) -> Result<Vec<Service>, JobspecError> {
    let mut services = Vec::new();
    for block in parent.blocks("service") {
        no_labels(parent, block)?;
        // Validation names a service by its name, so the path must use it too.
        let path_name =
            peek_string(parent, block, "name").unwrap_or_else(|| default_name.to_owned());
        let service = parent.child(
            block,
            format!("service of {}", parent.what),
            join_path(&parent.path, &format!("Services[{path_name}]")),
            SERVICE_SCHEMA,
        )?;
        let name = service
            .string("name", "Name")?
            .unwrap_or_else(|| default_name.to_owned());
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
            check_restart: decode_check_restart(&service)?,
            checks: Vec::new(),
            enable_tag_override: service
                .bool("enable_tag_override", "EnableTagOverride")?
                .unwrap_or(false),
            canary_meta: service
                .string_map("canary_meta", "CanaryMeta")?
                .unwrap_or_default(),
            tagged_addresses: service
                .string_map("tagged_addresses", "TaggedAddresses")?
                .unwrap_or_default(),
            connect: optional_block(&service, "connect", "Connect", &specs::CONNECT)?,
            identity: match service.unique_block("identity")? {
                Some(identity_block) => Some(decode_identity(&service, identity_block)?),
                None => None,
            },
            weights: optional_block(&service, "weights", "Weights", &specs::SERVICE_WEIGHTS)?,
            cluster: service.string("cluster", "Cluster")?.unwrap_or_default(),
            kind: service.string("kind", "Kind")?.unwrap_or_default(),
            name,
        };
        for check_block in service.blocks("check") {
            let mut check = decode_check(&service, check_block, &decoded.name)?;
            // Nomad: a service's check_restart is the default of each of its checks.
            if check.check_restart.is_none() {
                check.check_restart = decoded.check_restart.clone();
            }
            decoded.checks.push(check);
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
    let default_name = format!("service: {service_name:?} check");
    let path_name = peek_string(service, block, "name").unwrap_or_else(|| default_name.clone());
    let check = service.child(
        block,
        format!("check of service {service_name:?}"),
        join_path(&service.path, &format!("Checks[{path_name}]")),
        CHECK_SCHEMA,
    )?;
    let name = check.string("name", "Name")?.unwrap_or(default_name);
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
        check_restart: decode_check_restart(&check)?,
        header,
        expose: check.bool("expose", "Expose")?.unwrap_or(false),
        advertise: check.string("advertise", "Advertise")?.unwrap_or_default(),
        notes: check.string("notes", "Notes")?.unwrap_or_default(),
        tls_server_name: check
            .string("tls_server_name", "TLSServerName")?
            .unwrap_or_default(),
        tls_skip_verify: check
            .bool("tls_skip_verify", "TLSSkipVerify")?
            .unwrap_or(false),
        grpc_service: check
            .string("grpc_service", "GRPCService")?
            .unwrap_or_default(),
        grpc_use_tls: check.bool("grpc_use_tls", "GRPCUseTLS")?.unwrap_or(false),
        success_before_passing: check
            .int_in("success_before_passing", "SuccessBeforePassing")?
            .unwrap_or(0),
        failures_before_critical: check
            .int_in("failures_before_critical", "FailuresBeforeCritical")?
            .unwrap_or(0),
        failures_before_warning: check
            .int_in("failures_before_warning", "FailuresBeforeWarning")?
            .unwrap_or(0),
        body: check.string("body", "Body")?.unwrap_or_default(),
        on_update: check.string("on_update", "OnUpdate")?.unwrap_or_default(),
        name,
    })
}

/// The string value of argument `name` of `block`, if it evaluates to one; errors are left for
/// the block's reader to report in context.
fn peek_string(parent: &BlockReader<'_, '_>, block: &Block, name: &str) -> Option<String> {
    let attribute = block.body.get_attribute(name)?;
    let value = parent.decoder.eval.eval(&attribute.value).ok()?;
    value_to_string(&value)
}

fn decode_check_restart(
    parent: &BlockReader<'_, '_>,
) -> Result<Option<CheckRestart>, JobspecError> {
    let Some(block) = parent.unique_block("check_restart")? else {
        return Ok(None);
    };
    no_labels(parent, block)?;
    let check_restart = parent.child(
        block,
        format!("check_restart of {}", parent.what),
        join_path(&parent.path, "CheckRestart"),
        CHECK_RESTART_SCHEMA,
    )?;
    Ok(Some(CheckRestart {
        limit: check_restart.int_in("limit", "Limit")?.unwrap_or(0),
        grace: check_restart
            .duration("grace", "Grace")?
            .unwrap_or_default(),
        ignore_warnings: check_restart
            .bool("ignore_warnings", "IgnoreWarnings")?
            .unwrap_or(false),
    }))
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
