//! Numbers and times as people read them.

use chrono::{DateTime, NaiveDateTime, Utc};
use hopscope_schemas::CloudKind;

/// A duration in µs: `850 µs`, `12.3 ms`, `4.56 s`, `2 min 5 s`.
pub fn duration_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        let ms = us as f64 / 1_000.0;
        if ms < 100.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    } else if us < 60_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else {
        let s = us / 1_000_000;
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// A duration in ns.
pub fn duration_ns(ns: u64) -> String {
    duration_us(ns / 1_000)
}

/// A unix time in ns as `2026-11-01 04:13:26` (UTC).
pub fn time_ns(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = (ns % 1_000_000_000) as u32;
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ns.to_string())
}

/// A unix time in ns as `04:13:26.123`.
pub fn clock_ns(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = (ns % 1_000_000_000) as u32;
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ns.to_string())
}

#[cfg(test)]
/// A unix time in ns as the value of a `datetime-local` input (UTC, seconds).
pub fn input_time_ns(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Parses a time typed into a form: unix µs (as in the API), or a `datetime-local` value
/// (`2026-11-01T04:13` or with seconds), read as UTC. Returns unix ns.
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok()?.checked_mul(1_000);
    }
    let parsed = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()?;
    let ns = parsed.and_utc().timestamp_nanos_opt()?;
    u64::try_from(ns).ok()
}

/// A ratio 0..1 as a percentage: `12.5%`, `0%`, `<0.1%`.
pub fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p <= 0.0 {
        "0%".to_owned()
    } else if p < 0.1 {
        "<0.1%".to_owned()
    } else if p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// A rate, always per second (one unit for every value of a column or axis), with the
/// precision small rates need: `20/s`, `3.5/s`, `0.35/s`, `0.02/s`, `<0.01/s`, `0/s`.
pub fn rate(per_second: f64) -> String {
    if per_second >= 10.0 {
        format!("{per_second:.0}/s")
    } else if per_second >= 1.0 {
        format!("{per_second:.1}/s")
    } else if per_second >= 0.01 {
        format!("{per_second:.2}/s")
    } else if per_second > 0.0 {
        "<0.01/s".to_owned()
    } else {
        "0/s".to_owned()
    }
}

/// Where a cloud kind runs, in words.
pub fn cloud_words(kind: CloudKind) -> &'static str {
    match kind {
        CloudKind::Private => "private DC",
        CloudKind::Hosted => "hosted",
        CloudKind::Public => "public cloud",
        CloudKind::Unknown => "unknown location",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_always_per_second() {
        let shown: Vec<String> = [20.4, 3.46, 0.35, 1.0 / 60.0, 0.001, 0.0]
            .into_iter()
            .map(rate)
            .collect();
        assert_eq!(shown, ["20/s", "3.5/s", "0.35/s", "0.02/s", "<0.01/s", "0/s"]);
        assert!(shown.iter().all(|r| r.ends_with("/s")));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_us(850), "850 µs");
        assert_eq!(duration_us(12_345), "12.3 ms");
        assert_eq!(duration_us(456_000), "456 ms");
        assert_eq!(duration_us(4_560_000), "4.56 s");
        assert_eq!(duration_us(125_000_000), "2 min 5 s");
    }

    #[test]
    fn times_round_trip_through_inputs() {
        let ns = 1_790_000_000_000_000_000;
        assert_eq!(parse_time(&input_time_ns(ns)), Some(ns));
        assert_eq!(parse_time("1790000000000000"), Some(ns));
        assert_eq!(parse_time("2026-09-21T14:13"), parse_time("2026-09-21T14:13:00"));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(percent(0.78), "78%");
        assert_eq!(percent(0.0004), "<0.1%");
    }
}
