//! Test guest: spins forever. The host's CPU limit must stop it.

domicile_sdk::generate!("service", "../../../wit");

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
