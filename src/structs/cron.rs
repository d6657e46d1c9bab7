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

/// The descriptors cronexpr knows, and the expression each stands for (second first).
const DESCRIPTORS: &[(&str, &str)] = &[
    ("@yearly", "0 0 0 1 1 * *"),
    ("@annually", "0 0 0 1 1 * *"),
    ("@monthly", "0 0 0 1 * * *"),
    ("@weekly", "0 0 0 * * 0 *"),
    ("@daily", "0 0 0 * * * *"),
    ("@midnight", "0 0 0 * * * *"),
    ("@hourly", "0 0 * * * * *"),
];

/// Checks a cron expression; the error says what is wrong with it.
pub fn check_cron(spec: &str) -> Result<(), String> {
    CronSchedule::parse(spec).map(|_| ())
}

/// A set of values of one field, as bits (`value - field.min`; the year field has 130 values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bits([u128; 2]);

impl Bits {
    fn set(&mut self, value: u32, field: &Field) {
        let bit = value - field.min;
        self.0[(bit / 128) as usize] |= 1u128 << (bit % 128);
    }

    fn has(self, value: u32, field: &Field) -> bool {
        if value < field.min || value > field.max {
            return false;
        }
        let bit = value - field.min;
        self.0[(bit / 128) as usize] & (1u128 << (bit % 128)) != 0
    }
}

/// The days an expression allows: its day-of-month and day-of-week fields with their special
/// forms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Days {
    /// False when the field is `*` or `?`.
    dom_restricted: bool,
    dom: Bits,
    /// `L`: the last day of the month.
    dom_last: bool,
    /// `LW`: the last weekday (Monday to Friday) of the month.
    dom_last_weekday: bool,
    /// `15W`: the weekday nearest to these days, within the month.
    dom_nearest_weekday: Vec<u32>,
    dow_restricted: bool,
    /// Sunday is 0 (a 7 is stored as 0).
    dow: Bits,
    /// `5L`: the last such weekday of the month.
    dow_last: Vec<u32>,
    /// `5#3`: the n-th such weekday of the month.
    dow_nth: Vec<(u32, u32)>,
}

/// A parsed cron expression that can compute its next time (gorhill/cronexpr's semantics: with
/// both day fields restricted a day matching either is taken, as Vixie cron does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule {
    seconds: Bits,
    minutes: Bits,
    hours: Bits,
    months: Bits,
    years: Bits,
    days: Days,
}

impl CronSchedule {
    /// Parses an expression of 5 to 7 fields or a descriptor; the error says what is wrong.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let expanded;
        let spec = if spec.starts_with('@') {
            let lower = spec.to_ascii_lowercase();
            match DESCRIPTORS.iter().find(|(name, _)| *name == lower) {
                Some((_, expression)) => {
                    expanded = *expression;
                    expanded
                }
                None => return Err(format!("unknown descriptor {spec:?}")),
            }
        } else {
            spec
        };
        let mut fields: Vec<&str> = spec.split_whitespace().collect();
        match fields.len() {
            // cronexpr: five fields get a zero second and any year; six fields end with a year.
            5 => {
                fields.insert(0, "0");
                fields.push("*");
            }
            6 => fields.insert(0, "0"),
            7 => {}
            n => return Err(format!("expected 5 to 7 fields, found {n}")),
        }
        let layout = [
            &SECOND,
            &MINUTE,
            &HOUR,
            &DAY_OF_MONTH,
            &MONTH,
            &DAY_OF_WEEK,
            &YEAR,
        ];
        let mut bits = [Bits::default(); 7];
        let mut days = Days::default();
        for (idx, (text, field)) in fields.iter().zip(layout).enumerate() {
            parse_field(text, field, &mut bits[idx], &mut days)
                .map_err(|error| format!("{} field {text:?}: {error}", field.name))?;
        }
        days.dom = bits[3];
        days.dow = bits[5];
        days.dom_restricted = !matches!(fields[3], "*" | "?");
        days.dow_restricted = !matches!(fields[5], "*" | "?");
        Ok(Self {
            seconds: bits[0],
            minutes: bits[1],
            hours: bits[2],
            months: bits[4],
            years: bits[6],
            days,
        })
    }

    /// The first time strictly after `after` that the expression matches, read on the wall clock
    /// of `zone`; `None` when no such time comes before the end of the year field (2099). A wall
    /// time that does not exist in the zone (skipped by a daylight-saving change) is not a match;
    /// one that exists twice matches at its first instant.
    pub fn next_after<Tz: chrono::TimeZone>(
        &self,
        after: &chrono::DateTime<Tz>,
        zone: &Tz,
    ) -> Option<chrono::DateTime<Tz>> {
        use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Timelike};
        let local = after.with_timezone(zone).naive_local();
        let mut at = local.with_nanosecond(0)? + Duration::seconds(1);
        let midnight = NaiveTime::MIN;
        loop {
            let year = u32::try_from(at.year()).ok()?;
            if year > YEAR.max {
                return None;
            }
            if !self.years.has(year, &YEAR) {
                at = NaiveDate::from_ymd_opt(at.year() + 1, 1, 1)?.and_time(midnight);
                continue;
            }
            if !self.months.has(at.month(), &MONTH) {
                let (year, month) = if at.month() == 12 {
                    (at.year() + 1, 1)
                } else {
                    (at.year(), at.month() + 1)
                };
                at = NaiveDate::from_ymd_opt(year, month, 1)?.and_time(midnight);
                continue;
            }
            if !self.days.matches(at.date()) {
                at = at.date().succ_opt()?.and_time(midnight);
                continue;
            }
            if !self.hours.has(at.hour(), &HOUR) {
                at = at.with_minute(0)?.with_second(0)? + Duration::hours(1);
                continue;
            }
            if !self.minutes.has(at.minute(), &MINUTE) {
                at = at.with_second(0)? + Duration::minutes(1);
                continue;
            }
            if !self.seconds.has(at.second(), &SECOND) {
                at += Duration::seconds(1);
                continue;
            }
            if let Some(instant) = zone
                .from_local_datetime(&at)
                .earliest()
                .filter(|instant| instant > after)
            {
                return Some(instant);
            }
            at += Duration::seconds(1);
        }
    }
}

impl Days {
    fn matches(&self, date: chrono::NaiveDate) -> bool {
        match (self.dom_restricted, self.dow_restricted) {
            (false, false) => true,
            (true, false) => self.dom_matches(date),
            (false, true) => self.dow_matches(date),
            (true, true) => self.dom_matches(date) || self.dow_matches(date),
        }
    }

    fn dom_matches(&self, date: chrono::NaiveDate) -> bool {
        use chrono::{Datelike, Weekday};
        let last = last_day_of_month(date);
        let is_weekday = |day: u32| {
            date.with_day(day)
                .is_some_and(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        };
        if self.dom.has(date.day(), &DAY_OF_MONTH) || (self.dom_last && date.day() == last) {
            return true;
        }
        if self.dom_last_weekday {
            let day = (1..=last).rev().find(|day| is_weekday(*day));
            if day == Some(date.day()) {
                return true;
            }
        }
        self.dom_nearest_weekday.iter().any(|wanted| {
            let wanted = (*wanted).min(last);
            let nearest = if is_weekday(wanted) {
                wanted
            } else {
                // The nearest weekday within the month: Saturday moves to Friday (or Monday on
                // the 1st), Sunday to Monday (or Friday at the month's end).
                [
                    wanted.checked_sub(1),
                    Some(wanted + 1),
                    wanted.checked_sub(2),
                    Some(wanted + 2),
                ]
                .into_iter()
                .flatten()
                .find(|day| *day >= 1 && *day <= last && is_weekday(*day))
                .unwrap_or(wanted)
            };
            nearest == date.day()
        })
    }

    fn dow_matches(&self, date: chrono::NaiveDate) -> bool {
        use chrono::Datelike;
        let weekday = date.weekday().num_days_from_sunday();
        let nth = (date.day() - 1) / 7 + 1;
        self.dow.has(weekday, &DAY_OF_WEEK)
            || self
                .dow_last
                .iter()
                .any(|day| *day == weekday && date.day() + 7 > last_day_of_month(date))
            || self
                .dow_nth
                .iter()
                .any(|(day, n)| *day == weekday && *n == nth)
    }
}

fn last_day_of_month(date: chrono::NaiveDate) -> u32 {
    use chrono::Datelike;
    (28..=31)
        .rev()
        .find(|day| date.with_day(*day).is_some())
        .unwrap_or(28)
}

fn parse_field(text: &str, field: &Field, bits: &mut Bits, days: &mut Days) -> Result<(), String> {
    for item in text.split(',') {
        parse_item(item, field, bits, days)?;
    }
    Ok(())
}

fn parse_item(item: &str, field: &Field, bits: &mut Bits, days: &mut Days) -> Result<(), String> {
    if item.is_empty() {
        return Err("empty list item".to_owned());
    }
    let lower = item.to_ascii_lowercase();
    let is_dom = field.name == DAY_OF_MONTH.name;
    let is_dow = field.name == DAY_OF_WEEK.name;
    // The special forms of cronexpr: last day (`L`, `5L`), nearest weekday (`15W`, `LW`), the
    // n-th weekday of the month (`5#3`), and "no value" (`?`).
    if is_dom || is_dow {
        match lower.as_str() {
            "?" => return Ok(()),
            "l" if is_dom => {
                days.dom_last = true;
                return Ok(());
            }
            "l" => {
                bits.set(6, field);
                return Ok(());
            }
            "lw" if is_dom => {
                days.dom_last_weekday = true;
                return Ok(());
            }
            _ => {}
        }
        if let Some(day) = lower.strip_suffix('w') {
            let day = check_value(day, field)?;
            if is_dom {
                days.dom_nearest_weekday.push(day);
            }
            return Ok(());
        }
        if let Some(day) = lower.strip_suffix('l') {
            let day = check_value(day, field)?;
            if is_dom {
                days.dom_last = true;
            } else {
                days.dow_last.push(day % 7);
            }
            return Ok(());
        }
        if let Some((day, nth)) = lower.split_once('#') {
            let day = check_value(day, field)?;
            return match nth.parse::<u32>() {
                Ok(nth @ 1..=5) => {
                    days.dow_nth.push((day % 7, nth));
                    Ok(())
                }
                _ => Err(format!("{nth:?} is not an occurrence from 1 to 5")),
            };
        }
    }
    let (range, step) = match lower.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (lower.as_str(), None),
    };
    let step = match step {
        None => 1,
        Some(step) => match step.parse::<u32>() {
            Ok(step) if step >= 1 && step <= field.max => step,
            _ => return Err(format!("invalid step {step:?}")),
        },
    };
    let (low, high) = if range == "*" {
        (field.min, field.max)
    } else {
        match range.split_once('-') {
            Some((low, high)) => {
                let low = check_value(low, field)?;
                let high = check_value(high, field)?;
                if low > high {
                    return Err(format!("range {range:?} runs backwards"));
                }
                (low, high)
            }
            // `5/10`: from 5 to the end of the field, every 10.
            None if step > 1 => (check_value(range, field)?, field.max),
            None => {
                let value = check_value(range, field)?;
                (value, value)
            }
        }
    };
    let mut value = low;
    while value <= high {
        // Sunday is both 0 and 7.
        let stored = if is_dow { value % 7 } else { value };
        bits.set(stored, field);
        value += step;
    }
    Ok(())
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

impl super::PeriodicConfig {
    /// The zone the expressions are read in (`time_zone`, an IANA name; empty is UTC).
    pub fn zone(&self) -> Result<chrono_tz::Tz, String> {
        match self.time_zone.as_str() {
            "" | "UTC" => Ok(chrono_tz::UTC),
            name => name
                .parse::<chrono_tz::Tz>()
                .map_err(|_| format!("unknown time zone {name:?}")),
        }
    }

    /// Every expression of the block: `cron` and then `crons`.
    pub fn expressions(&self) -> impl Iterator<Item = &str> {
        (!self.spec.is_empty())
            .then_some(self.spec.as_str())
            .into_iter()
            .chain(self.specs.iter().map(String::as_str))
    }

    /// The next launch strictly after `after`: the earliest next time of any of the expressions
    /// in the block's zone (Nomad: `PeriodicConfig.Next`). `None` when there is none, or when the
    /// block does not parse (registration refuses such a block).
    pub fn next_launch(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let zone = self.zone().ok()?;
        let after = after.with_timezone(&zone);
        self.expressions()
            .filter_map(|spec| CronSchedule::parse(spec).ok())
            .filter_map(|schedule| schedule.next_after(&after, &zone))
            .min()
            .map(|next| next.with_timezone(&chrono::Utc))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::{CronSchedule, check_cron};
    use crate::structs::PeriodicConfig;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn next(spec: &str, zone: &str, after: &str) -> Option<String> {
        let config = PeriodicConfig {
            enabled: true,
            spec: spec.to_owned(),
            time_zone: zone.to_owned(),
            ..PeriodicConfig::default()
        };
        config.next_launch(utc(after)).map(|next| next.to_rfc3339())
    }

    #[test]
    fn next_launch_in_utc() {
        let cases = [
            (
                "*/15 * * * *",
                "2026-03-01T10:07:31Z",
                "2026-03-01T10:15:00+00:00",
            ),
            (
                "*/15 * * * *",
                "2026-03-01T10:15:00Z",
                "2026-03-01T10:30:00+00:00",
            ),
            (
                "*/5 * * * * * *",
                "2026-03-01T10:07:31Z",
                "2026-03-01T10:07:35+00:00",
            ),
            (
                "0 2 * * 1-5",
                "2026-03-06T03:00:00Z",
                "2026-03-09T02:00:00+00:00",
            ),
            (
                "@daily",
                "2026-12-31T23:59:59Z",
                "2027-01-01T00:00:00+00:00",
            ),
            (
                "0 0 L * ?",
                "2026-02-03T00:00:00Z",
                "2026-02-28T00:00:00+00:00",
            ),
            (
                "0 0 29 2 *",
                "2026-01-01T00:00:00Z",
                "2028-02-29T00:00:00+00:00",
            ),
            // The third Friday, the last Friday, the weekday nearest the 15th (a Sunday).
            (
                "0 0 ? * 5#3",
                "2026-03-01T00:00:00Z",
                "2026-03-20T00:00:00+00:00",
            ),
            (
                "0 0 ? * 5L",
                "2026-03-01T00:00:00Z",
                "2026-03-27T00:00:00+00:00",
            ),
            (
                "0 0 15W * *",
                "2026-03-01T00:00:00Z",
                "2026-03-16T00:00:00+00:00",
            ),
            (
                "0 4 * * * 2031",
                "2026-03-01T00:00:00Z",
                "2031-01-01T04:00:00+00:00",
            ),
            // Both day fields restricted: either matches (the 1st, or a Monday).
            (
                "0 0 1 * 1",
                "2026-03-01T12:00:00Z",
                "2026-03-02T00:00:00+00:00",
            ),
            (
                "0 12 * * 7",
                "2026-03-02T00:00:00Z",
                "2026-03-08T12:00:00+00:00",
            ),
        ];
        for (spec, after, expected) in cases {
            assert_eq!(
                next(spec, "UTC", after).as_deref(),
                Some(expected),
                "{spec} after {after}"
            );
        }
        assert_eq!(next("0 0 1 1 * 2030", "", "2031-01-01T00:00:00Z"), None);
        assert_eq!(next("0 0 30 2 *", "", "2026-01-01T00:00:00Z"), None);
    }

    #[test]
    fn next_launch_in_a_time_zone_follows_its_clock() {
        // 09:00 in New York: 14:00 UTC in winter, 13:00 UTC in summer.
        assert_eq!(
            next("0 9 * * *", "America/New_York", "2026-01-10T15:00:00Z").as_deref(),
            Some("2026-01-11T14:00:00+00:00")
        );
        assert_eq!(
            next("0 9 * * *", "America/New_York", "2026-07-10T15:00:00Z").as_deref(),
            Some("2026-07-11T13:00:00+00:00")
        );
        // 02:30 does not exist on 8 March 2026 in New York (clocks go from 02:00 to 03:00).
        assert_eq!(
            next("30 2 * * *", "America/New_York", "2026-03-07T08:00:00Z").as_deref(),
            Some("2026-03-09T06:30:00+00:00")
        );
        // 01:30 happens twice on 1 November 2026: the first one counts, once.
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z").as_deref(),
            Some("2026-11-01T05:30:00+00:00")
        );
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z").as_deref(),
            Some("2026-11-02T06:30:00+00:00")
        );
        // Half-hour zones.
        assert_eq!(
            next("0 0 * * *", "Asia/Kolkata", "2026-05-01T00:00:00Z").as_deref(),
            Some("2026-05-01T18:30:00+00:00")
        );
    }

    #[test]
    fn several_crons_launch_at_the_earliest() {
        let config = PeriodicConfig {
            enabled: true,
            specs: vec!["0 12 * * *".to_owned(), "30 6 * * *".to_owned()],
            ..PeriodicConfig::default()
        };
        assert_eq!(
            config.next_launch(utc("2026-03-01T07:00:00Z")),
            Some(utc("2026-03-01T12:00:00Z"))
        );
        assert_eq!(
            config.next_launch(utc("2026-03-01T12:00:00Z")),
            Some(utc("2026-03-02T06:30:00Z"))
        );
    }

    #[test]
    fn unknown_time_zones_are_refused() {
        let config = PeriodicConfig {
            time_zone: "Mars/Olympus".to_owned(),
            ..PeriodicConfig::default()
        };
        assert_eq!(
            config.zone(),
            Err("unknown time zone \"Mars/Olympus\"".to_owned())
        );
        let schedule = CronSchedule::parse("* * * * *").expect("parses");
        let after = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        assert_eq!(
            schedule.next_after(&after, &Utc),
            Some(
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 0)
                    .single()
                    .expect("time")
            )
        );
    }

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
