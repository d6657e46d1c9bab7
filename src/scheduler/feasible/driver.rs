//! Every task's driver must be detected and healthy on the node.
//!
//! Nomad: `scheduler/feasible.go` `DriverChecker` (metric key "missing drivers").

use crate::structs::Node;

pub const MISSING_DRIVERS: &str = "missing drivers";

pub fn node_has_drivers(node: &Node, drivers: &[String]) -> bool {
    drivers.iter().all(|driver| {
        node.has_healthy_driver(driver)
            // Nodes that fingerprinted drivers as attributes only (older clients).
            || (!node.drivers.contains_key(driver)
                && node
                    .attributes
                    .get(&format!("driver.{driver}"))
                    .is_some_and(|value| matches!(value.as_str(), "1" | "true")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::DriverInfo;

    #[test]
    fn detected_and_healthy() {
        let mut node = Node::default();
        let info = |detected, healthy| DriverInfo {
            detected,
            healthy,
            ..DriverInfo::default()
        };
        node.drivers.insert("wasm".to_owned(), info(true, true));
        node.drivers.insert("docker".to_owned(), info(true, false));
        node.drivers.insert("qemu".to_owned(), info(false, false));
        node.attributes
            .insert("driver.raw_exec".to_owned(), "1".to_owned());
        let cases = [
            (vec!["wasm"], true),
            (vec!["wasm", "docker"], false),
            (vec!["qemu"], false),
            (vec!["exec"], false),
            (vec!["raw_exec", "wasm"], true),
            (vec![], true),
        ];
        for (drivers, expected) in cases {
            let drivers: Vec<String> = drivers.into_iter().map(str::to_owned).collect();
            assert_eq!(node_has_drivers(&node, &drivers), expected, "{drivers:?}");
        }
    }
}
