//! Reads the track points of a GPX file (1.1, or 1.0: the same track
//! elements in another namespace). Errors name the line.
//!
//! A file is read whole or refused: one that ends before closing what it
//! opened (an interrupted transfer) is refused saying where it ends, and so
//! is one with nothing to make trips of (no track point, or none with a
//! time). Points without a time in a track that has timed ones are counted
//! and reported, since they cannot be placed in a trip.
//!
//! A `<time>` is an XML Schema `dateTime`, whose zone is optional; GPX
//! times are UTC by the schema's own words, so a time without a zone
//! (`2013-01-01T12:00:04`, as some devices write it) is read as UTC.

use quick_xml::events::Event;
use quick_xml::Reader;

use domicile_sdk::import::OnBroken;
use domicile_sdk::time::parse_rfc3339;

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
    /// Unix seconds.
    pub t: i64,
    /// Which `<trkseg>` the point belongs to; trips never span two.
    pub segment: usize,
}

/// A GPX time: RFC 3339, or without a zone, in UTC.
pub fn parse_gpx_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    parse_rfc3339(raw).or_else(|| {
        let has_zone = raw.ends_with(['Z', 'z']) || raw.get(19..).is_some_and(|rest| rest.contains(['+', '-']));
        (!has_zone).then(|| parse_rfc3339(&format!("{raw}Z"))).flatten()
    })
}

/// What a GPX file gives.
#[derive(Debug, Default, PartialEq)]
pub struct Track {
    /// The track points with a time, in time order.
    pub points: Vec<Point>,
    /// Track points without a time: they belong to no trip.
    pub untimed: usize,
}

fn line_of(text: &str, position: u64) -> usize {
    let end = (position as usize).min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The track points with a time, in time order, and how many had none. A
/// point with a malformed coordinate or time goes to `on_broken` with its
/// line: it fails the file (`domicile_sdk::import::refuse`) or is left out.
/// Broken XML, a file cut off, and a file without timed track points fail.
pub fn parse(bytes: &[u8], on_broken: &mut OnBroken<'_>) -> Result<Track, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text (byte {})", e.valid_up_to()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut points = Vec::new();
    let mut segment = 0;
    let mut seen_gpx = false;
    // Elements opened and not closed yet: a whole file closes them all.
    let mut depth = 0usize;
    let (mut untimed, mut waypoints, mut route_points) = (0, 0, 0);
    // The point being read: (lat, lon, line), and whether we are in its <time>.
    let mut current: Option<(f64, f64, usize)> = None;
    let mut time: Option<i64> = None;
    let mut in_time = false;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("line {}: broken XML: {e}", line_of(text, reader.error_position())))?;
        match &event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "gpx" => seen_gpx = true,
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "wpt" => waypoints += 1,
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "rtept" => route_points += 1,
            Event::Empty(e) if e.local_name().as_ref() == "trkpt" => untimed += 1,
            Event::Start(e) if e.local_name().as_ref() == "trkseg" => segment += 1,
            Event::Start(e) if e.local_name().as_ref() == "trkpt" => {
                let line = line_of(text, at);
                let coord = |name: &str| -> Result<f64, String> {
                    let attr = e
                        .try_get_attribute(name)
                        .map_err(|err| format!("bad attribute: {err}"))?
                        .ok_or_else(|| format!("<trkpt> has no `{name}`"))?;
                    let value =
                        attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|err| err.to_string())?;
                    value.trim().parse::<f64>().map_err(|_| format!("`{name}` is not a number: {value}"))
                };
                let point = coord("lat").and_then(|lat| Ok((lat, coord("lon")?))).and_then(|(lat, lon)| {
                    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
                        Ok((lat, lon))
                    } else {
                        Err(format!("coordinates out of range ({lat}, {lon})"))
                    }
                });
                current = match point {
                    Ok((lat, lon)) => Some((lat, lon, line)),
                    Err(reason) => {
                        on_broken(&format!("line {line}"), &reason)?;
                        None
                    }
                };
                time = None;
            }
            Event::Start(e) if e.local_name().as_ref() == "time" && current.is_some() => in_time = true,
            Event::Text(t) if in_time => {
                let raw = t.xml10_content();
                let line = line_of(text, at);
                time = parse_gpx_time(&raw);
                if time.is_none() {
                    let reason = format!("`{}` is not a time such as 2026-03-02T08:01:00Z", raw.trim());
                    on_broken(&format!("line {line}"), &reason)?;
                    // The point is left out: without its time it belongs to no trip.
                    current = None;
                    in_time = false;
                }
            }
            Event::End(e) if e.local_name().as_ref() == "time" => in_time = false,
            Event::End(e) if e.local_name().as_ref() == "trkpt" => match (current.take(), time.take()) {
                (Some((lat, lon, _)), Some(t)) => points.push(Point { lat, lon, t, segment }),
                (Some(_), None) => untimed += 1,
                // Left out as broken: already reported.
                (None, _) => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_gpx {
        return Err("this is not a GPX file (no <gpx> element)".into());
    }
    let last_line = line_of(text, text.len() as u64);
    if let Some((_, _, line)) = current {
        return Err(format!(
            "line {line}: the file ends (line {last_line}) inside this <trkpt>: it is cut off; export or download the track again"
        ));
    }
    if depth > 0 {
        return Err(format!(
            "the file ends (line {last_line}) before </gpx>, with {depth} element(s) still open: it is cut off; export or download the track again"
        ));
    }
    if points.is_empty() && untimed == 0 {
        return Err(format!(
            "no track point (<trkpt>): the file holds {waypoints} waypoint(s) and {route_points} route point(s), places rather than a recorded journey; import a recorded track"
        ));
    }
    if points.is_empty() {
        return Err(format!(
            "none of its {untimed} track point(s) has a time (<time>), so no trip can be made of them; export the track with its times"
        ));
    }
    // Devices sometimes write points out of order; trips need time order.
    points.sort_by_key(|p| p.t);
    points.dedup_by(|a, b| a.t == b.t && a.lat == b.lat && a.lon == b.lon);
    Ok(Track { points, untimed })
}

/// Great-circle distance in metres.
pub fn haversine_m(a: &Point, b: &Point) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Vec<Point>, String> {
        super::parse(bytes, &mut domicile_sdk::import::refuse).map(|track| track.points)
    }

    #[test]
    fn a_time_without_a_zone_is_utc() {
        let utc = parse_gpx_time("2013-01-01T12:00:04Z").unwrap();
        assert_eq!(parse_gpx_time("2013-01-01T12:00:04"), Some(utc));
        assert_eq!(parse_gpx_time(" 2013-01-01T12:00:04.250 "), Some(utc));
        assert_eq!(parse_gpx_time("2013-01-01T13:00:04+01:00"), Some(utc));
        assert_eq!(parse_gpx_time("2013-01-01T12:00:04+0100"), None, "a malformed zone is not ignored");
        assert_eq!(parse_gpx_time("01/01/2013 12:00"), None);
    }

    #[test]
    fn reads_gpx_1_0() {
        let gpx = r#"<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0"><trk><trkseg>
            <trkpt lat="47.2" lon="-1.5"><time>2026-04-07T07:45:00</time><speed>5.0</speed></trkpt>
            <trkpt lat="47.21" lon="-1.5"><time>2026-04-07T07:47:00</time></trkpt></trkseg></trk></gpx>"#;
        let points = parse(gpx.as_bytes()).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].t - points[0].t, 120);
    }

    const TRACK: &str = r#"<?xml version="1.0"?>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
<trkpt lat="47.2" lon="-1.5"><time>2026-04-07T07:45:00Z</time></trkpt>
<trkpt lat="47.21" lon="-1.5"><time>2026-04-07T07:47:00Z</time></trkpt>
<trkpt lat="47.22" lon="-1.5"><time>2026-04-07T07:49:00Z</time></trkpt>
</trkseg></trk></gpx>
"#;

    /// A transfer cut off between two points, or anywhere else, is refused
    /// whole, saying where the file ends.
    #[test]
    fn a_file_cut_off_is_refused_whole() {
        assert_eq!(parse(TRACK.as_bytes()).unwrap().len(), 3);
        let after_second = &TRACK[..TRACK.find("</trkpt>\n<trkpt lat=\"47.22\"").unwrap() + "</trkpt>".len()];
        assert_eq!(
            parse(after_second.as_bytes()).unwrap_err(),
            "the file ends (line 4) before </gpx>, with 3 element(s) still open: it is cut off; export or download the track again"
        );
        let inside = &TRACK[..TRACK.find("<time>2026-04-07T07:49").unwrap()];
        assert!(parse(inside.as_bytes())
            .unwrap_err()
            .starts_with("line 5: the file ends (line 5) inside this <trkpt>"));
        for cut in 1..TRACK.trim_end().len() {
            if let Ok(points) = parse(&TRACK.as_bytes()[..cut]) {
                panic!("a cut at byte {cut} was imported ({} points)", points.len());
            }
        }
    }

    #[test]
    fn a_file_without_timed_track_points_is_refused_and_untimed_points_are_counted() {
        let untimed =
            TRACK.replace("<time>2026-04-07T07:45:00Z</time>", "").replace("<time>2026-04-07T07:47:00Z</time>", "");
        let track = super::parse(untimed.as_bytes(), &mut domicile_sdk::import::refuse).unwrap();
        assert_eq!((track.points.len(), track.untimed), (1, 2));
        let none = untimed.replace("<time>2026-04-07T07:49:00Z</time>", "");
        assert!(parse(none.as_bytes()).unwrap_err().starts_with("none of its 3 track point(s) has a time"));
        let route = r#"<gpx><wpt lat="1" lon="1"/><rte><rtept lat="1" lon="2"/><rtept lat="1" lon="3"/></rte></gpx>"#;
        assert_eq!(
            parse(route.as_bytes()).unwrap_err(),
            "no track point (<trkpt>): the file holds 1 waypoint(s) and 2 route point(s), places rather than a recorded journey; import a recorded track"
        );
    }
}
