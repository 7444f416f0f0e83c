//! Dates and times for apps, which have no clock or calendar of their own:
//! RFC 3339 timestamps to and from Unix seconds, calendar dates, ISO weeks,
//! and decimal numbers as data holders write them (`1 234,56`).

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date `(year, month, day)` of a day number from [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses `2026-03-02T08:01:00Z`, with optional fractional seconds and a
/// `Z` or `±hh:mm` offset. Returns Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// `2026-03-02T08:01:00Z`.
pub fn format_utc(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// A calendar date, without time or zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i64,
    pub month: i64,
    pub day: i64,
}

impl Date {
    /// Parses `2026-03-02`; checks the day exists.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (year, month, day) = (s[0..4].parse().ok()?, s[5..7].parse().ok()?, s[8..10].parse().ok()?);
        Date::new(year, month, day)
    }

    /// Parses the French `02/03/2026` (day first).
    pub fn parse_dmy(s: &str) -> Option<Date> {
        let mut parts = s.trim().split('/');
        let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 {
            return None;
        }
        Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
    }

    /// Parses an OFX date-time, `YYYYMMDD[HHMM[SS[.XXX]]][[±H[.MM][:TZ]]]`
    /// (`20260302`, `20120603133220.000[-7:PDT]`), and gives its date as
    /// written, in the statement's own zone. The time and zone, when there,
    /// must be well formed.
    pub fn parse_ofx(s: &str) -> Option<Date> {
        let s = s.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if !matches!(digits, 8 | 12 | 14) {
            return None;
        }
        let two = |i: usize| s[i..i + 2].parse::<u32>().ok();
        if digits >= 12 && (two(8)? > 23 || two(10)? > 59 || (digits == 14 && two(12)? > 60)) {
            return None;
        }
        let mut rest = &s[digits..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || digits != 14 {
                return None;
            }
            rest = &fraction[n..];
        }
        if let Some(zone) = rest.strip_prefix('[') {
            let zone = zone.strip_suffix(']')?;
            let (offset, name) = zone.split_once(':').unwrap_or((zone, ""));
            let hours = offset.strip_prefix(['+', '-']).unwrap_or(offset);
            let (h, m) = hours.split_once('.').unwrap_or((hours, "0"));
            let ok = |p: &str, max: u32| !p.is_empty() && p.len() <= 2 && p.parse::<u32>().is_ok_and(|v| v <= max);
            if !ok(h, 14) || !ok(m, 59) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
        } else if !rest.is_empty() {
            return None;
        }
        Date::new(s[0..4].parse().ok()?, s[4..6].parse().ok()?, s[6..8].parse().ok()?)
    }

    pub fn new(year: i64, month: i64, day: i64) -> Option<Date> {
        let date = Date { year, month, day };
        (date.add_days(0) == date && (1..=12).contains(&month) && (1..=31).contains(&day)).then_some(date)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    pub fn add_days(self, n: i64) -> Date {
        let (year, month, day) = civil_from_days(self.days() + n);
        Date { year, month, day }
    }

    /// The same day a year earlier (28 February for a 29 February).
    pub fn year_before(self) -> Date {
        Date::new(self.year - 1, self.month, self.day).unwrap_or(Date { year: self.year - 1, month: 2, day: 28 })
    }

    /// `2026-03`.
    pub fn month_key(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// The ISO 8601 week: `2026-W10`. Weeks start on Monday; week 1 holds
    /// the year's first Thursday.
    pub fn iso_week(self) -> String {
        // 1970-01-01 was a Thursday: Monday is 0.
        let weekday = (self.days() + 3).rem_euclid(7);
        let thursday = self.add_days(3 - weekday);
        let week = (thursday.days() - Date { year: thursday.year, month: 1, day: 1 }.days()) / 7 + 1;
        format!("{:04}-W{week:02}", thursday.year)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The local date and minute of day of an RFC 3339 time as written
/// (`2026-03-02T08:30:00+01:00` is 2 March, 08:30 local), without
/// converting to UTC: what a resident calls "that morning".
pub fn local_date_minute(s: &str) -> Option<(Date, i64)> {
    parse_rfc3339(s)?;
    let date = Date::parse(s.get(0..10)?)?;
    let minute = s.get(11..13)?.parse::<i64>().ok()? * 60 + s.get(14..16)?.parse::<i64>().ok()?;
    Some((date, minute))
}

/// A decimal number as exports write it: `1234.5`, `1 234,50`, `-42,00`,
/// `+3`, `1.234,50` or `1,234.50` (with both separators, the last one is the
/// decimal point), `42,50 €`. Returns `None` for an empty or malformed value.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let mut cleaned: String =
        s.trim().chars().filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '€' | '$' | '£')).collect();
    if let (Some(comma), Some(point)) = (cleaned.rfind(','), cleaned.rfind('.')) {
        let grouping = if comma > point { '.' } else { ',' };
        cleaned.retain(|c| c != grouping);
    }
    let cleaned = cleaned.replace(',', ".");
    if cleaned.is_empty() || cleaned.matches('.').count() > 1 {
        return None;
    }
    let digits = cleaned.strip_prefix(['+', '-']).unwrap_or(&cleaned);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    cleaned.parse().ok().filter(|v: &f64| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trips_and_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        let t = parse_rfc3339("2026-03-02T08:01:00Z").unwrap();
        assert_eq!(format_utc(t), "2026-03-02T08:01:00Z");
        assert_eq!(parse_rfc3339("2026-03-02T09:01:00.250+01:00"), Some(t));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z").map(format_utc).unwrap(), "2024-02-29T00:00:00Z");
        assert_eq!(parse_rfc3339("2026-13-02T08:01:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn dates_weeks_and_decimals() {
        let d = Date::parse("2026-03-02").unwrap();
        assert_eq!(d.iso_week(), "2026-W10");
        assert_eq!(Date::parse("2021-01-03").unwrap().iso_week(), "2020-W53");
        assert_eq!(Date::parse("2024-12-30").unwrap().iso_week(), "2025-W01");
        assert_eq!(Date::parse_dmy("02/03/2026"), Some(d));
        assert_eq!(Date::parse_ofx("20260302120000[+1:CET]"), Some(d));
        assert_eq!(Date::parse_ofx("20260302"), Some(d));
        assert_eq!(Date::parse_ofx("202603021200"), Some(d));
        assert_eq!(Date::parse_ofx("20260302133220.000[-7:PDT]"), Some(d));
        assert_eq!(Date::parse_ofx("20260302133220.5[+5.30:IST]"), Some(d));
        assert_eq!(Date::parse_ofx("20260302133220[-5]"), Some(d));
        for bad in
            ["2026030", "20260302 12:00", "20260302250000", "20260302120000[-7:PDT", "20260302.5", "20260230", ""]
        {
            assert_eq!(Date::parse_ofx(bad), None, "{bad}");
        }
        assert_eq!(Date::parse("2026-02-30"), None);
        assert_eq!(Date::parse("2024-02-29").unwrap().year_before().to_string(), "2023-02-28");
        assert_eq!(d.add_days(-2).to_string(), "2026-02-28");
        assert_eq!(local_date_minute("2026-03-02T08:30:00+01:00"), Some((d, 510)));
        assert_eq!(parse_decimal("1 234,50"), Some(1234.5));
        assert_eq!(parse_decimal("-42,00"), Some(-42.0));
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("1,2,3"), None);
        assert_eq!(parse_decimal("1.234,50"), Some(1234.5));
        assert_eq!(parse_decimal("-1,234.50"), Some(-1234.5));
        assert_eq!(parse_decimal("42,50 €"), Some(42.5));
        assert_eq!(parse_decimal("1.2.3,4"), Some(123.4));
        assert_eq!(parse_decimal("abc"), None);
    }
}
