//! `[[triggers]]`: when an app runs on its own. A trigger is either a
//! schedule (`schedule = "daily 07:00"`, `"weekly mon 08:00"`,
//! `"every 6h"`), in the home's time zone, or new data
//! (`on-change = "io.domicile.energy.reading"`: documents of that doctype
//! added, changed or deleted by someone else than the app). Each says why,
//! for the resident, who consents to it like to a permission and can switch
//! it off.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Doctype, Purpose};

/// The most triggers one app may declare.
pub const MAX_TRIGGERS: usize = 8;
/// The shortest period of an `every` schedule, in minutes.
pub const MIN_EVERY_MINUTES: u32 = 15;

/// One `[[triggers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_change: Option<Doctype>,
    /// Why the app runs then, for the resident.
    pub purpose: Purpose,
}

impl Trigger {
    /// What identifies the trigger across versions of the app (its state
    /// and whether the resident switched it off follow this key).
    pub fn key(&self) -> String {
        match (&self.schedule, &self.on_change) {
            (Some(s), _) => format!("schedule {s}"),
            (None, Some(d)) => format!("on-change {d}"),
            (None, None) => "none".into(),
        }
    }

    /// When it runs, in words: "every day at 07:00", "when
    /// io.domicile.energy.reading documents are added, changed or deleted"
    /// (by an import, the resident or another app: never the app itself).
    pub fn when(&self) -> String {
        match (&self.schedule, &self.on_change) {
            (Some(s), _) => s.describe(),
            (None, Some(d)) => {
                format!("when {d} documents are added, changed or deleted")
            }
            (None, None) => "never".into(),
        }
    }
}

/// A schedule, in the home's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at this minute of the day.
    Daily { minute_of_day: u32 },
    /// Every week on this day (0 = Monday) at this minute of the day.
    Weekly { weekday: u32, minute_of_day: u32 },
    /// Every this many minutes, counted from the Unix epoch (so the slots
    /// do not depend on when the app was installed).
    Every { minutes: u32 },
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAY_NAMES: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

impl Schedule {
    pub fn describe(&self) -> String {
        match *self {
            Schedule::Daily { minute_of_day } => format!("every day at {}", clock(minute_of_day)),
            Schedule::Weekly { weekday, minute_of_day } => {
                format!("every {} at {}", WEEKDAY_NAMES[weekday as usize], clock(minute_of_day))
            }
            Schedule::Every { minutes } if minutes % 60 == 0 => match minutes / 60 {
                1 => "every hour".into(),
                h => format!("every {h} hours"),
            },
            Schedule::Every { minutes } => format!("every {minutes} minutes"),
        }
    }
}

fn clock(minute_of_day: u32) -> String {
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Schedule, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad_clock = |c: &str| format!("`{c}` is not a time of day such as 07:00");
        match words.as_slice() {
            ["daily", at] => Ok(Schedule::Daily { minute_of_day: parse_clock(at).ok_or_else(|| bad_clock(at))? }),
            ["weekly", day, at] => {
                let weekday = WEEKDAYS
                    .iter()
                    .position(|d| d.eq_ignore_ascii_case(day))
                    .ok_or_else(|| format!("`{day}` is not a day of the week: mon, tue, wed, thu, fri, sat or sun"))?;
                Ok(Schedule::Weekly {
                    weekday: weekday as u32,
                    minute_of_day: parse_clock(at).ok_or_else(|| bad_clock(at))?,
                })
            }
            ["every", period] => {
                let (number, unit) =
                    period.split_at(period.find(|c: char| !c.is_ascii_digit()).unwrap_or(period.len()));
                let n: u32 = number.parse().map_err(|_| format!("`{period}` is not a period such as 30m, 6h or 1d"))?;
                let minutes = match unit {
                    "m" => Some(n),
                    "h" => n.checked_mul(60),
                    "d" => n.checked_mul(24 * 60),
                    _ => None,
                }
                .ok_or_else(|| format!("`{period}` is not a period such as 30m, 6h or 1d"))?;
                if !(MIN_EVERY_MINUTES..=7 * 24 * 60).contains(&minutes) {
                    return Err(format!(
                        "`every {period}`: a period is {MIN_EVERY_MINUTES} minutes to 7 days (use `weekly` beyond)"
                    ));
                }
                Ok(Schedule::Every { minutes })
            }
            _ => Err(format!("`{text}` is not a schedule: say `daily 07:00`, `weekly mon 08:00` or `every 6h`")),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Schedule::Daily { minute_of_day } => write!(f, "daily {}", clock(minute_of_day)),
            Schedule::Weekly { weekday, minute_of_day } => {
                write!(f, "weekly {} {}", WEEKDAYS[weekday as usize], clock(minute_of_day))
            }
            Schedule::Every { minutes } if minutes % (24 * 60) == 0 => write!(f, "every {}d", minutes / (24 * 60)),
            Schedule::Every { minutes } if minutes % 60 == 0 => write!(f, "every {}h", minutes / 60),
            Schedule::Every { minutes } => write!(f, "every {minutes}m"),
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Schedule, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
