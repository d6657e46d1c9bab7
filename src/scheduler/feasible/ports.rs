//! Host ports: static ports must be free, dynamic ports are chosen from the node's dynamic range.
//!
//! Dynamic ports are drawn at random (from the evaluation's seeded generator, so deterministic)
//! and, after a few collisions, by scanning the range, as Nomad's `NetworkIndex` does.
//!
//! Nomad: `nomad/structs/network.go` `AssignPorts`, `getDynamicPortsStochastic`,
//! `getDynamicPortsPrecise`.

use crate::scheduler::seed::SeededRng;
use crate::scheduler::usage::{NodeCapacity, NodeUsage};
use crate::structs::{AllocatedPort, NetworkResource, Port, TaskGroup};

pub const PORT_COLLISION: &str = "network: port collision";
pub const RESERVED_PORT_COLLISION: &str = "network: reserved port collision";
pub const DYNAMIC_PORTS_EXHAUSTED: &str = "network: dynamic port selection failed";

const RANDOM_PORT_ATTEMPTS: usize = 20;

/// The ports one allocation of a group needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortAsk {
    /// The group's network block, if any (mode, and ports as asked).
    pub network: Option<NetworkResource>,
    pub static_ports: Vec<Port>,
    pub dynamic_ports: Vec<Port>,
}

impl PortAsk {
    pub fn of(group: &TaskGroup) -> Self {
        let network = group.networks.first().cloned();
        let (static_ports, dynamic_ports) = network
            .as_ref()
            .map(|network| {
                (
                    network.reserved_ports.clone(),
                    network.dynamic_ports.clone(),
                )
            })
            .unwrap_or_default();
        Self {
            network,
            static_ports,
            dynamic_ports,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.static_ports.is_empty() && self.dynamic_ports.is_empty()
    }
}

/// Checks, without choosing, that the node can give `ask` its ports: static ports free, and enough
/// free ports in the dynamic range. [`assign_ports`] then succeeds on the same node and usage.
pub fn check_ports(
    ask: &PortAsk,
    capacity: &NodeCapacity,
    usage: &NodeUsage,
) -> Result<(), &'static str> {
    for (idx, port) in ask.static_ports.iter().enumerate() {
        let Ok(value) = u16::try_from(port.value) else {
            return Err(RESERVED_PORT_COLLISION);
        };
        if capacity.is_reserved(value) {
            return Err(RESERVED_PORT_COLLISION);
        }
        if usage.port_in_use(value)
            || ask.static_ports[..idx]
                .iter()
                .any(|earlier| earlier.value == port.value)
        {
            return Err(PORT_COLLISION);
        }
    }
    if ask.dynamic_ports.is_empty() {
        return Ok(());
    }
    let (low, high) = (capacity.min_dynamic_port, capacity.max_dynamic_port);
    let in_range = |value: u16| (low..=high).contains(&value);
    let mut taken = 0usize;
    let mut last = None;
    for value in usage.ports.iter().copied().filter(|value| in_range(*value)) {
        if last != Some(value) {
            taken += 1;
            last = Some(value);
        }
    }
    taken += capacity
        .reserved_ports
        .iter()
        .filter(|value| in_range(**value) && !usage.port_in_use(**value))
        .count();
    taken += ask
        .static_ports
        .iter()
        .filter_map(|port| u16::try_from(port.value).ok())
        .filter(|value| in_range(*value))
        .count();
    let span = usize::from(high - low) + 1;
    if span.saturating_sub(taken) < ask.dynamic_ports.len() {
        return Err(DYNAMIC_PORTS_EXHAUSTED);
    }
    Ok(())
}

/// Picks host ports for `ask` on a node, static ports first, in the order asked.
pub fn assign_ports(
    ask: &PortAsk,
    capacity: &NodeCapacity,
    usage: &NodeUsage,
    host_ip: &str,
    rng: &mut SeededRng,
) -> Result<Vec<AllocatedPort>, &'static str> {
    let mut assigned = Vec::with_capacity(ask.static_ports.len() + ask.dynamic_ports.len());
    let mut taken: Vec<u16> = Vec::with_capacity(assigned.capacity());
    for port in &ask.static_ports {
        let Ok(value) = u16::try_from(port.value) else {
            return Err(RESERVED_PORT_COLLISION);
        };
        if capacity.is_reserved(value) {
            return Err(RESERVED_PORT_COLLISION);
        }
        if usage.port_in_use(value) || taken.contains(&value) {
            return Err(PORT_COLLISION);
        }
        taken.push(value);
        assigned.push(AllocatedPort::from((port, host_ip)));
    }
    let (low, high) = (capacity.min_dynamic_port, capacity.max_dynamic_port);
    let is_free = |value: u16, taken: &[u16]| {
        !usage.port_in_use(value) && !capacity.is_reserved(value) && !taken.contains(&value)
    };
    for port in &ask.dynamic_ports {
        let span = u64::from(high - low) + 1;
        let mut chosen = None;
        for _ in 0..RANDOM_PORT_ATTEMPTS {
            let candidate = low + rng.below(span) as u16;
            if is_free(candidate, &taken) {
                chosen = Some(candidate);
                break;
            }
        }
        if chosen.is_none() {
            chosen = (low..=high).find(|candidate| is_free(*candidate, &taken));
        }
        let Some(value) = chosen else {
            return Err(DYNAMIC_PORTS_EXHAUSTED);
        };
        taken.push(value);
        let mut allocated = AllocatedPort::from((port, host_ip));
        allocated.value = i32::from(value);
        if allocated.to == 0 {
            allocated.to = i32::from(value);
        }
        assigned.push(allocated);
    }
    Ok(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(label: &str, value: i32) -> Port {
        Port {
            label: label.to_owned(),
            value,
            ..Port::default()
        }
    }

    fn capacity() -> NodeCapacity {
        NodeCapacity {
            min_dynamic_port: 20000,
            max_dynamic_port: 20004,
            reserved_ports: vec![22, 20001],
            ..NodeCapacity::default()
        }
    }

    #[test]
    fn static_ports_must_be_free() {
        let usage = NodeUsage {
            ports: vec![8080],
            ..NodeUsage::default()
        };
        let mut rng = SeededRng::from_bytes(b"seed");
        let ask = |value| PortAsk {
            static_ports: vec![port("http", value)],
            ..PortAsk::default()
        };
        let assigned =
            assign_ports(&ask(80), &capacity(), &usage, "10.0.0.1", &mut rng).expect("80 is free");
        assert_eq!(assigned[0].value, 80);
        assert_eq!(assigned[0].host_ip, "10.0.0.1");
        assert_eq!(
            assign_ports(&ask(8080), &capacity(), &usage, "10.0.0.1", &mut rng),
            Err(PORT_COLLISION)
        );
        assert_eq!(
            assign_ports(&ask(22), &capacity(), &usage, "10.0.0.1", &mut rng),
            Err(RESERVED_PORT_COLLISION)
        );
        assert_eq!(
            check_ports(&ask(8080), &capacity(), &usage),
            Err(PORT_COLLISION)
        );
        assert_eq!(
            check_ports(&ask(22), &capacity(), &usage),
            Err(RESERVED_PORT_COLLISION)
        );
    }

    #[test]
    fn dynamic_ports_avoid_everything_taken() {
        let usage = NodeUsage {
            ports: vec![20000, 20003],
            ..NodeUsage::default()
        };
        let mut rng = SeededRng::from_bytes(b"seed");
        let ask = PortAsk {
            static_ports: vec![port("admin", 20002)],
            dynamic_ports: vec![port("http", 0)],
            ..PortAsk::default()
        };
        for _ in 0..50 {
            let assigned =
                assign_ports(&ask, &capacity(), &usage, "10.0.0.1", &mut rng).expect("20004 left");
            assert_eq!(assigned[1].value, 20004);
            assert_eq!(assigned[1].to, 20004);
        }
        let two = PortAsk {
            dynamic_ports: vec![port("a", 0), port("b", 0), port("c", 0)],
            ..PortAsk::default()
        };
        assert_eq!(
            assign_ports(&two, &capacity(), &usage, "10.0.0.1", &mut rng),
            Err(DYNAMIC_PORTS_EXHAUSTED)
        );
        assert_eq!(
            check_ports(&two, &capacity(), &usage),
            Err(DYNAMIC_PORTS_EXHAUSTED)
        );
        assert_eq!(check_ports(&ask, &capacity(), &usage), Ok(()));
    }
}
