//! Test guest: imports WASI sockets. domicile offers no network, so
//! installing it must fail, naming the import.

wit_bindgen::generate!({
    path: "../wasi-wit",
    world: "net-service",
    with: {
        "domicile:app/types@0.1.0": domicile_sdk::bindings::domicile::app::types,
        "domicile:app/data@0.1.0": domicile_sdk::bindings::domicile::app::data,
        "domicile:app/log@0.1.0": domicile_sdk::bindings::domicile::app::log,
        "domicile:app/clock@0.1.0": domicile_sdk::bindings::domicile::app::clock,
    },
    generate_all,
});

struct NetGuest;

impl Guest for NetGuest {
    fn run(_input: String) -> Result<String, String> {
        use wasi::sockets::network::IpAddressFamily;
        let socket = wasi::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4);
        Ok(format!("{{\"socket\": {}}}", socket.is_ok()))
    }
}

export!(NetGuest);
