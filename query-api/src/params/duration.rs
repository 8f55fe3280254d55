//! Go duration strings (`time.ParseDuration`), as Jaeger takes them in `minDuration`,
//! `maxDuration` and api_v3's `query.durationMin`/`Max`: a sequence of decimal numbers with
//! optional fractions, each with a unit `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h` —
//! `500ms`, `1.5s`, `1m30s`, `2h45m`. A bare `0` needs no unit.

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not in Go's duration syntax.
    #[error("invalid duration {0:?} (expected e.g. 500ms, 1.5s, 1m30s, 250us, 2h)")]
    Invalid(String),
    /// A number is missing its unit.
    #[error("missing unit in duration {0:?} (units: ns, us, ms, s, m, h)")]
    MissingUnit(String),
    /// The unit is not one Go knows.
    #[error("unknown unit {unit:?} in duration {text:?} (units: ns, us, ms, s, m, h)")]
    UnknownUnit {
        /// The unit found.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// Negative durations make no sense as filters.
    #[error("negative duration {0:?}")]
    Negative(String),
    /// Larger than Go's ~292 years.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Go's largest duration, in nanoseconds (`math.MaxInt64`).
const MAX_NS: u128 = i64::MAX as u128;

fn unit_ns(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration into nanoseconds. Negative durations are refused.
pub fn parse_go_duration(text: &str) -> Result<u64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_owned());
    let mut rest = text;
    if let Some(stripped) = rest.strip_prefix('-') {
        // "-0" is zero in Go; any other negative value is refused.
        if stripped.chars().all(|c| c == '0' || c == '.') && !stripped.is_empty() {
            return Ok(0);
        }
        return Err(DurationError::Negative(text.to_owned()));
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(text.to_owned()));
        }
        let scale = unit_ns(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_owned(),
            text: text.to_owned(),
        })?;
        let overflow = || DurationError::Overflow(text.to_owned());
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        // Digits beyond nanosecond precision of the largest unit cannot matter.
        let frac_digits = &frac_part[..frac_part.len().min(20)];
        let frac: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| invalid())?
        };
        let frac_ns = frac * scale / 10u128.pow(frac_digits.len() as u32);
        total = whole
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_ns))
            .and_then(|v| v.checked_add(total))
            .filter(|v| *v <= MAX_NS)
            .ok_or_else(overflow)?;
        rest = after;
    }
    u64::try_from(total).map_err(|_| DurationError::Overflow(text.to_owned()))
}

/// Parses a search `lookback`: a Go duration, or the Jaeger UI's day and week values
/// (`2d`, `7d`, `1w`). `custom` (the UI's "use start/end") means none.
pub fn parse_lookback(text: &str) -> Result<Option<u64>, DurationError> {
    if text.eq_ignore_ascii_case("custom") {
        return Ok(None);
    }
    for (suffix, unit_ns) in [("d", 86_400_000_000_000u64), ("w", 7 * 86_400_000_000_000u64)] {
        if let Some(count) = text.strip_suffix(suffix)
            && let Ok(n) = count.parse::<u64>()
        {
            return n
                .checked_mul(unit_ns)
                .map(Some)
                .ok_or_else(|| DurationError::Overflow(text.to_owned()));
        }
    }
    parse_go_duration(text).map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    #[test]
    fn parses_go_durations() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("10ns", 10),
            ("250us", 250_000),
            ("250\u{b5}s", 250_000),
            ("250\u{3bc}s", 250_000),
            ("500ms", 500 * MS),
            ("1.5s", 1_500 * MS),
            (".5s", 500 * MS),
            ("1.s", S),
            ("1m30s", 90 * S),
            ("2h", 7_200 * S),
            ("2h45m0.5s", (2 * 3600 + 45 * 60) * S + 500 * MS),
            ("+5s", 5 * S),
            ("-0", 0),
            ("1.000000001s", S + 1),
            ("0.0000000001s", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert!(matches!(parse_go_duration(""), Err(DurationError::Invalid(_))));
        assert!(matches!(parse_go_duration("ms"), Err(DurationError::Invalid(_))));
        assert!(matches!(parse_go_duration("."), Err(DurationError::Invalid(_))));
        assert!(matches!(parse_go_duration("100"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(parse_go_duration("1s5"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(
            parse_go_duration("3d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_go_duration("1 s"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(parse_go_duration("-5s"), Err(DurationError::Negative(_))));
        assert!(matches!(
            parse_go_duration("9999999999h"),
            Err(DurationError::Overflow(_))
        ));
        assert!(parse_go_duration("2562047h").is_ok());
        assert!(matches!(parse_go_duration("2562048h"), Err(DurationError::Overflow(_))));
        let msg = parse_go_duration("abc").unwrap_err().to_string();
        assert!(msg.contains("abc"), "{msg}");
    }

    #[test]
    fn parses_lookbacks() {
        assert_eq!(parse_lookback("1h"), Ok(Some(3_600 * S)));
        assert_eq!(parse_lookback("2d"), Ok(Some(2 * 86_400 * S)));
        assert_eq!(parse_lookback("1w"), Ok(Some(7 * 86_400 * S)));
        assert_eq!(parse_lookback("custom"), Ok(None));
        assert!(parse_lookback("soon").is_err());
    }
}
