//! Jobs: cron expressions and tags of `jobs.schedule`, and the registry
//! entry of one job. Firing is the runtime owner's: it asks
//! `next_job_due()` and calls `run_due_jobs(now)` (a timer thread, the pool
//! loop, the capture clock in `skua test-agent`).
//!
//! Expressions have six fields, seconds first, in UTC, as Kubeshark's
//! (robfig/cron with seconds): `sec min hour day-of-month month
//! day-of-week`, day-of-week 0–6 from Sunday (7 is Sunday too); an optional
//! seventh field is the year. `@hourly`, `@daily` ... are accepted.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use cron::Schedule;

/// `jobs.schedule` tags are lower-cased with whitespace turned into `-`.
pub fn normalize_tag(tag: &str) -> String {
    tag.trim()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c.to_ascii_lowercase() })
        .collect()
}

/// Parses a 6-field cron expression. A 5-field one (classic crontab) is
/// rejected with the 6-field form it probably meant.
pub fn parse_cron(expr: &str) -> Result<Schedule, String> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return Schedule::from_str(expr).map_err(|e| format!("cron {expr:?}: {e}"));
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    match fields.len() {
        6 | 7 => {}
        5 => {
            return Err(format!(
                "cron {expr:?} has 5 fields; skua's cron has 6 with seconds first (UTC): \"0 {expr}\" runs at second 0"
            ))
        }
        n => {
            return Err(format!(
                "cron {expr:?} has {n} fields; expected 6 (second minute hour day-of-month month day-of-week), e.g. \"0 */1 * * * *\""
            ))
        }
    }
    // The cron crate numbers weekdays 1–7 from Sunday; Kubeshark (and
    // crontab) 0–6 from Sunday.
    let mut fixed: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    if let Some(dow) = fixed.get_mut(5) {
        *dow = shift_weekdays(dow)?;
    }
    Schedule::from_str(&fixed.join(" ")).map_err(|e| format!("cron {expr:?}: {e}"))
}

fn shift_weekdays(field: &str) -> Result<String, String> {
    let shift = |s: &str| -> Result<String, String> {
        match s.parse::<u32>() {
            Ok(n @ 0..=6) => Ok((n + 1).to_string()),
            Ok(7) => Ok("1".to_owned()),
            Ok(n) => Err(format!("day-of-week {n} is out of range 0-7")),
            Err(_) => Ok(s.to_owned()),
        }
    };
    field
        .split(',')
        .map(|part| {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            let range = match range.split_once('-') {
                Some((a, b)) => format!("{}-{}", shift(a)?, shift(b)?),
                None => shift(range)?,
            };
            Ok(match step {
                Some(s) => format!("{range}/{s}"),
                None => range,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|v| v.join(","))
}

pub(crate) fn to_chrono(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

pub(crate) fn from_chrono(t: DateTime<Utc>) -> SystemTime {
    match u64::try_from(t.timestamp_nanos_opt().unwrap_or(0)) {
        Ok(ns) => UNIX_EPOCH + Duration::from_nanos(ns),
        Err(_) => UNIX_EPOCH,
    }
}

/// The first run strictly after `t`.
pub(crate) fn next_after(s: &Schedule, t: SystemTime) -> Option<SystemTime> {
    s.after(&to_chrono(t)).next().map(from_chrono)
}

/// What `jobs.list()` and the API show of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub tag: String,
    pub cron: String,
    pub agent: String,
    /// Maximum runs, 0 unlimited.
    pub limit: u32,
    pub runs: u32,
    pub next_run: Option<SystemTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised() {
        assert_eq!(normalize_tag(" Log Packet  Count "), "log-packet--count");
        assert_eq!(normalize_tag("ABC"), "abc");
    }

    #[test]
    fn five_fields_rejected_with_six_field_form() {
        let e = parse_cron("*/5 * * * *").unwrap_err();
        assert!(e.contains("\"0 */5 * * * *\""), "{e}");
        assert!(parse_cron("* *").is_err());
        assert!(parse_cron("0 */1 * * * *").is_ok());
        assert!(parse_cron("@hourly").is_ok());
    }

    #[test]
    fn every_minute_at_second_zero_utc() {
        let s = parse_cron("0 */1 * * * *").unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        let n = next_after(&s, t).unwrap();
        assert_eq!(n.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_700_000_040);
    }

    #[test]
    fn weekdays_count_from_sunday_zero() {
        // 2023-11-14 is a Tuesday; "every Monday at 00:00:00" is 2023-11-20.
        let s = parse_cron("0 0 0 * * 1").unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_699_920_000); // Tue 2023-11-14 00:00 UTC
        let n = next_after(&s, t).unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(n, 1_700_438_400);
        assert!(parse_cron("0 0 0 * * 1-5/2").is_ok());
        assert!(parse_cron("0 0 0 * * 0,7").is_ok());
        assert!(parse_cron("0 0 0 * * 9").is_err());
        assert!(parse_cron("0 0 0 * * MON-FRI").is_ok());
    }
}
