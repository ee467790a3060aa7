//! Storage servers on 127.0.0.1 for the remote-state tests: moto (S3) and Azurite (Azure
//! Blob), installed under target/test-tools/ by `make test-deps` (which `make test` runs).
//! A server that cannot start fails the test; it never skips it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::support::{TestEnv, repo};

/// A server process, killed (by its own handle) when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn tool(rel: &str) -> PathBuf {
    let path = repo().join("target/test-tools").join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `make test-deps` (the remote-state tests need it)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Server {
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
    let child = cmd
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the server");
    let mut server = Server {
        child,
        port,
        _dir: dir,
    };
    let started = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
            panic!("the server exited ({status}) before listening:\n{log}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the server did not listen on 127.0.0.1:{port} within 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// moto's S3 on 127.0.0.1, with bucket `bucket` created.
pub fn moto() -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(tool("venv/bin/moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let server = start(cmd, port, dir);
    // moto does not check signatures: a plain PUT creates the bucket.
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/bucket", server.endpoint()))
        .send()
        .expect("create bucket");
    assert!(resp.status().is_success(), "create bucket: {}", resp.status());
    server
}

/// The environment connctl reads S3 settings from: fake credentials, the local endpoint.
pub fn use_s3(env: &mut TestEnv, server: &Server) {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", server.endpoint().as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ] {
        env.set_env(k, v);
    }
}

const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key (not a secret).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's Blob service on 127.0.0.1, with container `cont` created.
pub fn azurite() -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(tool("node/node_modules/.bin/azurite-blob"));
    cmd.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--loose",
    ])
    .arg("--skipApiVersionCheck")
    .arg("--location")
    .arg(dir.path());
    let server = start(cmd, port, dir);
    create_container(&server, "cont");
    server
}

pub fn use_azurite(env: &mut TestEnv, server: &Server) {
    env.set_env("AZURE_STORAGE_USE_EMULATOR", "true");
    env.set_env("AZURITE_BLOB_STORAGE_URL", &server.endpoint());
}

/// Creates a container with a Shared Key request (object_store has no call for it).
fn create_container(server: &Server, name: &str) {
    let date = httpdate();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .expect("key");
    let signature = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
    let resp = reqwest::blocking::Client::new()
        .put(format!(
            "{}/{AZURITE_ACCOUNT}/{name}?restype=container",
            server.endpoint()
        ))
        .header("x-ms-date", &date)
        .header("x-ms-version", version)
        .header(
            "Authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
        )
        .header("Content-Length", "0")
        .send()
        .expect("create container");
    assert!(
        resp.status().is_success(),
        "create container: {} {}",
        resp.status(),
        resp.text().unwrap_or_default()
    );
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Now as an HTTP date (RFC 7231), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn httpdate() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let days = secs / 86400;
    let (h, m, s) = ((secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {name} {year} {h:02}:{m:02}:{s:02} GMT")
}
