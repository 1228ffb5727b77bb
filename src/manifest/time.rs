//! Timestamps as manifests and trust files write them: RFC 3339 in UTC, `2026-11-28T09:00:00Z`.
//!
//! Parsing is strict (four-digit year, `T`, `Z`, optional fraction of a second that is
//! dropped) and hand-written so that no time zone database or clock library is needed; a
//! timestamp is seconds since the Unix epoch. This module does not read the clock except in
//! [`Timestamp::now`], which callers may replace with an injected time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 UTC timestamp like `2026-11-28T09:00:00Z`: {reason}")]
pub struct TimestampError {
    pub text: String,
    pub reason: &'static str,
}

impl Timestamp {
    pub const fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    /// The system clock, to the second.
    pub fn now() -> Self {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        Timestamp(seconds)
    }

    /// This time plus `seconds` (saturating).
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Timestamp(self.0.saturating_add(seconds))
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| TimestampError {
            text: text.chars().take(64).collect(),
            reason,
        };
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let part = bytes.get(range).ok_or_else(|| fail("too short"))?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(fail("expected digits"));
            }
            Ok(part
                .iter()
                .fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0')))
        };
        let separator = |at: usize, want: u8, reason| match bytes.get(at) {
            Some(found) if *found == want => Ok(()),
            _ => Err(fail(reason)),
        };
        let year = digits(0..4)?;
        separator(4, b'-', "expected `-` after the year")?;
        let month = digits(5..7)?;
        separator(7, b'-', "expected `-` after the month")?;
        let day = digits(8..10)?;
        separator(10, b'T', "expected `T` between date and time")?;
        let hour = digits(11..13)?;
        separator(13, b':', "expected `:` after the hour")?;
        let minute = digits(14..16)?;
        separator(16, b':', "expected `:` after the minutes")?;
        let second = digits(17..19)?;
        let mut rest = bytes.get(19..).unwrap_or_default();
        if let Some(fraction) = rest.strip_prefix(b".") {
            let length = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if length == 0 || length > 9 {
                return Err(fail("a fraction of a second needs 1 to 9 digits"));
            }
            rest = fraction.get(length..).unwrap_or_default();
        }
        if rest != b"Z" {
            return Err(fail("must end in `Z` (UTC)"));
        }
        if !(1..=12).contains(&month) {
            return Err(fail("month out of range"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(fail("day out of range"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(fail("time of day out of range"));
        }
        let days = days_from_civil(year, month, day);
        Ok(Timestamp(
            days * 86_400 + hour * 3_600 + minute * 60 + second,
        ))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let seconds = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            seconds / 3_600,
            seconds % 3_600 / 60,
            seconds % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-11-28T09:00:00Z",
        ] {
            let parsed: Timestamp = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(
            "1970-01-02T00:00:00Z".parse::<Timestamp>().unwrap().unix(),
            86_400
        );
        assert_eq!(
            "2026-11-28T09:00:00.123456Z".parse::<Timestamp>().unwrap(),
            "2026-11-28T09:00:00Z".parse().unwrap()
        );
    }

    #[test]
    fn refuses_what_is_not_strict_utc() {
        for text in [
            "",
            "2026-11-28",
            "2026-11-28 09:00:00Z",
            "2026-11-28T09:00:00",
            "2026-11-28T09:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T09:00:00.Z",
            "+2026-11-28T09:00:00Z",
            "2026-11-28T09:00:00Zjunk",
        ] {
            assert!(text.parse::<Timestamp>().is_err(), "{text}");
        }
    }
}
