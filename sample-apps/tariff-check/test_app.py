"""tariff-check run natively on fixture readings, with the SDK's test home
(`python3 sample-apps/tariff-check/test_app.py`; tests/languages.rs runs it)."""

import os
import sys
import unittest
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdk-python"))

from domicile_testing import AppFailed, TestHome  # noqa: E402

APP = os.path.join(HERE, "app.py")
READING = "io.domicile.energy.reading"
PARIS_WINTER = timezone(timedelta(hours=1))


def a_day_at(watts):
    """48 half-hour readings of `watts` on 2 March 2026, each ending at `at`."""
    start = datetime(2026, 3, 2, tzinfo=PARIS_WINTER)
    return [{"kind": "load-curve", "at": (start + timedelta(minutes=30 * n)).isoformat(), "value": watts,
             "unit": "W", "interval_min": 30} for n in range(1, 49)]


class TariffCheck(unittest.TestCase):
    def test_a_flat_day_is_a_third_off_peak(self):
        home = TestHome().with_docs(READING, a_day_at(500) + [{"kind": "daily-index", "at": "2026-03-02", "value": 1, "unit": "Wh"}])
        output = home.run(APP)
        self.assertEqual(output["kwh"], 12.0)
        self.assertEqual(output["off_peak_kwh"], 4.0)
        self.assertEqual(output["period"], {"from": "2026-03-02", "to": "2026-03-02", "days": 1})
        # The defaults (Tarif Bleu, 6 kVA), one day of subscriptions each.
        base = 12 * 0.2016 + 15.65 * 12 / 365
        off_peak = 8 * 0.2146 + 4 * 0.1696 + 15.96 * 12 / 365
        self.assertEqual(output["cheaper"], "off-peak hours")
        self.assertAlmostEqual(output["saving_eur_per_year"], round((base - off_peak) * 365, 2), places=2)
        self.assertEqual(output["view"][0], {"heading": "Base tariff or off-peak hours?"})
        self.assertEqual(home.logs, ["info: compared the two options over 1 days"])

    def test_what_is_wrong_is_said(self):
        with self.assertRaisesRegex(AppFailed, "no load curve"):
            TestHome().run(APP)
        with self.assertRaisesRegex(AppFailed, "unknown input fields: tarif"):
            TestHome().with_docs(READING, a_day_at(500)).run(APP, {"tarif": 1})
        with self.assertRaisesRegex(AppFailed, "is not a time of day"):
            TestHome().with_docs(READING, a_day_at(500)).run(APP, {"off_peak": {"hours": "22h-6h"}})


if __name__ == "__main__":
    unittest.main()
