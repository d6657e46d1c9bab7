//! The group `network` block and its `port "label" { ... }` blocks.
//!
//! A port with `static` becomes a reserved port, one without a dynamic port (Nomad: jobspec2
//! `decodeNetwork`, `api.NetworkResource`).

use hcl::edit::structure::Block;

use super::spec::optional_block;
use super::specs;
use crate::jobspec::body::{BlockReader, Schema, join_path, no_labels, single_label};
use crate::jobspec::error::JobspecError;
use crate::structs::{NetworkResource, Port};

const NETWORK_SCHEMA: Schema<'static> = Schema {
    arguments: &["cidr", "device", "hostname", "ip", "mbits", "mode"],
    blocks: &["cni", "dns", "port", "reserved_ports"],
};

const PORT_SCHEMA: Schema<'static> = Schema {
    arguments: &["host_network", "ignore_collision", "static", "to"],
    blocks: &[],
};

pub(super) fn decode_network(
    group: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<NetworkResource, JobspecError> {
    no_labels(group, block)?;
    let network = group.child(
        block,
        format!("network of {}", group.what),
        join_path(&group.path, "Networks"),
        NETWORK_SCHEMA,
    )?;
    let mut decoded = NetworkResource {
        mode: network.string("mode", "Mode")?.unwrap_or_default(),
        hostname: network.string("hostname", "Hostname")?.unwrap_or_default(),
        mbits: network.int_in("mbits", "MBits")?.unwrap_or(0),
        device: network.string("device", "Device")?.unwrap_or_default(),
        cidr: network.string("cidr", "CIDR")?.unwrap_or_default(),
        ip: network.string("ip", "IP")?.unwrap_or_default(),
        dns: optional_block(&network, "dns", "DNS", &specs::DNS)?,
        cni: optional_block(&network, "cni", "CNI", &specs::CNI)?,
        ..NetworkResource::default()
    };
    // `reserved_ports "<label>" { static = N }` is the HCL1 spelling of a static port.
    let port_blocks = network
        .blocks("port")
        .map(|block| (block, false))
        .chain(network.blocks("reserved_ports").map(|block| (block, true)));
    for (port_block, reserved) in port_blocks {
        let label = single_label(&network, port_block, "label")?;
        let port = network.child(
            port_block,
            format!("port {label:?}"),
            join_path(&network.path, &format!("Ports[{label}]")),
            PORT_SCHEMA,
        )?;
        let static_value: Option<i32> = port.int_in("static", "Static")?;
        let decoded_port = Port {
            value: static_value.unwrap_or(0),
            to: port.int_in("to", "To")?.unwrap_or(0),
            host_network: port
                .string("host_network", "HostNetwork")?
                .unwrap_or_default(),
            ignore_collision: port
                .bool("ignore_collision", "IgnoreCollision")?
                .unwrap_or(false),
            label,
        };
        if static_value.is_some() || reserved {
            decoded.reserved_ports.push(decoded_port);
        } else {
            decoded.dynamic_ports.push(decoded_port);
        }
    }
    Ok(decoded)
}
