//! Durations as Nomad's JSON carries them: signed integer nanoseconds.
//!
//! Use `#[serde(with = "duration::nanos")]` for `Duration` fields and
//! `#[serde(with = "duration::opt_nanos")]` for `Option<Duration>` fields.

use std::time::Duration;

/// Parses a Go-style duration string as written in job files: `"30s"`, `"1m30s"`, `"250ms"`, `"1h"`.
///
/// Nomad accepts the units `ns`, `us` (or `µs`), `ms`, `s`, `m` and `h`, combined, with decimal
/// fractions (`"1.5s"`). A bare `"0"` is zero.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("negative duration {text:?}"));
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("invalid duration {text:?}: expected a number"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {text:?}")),
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total_nanos += number * unit_nanos;
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// Formats a duration as Go's `time.Duration.String()` does: `1h2m3s`, `1.5s`, `250ms`.
pub fn format_go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos as f64 / 1e6));
    }
    let total_seconds = duration.as_secs();
    let hours = total_seconds / 3600;
    let minutes = (total_seconds % 3600) / 60;
    let seconds = (total_seconds % 60) as f64 + f64::from(duration.subsec_nanos()) / 1e9;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_fraction(seconds)));
    out
}

fn trim_fraction(value: f64) -> String {
    let text = format!("{value:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

pub mod nanos {
    //! `Duration` ⇄ integer nanoseconds.
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX))
    }

    /// A negative duration is an error, never read as zero: Nomad's validation refuses them
    /// ("must be a positive value"), and a silent zero would mean "no timeout".
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let nanos = Option::<i64>::deserialize(deserializer)?.unwrap_or(0);
        from_signed::<D::Error>(nanos)
    }

    pub(super) fn from_signed<E: serde::de::Error>(nanos: i64) -> Result<Duration, E> {
        u64::try_from(nanos)
            .map(Duration::from_nanos)
            .map_err(|_| E::custom(format!("duration must be a positive value, got {nanos} ns")))
    }
}

pub mod opt_nanos {
    //! `Option<Duration>` ⇄ integer nanoseconds or `null`.
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::nanos::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<i64>::deserialize(deserializer)?
            .map(super::nanos::from_signed::<D::Error>)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("30s", Duration::from_secs(30)),
            ("1m30s", Duration::from_secs(90)),
            ("250ms", Duration::from_millis(250)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
            ("10us", Duration::from_micros(10)),
            ("168h", Duration::from_secs(168 * 3600)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_go_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        assert_eq!(
            parse_go_duration("10"),
            Err("missing unit in duration \"10\"".to_owned())
        );
        assert_eq!(
            parse_go_duration("5d"),
            Err("unknown unit \"d\" in duration \"5d\"".to_owned())
        );
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("s").is_err());
    }

    #[derive(Debug, serde::Deserialize)]
    struct Timeouts {
        #[serde(with = "nanos")]
        required: Duration,
        #[serde(with = "opt_nanos", default)]
        optional: Option<Duration>,
    }

    #[test]
    fn negative_nanoseconds_do_not_decode() {
        let ok: Timeouts =
            serde_json::from_str(r#"{"required": 5, "optional": null}"#).expect("decodes");
        assert_eq!((ok.required, ok.optional), (Duration::from_nanos(5), None));
        for body in [r#"{"required": -1}"#, r#"{"required": 1, "optional": -1}"#] {
            let error = serde_json::from_str::<Timeouts>(body).expect_err("negative");
            assert!(
                error
                    .to_string()
                    .contains("duration must be a positive value, got -1 ns"),
                "{error}"
            );
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }
}
