//! A group's `volume` requests of type `host` need the node to offer those host volumes.
//!
//! Nomad: `scheduler/feasible.go` `HostVolumeChecker` (metric key "missing compatible host volumes").

use crate::structs::{Node, TaskGroup};

pub const MISSING_HOST_VOLUMES: &str = "missing compatible host volumes";

/// The host volumes a group needs, with whether it needs them writable.
pub fn host_volume_asks(group: &TaskGroup) -> Vec<(String, bool)> {
    group
        .volumes
        .values()
        .filter(|volume| volume.is_host())
        .map(|volume| (volume.source.clone(), !volume.read_only))
        .collect()
}

pub fn node_has_host_volumes(node: &Node, asks: &[(String, bool)]) -> bool {
    asks.iter().all(|(source, writable)| {
        node.host_volumes
            .get(source)
            .is_some_and(|volume| !(*writable && volume.read_only))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{HostVolume, VolumeRequest};

    #[test]
    fn needs_present_and_writable_when_asked() {
        let mut node = Node::default();
        node.host_volumes.insert(
            "certs".to_owned(),
            HostVolume {
                path: "/etc/certs".to_owned(),
                read_only: true,
            },
        );
        let mut group = TaskGroup::default();
        group.volumes.insert(
            "certs".to_owned(),
            VolumeRequest {
                name: "certs".to_owned(),
                volume_type: "host".to_owned(),
                source: "certs".to_owned(),
                read_only: true,
                ..VolumeRequest::default()
            },
        );
        assert!(node_has_host_volumes(&node, &host_volume_asks(&group)));
        if let Some(request) = group.volumes.get_mut("certs") {
            request.read_only = false;
        }
        assert!(!node_has_host_volumes(&node, &host_volume_asks(&group)));
        group.volumes.clear();
        group.volumes.insert(
            "data".to_owned(),
            VolumeRequest {
                source: "data".to_owned(),
                ..VolumeRequest::default()
            },
        );
        assert!(!node_has_host_volumes(&node, &host_volume_asks(&group)));
    }
}
