//! A group's `volume` requests of type `host` need the node to offer those host volumes.
//!
//! Nomad: `scheduler/feasible.go` `HostVolumeChecker` (metric key "missing compatible host volumes").

use crate::structs::{Node, TaskGroup, VolumeRequest};

pub const MISSING_HOST_VOLUMES: &str = "missing compatible host volumes";

/// One host volume a group needs, and whether it needs it writable.
#[derive(Clone, Debug)]
pub struct HostVolumeAsk {
    request: VolumeRequest,
    writable: bool,
}

/// The host volumes a group needs: those every allocation shares, checked once per node, and the
/// `per_alloc` ones, which name a different node volume for each allocation (`data[0]`,
/// `data[1]`...) and are checked per placement.
#[derive(Clone, Debug, Default)]
pub struct HostVolumeAsks {
    shared: Vec<HostVolumeAsk>,
    per_alloc: Vec<HostVolumeAsk>,
}

impl HostVolumeAsks {
    pub fn of(group: &TaskGroup) -> Self {
        let (per_alloc, shared) = group
            .volumes
            .values()
            .filter(|volume| volume.is_host())
            .map(|volume| HostVolumeAsk {
                request: volume.clone(),
                writable: !volume.read_only,
            })
            .partition(|ask| ask.request.per_alloc);
        Self { shared, per_alloc }
    }

    /// True if the node offers every volume all of the group's allocations share.
    pub fn node_has_shared(&self, node: &Node) -> bool {
        node_offers(node, &self.shared, "")
    }

    /// True if the node offers the `per_alloc` volumes of the allocation named `alloc_name`.
    pub fn node_has_per_alloc(&self, node: &Node, alloc_name: &str) -> bool {
        node_offers(node, &self.per_alloc, alloc_name)
    }
}

fn node_offers(node: &Node, asks: &[HostVolumeAsk], alloc_name: &str) -> bool {
    asks.iter().all(|ask| {
        node.host_volumes
            .get(&ask.request.host_source(alloc_name))
            .is_some_and(|volume| !(ask.writable && volume.read_only))
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
        assert!(HostVolumeAsks::of(&group).node_has_shared(&node));
        if let Some(request) = group.volumes.get_mut("certs") {
            request.read_only = false;
        }
        assert!(!HostVolumeAsks::of(&group).node_has_shared(&node));
        group.volumes.clear();
        group.volumes.insert(
            "data".to_owned(),
            VolumeRequest {
                source: "data".to_owned(),
                ..VolumeRequest::default()
            },
        );
        assert!(!HostVolumeAsks::of(&group).node_has_shared(&node));
    }

    #[test]
    fn per_alloc_volumes_are_the_allocations_own() {
        let mut node = Node::default();
        for name in ["data[0]", "data[2]"] {
            node.host_volumes.insert(
                name.to_owned(),
                HostVolume {
                    path: format!("/srv/{name}"),
                    read_only: false,
                },
            );
        }
        let mut group = TaskGroup::default();
        group.volumes.insert(
            "data".to_owned(),
            VolumeRequest {
                name: "data".to_owned(),
                source: "data".to_owned(),
                per_alloc: true,
                ..VolumeRequest::default()
            },
        );
        let asks = HostVolumeAsks::of(&group);
        // The node has no volume named plainly "data": that is not what a per_alloc group needs.
        assert!(asks.node_has_shared(&node));
        assert!(asks.node_has_per_alloc(&node, "web.cache[0]"));
        assert!(!asks.node_has_per_alloc(&node, "web.cache[1]"));
        assert!(asks.node_has_per_alloc(&node, "web.cache[2]"));
    }
}
