//! Duration strings of manifests and config: a sequence of `<integer><unit>` with units
//! `ms`, `s`, `m`, `h` (e.g. `250ms`, `30s`, `1m30s`). One strict grammar so that the Rust,
//! Go and Python validators agree on every input.

use std::time::Duration;

/// The JSON Schema pattern that matches exactly the strings [`parse`] accepts.
pub const PATTERN: &str = "^([0-9]{1,9}(ms|s|m|h))+$";

/// Parses a duration string; the error says what is wrong with it.
pub fn parse(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.len() > 64 {
        return Err("duration is too long".into());
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total_ms: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(format!(
                "expected a number at position {} of {text:?}",
                start + 1
            ));
        }
        if i - start > 9 {
            return Err("number in duration is too large".into());
        }
        let n: u128 = text[start..i]
            .parse()
            .map_err(|_| "bad number".to_string())?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let factor = match &text[unit_start..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => {
                return Err(format!(
                    "missing unit after {n} (use ms, s, m or h, e.g. \"{n}s\")"
                ));
            }
            other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
        };
        total_ms += n * factor;
    }
    let ms = u64::try_from(total_ms).map_err(|_| "duration is too large".to_string())?;
    Ok(Duration::from_millis(ms))
}

/// Formats a duration in the grammar [`parse`] accepts, using the largest exact units.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0ms".into();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        for bad in [
            "",
            "30",
            "s",
            "1.5s",
            "-1s",
            "30 s",
            "1d",
            "1m30",
            "9999999999s",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad:?}");
        }
        assert!(parse("30").unwrap_err().contains("missing unit"));
        assert!(parse("1d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn format_round_trips() {
        for ms in [0u64, 1, 999, 1000, 61_000, 3_600_001, 90_061_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }
}
