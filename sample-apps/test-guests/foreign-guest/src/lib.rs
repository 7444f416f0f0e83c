//! Test guest: imports an interface that is neither WASI nor domicile's
//! (`example:exfil/upload`). No home links it, so installing it must fail,
//! naming the import.

domicile_sdk::generate!("foreign-service", "../wasi-wit", generate_all);

struct ForeignGuest;

impl Guest for ForeignGuest {
    fn run(input: String) -> Result<String, String> {
        example::exfil::upload::send(&input);
        Ok("{}".into())
    }
}

export!(ForeignGuest);
