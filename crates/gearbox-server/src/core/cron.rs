//! Cron schedules for SUBMIT_JOB_SCHED: five fields (minute, hour, day of month, month, day of
//! week) evaluated in UTC.
//!
//! Each field is empty or `*` (any value), or a comma list of `N`, `A-B`, `*/S`, `A-B/S` or
//! `N/S`. As in classic cron, when both day of month and day of week are restricted a day
//! matching either runs the job. Day of week counts from Sunday = 0 (7 is Sunday too).

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

use super::time::UnixMillis;

/// A parsed five-field schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_any: bool,
    weekdays_any: bool,
    /// The fields as sent, for display.
    pub text: String,
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron field {field:?}: {reason}")]
pub struct CronError {
    /// The field as sent.
    pub field: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn parse_field(raw: &[u8], min: u32, max: u32) -> Result<(u64, bool), CronError> {
    let text = String::from_utf8_lossy(raw).trim().to_string();
    let err = |reason| CronError {
        field: text.clone(),
        reason,
    };
    if text.is_empty() || text == "*" {
        let mut bits = 0u64;
        for v in min..=max {
            bits |= 1 << v;
        }
        return Ok((bits, true));
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| err("not a number"));
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, num(s)?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(err("step must be positive"));
        }
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            let v = num(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(err("value out of range"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, false))
}

impl Schedule {
    /// Parses the five SUBMIT_JOB_SCHED fields.
    pub fn parse(fields: &[bytes::Bytes; 5]) -> Result<Schedule, CronError> {
        let (minutes, _) = parse_field(&fields[0], 0, 59)?;
        let (hours, _) = parse_field(&fields[1], 0, 23)?;
        let (days, days_any) = parse_field(&fields[2], 1, 31)?;
        let (months, _) = parse_field(&fields[3], 1, 12)?;
        let (mut weekdays, weekdays_any) = parse_field(&fields[4], 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        let text = fields
            .iter()
            .map(|f| {
                if f.is_empty() {
                    "*".into()
                } else {
                    String::from_utf8_lossy(f).into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Schedule {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_any,
            weekdays_any,
            text,
        })
    }

    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// The first matching minute strictly after `after`; `None` if nothing matches within
    /// five years (e.g. 31 February).
    pub fn next_after(&self, after: UnixMillis) -> Option<UnixMillis> {
        let secs = i64::try_from(after.as_secs()).ok()?;
        let start = Utc.timestamp_opt(secs, 0).single()?;
        let mut t = start.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = start + Duration::days(5 * 366);
        while t < limit {
            if self.months & (1 << t.month()) == 0 || !self.day_matches(&t) {
                let next_day = (t + Duration::days(1)).date_naive().and_hms_opt(0, 0, 0)?;
                t = Utc.from_utc_datetime(&next_day);
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.with_minute(0)? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return u64::try_from(t.timestamp()).ok().map(UnixMillis::from_secs);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sched(f: [&'static str; 5]) -> Schedule {
        Schedule::parse(&f.map(|s| Bytes::from_static(s.as_bytes()))).expect("valid schedule")
    }

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> UnixMillis {
        let t = Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        UnixMillis::from_secs(t.timestamp() as u64)
    }

    #[test]
    fn every_minute_is_the_next_minute() {
        let s = sched(["", "", "", "", ""]);
        assert_eq!(
            s.next_after(ms(2026, 1, 1, 10, 5).plus_ms(30_000)),
            Some(ms(2026, 1, 1, 10, 6))
        );
    }

    #[test]
    fn fixed_time_rolls_to_next_day() {
        let s = sched(["30", "2", "*", "*", "*"]);
        assert_eq!(
            s.next_after(ms(2026, 1, 1, 3, 0)),
            Some(ms(2026, 1, 2, 2, 30))
        );
        assert_eq!(
            s.next_after(ms(2026, 1, 1, 1, 0)),
            Some(ms(2026, 1, 1, 2, 30))
        );
    }

    #[test]
    fn steps_ranges_and_lists() {
        let s = sched(["*/15", "9-17", "*", "*", "1-5"]);
        // 2026-01-03 is a Saturday: next is Monday 2026-01-05 09:00.
        assert_eq!(
            s.next_after(ms(2026, 1, 3, 12, 0)),
            Some(ms(2026, 1, 5, 9, 0))
        );
        assert_eq!(
            s.next_after(ms(2026, 1, 5, 9, 0)),
            Some(ms(2026, 1, 5, 9, 15))
        );
        let l = sched(["0", "0", "1,15", "*", "*"]);
        assert_eq!(
            l.next_after(ms(2026, 1, 2, 0, 0)),
            Some(ms(2026, 1, 15, 0, 0))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // The 13th, or any Friday. 2026-02-06 is a Friday.
        let s = sched(["0", "0", "13", "*", "5"]);
        assert_eq!(
            s.next_after(ms(2026, 2, 1, 0, 0)),
            Some(ms(2026, 2, 6, 0, 0))
        );
        let sunday7 = sched(["0", "0", "*", "*", "7"]);
        // 2026-02-01 is a Sunday.
        assert_eq!(
            sunday7.next_after(ms(2026, 1, 31, 0, 0)),
            Some(ms(2026, 2, 1, 0, 0))
        );
    }

    #[test]
    fn impossible_and_invalid_schedules() {
        assert_eq!(
            sched(["0", "0", "31", "2", "*"]).next_after(ms(2026, 1, 1, 0, 0)),
            None
        );
        for bad in [
            ["60", "", "", "", ""],
            ["x", "", "", "", ""],
            ["*/0", "", "", "", ""],
        ] {
            assert!(
                Schedule::parse(&bad.map(|s| Bytes::from_static(s.as_bytes()))).is_err(),
                "{bad:?}"
            );
        }
    }
}
