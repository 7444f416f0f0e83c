//! Test guest: allocates without bound. The host's memory limit must stop it.

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

struct MemoryHog;

impl Guest for MemoryHog {
    fn run(_input: String) -> Result<String, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Touch every page so the allocation is real.
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

export!(MemoryHog);
