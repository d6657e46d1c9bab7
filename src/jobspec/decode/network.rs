//! The group `network` block and its `port "label" { ... }` blocks.
//!
//! A port with `static` becomes a reserved port, one without a dynamic port (Nomad: jobspec2
//! `decodeNetwork`, `api.NetworkResource`).

use hcl::edit::structure::Block;

use crate::jobspec::body::{BlockReader, Schema, join_path, no_labels, single_label};
use crate::jobspec::error::JobspecError;
use crate::structs::{NetworkResource, Port};

const NETWORK_SCHEMA: Schema = Schema {
    arguments: &["hostname", "mbits", "mode"],
    blocks: &["port"],
};

const PORT_SCHEMA: Schema = Schema {
    arguments: &["host_network", "static", "to"],
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
        ..NetworkResource::default()
    };
    for port_block in network.blocks("port") {
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
            label,
        };
        if static_value.is_some() {
            decoded.reserved_ports.push(decoded_port);
        } else {
            decoded.dynamic_ports.push(decoded_port);
        }
    }
    Ok(decoded)
}
