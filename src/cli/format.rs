//! Nomad's CLI layout: `columnize` tables (columns glued by two spaces), `key = value` blocks,
//! 8-character IDs, RFC 3339 dates and `12s ago` relative times.
//!
//! Nomad: `command/helpers.go` (`formatList`, `formatKV`, `limit`, `prettyTimeDiff`, `formatTime`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::api::types::jobs::JobListStub;
use crate::structs::JobStatus;
use crate::structs::duration::format_go_duration;

/// Nomad's `shortId` length.
pub const SHORT_ID_LEN: usize = 8;

/// A UUID cut to 8 characters unless `verbose` (characters, not bytes: an ID is text the API
/// gave, never trusted to be ASCII).
pub fn short_id(id: &str, verbose: bool) -> String {
    if verbose {
        id.to_owned()
    } else {
        id.chars().take(SHORT_ID_LEN).collect()
    }
}

/// Columns padded to their widest cell and glued by two spaces; empty cells read `<none>`.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut all: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    all.push(header.iter().map(|cell| (*cell).to_owned()).collect());
    all.extend(rows.iter().cloned());
    columnize(&all, "  ")
}

/// Rows without a header, columns padded and glued by two spaces (Nomad's `formatList`).
pub fn list(rows: &[Vec<String>]) -> String {
    columnize(rows, "  ")
}

/// `key = value` lines with the `=` aligned.
pub fn kv(pairs: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(key, value)| vec![(*key).to_owned(), value.clone()])
        .collect();
    columnize(&rows, " = ")
}

fn columnize(rows: &[Vec<String>], glue: &str) -> String {
    let n_columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; n_columns];
    let cell = |text: &str| {
        if text.is_empty() {
            "<none>".to_owned()
        } else {
            text.to_owned()
        }
    };
    for row in rows {
        for (column_idx, text) in row.iter().enumerate() {
            widths[column_idx] = widths[column_idx].max(cell(text).chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column_idx, text) in row.iter().enumerate() {
            let text = cell(text);
            if column_idx + 1 == row.len() {
                line.push_str(&text);
            } else {
                line.push_str(&text);
                let pad = widths[column_idx] - text.chars().count();
                line.push_str(&" ".repeat(pad));
                line.push_str(glue);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

/// Unix nanoseconds as an RFC 3339 time in UTC, seconds precision.
pub fn format_nanos(nanos: i64) -> String {
    if nanos <= 0 {
        return String::new();
    }
    let time = UNIX_EPOCH + Duration::from_nanos(nanos as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The current time as Nomad's monitor prints it.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Parses an RFC 3339 time into Unix nanoseconds (0 when absent or malformed).
pub fn parse_rfc3339(text: &str) -> i64 {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(text))
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as i64)
}

/// `12s ago`, `1m5s ago`, `2h3m ago`: the two largest units, as Nomad's `prettyTimeDiff`.
pub fn time_ago(nanos: i64) -> String {
    if nanos <= 0 {
        return String::new();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64);
    let (seconds, suffix) = if now >= nanos {
        ((now - nanos) / 1_000_000_000, "ago")
    } else {
        ((nanos - now) / 1_000_000_000, "from now")
    };
    format!("{} {suffix}", two_units(seconds as u64))
}

/// A duration in Nomad's compact units, the two largest kept: `1h2m`, `45s`, `3d4h`.
pub fn two_units(seconds: u64) -> String {
    let units = [
        (seconds / 86_400 / 365, "y"),
        (seconds / 86_400 % 365, "d"),
        (seconds / 3600 % 24, "h"),
        (seconds / 60 % 60, "m"),
        (seconds % 60, "s"),
    ];
    let first = units.iter().position(|(value, _)| *value > 0);
    match first {
        None => "0s".to_owned(),
        Some(start) => units[start..]
            .iter()
            .take(2)
            .filter(|(value, _)| *value > 0)
            .map(|(value, unit)| format!("{value}{unit}"))
            .collect(),
    }
}

/// A Go-style duration from nanoseconds (`15s`, `1m30s`, `1.5s`, `250ms`; negative is `0s`):
/// the model's one formatter, [`format_go_duration`].
pub fn go_duration(nanos: i64) -> String {
    format_go_duration(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

/// The `ID  Type  Priority  Status  Submit Date` table of `job status`.
pub fn jobs_table(jobs: &[JobListStub]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                job.id.clone(),
                job.job_type.to_string(),
                job.priority.to_string(),
                job_status_text(job.status, job.stop),
                format_nanos(job.submit_time),
            ]
        })
        .collect();
    table(&["ID", "Type", "Priority", "Status", "Submit Date"], &rows)
}

/// A job's status, `dead (stopped)` when stopped but not yet dead, as Nomad's `getStatusString`.
pub fn job_status_text(status: JobStatus, stop: bool) -> String {
    if stop {
        format!("{status} (stopped)")
    } else {
        status.to_string()
    }
}

/// `value` as JSON indented by four spaces, as Nomad's `-json` prints it.
pub fn indented_json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    Ok(String::from_utf8(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_and_marks_empty_cells() {
        let text = table(
            &["ID", "Status"],
            &[
                vec!["abc".into(), "".into()],
                vec!["a".into(), "running".into()],
            ],
        );
        assert_eq!(text, "ID   Status\nabc  <none>\na    running");
    }

    #[test]
    fn kv_aligns_equals() {
        let text = kv(&[("ID", "x".into()), ("Status", "running".into())]);
        assert_eq!(text, "ID     = x\nStatus = running");
    }

    #[test]
    fn two_units_keeps_the_largest() {
        assert_eq!(two_units(0), "0s");
        assert_eq!(two_units(12), "12s");
        assert_eq!(two_units(65), "1m5s");
        assert_eq!(two_units(3600 * 2 + 180 + 4), "2h3m");
        assert_eq!(two_units(3600), "1h");
    }

    #[test]
    fn go_duration_reads_as_go() {
        assert_eq!(go_duration(15_000_000_000), "15s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(250_000_000), "250ms");
        assert_eq!(go_duration(-1), "0s");
    }

    #[test]
    fn short_ids_cut_characters_not_bytes() {
        assert_eq!(short_id("0b23b149-aaaa-bbbb", false), "0b23b149");
        assert_eq!(short_id("ééééééééé", false), "éééééééé");
        assert_eq!(short_id("web", false), "web");
        assert_eq!(short_id("0b23b149-aaaa", true), "0b23b149-aaaa");
    }

    #[test]
    fn json_is_indented_by_four_spaces() {
        let text = indented_json(&std::collections::BTreeMap::from([("A", [1])])).expect("encodes");
        assert_eq!(text, "{\n    \"A\": [\n        1\n    ]\n}");
    }
}
