//! Test guest: imports WASI sockets. domicile offers no network, so
//! installing it must fail, naming the import.

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
