//! Devices: GPUs and the like. What a node offers (fingerprinted by device plugins), what a task
//! asks for (`device "vendor/type/name" { count constraint affinity }`) and what an allocation was
//! given (instance IDs).
//!
//! A device group is one (vendor, type, name) with its instances and attributes; a request names
//! a group as `type`, `vendor/type` or `vendor/type/name`, the missing parts matching anything.
//! Constraints and affinities of a request read `${device.ids}`, `${device.vendor}`,
//! `${device.type}`, `${device.model}` and `${device.attr.<name>}` of a group.
//!
//! Nomad: `nomad/structs/structs.go` `RequestedDevice`, `DeviceIdTuple`, `NodeDeviceResource`,
//! `AllocatedDeviceResource`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::validation::ValidationErrors;
use super::{Affinity, Attribute, Constraint, nullable};

/// `device "<name>"` block of a task's resources (Nomad: `RequestedDevice`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestedDevice {
    pub name: String,
    /// How many instances; unset is one (Nomad's `api.RequestedDevice.Canonicalize`).
    pub count: Option<u64>,
    #[serde(deserialize_with = "nullable::default")]
    pub constraints: Vec<Constraint>,
    #[serde(deserialize_with = "nullable::default")]
    pub affinities: Vec<Affinity>,
}

impl RequestedDevice {
    /// The most instances one request may ask for.
    pub const MAX_COUNT: u64 = 1024;

    pub fn count(&self) -> u64 {
        self.count.unwrap_or(1)
    }

    /// The group name the request matches (Nomad's `RequestedDevice.ID`).
    pub fn id(&self) -> DeviceIdTuple {
        let mut parts = self.name.splitn(3, '/');
        let first = parts.next().unwrap_or_default().to_owned();
        match (parts.next(), parts.next()) {
            (None, _) => DeviceIdTuple {
                device_type: first,
                ..DeviceIdTuple::default()
            },
            (Some(device_type), None) => DeviceIdTuple {
                vendor: first,
                device_type: device_type.to_owned(),
                name: String::new(),
            },
            (Some(device_type), Some(name)) => DeviceIdTuple {
                vendor: first,
                device_type: device_type.to_owned(),
                name: name.to_owned(),
            },
        }
    }

    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        let id = self.id();
        if self.name.is_empty() || id.device_type.is_empty() || self.name.split('/').count() > 3 {
            errors.push(
                &format!("{path}.Name"),
                format!(
                    "device name must be given as one of the following: type, vendor/type, or \
                     vendor/type/name, got {:?}",
                    self.name
                ),
            );
        }
        if !(1..=Self::MAX_COUNT).contains(&self.count()) {
            errors.push(
                &format!("{path}.Count"),
                format!(
                    "device count must be within 1..={}, got {}",
                    Self::MAX_COUNT,
                    self.count()
                ),
            );
        }
        for (idx, constraint) in self.constraints.iter().enumerate() {
            constraint.validate(&format!("{path}.Constraints[{idx}]"), errors);
        }
        for (idx, affinity) in self.affinities.iter().enumerate() {
            affinity.validate(&format!("{path}.Affinities[{idx}]"), errors);
        }
    }
}

/// A device group's identity; in a request, empty parts match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceIdTuple {
    pub vendor: String,
    pub device_type: String,
    pub name: String,
}

impl DeviceIdTuple {
    /// True if the group `self` is what `request` names (Nomad's `DeviceIdTuple.Matches`).
    pub fn matches(&self, request: &DeviceIdTuple) -> bool {
        (request.vendor.is_empty() || request.vendor == self.vendor)
            && (request.device_type.is_empty() || request.device_type == self.device_type)
            && (request.name.is_empty() || request.name == self.name)
    }
}

impl std::fmt::Display for DeviceIdTuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.vendor, self.device_type, self.name)
    }
}

/// Where an instance sits on the machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDeviceLocality {
    #[serde(rename = "PciBusID")]
    pub pci_bus_id: String,
}

/// One instance of a device group (Nomad: `NodeDevice`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDevice {
    #[serde(rename = "ID")]
    pub id: String,
    pub healthy: bool,
    pub health_description: String,
    pub locality: Option<NodeDeviceLocality>,
}

/// A device group a node offers (Nomad: `NodeDeviceResource`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDeviceResource {
    pub vendor: String,
    #[serde(rename = "Type")]
    pub device_type: String,
    pub name: String,
    #[serde(deserialize_with = "nullable::default")]
    pub instances: Vec<NodeDevice>,
    #[serde(deserialize_with = "nullable::default")]
    pub attributes: BTreeMap<String, Attribute>,
}

impl NodeDeviceResource {
    /// The most groups, instances per group and attributes per group a node may report.
    pub const MAX_GROUPS: usize = 64;
    pub const MAX_INSTANCES: usize = 1024;
    pub const MAX_ATTRIBUTES: usize = 128;

    pub fn id(&self) -> DeviceIdTuple {
        DeviceIdTuple {
            vendor: self.vendor.clone(),
            device_type: self.device_type.clone(),
            name: self.name.clone(),
        }
    }

    /// `vendor/type/name`, as the CLI shows a group.
    pub fn full_name(&self) -> String {
        format!("{}/{}/{}", self.vendor, self.device_type, self.name)
    }

    /// Resolves a constraint target against this group (Nomad's `resolveDeviceTarget`): `None`
    /// if it names something the group lacks; a target without `${` is a literal.
    pub fn resolve_target(&self, target: &str) -> Option<Attribute> {
        let Some(inner) = target
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
        else {
            return Some(Attribute::parse(target));
        };
        match inner {
            "device.ids" => Some(Attribute::string(
                &self
                    .instances
                    .iter()
                    .map(|instance| instance.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            "device.vendor" => Some(Attribute::string(&self.vendor)),
            "device.type" => Some(Attribute::string(&self.device_type)),
            "device.model" => Some(Attribute::string(&self.name)),
            _ => inner
                .strip_prefix("device.attr.")
                .and_then(|name| self.attributes.get(name))
                .cloned(),
        }
    }
}

/// What an allocation's task was given of one device group (Nomad: `AllocatedDeviceResource`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedDeviceResource {
    pub vendor: String,
    #[serde(rename = "Type")]
    pub device_type: String,
    pub name: String,
    #[serde(rename = "DeviceIDs", deserialize_with = "nullable::default")]
    pub device_ids: Vec<String>,
}

impl AllocatedDeviceResource {
    pub fn id(&self) -> DeviceIdTuple {
        DeviceIdTuple {
            vendor: self.vendor.clone(),
            device_type: self.device_type.clone(),
            name: self.name.clone(),
        }
    }
}

/// One figure of a device instance (Nomad: `StatValue`; the JSON leaves out what is unset).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StatValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_numerator_val: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_denominator_val: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int_numerator_val: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int_denominator_val: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_val: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bool_val: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unit: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub desc: String,
}

impl From<&Attribute> for StatValue {
    fn from(attribute: &Attribute) -> StatValue {
        StatValue {
            float_numerator_val: attribute.float,
            int_numerator_val: attribute.int,
            string_val: attribute.string.clone(),
            bool_val: attribute.bool,
            unit: attribute.unit.clone(),
            ..StatValue::default()
        }
    }
}

/// As Nomad prints it: `87 %`, `1024 / 16384 MiB`, floats cut to 3 decimals.
impl std::fmt::Display for StatValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let with_unit = |text: String| {
            if self.unit.is_empty() {
                text
            } else {
                format!("{text} {}", self.unit)
            }
        };
        let float = |value: f64| {
            let text = value.to_string();
            match text.find('.') {
                Some(dot) => text[..(dot + 4).min(text.len())].to_owned(),
                None => text,
            }
        };
        let text = if let Some(value) = self.bool_val {
            value.to_string()
        } else if let Some(value) = &self.string_val {
            value.clone()
        } else if let Some(value) = self.float_numerator_val {
            with_unit(match self.float_denominator_val {
                Some(denominator) => format!("{} / {}", float(value), float(denominator)),
                None => float(value),
            })
        } else if let Some(value) = self.int_numerator_val {
            with_unit(match self.int_denominator_val {
                Some(denominator) => format!("{value} / {denominator}"),
                None => value.to_string(),
            })
        } else {
            String::from("<unknown>")
        };
        f.write_str(&text)
    }
}

/// Figures by name, and nested groups of figures (Nomad: `StatObject`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StatObject {
    pub nested: BTreeMap<String, StatObject>,
    pub attributes: BTreeMap<String, StatValue>,
}

/// One instance's figures now (Nomad: `DeviceStats`): `Summary` is the figure its plugin lists
/// first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceStats {
    pub summary: Option<StatValue>,
    pub stats: Option<StatObject>,
    /// RFC 3339.
    pub timestamp: String,
}

/// The figures of a device group's instances, by instance ID (Nomad: `DeviceGroupStats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceGroupStats {
    pub vendor: String,
    #[serde(rename = "Type")]
    pub device_type: String,
    pub name: String,
    pub instance_stats: BTreeMap<String, DeviceStats>,
}

impl DeviceGroupStats {
    pub fn id(&self) -> DeviceIdTuple {
        DeviceIdTuple {
            vendor: self.vendor.clone(),
            device_type: self.device_type.clone(),
            name: self.name.clone(),
        }
    }

    /// `vendor/type/name[id]`, as Nomad names an instance in its output.
    pub fn qualified_id(&self, instance: &str) -> String {
        format!(
            "{}/{}/{}[{instance}]",
            self.vendor, self.device_type, self.name
        )
    }

    /// Only the instances among `given` (an allocation's devices), and only groups left with
    /// some.
    pub fn of_allocated(
        stats: &[DeviceGroupStats],
        given: &[AllocatedDeviceResource],
    ) -> Vec<DeviceGroupStats> {
        stats
            .iter()
            .filter_map(|group| {
                let ids: Vec<&String> = given
                    .iter()
                    .filter(|device| device.id() == group.id())
                    .flat_map(|device| &device.device_ids)
                    .collect();
                let instance_stats: BTreeMap<String, DeviceStats> = group
                    .instance_stats
                    .iter()
                    .filter(|(id, _)| ids.contains(id))
                    .map(|(id, stats)| (id.clone(), stats.clone()))
                    .collect();
                (!instance_stats.is_empty()).then(|| DeviceGroupStats {
                    instance_stats,
                    ..group.clone()
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_values_print_and_serialise_as_nomads() -> Result<(), serde_json::Error> {
        let memory = StatValue::from(&Attribute::int(1024, "MiB"));
        assert_eq!(memory.to_string(), "1024 MiB");
        assert_eq!(
            serde_json::to_value(&memory)?,
            serde_json::json!({ "IntNumeratorVal": 1024, "Unit": "MiB" })
        );
        let fraction = StatValue {
            int_denominator_val: Some(16384),
            ..memory
        };
        assert_eq!(fraction.to_string(), "1024 / 16384 MiB");
        assert_eq!(
            StatValue::from(&Attribute::float(612.34567, "W")).to_string(),
            "612.345 W"
        );
        assert_eq!(StatValue::from(&Attribute::float(3.0, "")).to_string(), "3");
        assert_eq!(StatValue::from(&Attribute::string("ok")).to_string(), "ok");
        assert_eq!(StatValue::from(&Attribute::bool(true)).to_string(), "true");
        Ok(())
    }

    #[test]
    fn only_the_allocated_instances_stats_are_kept() {
        let stats = DeviceGroupStats {
            vendor: "v".into(),
            device_type: "gpu".into(),
            name: "m".into(),
            instance_stats: BTreeMap::from([
                ("a".to_owned(), DeviceStats::default()),
                ("b".to_owned(), DeviceStats::default()),
            ]),
        };
        let given = |ids: &[&str]| AllocatedDeviceResource {
            vendor: "v".into(),
            device_type: "gpu".into(),
            name: "m".into(),
            device_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        };
        let kept = DeviceGroupStats::of_allocated(std::slice::from_ref(&stats), &[given(&["b"])]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].instance_stats.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(kept[0].qualified_id("b"), "v/gpu/m[b]");
        assert!(DeviceGroupStats::of_allocated(&[stats], &[given(&["z"])]).is_empty());
    }

    fn request(name: &str) -> RequestedDevice {
        RequestedDevice {
            name: name.to_owned(),
            ..RequestedDevice::default()
        }
    }

    fn group(vendor: &str, device_type: &str, name: &str) -> DeviceIdTuple {
        DeviceIdTuple {
            vendor: vendor.to_owned(),
            device_type: device_type.to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn request_names_match_type_vendor_and_model() {
        let h200 = group("nvidia", "gpu", "NVIDIA H200");
        for (name, matches) in [
            ("gpu", true),
            ("nvidia/gpu", true),
            ("nvidia/gpu/NVIDIA H200", true),
            ("fpga", false),
            ("amd/gpu", false),
            ("nvidia/gpu/NVIDIA H100", false),
        ] {
            assert_eq!(h200.matches(&request(name).id()), matches, "{name}");
        }
        assert_eq!(request("a/b/c/d").id().name, "c/d");
    }

    #[test]
    fn validation_names_bad_names_and_counts() {
        let check = |device: RequestedDevice| {
            let mut errors = ValidationErrors::default();
            device.validate("Devices[0]", &mut errors);
            errors.into_result().err().map(|errors| errors.to_string())
        };
        assert_eq!(check(request("nvidia/gpu")), None);
        let empty = check(request("")).expect("empty name refused");
        assert!(empty.contains("Devices[0].Name"), "{empty}");
        assert!(check(request("a/b/c/d")).is_some());
        assert!(check(request("nvidia/")).is_some());
        let zero = check(RequestedDevice {
            count: Some(0),
            ..request("gpu")
        })
        .expect("zero refused");
        assert!(zero.contains("got 0"), "{zero}");
    }

    #[test]
    fn resolves_device_targets() {
        let mut device = NodeDeviceResource {
            vendor: "nvidia".to_owned(),
            device_type: "gpu".to_owned(),
            name: "NVIDIA H200".to_owned(),
            instances: vec![
                NodeDevice {
                    id: "GPU-1".to_owned(),
                    healthy: true,
                    ..NodeDevice::default()
                },
                NodeDevice {
                    id: "GPU-2".to_owned(),
                    ..NodeDevice::default()
                },
            ],
            ..NodeDeviceResource::default()
        };
        device
            .attributes
            .insert("memory".to_owned(), Attribute::int(143771, "MiB"));
        let resolve = |target: &str| device.resolve_target(target).map(|a| a.to_string());
        assert_eq!(resolve("${device.ids}").as_deref(), Some("GPU-1,GPU-2"));
        assert_eq!(resolve("${device.vendor}").as_deref(), Some("nvidia"));
        assert_eq!(resolve("${device.type}").as_deref(), Some("gpu"));
        assert_eq!(resolve("${device.model}").as_deref(), Some("NVIDIA H200"));
        assert_eq!(
            resolve("${device.attr.memory}").as_deref(),
            Some("143771 MiB")
        );
        assert_eq!(resolve("${device.attr.power}"), None);
        assert_eq!(resolve("${attr.kernel.name}"), None);
        assert_eq!(resolve("40 GiB").as_deref(), Some("40 GiB"));
    }

    #[test]
    fn json_is_nomads() {
        let json = r#"{"Vendor":"nvidia","Type":"gpu","Name":"NVIDIA H200",
            "Instances":[{"ID":"GPU-1","Healthy":true,"HealthDescription":"",
            "Locality":{"PciBusID":"00000000:19:00.0"}}],
            "Attributes":{"memory":{"Int":143771,"Unit":"MiB"}}}"#;
        let device: NodeDeviceResource = serde_json::from_str(json).expect("decodes");
        assert_eq!(device.device_type, "gpu");
        assert_eq!(
            device.instances[0]
                .locality
                .as_ref()
                .map(|l| l.pci_bus_id.as_str()),
            Some("00000000:19:00.0")
        );
        let allocated = AllocatedDeviceResource {
            vendor: "nvidia".to_owned(),
            device_type: "gpu".to_owned(),
            name: "NVIDIA H200".to_owned(),
            device_ids: vec!["GPU-1".to_owned()],
        };
        assert_eq!(
            serde_json::to_string(&allocated).expect("encodes"),
            r#"{"Vendor":"nvidia","Type":"gpu","Name":"NVIDIA H200","DeviceIDs":["GPU-1"]}"#
        );
    }
}
