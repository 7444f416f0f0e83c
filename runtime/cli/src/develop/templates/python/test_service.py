"""The app run natively on fixture documents: `python3 test_app.py`."""

import unittest

from domicile_testing import TestHome


class App(unittest.TestCase):
    def test_adds_up_the_km_of_each_mode(self):
        home = TestHome().with_docs("io.domicile.mobility.trip", [
            {"mode": "bike", "distance_m": 4200},
            {"mode": "bike", "distance_m": 800},
        ])
        output = home.run("app.py")
        self.assertEqual(output["km_per_mode"], {"bike": 5.0})
        self.assertEqual(home.logs, ["info: 1 transport modes"])


if __name__ == "__main__":
    unittest.main()
