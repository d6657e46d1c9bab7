//! A job diff printed as Nomad's CLI prints it (`job plan`, `job history -p`; Nomad:
//! `command/job_plan.go`'s `formatJobDiff` and its helpers), without colour: a marker per
//! change (`+` added, `-` deleted, `+/-` edited), names and values aligned within each block,
//! edited objects in braces with their unchanged fields for context.

use crate::api::types::job_diff::{FieldDiff, JobDiff, ObjectDiff, TaskDiff, TaskGroupDiff};

/// The marker of a diff type and its width.
fn marker(diff_type: &str) -> (&'static str, usize) {
    match diff_type {
        "Added" => ("+ ", 2),
        "Deleted" => ("- ", 2),
        "Edited" => ("+/- ", 4),
        _ => ("", 0),
    }
}

fn spaces(count: usize) -> String {
    " ".repeat(count)
}

/// `text` quoted as Go's `%q` quotes it.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The whole job's diff; `verbose` expands added and deleted groups and tasks.
pub fn format_job_diff(job: &JobDiff, verbose: bool) -> String {
    let (mark, _) = marker(&job.diff_type);
    let mut out = format!("{mark}Job: {}\n", go_quote(&job.id));
    let (longest_field, mut longest_marker) = longest(&job.fields, &job.objects);
    for group in &job.task_groups {
        longest_marker = longest_marker.max(marker(&group.diff_type).1);
    }
    if job.diff_type == "Edited" || verbose {
        let members = aligned(&job.fields, &job.objects, 0, longest_field, longest_marker);
        if !members.is_empty() {
            out.push_str(&members);
            out.push('\n');
        }
    }
    for group in &job.task_groups {
        let prefix = longest_marker - marker(&group.diff_type).1;
        out.push_str(&format_group(group, prefix, verbose));
        out.push('\n');
    }
    out
}

fn format_group(group: &TaskGroupDiff, group_prefix: usize, verbose: bool) -> String {
    let (mark, _) = marker(&group.diff_type);
    let mut out = format!(
        "{mark}{}Task Group: {}",
        spaces(group_prefix),
        go_quote(&group.name)
    );
    if !group.updates.is_empty() {
        let updates: Vec<String> = group
            .updates
            .iter()
            .map(|(kind, count)| format!("{count} {kind}"))
            .collect();
        out.push_str(&format!(" ({})", updates.join(", ")));
    }
    out.push('\n');
    let (longest_field, mut longest_marker) = longest(&group.fields, &group.objects);
    for task in &group.tasks {
        longest_marker = longest_marker.max(marker(&task.diff_type).1);
    }
    let start = group_prefix + 2;
    if group.diff_type == "Edited" || verbose {
        let members = aligned(
            &group.fields,
            &group.objects,
            start,
            longest_field,
            longest_marker,
        );
        if !members.is_empty() {
            out.push_str(&members);
            out.push('\n');
        }
    }
    for task in &group.tasks {
        let prefix = longest_marker - marker(&task.diff_type).1;
        out.push_str(&format_task(task, start, prefix, verbose));
        out.push('\n');
    }
    out
}

fn format_task(task: &TaskDiff, start: usize, task_prefix: usize, verbose: bool) -> String {
    let (mark, _) = marker(&task.diff_type);
    let mut out = format!(
        "{}{mark}{}Task: {}",
        spaces(start),
        spaces(task_prefix),
        go_quote(&task.name)
    );
    if !task.annotations.is_empty() {
        out.push_str(&format!(" ({})", task.annotations.join(", ")));
    }
    match task.diff_type.as_str() {
        "None" | "" => return out,
        "Added" | "Deleted" if !verbose => return out,
        _ => out.push('\n'),
    }
    let (longest_field, longest_marker) = longest(&task.fields, &task.objects);
    out.push_str(&aligned(
        &task.fields,
        &task.objects,
        start + 2,
        longest_field,
        longest_marker,
    ));
    out
}

fn format_object(object: &ObjectDiff, start: usize, key_prefix: usize) -> String {
    let (mark, mark_len) = marker(&object.diff_type);
    let mut out = format!(
        "{}{mark}{}{} {{\n",
        spaces(start),
        spaces(key_prefix),
        object.name
    );
    let (longest_field, longest_marker) = longest(&object.fields, &object.objects);
    out.push_str(&aligned(
        &object.fields,
        &object.objects,
        start + key_prefix + 2,
        longest_field,
        longest_marker,
    ));
    format!("{out}\n{}}}", spaces(start + mark_len + key_prefix))
}

fn format_field(field: &FieldDiff, start: usize, key_prefix: usize, value_prefix: usize) -> String {
    let (mark, _) = marker(&field.diff_type);
    let value = match field.diff_type.as_str() {
        "Added" => go_quote(&field.new),
        "Deleted" => go_quote(&field.old),
        "Edited" => format!("{} => {}", go_quote(&field.old), go_quote(&field.new)),
        _ => go_quote(&field.new),
    };
    let mut out = format!(
        "{}{mark}{}{}: {}{value}",
        spaces(start),
        spaces(key_prefix),
        field.name,
        spaces(value_prefix)
    );
    if !field.annotations.is_empty() {
        out.push_str(&format!(" ({})", field.annotations.join(", ")));
    }
    out
}

/// Fields then objects, one a line, names and values aligned.
fn aligned(
    fields: &[FieldDiff],
    objects: &[ObjectDiff],
    start: usize,
    longest_field: usize,
    longest_marker: usize,
) -> String {
    let mut lines: Vec<String> = fields
        .iter()
        .map(|field| {
            format_field(
                field,
                start,
                longest_marker - marker(&field.diff_type).1,
                longest_field - field.name.len(),
            )
        })
        .collect();
    lines.extend(
        objects.iter().map(|object| {
            format_object(object, start, longest_marker - marker(&object.diff_type).1)
        }),
    );
    lines.join("\n")
}

/// The longest field name and the widest marker among `fields` and `objects`.
fn longest(fields: &[FieldDiff], objects: &[ObjectDiff]) -> (usize, usize) {
    let longest_field = fields
        .iter()
        .map(|field| field.name.len())
        .max()
        .unwrap_or(0);
    let longest_marker = fields
        .iter()
        .map(|field| marker(&field.diff_type).1)
        .chain(objects.iter().map(|object| marker(&object.diff_type).1))
        .max()
        .unwrap_or(0);
    (longest_field, longest_marker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::job_diff::{FieldDiff, ObjectDiff, TaskDiff, TaskGroupDiff};

    fn field(diff_type: &str, name: &str, old: &str, new: &str) -> FieldDiff {
        FieldDiff {
            diff_type: diff_type.to_owned(),
            name: name.to_owned(),
            old: old.to_owned(),
            new: new.to_owned(),
            annotations: Vec::new(),
        }
    }

    /// Nomad's documented `job history -p` output of a memory change.
    #[test]
    fn an_edited_resource_prints_as_nomads() {
        let diff = JobDiff {
            diff_type: "Edited".to_owned(),
            id: "example".to_owned(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "Edited".to_owned(),
                name: "cache".to_owned(),
                tasks: vec![TaskDiff {
                    diff_type: "Edited".to_owned(),
                    name: "redis".to_owned(),
                    objects: vec![ObjectDiff {
                        diff_type: "Edited".to_owned(),
                        name: "Resources".to_owned(),
                        fields: vec![
                            field("None", "CPU", "500", "500"),
                            field("None", "DiskMB", "0", "0"),
                            field("Edited", "MemoryMB", "256", "512"),
                        ],
                        objects: Vec::new(),
                    }],
                    ..TaskDiff::default()
                }],
                ..TaskGroupDiff::default()
            }],
            ..JobDiff::default()
        };
        assert_eq!(
            format_job_diff(&diff, false).trim(),
            "+/- Job: \"example\"\n\
             +/- Task Group: \"cache\"\n  \
             +/- Task: \"redis\"\n    \
             +/- Resources {\n          \
             CPU:      \"500\"\n          \
             DiskMB:   \"0\"\n      \
             +/- MemoryMB: \"256\" => \"512\"\n        \
             }"
        );
    }

    #[test]
    fn job_fields_and_unchanged_tasks() {
        let diff = JobDiff {
            diff_type: "Edited".to_owned(),
            id: "web".to_owned(),
            fields: vec![field("Edited", "Priority", "50", "70")],
            task_groups: vec![TaskGroupDiff {
                diff_type: "Edited".to_owned(),
                name: "g".to_owned(),
                fields: vec![field("Edited", "Count", "1", "3")],
                tasks: vec![TaskDiff {
                    diff_type: "None".to_owned(),
                    name: "t".to_owned(),
                    ..TaskDiff::default()
                }],
                ..TaskGroupDiff::default()
            }],
            ..JobDiff::default()
        };
        assert_eq!(
            format_job_diff(&diff, false),
            "+/- Job: \"web\"\n\
             +/- Priority: \"50\" => \"70\"\n\
             +/- Task Group: \"g\"\n  \
             +/- Count: \"1\" => \"3\"\n      \
             Task: \"t\"\n\n"
        );
        assert_eq!(go_quote("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
    }
}
