//! Job diffs (Nomad: `structs.JobDiff` and `api.JobDiff`): what changed between two versions of a
//! job, as `GET /v1/job/<id>/versions?diffs=true` and `job plan -diff` answer them.
//!
//! [`JobDiff::between`] walks the two jobs' JSON (their Nomad-named fields) the way Nomad's
//! `Job.Diff` walks its structs, contextually:
//!
//! - a job's, group's or task's own primitive fields are [`FieldDiff`]s, only those that changed;
//!   maps of strings (`Meta`, `Env`) flatten into them as `Meta[key]`;
//! - a nested object (`Resources`, `RestartPolicy`, `Config`...) is an [`ObjectDiff`] that, once
//!   anything in it changed, lists all its fields (`None` for those unchanged) and its own
//!   nested objects; a task's free-form `Config` flattens (`args[0]`, `port_map[http]`);
//! - a list of strings (`Datacenters`) is an object with one field per element added or removed;
//!   a list of objects (`Constraints`, `Services`, `Templates`) is a set: each element removed or
//!   added is an object named in the singular (`Constraint`);
//! - task groups match by name, and tasks within them; all are listed, unchanged ones `None`.
//!
//! Fields that change with every version without the submitter changing anything (indexes,
//! version, status, submit time) are left out, as Nomad's filter does.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::structs::Job;

pub const ADDED: &str = "Added";
pub const DELETED: &str = "Deleted";
pub const EDITED: &str = "Edited";
pub const NONE: &str = "None";

/// The difference between two versions of a job (Nomad: `api.JobDiff`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobDiff {
    /// "Added", "Deleted", "Edited" or "None".
    #[serde(rename = "Type")]
    pub diff_type: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub fields: Vec<FieldDiff>,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub objects: Vec<ObjectDiff>,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub task_groups: Vec<TaskGroupDiff>,
}

/// Nomad: `api.TaskGroupDiff`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroupDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub fields: Vec<FieldDiff>,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub objects: Vec<ObjectDiff>,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub tasks: Vec<TaskDiff>,
    /// A plan's placements by kind ("create", "destroy", ...); empty between versions.
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub updates: BTreeMap<String, u64>,
}

/// Nomad: `api.TaskDiff`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub fields: Vec<FieldDiff>,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub objects: Vec<ObjectDiff>,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub annotations: Vec<String>,
}

/// Nomad: `api.ObjectDiff`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ObjectDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub fields: Vec<FieldDiff>,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub objects: Vec<ObjectDiff>,
}

/// Nomad: `api.FieldDiff`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FieldDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub old: String,
    pub new: String,
    #[serde(deserialize_with = "crate::structs::nullable::default")]
    pub annotations: Vec<String>,
}

/// A job's fields that are not the submitter's to change, or that are diffed on their own.
const JOB_SKIPPED: &[&str] = &[
    "ID",
    "Status",
    "StatusDescription",
    "Version",
    "Stable",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Update",
    "SubmitTime",
    "NomadTokenID",
    "VaultToken",
    "TaskGroups",
];
const GROUP_SKIPPED: &[&str] = &["Name", "Tasks"];
const TASK_SKIPPED: &[&str] = &["Name"];
/// Maps of strings, flattened into their owner's fields as `Name[key]`.
const STRING_MAPS: &[&str] = &["Meta", "Env"];
/// Free-form objects, flattened whole into one object's fields.
const FREE_FORM: &[&str] = &["Config"];

impl JobDiff {
    /// What changed from `old` to `new` (`None` for a job that was not there).
    pub fn between(old: Option<&Job>, new: Option<&Job>) -> JobDiff {
        let old = old.and_then(|job| serde_json::to_value(job).ok());
        let new = new.and_then(|job| serde_json::to_value(job).ok());
        let id = new
            .as_ref()
            .or(old.as_ref())
            .and_then(|job| job.get("ID"))
            .map(primitive)
            .unwrap_or_default();
        let (fields, objects) = members(old.as_ref(), new.as_ref(), JOB_SKIPPED, false);
        let task_groups = named_pairs(old.as_ref(), new.as_ref(), "TaskGroups")
            .into_iter()
            .map(|(name, old, new)| group_diff(name, old, new))
            .collect::<Vec<_>>();
        let edited =
            changed(&fields, &objects) || task_groups.iter().any(|group| group.diff_type != NONE);
        JobDiff {
            diff_type: kind(old.is_some(), new.is_some(), edited),
            id,
            fields,
            objects,
            task_groups,
        }
    }
}

fn group_diff(name: String, old: Option<&Value>, new: Option<&Value>) -> TaskGroupDiff {
    let (fields, objects) = members(old, new, GROUP_SKIPPED, false);
    let tasks = named_pairs(old, new, "Tasks")
        .into_iter()
        .map(|(name, old, new)| task_diff(name, old, new))
        .collect::<Vec<_>>();
    let edited = changed(&fields, &objects) || tasks.iter().any(|task| task.diff_type != NONE);
    TaskGroupDiff {
        diff_type: kind(old.is_some(), new.is_some(), edited),
        name,
        fields,
        objects,
        tasks,
        updates: BTreeMap::new(),
    }
}

fn task_diff(name: String, old: Option<&Value>, new: Option<&Value>) -> TaskDiff {
    let (fields, objects) = members(old, new, TASK_SKIPPED, false);
    let edited = changed(&fields, &objects);
    TaskDiff {
        diff_type: kind(old.is_some(), new.is_some(), edited),
        name,
        fields,
        objects,
        annotations: Vec::new(),
    }
}

fn kind(old: bool, new: bool, edited: bool) -> String {
    match (old, new) {
        (false, true) => ADDED,
        (true, false) => DELETED,
        _ if edited => EDITED,
        _ => NONE,
    }
    .to_owned()
}

fn changed(fields: &[FieldDiff], objects: &[ObjectDiff]) -> bool {
    fields.iter().any(|field| field.diff_type != NONE)
        || objects.iter().any(|object| object.diff_type != NONE)
}

/// The elements of the list `key` of `old` and `new` paired by `Name`, sorted by name.
fn named_pairs<'a>(
    old: Option<&'a Value>,
    new: Option<&'a Value>,
    key: &str,
) -> Vec<(String, Option<&'a Value>, Option<&'a Value>)> {
    let by_name = |owner: Option<&'a Value>| -> BTreeMap<String, &'a Value> {
        owner
            .and_then(|owner| owner.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|item| (item.get("Name").map(primitive).unwrap_or_default(), item))
            .collect()
    };
    let (old, new) = (by_name(old), by_name(new));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .map(|name| (name.clone(), old.get(name).copied(), new.get(name).copied()))
        .collect()
}

/// The members of an object, flattened: primitive fields (and string maps) by name, nested
/// objects and lists by name.
#[derive(Default)]
struct Members<'a> {
    fields: BTreeMap<String, String>,
    objects: BTreeMap<String, &'a Value>,
}

fn split<'a>(value: Option<&'a Value>, skipped: &[&str]) -> Members<'a> {
    let mut members = Members::default();
    let Some(Value::Object(map)) = value else {
        return members;
    };
    for (key, value) in map {
        if skipped.contains(&key.as_str()) {
            continue;
        }
        match value {
            Value::Null => {}
            Value::Object(entries) if STRING_MAPS.contains(&key.as_str()) => {
                for (name, value) in entries {
                    members
                        .fields
                        .insert(format!("{key}[{name}]"), primitive(value));
                }
            }
            Value::Object(_) | Value::Array(_) => {
                members.objects.insert(key.clone(), value);
            }
            primitive_value => {
                members
                    .fields
                    .insert(key.clone(), primitive(primitive_value));
            }
        }
    }
    members
}

/// The field and object diffs of two objects' members; `contextual` keeps unchanged fields.
fn members(
    old: Option<&Value>,
    new: Option<&Value>,
    skipped: &[&str],
    contextual: bool,
) -> (Vec<FieldDiff>, Vec<ObjectDiff>) {
    let (old, new) = (split(old, skipped), split(new, skipped));
    let fields = field_diffs(&old.fields, &new.fields, contextual);
    let names: BTreeSet<&String> = old.objects.keys().chain(new.objects.keys()).collect();
    let mut objects = Vec::new();
    for name in names {
        let (old, new) = (
            old.objects.get(name).copied(),
            new.objects.get(name).copied(),
        );
        objects.extend(member_diffs(name, old, new));
    }
    objects.sort_by(|a, b| (&a.name, &a.diff_type).cmp(&(&b.name, &b.diff_type)));
    (fields, objects)
}

/// The diffs of one nested member: an object, a list of strings or a set of objects.
fn member_diffs(name: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<ObjectDiff> {
    let is_list = |value: Option<&Value>| value.is_some_and(Value::is_array);
    if is_list(old) || is_list(new) {
        let items = |value: Option<&Value>| -> Vec<Value> {
            value.and_then(Value::as_array).cloned().unwrap_or_default()
        };
        let (old, new) = (items(old), items(new));
        let objects = old.iter().chain(&new).any(|item| item.is_object());
        return if objects {
            object_set_diff(&singular(name), &old, &new)
        } else {
            string_set_diff(name, &old, &new).into_iter().collect()
        };
    }
    if FREE_FORM.contains(&name) {
        let flat = |value: Option<&Value>| {
            let mut out = BTreeMap::new();
            if let Some(value) = value {
                flatten("", value, &mut out);
            }
            out
        };
        let fields = field_diffs(&flat(old), &flat(new), true);
        if fields.iter().all(|field| field.diff_type == NONE) && old.is_some() && new.is_some() {
            return Vec::new();
        }
        return vec![ObjectDiff {
            diff_type: kind(old.is_some(), new.is_some(), true),
            name: name.to_owned(),
            fields,
            objects: Vec::new(),
        }];
    }
    object_diff(name, old, new).into_iter().collect()
}

/// A nested object's diff, contextual; `None` when nothing in it changed.
fn object_diff(name: &str, old: Option<&Value>, new: Option<&Value>) -> Option<ObjectDiff> {
    let (fields, objects) = members(old, new, &[], true);
    let edited = changed(&fields, &objects);
    if !edited && old.is_some() == new.is_some() {
        return None;
    }
    Some(ObjectDiff {
        diff_type: kind(old.is_some(), new.is_some(), edited),
        name: name.to_owned(),
        fields,
        objects,
    })
}

/// A list of objects as a set: those only in `old` deleted, those only in `new` added.
fn object_set_diff(name: &str, old: &[Value], new: &[Value]) -> Vec<ObjectDiff> {
    let mut diffs: Vec<ObjectDiff> = old
        .iter()
        .filter(|item| !new.contains(item))
        .filter_map(|item| object_diff(name, Some(item), None))
        .chain(
            new.iter()
                .filter(|item| !old.contains(item))
                .filter_map(|item| object_diff(name, None, Some(item))),
        )
        .collect();
    diffs.sort_by(|a, b| (&a.name, &a.diff_type).cmp(&(&b.name, &b.diff_type)));
    diffs
}

/// A list of strings as a set: one field per element, named as the list.
fn string_set_diff(name: &str, old: &[Value], new: &[Value]) -> Option<ObjectDiff> {
    let old: BTreeSet<String> = old.iter().map(primitive).collect();
    let new: BTreeSet<String> = new.iter().map(primitive).collect();
    let removed: Vec<&String> = old.difference(&new).collect();
    let added: Vec<&String> = new.difference(&old).collect();
    let diff_type = match (removed.is_empty(), added.is_empty()) {
        (true, true) => return None,
        (false, false) => EDITED,
        (false, true) => DELETED,
        (true, false) => ADDED,
    };
    let mut fields: Vec<FieldDiff> = removed
        .into_iter()
        .map(|value| field(name, value, ""))
        .chain(added.into_iter().map(|value| field(name, "", value)))
        .chain(
            old.intersection(&new)
                .map(|value| field(name, value, value)),
        )
        .collect();
    sort_fields(&mut fields);
    Some(ObjectDiff {
        diff_type: diff_type.to_owned(),
        name: name.to_owned(),
        fields,
        objects: Vec::new(),
    })
}

/// The diffs of two flattened field maps; `contextual` keeps the unchanged ones as `None`.
fn field_diffs(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    contextual: bool,
) -> Vec<FieldDiff> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let empty = String::new();
    let mut fields: Vec<FieldDiff> = names
        .into_iter()
        .map(|name| {
            field(
                name,
                old.get(name).unwrap_or(&empty),
                new.get(name).unwrap_or(&empty),
            )
        })
        .filter(|field| contextual || field.diff_type != NONE)
        .collect();
    sort_fields(&mut fields);
    fields
}

/// One field's diff, as Nomad types it: equal is `None`, empty before `Added`, empty after
/// `Deleted`, else `Edited`.
fn field(name: &str, old: &str, new: &str) -> FieldDiff {
    let diff_type = if old == new {
        NONE
    } else if old.is_empty() {
        ADDED
    } else if new.is_empty() {
        DELETED
    } else {
        EDITED
    };
    FieldDiff {
        diff_type: diff_type.to_owned(),
        name: name.to_owned(),
        old: if diff_type == ADDED { "" } else { old }.to_owned(),
        new: if diff_type == DELETED { "" } else { new }.to_owned(),
        annotations: Vec::new(),
    }
}

fn sort_fields(fields: &mut [FieldDiff]) {
    fields.sort_by(|a, b| (&a.name, &a.old, &a.new).cmp(&(&b.name, &b.old, &b.new)));
}

/// A free-form value's leaves by path: `key`, `key[sub]`, `key[0]`.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let path = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}[{key}]")
        }
    };
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                flatten(&path(key), value, out);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                flatten(&path(&index.to_string()), value, out);
            }
        }
        Value::Null => {}
        leaf => {
            out.insert(prefix.to_owned(), primitive(leaf));
        }
    }
}

/// A primitive as Nomad prints it in a diff.
fn primitive(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The name of one element of the list `name` (`Constraints` → `Constraint`).
fn singular(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = name.strip_suffix('s') {
        stem.to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests;
