//! Test guest: allocates without bound. The host's memory limit must stop it.

domicile_sdk::generate!("service", "../../../wit");

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
