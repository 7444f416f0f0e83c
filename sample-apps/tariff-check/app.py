"""Tariff check: would the off-peak hours option (heures creuses) cost
you less than the base tariff, given when your home actually uses
electricity?

Reads the load curve among your `io.domicile.energy.reading` documents
(only `kind`, `at`, `value`, `unit` and `interval_min`; never the meter
number). A load-curve reading is the average power (W) over the
`interval_min` minutes ending at `at`, so its energy is power x interval;
the interval is off-peak when it starts inside the off-peak window, in
the local time the meter wrote (`2026-03-02T22:30:00+01:00` ends an
interval that started at 22:00 local). Then it prices that energy under
both options, subscriptions included pro rata, and says which is cheaper,
by how much a year at this rate of use, and from what off-peak share the
off-peak option pays.

Input (every part optional; the defaults are France's regulated Tarif
Bleu for 6 kVA, February 2025, taxes included):

    {"base":     {"eur_per_kwh": 0.2016, "subscription_eur_per_month": 15.65},
     "off_peak": {"peak_eur_per_kwh": 0.2146, "off_peak_eur_per_kwh": 0.1696,
                  "subscription_eur_per_month": 15.96, "hours": "22:00-06:00"}}
"""

from datetime import datetime, timedelta

import wit_world
import domicile

READING = "io.domicile.energy.reading"
DAYS_PER_MONTH = 365 / 12
# Load-curve readings imported before they carried an interval (energy-importer 0.1).
LEGACY_INTERVAL_MIN = 30

DEFAULT_BASE = {"eur_per_kwh": 0.2016, "subscription_eur_per_month": 15.65}
DEFAULT_OFF_PEAK = {
    "peak_eur_per_kwh": 0.2146,
    "off_peak_eur_per_kwh": 0.1696,
    "subscription_eur_per_month": 15.96,
    "hours": "22:00-06:00",
}


def minute_of_day(text):
    """`22:00` as 1320; ValueError for anything else."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(f"`{text}` is not a time of day (HH:MM)")
    value = int(hours) * 60 + int(minutes)
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"`{text}` is not a time of day (HH:MM)")
    return value


def off_peak_window(hours):
    start, sep, end = str(hours).partition("-")
    if not sep:
        raise ValueError(f"off-peak hours `{hours}` must look like 22:00-06:00")
    start, end = minute_of_day(start.strip()), minute_of_day(end.strip())
    if start == end:
        raise ValueError("the off-peak window is empty")
    if start < end:
        return lambda minute: start <= minute < end
    return lambda minute: minute >= start or minute < end


def prices(options, name, defaults):
    given = options.get(name, {})
    if not isinstance(given, dict):
        raise ValueError(f"`{name}` must be an object")
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"`{name}` has unknown fields: {', '.join(sorted(unknown))}")
    merged = {**defaults, **given}
    for key, value in merged.items():
        if key != "hours" and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
            raise ValueError(f"`{name}.{key}` must be a number of euros, not {value!r}")
    return merged


def kwh_of(reading):
    """The energy of one load-curve reading, or None for a unit that is not power or energy."""
    value, unit = reading["value"], reading["unit"]
    minutes = reading.get("interval_min") or LEGACY_INTERVAL_MIN
    if unit == "W":
        return value * minutes / 60 / 1000
    if unit == "Wh":
        return value / 1000
    if unit == "kWh":
        return value
    return None


def compare(options):
    unknown = set(options) - {"base", "off_peak"}
    if unknown:
        raise ValueError(f"unknown input fields: {', '.join(sorted(unknown))} (expected base, off_peak)")
    base = prices(options, "base", DEFAULT_BASE)
    split = prices(options, "off_peak", DEFAULT_OFF_PEAK)
    is_off_peak = off_peak_window(split["hours"])

    kwh = off_peak_kwh = 0.0
    days = set()
    skipped = 0
    for _, reading in domicile.query(READING, {"kind": "load-curve"}, batch=1000):
        energy = kwh_of(reading)
        minutes = reading.get("interval_min") or LEGACY_INTERVAL_MIN
        try:
            start = datetime.fromisoformat(reading["at"]) - timedelta(minutes=minutes)
        except ValueError:
            energy = None
        if energy is None:
            skipped += 1
            continue
        kwh += energy
        days.add(start.date())
        if is_off_peak(start.hour * 60 + start.minute):
            off_peak_kwh += energy
    if not days:
        raise ValueError("no load curve among your energy readings: import an Enedis load-curve export first")

    n = len(days)
    months = n / DAYS_PER_MONTH
    base_energy = kwh * base["eur_per_kwh"]
    split_energy = (kwh - off_peak_kwh) * split["peak_eur_per_kwh"] + off_peak_kwh * split["off_peak_eur_per_kwh"]
    base_total = base_energy + months * base["subscription_eur_per_month"]
    split_total = split_energy + months * split["subscription_eur_per_month"]
    # The off-peak share s at which both cost the same, at this daily use E (kWh/day):
    # E*pb + Sb = E*(s*phc + (1-s)*php) + Shc.
    per_day = kwh / n
    spread = split["peak_eur_per_kwh"] - split["off_peak_eur_per_kwh"]
    subscriptions_per_day = (split["subscription_eur_per_month"] - base["subscription_eur_per_month"]) / DAYS_PER_MONTH
    break_even = None
    if per_day > 0 and spread > 0:
        break_even = (per_day * (split["peak_eur_per_kwh"] - base["eur_per_kwh"]) + subscriptions_per_day) / (per_day * spread)
    cheaper = "off-peak hours" if split_total < base_total else "base"
    saving = round(abs(base_total - split_total) / n * 365, 2)
    domicile.log.info(f"compared the two options over {n} days")
    v = domicile.view
    shown = [
        v.heading("Base tariff or off-peak hours?"),
        v.number(f"Cheaper for you: {cheaper}, saving per year", saving, "EUR"),
        v.number("Share of your use in off-peak hours", round(off_peak_kwh / kwh * 100, 1) if kwh else 0.0, "%"),
        v.chart("bar", f"Cost over your {n} days", ["base", "off-peak hours"],
                {"energy": [round(base_energy, 2), round(split_energy, 2)],
                 "energy and subscription": [round(base_total, 2), round(split_total, 2)]}, unit="EUR"),
    ]
    if break_even is not None:
        shown.append(v.text(f"Off-peak hours pay off from {round(break_even * 100, 1)} % of your use in off-peak hours."))
    return {
        "period": {"from": min(days).isoformat(), "to": max(days).isoformat(), "days": n},
        "kwh": round(kwh, 3),
        "off_peak_kwh": round(off_peak_kwh, 3),
        "off_peak_share": round(off_peak_kwh / kwh, 4) if kwh else 0.0,
        "options": [
            {"option": "base", "energy_eur": round(base_energy, 2), "total_eur": round(base_total, 2)},
            {"option": "off-peak hours", "energy_eur": round(split_energy, 2), "total_eur": round(split_total, 2)},
        ],
        "cheaper": cheaper,
        "saving_eur_per_year": saving,
        "break_even_off_peak_share": round(break_even, 4) if break_even is not None else None,
        "tariffs": {"base": base, "off_peak": split},
        "skipped_readings": skipped,
        "view": shown,
    }


class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        return domicile.serve(input, compare)
