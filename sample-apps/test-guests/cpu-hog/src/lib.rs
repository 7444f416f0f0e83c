//! Test guest: spins forever. The host's CPU limit must stop it.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "service",
    with: {
        "domicile:app/types@0.1.0": domicile_sdk::bindings::domicile::app::types,
        "domicile:app/data@0.1.0": domicile_sdk::bindings::domicile::app::data,
        "domicile:app/log@0.1.0": domicile_sdk::bindings::domicile::app::log,
        "domicile:app/clock@0.1.0": domicile_sdk::bindings::domicile::app::clock,
    },
});

struct CpuHog;

impl Guest for CpuHog {
    fn run(_input: String) -> Result<String, String> {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export!(CpuHog);
