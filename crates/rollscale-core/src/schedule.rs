//! When an image update task fires: OOS's `ACS::TimerTrigger` (`at`, `rate`, `cron`) with its
//! `TimeZone`, `StartDate` and `EndDate`, and the next firing after a given instant.
//!
//! Pure: the instant to compute from is always an argument ([`Schedule::next_after`]).

use crate::domain::Millis;
use crate::error::CoreError;
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How far ahead a cron expression is searched for its next match. Every valid expression
/// without a year matches within 4 years (29 February) and 11 of them are searched; one that
/// never matches (`0 0 0 31 2 ?`) is refused when parsed.
const CRON_SEARCH_YEARS: i32 = 11;

/// The three kinds of timer trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerType {
    #[serde(rename = "at")]
    At,
    #[serde(rename = "rate")]
    Rate,
    #[serde(rename = "cron")]
    Cron,
}

impl TriggerType {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::At => "at",
            TriggerType::Rate => "rate",
            TriggerType::Cron => "cron",
        }
    }
}

/// The trigger as the client gave it (the wire form, kept on the task and shown back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerTrigger {
    #[serde(rename = "Type")]
    pub trigger_type: TriggerType,
    #[serde(rename = "Expression")]
    pub expression: String,
    #[serde(rename = "TimeZone", default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(rename = "StartDate", default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(rename = "EndDate", default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

/// A checked trigger: every firing it will make is computed from this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub time_zone: Tz,
    /// No firing before this instant (inclusive).
    pub start: Option<Millis>,
    /// No firing at or after this instant (the expiry).
    pub end: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleKind {
    /// One firing at this instant.
    At(Millis),
    /// Every `period_ms`, counted from the start (`StartDate`, or the task's creation).
    Rate {
        period_ms: i64,
        anchor: Millis,
    },
    Cron(Box<Cron>),
}

fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::invalid("timerTrigger", message)
}

impl TimerTrigger {
    /// Reads the `timerTrigger` parameter: an object with the property names of OOS's
    /// `ACS::TimerTrigger` action.
    pub fn from_value(value: &Value) -> Result<TimerTrigger, CoreError> {
        let Value::Object(map) = value else {
            return Err(invalid("must be an object with Type, Expression, TimeZone, StartDate and EndDate"));
        };
        for key in map.keys() {
            if !["Type", "Expression", "TimeZone", "StartDate", "EndDate"].contains(&key.as_str()) {
                return Err(invalid(format!(
                    "has an unknown property {key:?} (known: Type, Expression, TimeZone, StartDate, EndDate)"
                )));
            }
        }
        let text = |name: &str| -> Result<Option<String>, CoreError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(_) => Err(invalid(format!("{name} must be a string"))),
            }
        };
        let trigger_type = match text("Type")?.as_deref() {
            Some("at") => TriggerType::At,
            Some("rate") => TriggerType::Rate,
            Some("cron") => TriggerType::Cron,
            Some(other) => return Err(invalid(format!("Type {other:?} is not one of at, rate, cron"))),
            None => return Err(invalid("Type is required (at, rate or cron)")),
        };
        let expression = text("Expression")?.ok_or_else(|| invalid("Expression is required"))?;
        Ok(TimerTrigger {
            trigger_type,
            expression,
            time_zone: text("TimeZone")?,
            start_date: text("StartDate")?,
            end_date: text("EndDate")?,
        })
    }

    /// Checks the trigger as of `now` (the task's creation): the expression parses, the time
    /// zone exists, `rate` and `cron` have an `EndDate`, the end is after `now` and after the
    /// start, and at least one firing is left.
    pub fn schedule(&self, now: Millis) -> Result<Schedule, CoreError> {
        let schedule = self.compile(now)?;
        if self.trigger_type != TriggerType::At && schedule.end.is_none() {
            return Err(invalid(format!("EndDate is required for a {} trigger", self.trigger_type.as_str())));
        }
        if let Some(end) = schedule.end {
            if end <= now {
                return Err(invalid(format!("EndDate {} is not in the future", format_utc(end))));
            }
            if schedule.start.is_some_and(|start| start >= end) {
                return Err(invalid("StartDate must be before EndDate"));
            }
        }
        if let ScheduleKind::At(at) = schedule.kind {
            if at <= now {
                return Err(invalid(format!("the at time {} is not in the future", format_utc(at))));
            }
        }
        if schedule.next_after(now).is_none() {
            return Err(invalid("the trigger has no firing left before its EndDate"));
        }
        Ok(schedule)
    }

    /// The schedule of a trigger checked before, as fixed at `created_at` (a `rate` without
    /// StartDate counts from there): the same at every call, whatever the time now.
    pub fn compile(&self, created_at: Millis) -> Result<Schedule, CoreError> {
        let now = created_at;
        let time_zone: Tz = match &self.time_zone {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                invalid(format!("TimeZone {name:?} is not an IANA time zone name (e.g. Asia/Shanghai)"))
            })?,
        };
        let start = self.start_date.as_deref().map(|text| parse_date_time(text, time_zone, "StartDate")).transpose()?;
        let end = self.end_date.as_deref().map(|text| parse_date_time(text, time_zone, "EndDate")).transpose()?;
        let kind = match self.trigger_type {
            TriggerType::At => ScheduleKind::At(parse_date_time(&self.expression, time_zone, "Expression")?),
            TriggerType::Rate => {
                ScheduleKind::Rate { period_ms: parse_rate(&self.expression)?, anchor: start.unwrap_or(now) }
            }
            TriggerType::Cron => ScheduleKind::Cron(Box::new(Cron::parse(&self.expression)?)),
        };
        Ok(Schedule { kind, time_zone, start, end })
    }
}

impl Schedule {
    /// The first firing strictly after `after`: not before the start, before the end.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let floor = match self.start {
            Some(start) if start > after => start - 1,
            _ => after,
        };
        let next = match &self.kind {
            ScheduleKind::At(at) => Some(*at).filter(|at| *at > floor),
            ScheduleKind::Rate { period_ms, anchor } => {
                if floor < *anchor {
                    Some(*anchor)
                } else {
                    let periods = (floor - anchor) / period_ms + 1;
                    anchor.checked_add(periods.checked_mul(*period_ms)?)
                }
            }
            ScheduleKind::Cron(cron) => cron.next_after(floor, self.time_zone, self.end),
        }?;
        match self.end {
            Some(end) if next >= end => None,
            _ => Some(next),
        }
    }
}

/// `2026-12-02T02:00:00Z` (an offset: that instant), or `2026-12-02T02:00:00` /
/// `2026-12-02 02:00:00` / `2026-12-02` (local time in `time_zone`).
pub fn parse_date_time(text: &str, time_zone: Tz, what: &str) -> Result<Millis, CoreError> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.timestamp_millis());
    }
    let naive = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)));
    let Some(naive) = naive else {
        return Err(invalid(format!(
            "{what} {text:?} is not a date-time such as 2026-12-02T02:00:00Z or 2026-12-02T02:00:00 (in TimeZone)"
        )));
    };
    local_to_utc(naive, time_zone)
        .ok_or_else(|| invalid(format!("{what} {text:?} does not exist in {time_zone} (a daylight-saving gap)")))
}

/// The instant of a local time; in a fold (the hour repeated when clocks go back) the
/// earlier one; `None` in a gap.
fn local_to_utc(naive: NaiveDateTime, time_zone: Tz) -> Option<Millis> {
    match time_zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.timestamp_millis()),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.timestamp_millis()),
        LocalResult::None => None,
    }
}

/// `20261201T023000Z`: the firing's time in image names.
pub fn compact_utc(at: Millis) -> String {
    Utc.timestamp_millis_opt(at).single().map(|t| t.format("%Y%m%dT%H%M%SZ").to_string()).unwrap_or_default()
}

/// `2026-12-01T02:30:00Z`.
pub fn format_utc(at: Millis) -> String {
    Utc.timestamp_millis_opt(at).single().map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// `30 minute`, `2 hours`, `1 day`: the period in milliseconds (at least one minute).
pub fn parse_rate(text: &str) -> Result<i64, CoreError> {
    let bad = || invalid(format!("rate Expression {text:?} is not \"N minute\", \"N hour\" or \"N day\" (N from 1)"));
    let mut words = text.split_whitespace();
    let (Some(number), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err(bad());
    };
    let number: i64 = number.parse().ok().filter(|n| (1..=100_000).contains(n)).ok_or_else(bad)?;
    let unit_ms = match unit.to_ascii_lowercase().trim_end_matches('s') {
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => return Err(bad()),
    };
    Ok(number * unit_ms)
}

/// A Quartz-style cron expression: `sec min hour day-of-month month day-of-week [year]`.
/// Fields take `*`, numbers, ranges `a-b`, steps `*/n` `a/n` `a-b/n`, and lists; months
/// `JAN`–`DEC`, days of week `1`–`7` or `SUN`–`SAT` (1 = Sunday, as Quartz). `?` stands for
/// "no restriction" in day-of-month or day-of-week; when both are restricted, a day matching
/// either is taken (as cron does). `L`, `W` and `#` are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bit 0 = Sunday … bit 6 = Saturday.
    days_of_week: u64,
    dom_any: bool,
    dow_any: bool,
    /// Years 1970..=2099 as offsets; `None` for every year.
    years: Option<u128>,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn cron_invalid(expression: &str, message: impl std::fmt::Display) -> CoreError {
    invalid(format!("cron Expression {expression:?}: {message}"))
}

/// One field's values as a bit set of `min..=max` (bit = value). `names` map to `min + index`.
/// Returns the set and whether the field was `*` or `?`.
fn cron_field(field: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<(u128, bool), String> {
    if field == "*" || field == "?" {
        let mut all = 0u128;
        for v in min..=max {
            all |= 1 << v;
        }
        return Ok((all, true));
    }
    let value = |text: &str| -> Result<u32, String> {
        let upper = text.to_ascii_uppercase();
        if let Some(index) = names.iter().position(|name| *name == upper) {
            return Ok(min + index as u32);
        }
        match text.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(format!("{what} value {text:?} is not in {min}-{max}")),
        }
    };
    let mut set = 0u128;
    for part in field.split(',') {
        if part.contains(['L', 'W', '#', 'l', 'w']) && !names.iter().any(|n| part.to_ascii_uppercase().contains(n)) {
            return Err(format!("{what} {part:?}: L, W and # are not supported"));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| format!("{what} step {step:?} is not a number from 1"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let from = value(range)?;
            (from, if part.contains('/') { max } else { from })
        };
        if from > to {
            return Err(format!("{what} range {range:?} goes backwards"));
        }
        let mut v = from;
        while v <= to {
            set |= 1 << v;
            v = v.saturating_add(step);
        }
    }
    Ok((set, false))
}

impl Cron {
    pub fn parse(expression: &str) -> Result<Cron, CoreError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 6 && fields.len() != 7 {
            return Err(cron_invalid(
                expression,
                format!(
                    "has {} fields; it takes 6 (sec min hour day-of-month month day-of-week) and an optional year",
                    fields.len()
                ),
            ));
        }
        let err = |message: String| cron_invalid(expression, message);
        for (index, field) in fields.iter().enumerate() {
            if *field == "?" && index != 3 && index != 5 {
                return Err(err("? is only allowed in day-of-month or day-of-week".into()));
            }
        }
        let (seconds, _) = cron_field(fields[0], 0, 59, &[], "second").map_err(err)?;
        let (minutes, _) = cron_field(fields[1], 0, 59, &[], "minute").map_err(err)?;
        let (hours, _) = cron_field(fields[2], 0, 23, &[], "hour").map_err(err)?;
        let (days_of_month, dom_any) = cron_field(fields[3], 1, 31, &[], "day-of-month").map_err(err)?;
        let (months, _) = cron_field(fields[4], 1, 12, &MONTHS, "month").map_err(err)?;
        let (dow, dow_any) = cron_field(fields[5], 1, 7, &DAYS, "day-of-week").map_err(err)?;
        let years = match fields.get(6) {
            None | Some(&"*") => None,
            Some(field) => {
                // Years 1970..=2097 as offsets from 1970, so they fit the bit set.
                let mut shifted = Vec::new();
                for part in field.split(',') {
                    let (range, step) = part.split_once('/').map_or((part, None), |(r, s)| (r, Some(s)));
                    let shift = |y: &str| match y.parse::<u32>() {
                        Ok(y) if (1970..=2097).contains(&y) => Ok((y - 1970).to_string()),
                        _ => Err(err(format!("year {y:?} is not in 1970-2097"))),
                    };
                    let range = match range.split_once('-') {
                        Some((a, b)) => format!("{}-{}", shift(a)?, shift(b)?),
                        None if range == "*" => "*".to_string(),
                        None => shift(range)?,
                    };
                    shifted.push(match step {
                        Some(step) => format!("{range}/{step}"),
                        None => range,
                    });
                }
                let (set, _) = cron_field(&shifted.join(","), 0, 127, &[], "year").map_err(err)?;
                Some(set)
            }
        };
        let cron = Cron {
            seconds: seconds as u64,
            minutes: minutes as u64,
            hours: hours as u64,
            days_of_month: days_of_month as u64,
            months: months as u64,
            // Quartz's 1..=7 (Sunday = 1) to bits 0..=6.
            days_of_week: (dow >> 1) as u64,
            dom_any,
            dow_any,
            years,
        };
        // A day that can never come (31 February, 30 February): refused now, not searched
        // for at every firing.
        let possible = (1..=12u32).any(|month| {
            cron.months & (1 << month) != 0
                && (1..=days_in_month_max(month)).any(|day| cron.days_of_month & (1 << day) != 0)
        });
        if !cron.dow_any && cron.dom_any {
            // Only the day of week restricts: always possible.
        } else if !possible {
            return Err(err("its day-of-month never occurs in its months".into()));
        }
        Ok(cron)
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        if let Some(years) = self.years {
            let offset = date.year() - 1970;
            if !(0..128).contains(&offset) || years & (1 << offset) == 0 {
                return false;
            }
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// The first matching instant strictly after `after`, local times read in `time_zone`
    /// (a local time in a daylight-saving gap does not occur; in a fold, the earlier one).
    /// The search stops at `end` or after [`CRON_SEARCH_YEARS`].
    pub fn next_after(&self, after: Millis, time_zone: Tz, end: Option<Millis>) -> Option<Millis> {
        let after_utc = Utc.timestamp_millis_opt(after).single()?;
        let local = after_utc.with_timezone(&time_zone).naive_local();
        let mut date = local.date();
        let last = date.checked_add_signed(Duration::days(366 * i64::from(CRON_SEARCH_YEARS)))?;
        while date <= last {
            if let Some(end) = end {
                // The day starts (locally) more than a day after the end: nothing left.
                let day_start = date.and_hms_opt(0, 0, 0)?;
                if let Some(start) = local_to_utc(day_start, time_zone) {
                    if start > end + 86_400_000 {
                        return None;
                    }
                }
            }
            if self.day_matches(date) {
                for hour in bits(self.hours, 0, 23) {
                    for minute in bits(self.minutes, 0, 59) {
                        for second in bits(self.seconds, 0, 59) {
                            let naive = date.and_hms_opt(hour, minute, second)?;
                            if let Some(at) = local_to_utc(naive, time_zone) {
                                if at > after {
                                    return Some(at);
                                }
                            }
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

fn bits(set: u64, min: u32, max: u32) -> impl Iterator<Item = u32> {
    (min..=max).filter(move |v| set & (1 << v) != 0)
}

fn days_in_month_max(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Millis {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn trigger(value: Value) -> TimerTrigger {
        TimerTrigger::from_value(&value).expect("trigger")
    }

    #[test]
    fn the_seeds_periodic_example_fires_daily_at_two_on_days_21_to_25_until_the_expiry() {
        let t = trigger(serde_json::json!({
            "Type": "cron", "Expression": "0 0 2 21-25 * ?", "EndDate": "2020-08-26T00:00:00Z"
        }));
        let schedule = t.schedule(at("2020-08-01T00:00:00Z")).expect("schedule");
        let mut firings = vec![];
        let mut now = at("2020-08-01T00:00:00Z");
        while let Some(next) = schedule.next_after(now) {
            firings.push(format_utc(next));
            now = next;
        }
        assert_eq!(
            firings,
            ["21", "22", "23", "24", "25"].map(|d| format!("2020-08-{d}T02:00:00Z")).to_vec(),
            "then the expiry on the 26th ends it"
        );
    }

    #[test]
    fn cron_reads_its_time_zone() {
        let t = trigger(serde_json::json!({
            "Type": "cron", "Expression": "0 30 2 * * ?", "TimeZone": "Asia/Shanghai", "EndDate": "2027-01-01T00:00:00Z"
        }));
        let schedule = t.schedule(at("2026-12-01T00:00:00Z")).expect("schedule");
        // 02:30 in Shanghai (UTC+8) is 18:30 UTC the day before.
        assert_eq!(format_utc(schedule.next_after(at("2026-12-01T00:00:00Z")).unwrap()), "2026-12-01T18:30:00Z");
    }

    #[test]
    fn cron_skips_a_daylight_saving_gap_and_takes_the_earlier_of_a_fold() {
        let cron = Cron::parse("0 30 2 * * ?").unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 02:30 does not exist in Berlin: the next firing is the 30th.
        let next = cron.next_after(at("2026-03-28T12:00:00Z"), berlin, None).unwrap();
        assert_eq!(format_utc(next), "2026-03-30T00:30:00Z");
        let cron = Cron::parse("0 30 2 25 OCT ?").unwrap();
        let next = cron.next_after(at("2026-10-01T00:00:00Z"), berlin, None).unwrap();
        assert_eq!(format_utc(next), "2026-10-25T00:30:00Z", "02:30 CEST, the first of the two");
    }

    #[test]
    fn cron_fields_lists_steps_names_and_day_of_week() {
        let cron = Cron::parse("0 */15 9-17 ? * MON-FRI").unwrap();
        // 2026-12-05 is a Saturday: the next is Monday 7th 09:00.
        assert_eq!(
            format_utc(cron.next_after(at("2026-12-04T17:45:00Z"), Tz::UTC, None).unwrap()),
            "2026-12-07T09:00:00Z"
        );
        assert_eq!(
            format_utc(cron.next_after(at("2026-12-07T09:00:00Z"), Tz::UTC, None).unwrap()),
            "2026-12-07T09:15:00Z"
        );
        let cron = Cron::parse("0 0 0 1 JAN,JUL ? 2027").unwrap();
        assert_eq!(
            format_utc(cron.next_after(at("2026-12-04T00:00:00Z"), Tz::UTC, None).unwrap()),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            format_utc(cron.next_after(at("2027-01-01T00:00:00Z"), Tz::UTC, None).unwrap()),
            "2027-07-01T00:00:00Z"
        );
        assert_eq!(cron.next_after(at("2027-07-01T00:00:00Z"), Tz::UTC, None), None);
        // Quartz: 1 = Sunday.
        let sunday = Cron::parse("0 0 12 ? * 1").unwrap();
        assert_eq!(
            format_utc(sunday.next_after(at("2026-12-01T00:00:00Z"), Tz::UTC, None).unwrap()),
            "2026-12-06T12:00:00Z"
        );
    }

    #[test]
    fn bad_cron_expressions_are_refused() {
        for bad in [
            "0 0 2 * *",
            "0 0 2 21-25 * ? 2020 1",
            "60 0 2 * * ?",
            "0 0 24 * * ?",
            "0 0 2 L * ?",
            "0 0 2 ? * 2#1",
            "0 0 2 15W * ?",
            "? 0 2 * * *",
            "0 0 2 25-21 * ?",
            "0 0 0 31 2 ?",
            "0 0 2 * FOO ?",
            "0 0 2 */0 * ?",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rate_counts_from_its_start_and_at_fires_once() {
        assert_eq!(parse_rate("30 minute").unwrap(), 1_800_000);
        assert_eq!(parse_rate("2 hours").unwrap(), 7_200_000);
        assert_eq!(parse_rate("1 day").unwrap(), 86_400_000);
        for bad in ["", "1", "0 day", "1 week", "x hour", "1 hour later"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        let now = at("2026-12-01T00:00:00Z");
        let t = trigger(serde_json::json!({"Type": "rate", "Expression": "1 hour", "EndDate": "2026-12-01T03:30:00Z"}));
        let s = t.schedule(now).unwrap();
        assert_eq!(s.next_after(now), Some(now + 3_600_000));
        assert_eq!(s.next_after(now + 3_600_000), Some(now + 7_200_000));
        assert_eq!(s.next_after(now + 3 * 3_600_000), None, "04:00 is after the expiry");
        let t = trigger(
            serde_json::json!({"Type": "at", "Expression": "2026-12-02 10:00:00", "TimeZone": "Asia/Shanghai"}),
        );
        let s = t.schedule(now).unwrap();
        assert_eq!(s.next_after(now).map(format_utc).as_deref(), Some("2026-12-02T02:00:00Z"));
        assert_eq!(s.next_after(at("2026-12-02T02:00:00Z")), None);
    }

    #[test]
    fn bad_triggers_are_refused() {
        let now = at("2026-12-01T00:00:00Z");
        for bad in [
            serde_json::json!("daily"),
            serde_json::json!({"Type": "weekly", "Expression": "1 day", "EndDate": "2027-01-01T00:00:00Z"}),
            serde_json::json!({"Type": "rate", "Expression": "1 day"}),
            serde_json::json!({"Type": "cron", "Expression": "0 0 2 * * ?"}),
            serde_json::json!({"Type": "rate", "Expression": "1 day", "EndDate": "2026-11-30T00:00:00Z"}),
            serde_json::json!({"Type": "at", "Expression": "2026-11-30T00:00:00Z"}),
            serde_json::json!({"Type": "at", "Expression": "tomorrow"}),
            serde_json::json!({"Type": "at", "Expression": "2026-12-02T00:00:00Z", "TimeZone": "Mars/Olympus"}),
            serde_json::json!({"Type": "rate", "Expression": "1 day", "StartDate": "2027-02-01T00:00:00Z", "EndDate": "2027-01-01T00:00:00Z"}),
            serde_json::json!({"Type": "rate", "Expression": "1 day", "EndDate": "2027-01-01T00:00:00Z", "Every": "x"}),
            serde_json::json!({"Type": "cron", "Expression": "0 0 2 1 1 ? 2026", "EndDate": "2027-12-01T00:00:00Z"}),
        ] {
            let result = TimerTrigger::from_value(&bad).and_then(|t| t.schedule(now));
            let error = result.expect_err(&bad.to_string());
            assert_eq!(error.code(), "InvalidParameter", "{bad}");
        }
    }

    #[test]
    fn compact_times_are_those_of_image_names() {
        assert_eq!(compact_utc(at("2026-12-01T02:30:00Z")), "20261201T023000Z");
    }
}
