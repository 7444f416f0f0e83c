//! Test guest: imports WASI sockets, as the toolchains of other languages
//! do. domicile links them but gives no network: creating a socket fails
//! inside the app.

domicile_sdk::generate!("net-service", "../wasi-wit", generate_all);

struct NetGuest;

impl Guest for NetGuest {
    fn run(_input: String) -> Result<String, String> {
        use wasi::sockets::network::IpAddressFamily;
        let socket = wasi::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4);
        Ok(format!("{{\"socket\": {}}}", socket.is_ok()))
    }
}

export!(NetGuest);
