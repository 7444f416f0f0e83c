"""{{id}}: a domicile service. `domicile dev` runs it at every save."""

import wit_world
import domicile


def km_per_mode(options):
    km = {}
    for _, trip in domicile.query("io.domicile.mobility.trip"):
        km[trip["mode"]] = km.get(trip["mode"], 0) + trip["distance_m"] / 1000
    domicile.log.info(f"{len(km)} transport modes")  # print() goes to the app's log too
    return {"km_per_mode": {mode: round(k, 1) for mode, k in sorted(km.items())}}


class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        return domicile.serve(input, km_per_mode)
