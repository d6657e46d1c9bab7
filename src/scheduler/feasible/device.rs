//! Devices: does the node have the device instances the group's tasks ask for, and which ones
//! does a placement get?
//!
//! Two steps, as Nomad's. The static check ([`DeviceAsk::node_has_devices`], metric key
//! "missing devices") asks whether the node has, for every request, one device group matching
//! its name and constraints with enough **healthy** instances, whatever is in use. The
//! plan-dependent step ([`DeviceAsk::assign`]) picks instances no allocation on the node holds
//! (per the node's usage, which the plan keeps current), the group scoring best on the request's
//! affinities; when none can, the node is exhausted in dimension "devices: <reason>".
//! A request takes all its instances from one group. Unhealthy instances are never given.
//!
//! Nomad: `scheduler/feasible/feasible.go` `DeviceChecker`, `scheduler/feasible/device.go`
//! `deviceAllocator.AssignDevice`, `scheduler/feasible/rank.go` (the "devices" score).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::scheduler::usage::NodeUsage;
use crate::structs::{
    AllocatedDeviceResource, Attribute, Constraint, DeviceIdTuple, Node, NodeDeviceResource,
    TaskGroup,
};

/// The metric key of a node without the devices asked for (Nomad's `FilterConstraintDevices`).
pub const MISSING_DEVICES: &str = "missing devices";
/// The exhausted dimension when the node has no free instances that fit.
pub const NO_DEVICES_MATCH: &str = "devices: no devices match request";
/// The exhausted dimension when the node has no devices at all.
pub const NO_DEVICES_AVAILABLE: &str = "devices: no devices available";

/// One `device` block of one task.
#[derive(Clone, Debug)]
struct DeviceRequest {
    task: String,
    id: DeviceIdTuple,
    count: usize,
    constraints: Vec<Constraint>,
    /// (affinity as a constraint, weight).
    affinities: Vec<(Constraint, f64)>,
}

/// Every device request of a group's tasks.
#[derive(Clone, Debug, Default)]
pub struct DeviceAsk {
    requests: Vec<DeviceRequest>,
}

/// The instances one placement gets, per task, and the device affinity score (Nomad's
/// "devices" scorer: matched weights over the sum of |weights|, `None` without affinities).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceOffer {
    pub tasks: BTreeMap<String, Vec<AllocatedDeviceResource>>,
    pub score: Option<f64>,
}

impl DeviceAsk {
    pub fn of(group: &TaskGroup) -> Self {
        let requests = group
            .tasks
            .iter()
            .flat_map(|task| {
                let devices = task
                    .resources
                    .as_ref()
                    .map_or(&[][..], |resources| &resources.devices[..]);
                devices.iter().map(|device| DeviceRequest {
                    task: task.name.clone(),
                    id: device.id(),
                    count: usize::try_from(device.count()).unwrap_or(usize::MAX),
                    constraints: device.constraints.clone(),
                    affinities: device
                        .affinities
                        .iter()
                        .map(|affinity| {
                            (
                                Constraint {
                                    l_target: affinity.l_target.clone(),
                                    r_target: affinity.r_target.clone(),
                                    operand: affinity.operand.clone(),
                                },
                                f64::from(affinity.weight),
                            )
                        })
                        .collect(),
                })
            })
            .collect();
        Self { requests }
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// The static check: every request has a group of its own with enough healthy instances.
    pub fn node_has_devices(&self, node: &Node) -> bool {
        let groups = &node.node_resources.devices;
        let mut available: Vec<usize> = groups
            .iter()
            .map(|group| group.instances.iter().filter(|i| i.healthy).count())
            .collect();
        'requests: for request in &self.requests {
            for (group, left) in groups.iter().zip(available.iter_mut()) {
                if *left >= request.count && request.admits(group) {
                    *left -= request.count;
                    continue 'requests;
                }
            }
            return false;
        }
        true
    }

    /// Picks free healthy instances for every request, or the exhausted dimension.
    pub fn assign(&self, node: &Node, usage: &NodeUsage) -> Result<DeviceOffer, &'static str> {
        let groups = &node.node_resources.devices;
        if groups.is_empty() {
            return Err(NO_DEVICES_AVAILABLE);
        }
        let mut taken: BTreeSet<(usize, &str)> = BTreeSet::new();
        let mut offer = DeviceOffer::default();
        let (mut matched_weights, mut total_weights) = (0.0, 0.0);
        for request in &self.requests {
            let mut best: Option<(f64, f64, usize, Vec<&str>)> = None;
            for (group_idx, group) in groups.iter().enumerate() {
                if !request.admits(group) {
                    continue;
                }
                let group_id = group.id();
                let free: Vec<&str> = group
                    .instances
                    .iter()
                    .filter(|instance| {
                        instance.healthy
                            && !usage.device_in_use(&group_id, &instance.id)
                            && !taken.contains(&(group_idx, instance.id.as_str()))
                    })
                    .map(|instance| instance.id.as_str())
                    .take(request.count)
                    .collect();
                if free.len() < request.count {
                    continue;
                }
                let (score, matched) = request.affinity_score(group);
                if best
                    .as_ref()
                    .is_none_or(|(best_score, ..)| score > *best_score)
                {
                    best = Some((score, matched, group_idx, free));
                }
            }
            let Some((_, matched, group_idx, ids)) = best else {
                return Err(NO_DEVICES_MATCH);
            };
            let group = &groups[group_idx];
            taken.extend(ids.iter().map(|id| (group_idx, *id)));
            matched_weights += matched;
            total_weights += request
                .affinities
                .iter()
                .map(|(_, weight)| weight.abs())
                .sum::<f64>();
            offer
                .tasks
                .entry(request.task.clone())
                .or_default()
                .push(AllocatedDeviceResource {
                    vendor: group.vendor.clone(),
                    device_type: group.device_type.clone(),
                    name: group.name.clone(),
                    device_ids: ids.into_iter().map(str::to_owned).collect(),
                });
        }
        offer.score = (total_weights != 0.0).then(|| matched_weights / total_weights);
        Ok(offer)
    }
}

impl DeviceRequest {
    /// True if `group` is the device named and meets every constraint.
    fn admits(&self, group: &NodeDeviceResource) -> bool {
        group.id().matches(&self.id)
            && self
                .constraints
                .iter()
                .all(|constraint| device_constraint_holds(group, constraint))
    }

    /// (matched weights over the sum of |weights|, matched weights) of the request's affinities.
    fn affinity_score(&self, group: &NodeDeviceResource) -> (f64, f64) {
        let total: f64 = self.affinities.iter().map(|(_, weight)| weight.abs()).sum();
        if total == 0.0 {
            return (0.0, 0.0);
        }
        let matched: f64 = self
            .affinities
            .iter()
            .filter(|(affinity, _)| device_constraint_holds(group, affinity))
            .map(|(_, weight)| weight)
            .sum();
        (matched / total, matched)
    }
}

/// Checks one constraint of a device request against a device group (Nomad's
/// `checkAttributeConstraint`): order and equality compare typed values with units; the string
/// operators read the values as text.
pub fn device_constraint_holds(group: &NodeDeviceResource, constraint: &Constraint) -> bool {
    let left = group.resolve_target(&constraint.l_target);
    let right = group.resolve_target(&constraint.r_target);
    let operand = constraint.operand.as_str();
    match operand {
        "is_set" => return left.is_some(),
        "is_not_set" => return left.is_none(),
        _ => {}
    }
    let (Some(left), Some(right)) = (left, right) else {
        return false;
    };
    let ordering = || left.compare(&right);
    match operand {
        "=" | "==" | "is" => ordering() == Some(Ordering::Equal),
        "!=" | "not" => ordering().is_some_and(|ordering| ordering != Ordering::Equal),
        "<" => ordering() == Some(Ordering::Less),
        "<=" => matches!(ordering(), Some(Ordering::Less | Ordering::Equal)),
        ">" => ordering() == Some(Ordering::Greater),
        ">=" => matches!(ordering(), Some(Ordering::Greater | Ordering::Equal)),
        _ => super::constraint::check_constraint(operand, Some(&text(&left)), Some(&text(&right))),
    }
}

/// An attribute as text for the string operators (regexp, version, set_contains...).
fn text(attribute: &Attribute) -> String {
    attribute.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{
        Affinity, AllocatedResources, AllocatedTaskResources, Allocation, NodeDevice,
        RequestedDevice, Resources, Task,
    };

    fn group(vendor: &str, name: &str, ids: &[(&str, bool)], memory: &str) -> NodeDeviceResource {
        let mut group = NodeDeviceResource {
            vendor: vendor.to_owned(),
            device_type: "gpu".to_owned(),
            name: name.to_owned(),
            instances: ids
                .iter()
                .map(|(id, healthy)| NodeDevice {
                    id: (*id).to_owned(),
                    healthy: *healthy,
                    ..NodeDevice::default()
                })
                .collect(),
            ..NodeDeviceResource::default()
        };
        group
            .attributes
            .insert("memory".to_owned(), Attribute::parse(memory));
        group
    }

    fn node(groups: Vec<NodeDeviceResource>) -> Node {
        let mut node = Node::default();
        node.node_resources.devices = groups;
        node
    }

    fn constraint(left: &str, operand: &str, right: &str) -> Constraint {
        Constraint {
            l_target: left.to_owned(),
            operand: operand.to_owned(),
            r_target: right.to_owned(),
        }
    }

    fn task_group(devices: Vec<RequestedDevice>) -> TaskGroup {
        TaskGroup {
            name: "train".to_owned(),
            tasks: vec![Task {
                name: "trainer".to_owned(),
                resources: Some(Resources {
                    devices,
                    ..Resources::default()
                }),
                ..Task::default()
            }],
            ..TaskGroup::default()
        }
    }

    fn request(name: &str, count: u64) -> RequestedDevice {
        RequestedDevice {
            name: name.to_owned(),
            count: Some(count),
            ..RequestedDevice::default()
        }
    }

    fn ids(offer: &DeviceOffer) -> Vec<String> {
        offer
            .tasks
            .values()
            .flatten()
            .flat_map(|device| device.device_ids.iter().cloned())
            .collect()
    }

    #[test]
    fn static_check_counts_healthy_instances_of_one_matching_group() {
        let node = node(vec![
            group(
                "acme",
                "sim-80g",
                &[("a", true), ("b", true), ("c", false)],
                "80 GiB",
            ),
            group("acme", "sim-16g", &[("d", true)], "16 GiB"),
        ]);
        let has = |devices| DeviceAsk::of(&task_group(devices)).node_has_devices(&node);
        assert!(has(vec![request("gpu", 2)]));
        assert!(has(vec![request("acme/gpu/sim-80g", 2)]));
        assert!(!has(vec![request("acme/gpu/sim-80g", 3)]), "c is unhealthy");
        assert!(!has(vec![request("gpu", 4)]), "one request takes one group");
        assert!(has(vec![request("gpu", 2), request("gpu", 1)]));
        assert!(!has(vec![request("gpu", 2), request("gpu", 2)]));
        assert!(!has(vec![request("fpga", 1)]));
        assert!(!has(vec![request("other/gpu", 1)]));
        let mut big = request("gpu", 1);
        big.constraints = vec![constraint("${device.attr.memory}", ">=", "40 GiB")];
        assert!(has(vec![big.clone()]));
        big.count = Some(3);
        assert!(
            !has(vec![big]),
            "only the 80 GiB group qualifies, with 2 healthy"
        );
        assert!(DeviceAsk::of(&task_group(Vec::new())).node_has_devices(&Node::default()));
    }

    #[test]
    fn assignment_skips_instances_in_use_and_unhealthy_ones() {
        let node = node(vec![group(
            "acme",
            "sim-80g",
            &[("a", false), ("b", true), ("c", true), ("d", true)],
            "80 GiB",
        )]);
        let ask = DeviceAsk::of(&task_group(vec![request("acme/gpu", 2)]));
        let mut usage = NodeUsage::default();
        let offer = ask.assign(&node, &usage).expect("b and c are free");
        assert_eq!(ids(&offer), ["b", "c"]);
        assert_eq!(offer.score, None);
        let placed = Allocation {
            allocated_resources: AllocatedResources {
                tasks: [(
                    "trainer".to_owned(),
                    AllocatedTaskResources {
                        devices: offer.tasks["trainer"].clone(),
                        ..AllocatedTaskResources::default()
                    },
                )]
                .into(),
                ..AllocatedResources::default()
            },
            ..Allocation::default()
        };
        usage.add(&placed);
        assert_eq!(
            ask.assign(&node, &usage),
            Err(NO_DEVICES_MATCH),
            "only d is left"
        );
        let one = DeviceAsk::of(&task_group(vec![request("gpu", 1)]));
        assert_eq!(ids(&one.assign(&node, &usage).expect("d")), ["d"]);
        usage.remove(&placed);
        assert!(ask.assign(&node, &usage).is_ok());
        assert_eq!(
            ask.assign(&Node::default(), &usage),
            Err(NO_DEVICES_AVAILABLE)
        );
    }

    #[test]
    fn two_requests_of_one_allocation_get_distinct_instances() {
        let node = node(vec![group(
            "acme",
            "sim",
            &[("a", true), ("b", true)],
            "8 GiB",
        )]);
        let ask = DeviceAsk::of(&task_group(vec![request("gpu", 1), request("gpu", 1)]));
        let offer = ask
            .assign(&node, &NodeUsage::default())
            .expect("two instances");
        assert_eq!(ids(&offer), ["a", "b"]);
    }

    #[test]
    fn affinities_choose_the_group_and_score_it() {
        let node = node(vec![
            group("acme", "sim-16g", &[("small", true)], "16384 MiB"),
            group("acme", "sim-80g", &[("big", true)], "80 GiB"),
        ]);
        let mut wanting_memory = request("gpu", 1);
        wanting_memory.affinities = vec![Affinity {
            l_target: "${device.attr.memory}".to_owned(),
            operand: ">=".to_owned(),
            r_target: "40 GiB".to_owned(),
            weight: 50,
        }];
        let ask = DeviceAsk::of(&task_group(vec![wanting_memory.clone()]));
        let offer = ask.assign(&node, &NodeUsage::default()).expect("assigned");
        assert_eq!(ids(&offer), ["big"]);
        assert_eq!(offer.score, Some(1.0));
        wanting_memory.affinities[0].weight = -50;
        let ask = DeviceAsk::of(&task_group(vec![wanting_memory]));
        let offer = ask.assign(&node, &NodeUsage::default()).expect("assigned");
        assert_eq!(ids(&offer), ["small"]);
        assert_eq!(offer.score, Some(0.0));
    }

    #[test]
    fn constraints_compare_units_and_text() {
        let device = group("nvidia", "NVIDIA H200", &[("GPU-1", true)], "143771 MiB");
        let holds = |l, op, r| device_constraint_holds(&device, &constraint(l, op, r));
        assert!(holds("${device.attr.memory}", ">=", "40 GiB"));
        assert!(!holds("${device.attr.memory}", ">=", "141 GiB"));
        assert!(holds("${device.attr.memory}", "<", "141 GiB"));
        assert!(holds("${device.attr.memory}", ">", "140 GiB"));
        assert!(holds("${device.attr.memory}", "=", "143771 MiB"));
        assert!(holds("${device.attr.memory}", "!=", "80 GiB"));
        assert!(
            !holds("${device.attr.memory}", ">=", "40"),
            "unit on one side only"
        );
        assert!(
            !holds("${device.attr.power}", "<", "700 W"),
            "attribute missing"
        );
        assert!(holds("${device.attr.power}", "is_not_set", ""));
        assert!(holds("${device.attr.memory}", "is_set", ""));
        assert!(holds("${device.model}", "regexp", "H[12]00"));
        assert!(holds("${device.model}", "=", "NVIDIA H200"));
        assert!(holds("${device.vendor}", "=", "nvidia"));
        assert!(holds("${device.ids}", "set_contains", "GPU-1"));
    }
}
