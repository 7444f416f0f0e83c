//! A real `domicile serve` on 127.0.0.1:0, and a small HTTP client that
//! keeps a session cookie and CSRF token the way the web UI does.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{repo, TestHome};

impl TestHome {
    /// Trusts the sample catalogue's key for catalogues and installs from it.
    pub fn with_sample_catalogue(self) -> TestHome {
        let key = repo().join("sample-apps/keys/sample-publisher.pub");
        self.ok(&["trust", "add", key.to_str().unwrap(), "--role", "catalogue", "--role", "publisher"]);
        self.ok(&["catalogue", "add-source", super::sample_catalogue().to_str().unwrap()]);
        self
    }

    /// Adds a resident with a web password; returns the password.
    pub fn add_resident(&self, name: &str) -> String {
        self.ok(&["--json", "resident", "add", name]).json()["password"].as_str().unwrap().to_owned()
    }

    /// A new password for an existing resident (`init`'s `me`, say).
    pub fn set_password(&self, name: &str) -> String {
        self.ok(&["--json", "resident", "password", name]).json()["password"].as_str().unwrap().to_owned()
    }
}

/// `domicile serve` running on a free port of 127.0.0.1.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// How a server ended.
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Server {
    pub fn start(home: &TestHome) -> Server {
        Server::start_with_env(home, &[])
    }

    pub fn start_with_env(home: &TestHome, env: &[(&str, &str)]) -> Server {
        Server::start_with(home, &[], env)
    }

    /// With more arguments to `serve` (`--cluster ...`).
    pub fn start_with(home: &TestHome, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = home.command(&[&["serve", "--addr", "127.0.0.1:0"], args].concat());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let Some(url) = first.trim().strip_prefix("domicile: serving ") else {
            // Most likely it stopped at start: what it said is the diagnosis.
            child.kill().ok();
            let status = child.wait().unwrap();
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).ok();
            panic!("unexpected first line of `serve`: {first:?} ({status}); it logged:\n{stderr}");
        };
        let url = url.trim_end_matches('/').to_owned();
        let stdout = std::thread::spawn(move || {
            let mut rest = first;
            stdout.read_to_string(&mut rest).ok();
            rest
        });
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            stderr_pipe.read_to_string(&mut text).ok();
            text
        });
        Server { child: Some(child), url, stdout: Some(stdout), stderr: Some(stderr) }
    }

    /// What the server printed and logged so far is kept until it stops;
    /// this kills it at once (SIGKILL), as a crash would.
    pub fn kill(mut self) -> Stopped {
        let mut child = self.child.take().unwrap();
        child.kill().ok();
        let status = child.wait().unwrap();
        Stopped {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }

    /// The server process's id (to read its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// Sends SIGTERM, as a service manager would, and waits for the exit
    /// (panics after 60 s: a liveness guard, not a timing assertion).
    pub fn stop(mut self) -> Stopped {
        let mut child = self.child.take().unwrap();
        std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        let status = super::wait_at_most_60_s(&mut child, "the server after SIGTERM");
        Stopped {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
    #[track_caller]
    pub fn ok(self) -> Reply {
        assert!((200..300).contains(&self.status), "HTTP {}: {}", self.status, self.text());
        self
    }
}

/// A client of the API: a session (cookie + CSRF token) after `sign_in`,
/// or a bearer token.
#[derive(Clone)]
pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Client { agent, base: base.to_owned(), cookie: None, csrf: None, bearer: None }
    }

    pub fn with_bearer(&self, token: &str) -> Client {
        Client { bearer: Some(token.to_owned()), cookie: None, csrf: None, ..self.clone() }
    }

    /// Signs in; keeps the session cookie and CSRF token on success.
    pub fn sign_in(&mut self, name: &str, password: &str) -> Reply {
        let reply = self.post("/api/v1/session", &serde_json::json!({ "name": name, "password": password }));
        if reply.status == 200 {
            let set_cookie = reply.header("set-cookie").expect("a session cookie").to_owned();
            self.cookie = Some(set_cookie.split(';').next().unwrap().to_owned());
            self.csrf = reply.json()["csrf"].as_str().map(str::to_owned);
        }
        reply
    }

    pub fn signed_in(base: &str, name: &str, password: &str) -> Client {
        let mut client = Client::new(base);
        client.sign_in(name, password).ok();
        client
    }

    pub fn request(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let uri = format!("{}{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(&uri);
        if let Some(cookie) = &self.cookie {
            builder = builder.header("cookie", cookie);
        }
        if let Some(csrf) = self.csrf.as_ref().filter(|_| method != "GET") {
            builder = builder.header("x-csrf-token", csrf);
        }
        if let Some(token) = &self.bearer {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let (content_type, bytes) = body.unwrap_or(("application/octet-stream", Vec::new()));
        if method != "GET" {
            builder = builder.header("content-type", content_type);
        }
        let request = builder.body(bytes).unwrap();
        let mut response = self.agent.run(request).unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = response.body_mut().with_config().limit(512 * 1024 * 1024).read_to_vec().unwrap_or_default();
        Reply { status, headers, body }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.request("POST", path, Some(("application/json", serde_json::to_vec(body).unwrap())))
    }
    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.request("PUT", path, Some(("application/json", serde_json::to_vec(body).unwrap())))
    }
    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, None)
    }
    pub fn upload(&self, path: &str, bytes: Vec<u8>) -> Reply {
        self.request("POST", path, Some(("application/octet-stream", bytes)))
    }
}
