"""The Python SDK's own tests, natively, on its test home
(`python3 sample-apps/sdk-python/test_domicile.py`; tests/languages.rs runs it)."""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from domicile_testing import AppFailed, TestHome  # noqa: E402

TRIP = "io.domicile.mobility.trip"
APP = '''
import wit_world
import domicile

def km(options):
    return {"km": sum(body["distance_m"] for _, body in domicile.query("io.domicile.mobility.trip")) / 1000}

class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        return domicile.serve(input, km)
'''


class Sdk(unittest.TestCase):
    def run_app(self, home):
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "app.py")
            with open(path, "w") as f:
                f.write(APP)
            return home.run(path)

    def test_a_missing_field_says_it_may_be_withheld(self):
        self.assertEqual(self.run_app(TestHome().with_docs(TRIP, [{"distance_m": 4200}])), {"km": 4.2})
        with self.assertRaisesRegex(AppFailed, "it is withheld from this app: declare it in the manifest's `fields`"):
            self.run_app(TestHome().with_docs(TRIP, [{"mode": "bike"}]))


if __name__ == "__main__":
    unittest.main()
