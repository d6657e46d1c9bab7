//! Checking cron expressions of periodic jobs, with the syntax of the library Nomad uses
//! (gorhill/cronexpr): five fields (minute hour day-of-month month day-of-week), six (plus a year)
//! or seven (a second first), or a descriptor such as `@daily`.
//!
//! Only the syntax and the ranges are checked here; computing launch times is the periodic
//! dispatcher's business. Nomad: `structs.PeriodicConfig.Validate`.

/// One field of a cron expression: its name, its range, and the names its values may take.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};
const YEAR: Field = Field {
    name: "year",
    min: 1970,
    max: 2099,
    names: &[],
};

const DESCRIPTORS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Checks a cron expression; the error says what is wrong with it.
pub fn check_cron(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    if spec.starts_with('@') {
        return if DESCRIPTORS.contains(&spec.to_ascii_lowercase().as_str()) {
            Ok(())
        } else {
            Err(format!("unknown descriptor {spec:?}"))
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let layout: &[&Field] = match fields.len() {
        5 => &[&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK],
        6 => &[&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK, &YEAR],
        7 => &[
            &SECOND,
            &MINUTE,
            &HOUR,
            &DAY_OF_MONTH,
            &MONTH,
            &DAY_OF_WEEK,
            &YEAR,
        ],
        n => return Err(format!("expected 5 to 7 fields, found {n}")),
    };
    for (text, field) in fields.iter().zip(layout) {
        check_field(text, field)
            .map_err(|error| format!("{} field {text:?}: {error}", field.name))?;
    }
    Ok(())
}

fn check_field(text: &str, field: &Field) -> Result<(), String> {
    for item in text.split(',') {
        check_item(item, field)?;
    }
    Ok(())
}

fn check_item(item: &str, field: &Field) -> Result<(), String> {
    if item.is_empty() {
        return Err("empty list item".to_owned());
    }
    let lower = item.to_ascii_lowercase();
    // The special forms of cronexpr: last day (`L`, `5L`), nearest weekday (`15W`, `LW`), the
    // n-th weekday of the month (`5#3`), and "no value" (`?`).
    if field.name == DAY_OF_MONTH.name || field.name == DAY_OF_WEEK.name {
        if lower == "?" || lower == "l" || lower == "lw" {
            return Ok(());
        }
        if let Some(day) = lower.strip_suffix('w').or_else(|| lower.strip_suffix('l')) {
            return check_value(day, field).map(|_| ());
        }
        if let Some((day, nth)) = lower.split_once('#') {
            check_value(day, field)?;
            return match nth.parse::<u32>() {
                Ok(1..=5) => Ok(()),
                _ => Err(format!("{nth:?} is not an occurrence from 1 to 5")),
            };
        }
    }
    let (range, step) = match lower.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (lower.as_str(), None),
    };
    if let Some(step) = step {
        match step.parse::<u32>() {
            Ok(step) if step >= 1 && step <= field.max => {}
            _ => return Err(format!("invalid step {step:?}")),
        }
    }
    if range == "*" {
        return Ok(());
    }
    match range.split_once('-') {
        Some((low, high)) => {
            let low = check_value(low, field)?;
            let high = check_value(high, field)?;
            if low > high {
                return Err(format!("range {range:?} runs backwards"));
            }
            Ok(())
        }
        None => check_value(range, field).map(|_| ()),
    }
}

fn check_value(text: &str, field: &Field) -> Result<u32, String> {
    if let Some(idx) = field.names.iter().position(|name| *name == text) {
        let idx = u32::try_from(idx).unwrap_or(0);
        return Ok(if field.min == 1 { idx + 1 } else { idx });
    }
    let value: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if value < field.min || value > field.max {
        return Err(format!(
            "{value} is out of range {}-{}",
            field.min, field.max
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::check_cron;

    #[test]
    fn accepts_cronexpr_syntax() {
        for spec in [
            "*/15 * * * *",
            "0 2 * * 1-5",
            "30 4 1,15 * *",
            "0 0 * JAN,JUL MON-FRI",
            "@daily",
            "@Weekly",
            "0 0 L * ?",
            "0 0 15W * *",
            "0 0 ? * 5#3",
            "0 0 ? * 5L",
            "0 30 4 * * * 2030",
            "0 4 * * * 2031",
            "0-30/10 * * * 7",
        ] {
            assert_eq!(check_cron(spec), Ok(()), "{spec}");
        }
    }

    #[test]
    fn refuses_bad_specs_saying_why() {
        let cases = [
            ("", "expected 5 to 7 fields, found 0"),
            ("* * *", "expected 5 to 7 fields, found 3"),
            ("61 * * * *", "minute field \"61\": 61 is out of range 0-59"),
            ("* 24 * * *", "hour field \"24\": 24 is out of range 0-23"),
            (
                "* * 0 * *",
                "day of month field \"0\": 0 is out of range 1-31",
            ),
            ("* * * 13 *", "month field \"13\": 13 is out of range 1-12"),
            (
                "* * * * FOO",
                "day of week field \"FOO\": \"foo\" is not a number",
            ),
            ("*/0 * * * *", "minute field \"*/0\": invalid step \"0\""),
            (
                "5-1 * * * *",
                "minute field \"5-1\": range \"5-1\" runs backwards",
            ),
            ("-1 * * * *", "minute field \"-1\": \"\" is not a number"),
            ("1,,2 * * * *", "minute field \"1,,2\": empty list item"),
            ("@fortnightly", "unknown descriptor \"@fortnightly\""),
            ("not a cron", "expected 5 to 7 fields, found 3"),
        ];
        for (spec, expected) in cases {
            assert_eq!(check_cron(spec), Err(expected.to_owned()), "{spec:?}");
        }
    }
}
