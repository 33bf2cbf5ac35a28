//! End to end: the real `coffer server --dev` binary, driven through the
//! `coffer` CLI (with `COFFER_HOME` in a temporary directory) and through
//! raw HTTP requests for the wire-level promises of docs/api.md.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const COFFER: &str = env!("CARGO_BIN_EXE_coffer");

/// Environment variables that would change what the CLI or server does.
const SCRUBBED_ENV: &[&str] = &[
    "COFFER_GATEWAY_URL",
    "COFFER_PROFILE",
    "COFFER_CA_CERT",
    "COFFER_ACCESS_KEY",
    "COFFER_ACCESS_ID",
    "COFFER_ACCESS_TYPE",
    "COFFER_TOKEN",
    "COFFER_STORAGE_URL",
    "COFFER_ROOT_KEY",
    "COFFER_ROOT_KEY_FILE",
    "COFFER_ROOT_KEY_COMMAND",
    "COFFER_DATA_DIR",
    "COFFER_LISTEN",
    "COFFER_CONFIG",
    "COFFER_TLS_CERT",
    "COFFER_TLS_KEY",
    "COFFER_ALLOW_INSECURE_HTTP",
    "AKEYLESS_ACCESS_ID",
    "AKEYLESS_ACCESS_TYPE",
    "AKEYLESS_ACCESS_KEY",
    "AKEYLESS_JWT",
    "AKEYLESS_TOKEN",
    "AKEYLESS_UID_TOKEN",
    "AKEYLESS_API_URL",
    "AKEYLESS_GATEWAY_URL",
];

fn scrubbed(mut cmd: Command) -> Command {
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `coffer server --dev`; stopped on drop (also when a test panics).
struct Server {
    child: Option<Child>,
    port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn drain(stream: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// Start with extra flags; with `--tls-cert`, readiness is a TCP connect
    /// (the raw HTTP health probe speaks plain HTTP only).
    fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let mut cmd = scrubbed(Command::new(COFFER));
        cmd.args(["server", "--dev", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn coffer server");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(child.stderr.take().unwrap(), stderr.clone());
        let mut server = Server {
            child: Some(child),
            port,
            stdout,
            stderr,
        };
        server.wait_ready(!extra.contains(&"--tls-cert"));
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn logs(&self) -> String {
        format!(
            "--- server stdout ---\n{}\n--- server stderr ---\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    fn wait_ready(&mut self, plain_http: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("coffer server exited with {status}\n{}", self.logs());
            }
            if !plain_http && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok((200, body)) = http(self.port, "GET", "/health", b"") {
                let v: Value = serde_json::from_str(&body).unwrap();
                // Readiness: the status and each check's state.
                assert_eq!(v["status"], "ok", "{v}");
                assert_eq!(v["checks"]["store"], "ok", "{v}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server not healthy after 60 s\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The bootstrap admin credentials printed on first start.
    fn bootstrap_credentials(&self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.stdout.lock().unwrap().clone();
            let id = field_after(&out, "access_id:").filter(|id| id.starts_with("p-"));
            let key = field_after(&out, "access_key:");
            if let (Some(id), Some(key)) = (id, key) {
                return (id, key);
            }
            assert!(
                Instant::now() < deadline,
                "no bootstrap credentials printed\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Graceful first (SIGTERM through kill(1), on our own child's pid).
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().ok();
        child.wait().ok();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first whitespace-separated word after `label` in `text`
/// (like the regex `label\s+(\S+)`).
fn field_after(text: &str, label: &str) -> Option<String> {
    let start = text.find(label)? + label.len();
    text[start..].split_whitespace().next().map(String::from)
}

/// One CLI run.
#[derive(Debug)]
struct Run {
    args: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "`coffer {}` failed: {self:#?}", self.args);
        self
    }

    /// Failed (exit status 1, or one of the kinds of docs/cli.md: 3 auth,
    /// 4 permission, 5 not found, 6 conflict, 7 network) with one
    /// `Error: …` message on stderr (a message of several parts, one per
    /// failed secret, continues on indented lines).
    #[track_caller]
    fn failed(self) -> Run {
        assert!(
            matches!(self.code, 1 | 3..=7),
            "`coffer {}` should fail (1, 3-7): {self:#?}",
            self.args
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(!lines.is_empty(), "an error message expected: {self:#?}");
        assert!(lines[0].starts_with("Error: "), "{self:#?}");
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.starts_with("  ") && l.trim().len() > 2),
            "continuation lines are indented: {self:#?}"
        );
        self
    }

    /// Failed with exactly `code` (docs/cli.md) and an `Error: …` message.
    #[track_caller]
    fn failed_with(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "`coffer {}` should fail with {code}: {self:#?}",
            self.args
        );
        self.failed()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`coffer {}` printed no JSON ({e}): {self:#?}", self.args))
    }
}

/// The CLI with its own `COFFER_HOME`.
struct Cli {
    home: PathBuf,
}

impl Cli {
    fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.run_full(args, stdin, &[])
    }

    /// With extra environment variables (over the scrubbed environment).
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_full(args, None, env)
    }

    fn run_full(&self, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
        let mut cmd = scrubbed(Command::new(COFFER));
        cmd.args(args)
            .envs(env.iter().copied())
            .env("COFFER_HOME", &self.home)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("spawn coffer");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            args: args.join(" "),
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }
}

/// A raw HTTP/1.1 request; returns (status, body).
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    // Write the body on another thread: the server may answer (413) before
    // reading all of it.
    let mut writer = stream.try_clone()?;
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&body).ok();
    });
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    stream.shutdown(std::net::Shutdown::Both).ok();
    sender.join().ok();
    if raw.is_empty() {
        read?;
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<(u16, String)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("bad chunk"))?;
            let size_text = String::from_utf8_lossy(&rest[..eol]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = decoded;
    }
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

/// POST a JSON body; returns (status, parsed JSON body).
#[track_caller]
fn post(port: u16, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = http(port, "POST", path, body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {path} → {status}: body is not JSON ({e}): {text:?}"));
    (status, value)
}

/// A 4xx/5xx with `{"error": "<non-empty message>"}`.
#[track_caller]
fn assert_error(got: (u16, Value), status: u16, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    let msg = got.1["error"].as_str().unwrap_or_default();
    assert!(!msg.is_empty(), "{what}: no error message in {}", got.1);
}

fn looks_denied(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    [
        "denied",
        "forbidden",
        "not allowed",
        "permission",
        "not authorized",
    ]
    .iter()
    .any(|w| s.contains(w))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn cli_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let mut server = Server::start(&data_dir);
    let url = server.url();
    let (admin_id, admin_key) = server.bootstrap_credentials();

    // ---- profile and login ----
    cli.run(&[
        "configure",
        "--access-id",
        &admin_id,
        "--access-key",
        &admin_key,
        "--gateway-url",
        &url,
    ])
    .ok();
    let profile_file = cli.home.join("profiles/default.toml");
    let text = std::fs::read_to_string(&profile_file).unwrap();
    assert!(
        text.contains("[default]") && text.contains(&admin_id),
        "{text}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&profile_file), 0o600);

    let login = cli
        .run(&[
            "auth",
            "--access-id",
            &admin_id,
            "--access-type",
            "access_key",
            "--access-key",
            &admin_key,
            "--gateway-url",
            &url,
        ])
        .ok();
    let admin_token = login.stdout.trim().to_string();
    assert_eq!(
        login.stdout,
        format!("{admin_token}\n"),
        "auth prints only the token"
    );
    assert!(!admin_token.is_empty() && !admin_token.contains(char::is_whitespace));
    #[cfg(unix)]
    assert_eq!(mode(&cli.home.join("tokens/default.json")), 0o600);
    let full = cli.run(&["auth", "--json"]).ok().json();
    assert!(
        full["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{full}"
    );
    assert!(
        full["expiration"].as_str().is_some_and(|t| !t.is_empty()),
        "{full}"
    );
    // The jwt access type reaches the server (which refuses this fake JWT).
    let jwt = cli
        .run(&[
            "auth",
            "--access-id",
            &admin_id,
            "--access-type",
            "jwt",
            "--jwt",
            "not.a.jwt",
        ])
        .failed();
    assert!(!jwt.stderr.contains(&admin_key));
    let valid = cli.run(&["validate-token"]).ok();
    assert!(valid.stdout.contains("valid:"), "{valid:#?}");
    assert_eq!(
        cli.run(&["validate-token", "--json", "--token", &admin_token])
            .ok()
            .json()["is_valid"],
        true
    );
    cli.run(&[
        "auth",
        "--access-id",
        &admin_id,
        "--access-key",
        "wrong-key",
    ])
    .failed();

    // ---- static secrets ----
    let v = [
        "x-value-one-S3CR3T",
        "x-value-two-S3CR3T",
        "x-value-three-S3CR3T",
    ];
    cli.run(&[
        "create-secret",
        "-n",
        "/app/x",
        "-v",
        v[0],
        "--description",
        "test secret",
        "--tag",
        "t1",
        "--tag",
        "t2",
    ])
    .ok();
    cli.run(&["update-secret-val", "-n", "/app/x", "-v", v[1]])
        .ok();
    cli.run(&[
        "update-secret-val",
        "--name",
        "/app/x",
        "--value",
        v[2],
        "--keep-prev-version",
        "true",
    ])
    .ok();
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/app/x"]).ok().stdout,
        format!("{}\n", v[2])
    );
    for (version, value) in [("1", v[0]), ("2", v[1]), ("3", v[2])] {
        let got = cli
            .run(&["get-secret-value", "-n", "/app/x", "--version", version])
            .ok();
        assert_eq!(got.stdout.trim_end(), value, "version {version}");
    }
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/app/x", "--json"])
            .ok()
            .json(),
        json!({"/app/x": v[2]})
    );
    let other_value = "other-value-S3CR3T";
    let denied_value = "denied-value-S3CR3T";
    cli.run(&["create-secret", "-n", "/other/y", "-v", other_value])
        .ok();
    cli.run(&[
        "create-secret",
        "-n",
        "/app/secret-denied",
        "-v",
        denied_value,
    ])
    .ok();
    cli.run(&["create-secret", "-n", "/app/x", "-v", "dup"])
        .failed();
    let stdin_value = "from-stdin-S3CR3T\nsecond line\n";
    cli.run_with_stdin(
        &["create-secret", "-n", "/app/stdin", "-v", "-"],
        Some(stdin_value.as_bytes()),
    )
    .ok();
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/app/stdin"])
            .ok()
            .stdout,
        stdin_value
    );
    let both = cli
        .run(&["get-secret-value", "-n", "/app/x", "-n", "/other/y"])
        .ok();
    assert_eq!(
        both.stdout,
        format!("/app/x: {}\n/other/y: {other_value}\n", v[2])
    );
    let json_value = r#"{"user":"u","password":"S3CR3T-json"}"#;
    cli.run(&[
        "create-secret",
        "-n",
        "/app/json",
        "-v",
        json_value,
        "--format",
        "json",
    ])
    .ok();
    let got: Value = serde_json::from_str(
        &cli.run(&["get-secret-value", "-n", "/app/json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(got, serde_json::from_str::<Value>(json_value).unwrap());

    let described = cli
        .run(&["describe-item", "-n", "/app/x", "--show-versions"])
        .ok();
    for want in ["/app/x", "STATIC_SECRET", "last_version: 3", "versions:"] {
        assert!(described.stdout.contains(want), "{want}: {described:#?}");
    }
    assert!(!described.stdout.contains("S3CR3T"));
    let described = cli
        .run(&["describe-item", "-n", "/app/x", "--show-versions", "--json"])
        .ok()
        .json();
    assert_eq!(described["item_name"], "/app/x");
    assert_eq!(described["last_version"], 3);
    assert_eq!(described["item_versions"].as_array().map(Vec::len), Some(3));
    assert_eq!(described["item_tags"], json!(["t1", "t2"]));

    let listed = cli.run(&["list-items"]).ok();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    for want in ["/app/x", "/other/y", "/app/secret-denied"] {
        assert!(lines.contains(&want), "{want}: {listed:#?}");
    }
    let in_app = cli.run(&["list-items", "--path", "/app"]).ok();
    assert!(in_app.stdout.lines().any(|l| l == "/app/x"), "{in_app:#?}");
    assert!(
        !in_app.stdout.lines().any(|l| l == "/other/y"),
        "{in_app:#?}"
    );
    let listed = cli.run(&["list-items", "--json"]).ok().json();
    assert!(
        listed["items"].as_array().is_some_and(|i| i.len() >= 4),
        "{listed}"
    );

    cli.run(&["create-secret", "-n", "/app/tmp", "-v", "tmp-S3CR3T"])
        .ok();
    cli.run(&["delete-item", "-n", "/app/tmp"]).ok();
    let gone = cli.run(&["get-secret-value", "-n", "/app/tmp"]).failed();
    assert!(gone.stderr.contains("pending deletion"), "{gone:#?}");
    cli.run(&[
        "update-secret-val",
        "-n",
        "/app/x",
        "-v",
        "x-value-four-S3CR3T",
    ])
    .ok();
    cli.run(&["delete-item", "-n", "/app/x", "--version", "4"])
        .ok();
    cli.run(&["get-secret-value", "-n", "/app/x", "--version", "4"])
        .failed();
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/app/x"])
            .ok()
            .stdout
            .trim_end(),
        v[2],
        "deleting the newest version falls back to the previous one"
    );

    // ---- a second identity with a role ----
    let am = cli
        .run(&["create-auth-method", "-n", "/ci/app", "--description", "ci"])
        .ok();
    let app_id = field_after(&am.stdout, "access_id:").expect("access_id printed");
    let app_key = field_after(&am.stdout, "access_key:").expect("access_key printed");
    assert!(app_id.starts_with("p-"), "{am:#?}");
    cli.run(&[
        "create-role",
        "-n",
        "app-reader",
        "--description",
        "reads /app",
    ])
    .ok();
    cli.run(&[
        "set-role-rule",
        "--role-name",
        "app-reader",
        "--path",
        "/app/*",
        "--capability",
        "read",
        "--capability",
        "list",
    ])
    .ok();
    cli.run(&[
        "set-role-rule",
        "--role-name",
        "app-reader",
        "--path",
        "/app/secret-denied",
        "--capability",
        "deny",
    ])
    .ok();
    let assoc = cli
        .run(&["assoc-role-am", "-r", "app-reader", "-a", "/ci/app"])
        .ok();
    assert!(
        field_after(&assoc.stdout, "assoc_id:").is_some(),
        "{assoc:#?}"
    );
    let role = cli
        .run(&["get-role", "-n", "app-reader", "--json"])
        .ok()
        .json();
    assert_eq!(
        role["rules"]["path_rules"].as_array().map(Vec::len),
        Some(2),
        "{role}"
    );
    assert_eq!(
        role["role_auth_methods_assoc"][0]["auth_method_access_id"],
        app_id.as_str()
    );
    let role_text = cli.run(&["get-role", "-n", "app-reader"]).ok();
    assert!(role_text.stdout.contains("/app/*"), "{role_text:#?}");
    let am_info = cli.run(&["get-auth-method", "-n", "/ci/app"]).ok();
    assert!(am_info.stdout.contains(&app_id), "{am_info:#?}");
    assert!(!am_info.stdout.contains(&app_key));
    assert!(
        cli.run(&["list-auth-methods"])
            .ok()
            .stdout
            .contains("/ci/app")
    );
    // Role names come back normalised with a leading '/', as in Akeyless.
    let roles = cli.run(&["list-roles"]).ok();
    assert!(
        roles
            .stdout
            .lines()
            .any(|l| l.trim_start_matches('/') == "app-reader"),
        "{roles:#?}"
    );

    cli.run(&[
        "configure",
        "--profile",
        "app",
        "--access-id",
        &app_id,
        "--access-key",
        &app_key,
        "--gateway-url",
        &url,
    ])
    .ok();
    let app = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--profile", "app"]);
        cli.run(&all)
    };
    assert_eq!(
        app(&["get-secret-value", "-n", "/app/x"])
            .ok()
            .stdout
            .trim_end(),
        v[2]
    );
    let denied = app(&["get-secret-value", "-n", "/other/y"]).failed();
    assert!(
        looks_denied(&denied.stderr),
        "403-derived message expected: {denied:#?}"
    );
    assert!(!denied.stderr.contains(other_value));
    let denied = app(&["get-secret-value", "-n", "/app/secret-denied"]).failed();
    assert!(looks_denied(&denied.stderr), "{denied:#?}");
    assert!(!denied.stderr.contains(denied_value));
    app(&["get-secret-value", "-n", "/app/x", "-n", "/other/y"]).failed();
    app(&["create-secret", "-n", "/app/new", "-v", "nope"]).failed();
    let visible = app(&["list-items"]).ok();
    let lines: Vec<&str> = visible.stdout.lines().collect();
    assert!(lines.contains(&"/app/x"), "{visible:#?}");
    assert!(!lines.contains(&"/other/y"), "{visible:#?}");
    assert!(!lines.contains(&"/app/secret-denied"), "{visible:#?}");
    app(&["audit", "list"]).failed();

    // Logging in as another identity under the admin's profile does not
    // turn the profile into that identity: the token is printed, not cached.
    let cache = cli.home.join("tokens/default.json");
    let cached_before = std::fs::read_to_string(&cache).ok();
    let other = cli
        .run(&["auth", "--access-id", &app_id, "--access-key", &app_key])
        .ok();
    let other_token = other.stdout.trim().to_string();
    assert!(!other_token.is_empty());
    assert!(other.stderr.contains("not cached"), "{other:#?}");
    assert_eq!(std::fs::read_to_string(&cache).ok(), cached_before);
    let roles = cli.run(&["list-roles"]).ok();
    assert!(
        roles.stdout.contains("/admin"),
        "still the admin: {roles:#?}"
    );
    cli.run(&["get-secret-value", "-n", "/app/x", "--token", &other_token])
        .ok();

    // An explicit token, then the auth method is deleted: it stops working.
    let app_token = app(&["auth"]).ok().stdout.trim().to_string();
    assert!(!app_token.is_empty());
    cli.run(&["get-secret-value", "-n", "/app/x", "--token", &app_token])
        .ok();
    cli.run(&["delete-auth-method", "-n", "/ci/app"]).ok();
    let revoked = cli
        .run(&["get-secret-value", "-n", "/app/x", "--token", &app_token])
        .failed();
    assert!(!revoked.stderr.contains(&app_token));
    let relogin = app(&["get-secret-value", "-n", "/app/x"]).failed();
    assert!(!relogin.stderr.contains(&app_key));
    cli.run(&["unconfigure", "--profile", "app"]).ok();
    assert!(!cli.home.join("profiles/app.toml").exists());

    // revoke-token: the revoked token is refused afterwards.
    let spare = cli.run(&["auth"]).ok().stdout.trim().to_string();
    cli.run(&["revoke-token", "--token", &spare]).ok();
    cli.run(&["get-secret-value", "-n", "/app/x", "--token", &spare])
        .failed();
    // `spare` is also the profile's cached token: the CLI notices the 401,
    // logs in again with the profile and carries on.
    let cache = cli.home.join("tokens/default.json");
    assert!(std::fs::read_to_string(&cache).unwrap().contains(&spare));
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/app/x"])
            .ok()
            .stdout
            .trim_end(),
        v[2]
    );
    assert!(!std::fs::read_to_string(&cache).unwrap().contains(&spare));
    // Revoking the cached token forgets it.
    cli.run(&["revoke-token"]).ok();
    assert!(!cache.exists());

    // ---- audit ----
    let audit = cli
        .run(&["audit", "list", "--limit", "10000", "--json"])
        .ok();
    let records = audit.json()["records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |op: &str, outcome: &str| {
        records
            .iter()
            .any(|r| r["operation"] == op && r["outcome"] == outcome)
    };
    for op in [
        "auth",
        "create-secret",
        "update-secret-val",
        "get-secret-value",
        "describe-item",
        "list-items",
        "delete-item",
        "create-auth-method",
        "create-role",
        "set-role-rule",
        "assoc-role-am",
        "delete-auth-method",
    ] {
        assert!(
            has(op, "allowed"),
            "no allowed {op} record: {}",
            audit.stdout
        );
    }
    assert!(
        has("get-secret-value", "denied"),
        "no denied read: {}",
        audit.stdout
    );
    assert!(
        has("create-secret", "denied"),
        "no denied create: {}",
        audit.stdout
    );
    let human = cli.run(&["audit", "list", "--limit", "10000"]).ok();
    assert!(human.stdout.contains("denied"));
    let mut secrets: Vec<&str> = v.to_vec();
    secrets.extend([
        other_value,
        denied_value,
        "from-stdin-S3CR3T",
        "S3CR3T",
        &admin_key,
        &app_key,
        &admin_token,
        &app_token,
    ]);
    for text in [&audit.stdout, &human.stdout] {
        for secret in &secrets {
            assert!(!text.contains(secret), "audit output leaks {secret:?}");
        }
    }
    let denied_only = cli
        .run(&["audit", "list", "--outcome", "denied", "--json"])
        .ok()
        .json();
    let denied_records = denied_only["records"].as_array().unwrap();
    assert!(!denied_records.is_empty());
    assert!(denied_records.iter().all(|r| r["outcome"] == "denied"));
    let verified = cli.run(&["audit", "verify"]).ok();
    assert!(verified.stdout.contains("intact"), "{verified:#?}");
    assert_eq!(
        cli.run(&["audit", "verify", "--json"]).ok().json()["valid"],
        true
    );

    // ---- restart on the same data dir ----
    server.stop();
    let server = Server::start(&data_dir);
    std::thread::sleep(Duration::from_millis(300));
    let out = server.stdout.lock().unwrap().clone();
    assert!(
        !out.contains("access_key"),
        "credentials printed again: {out}"
    );
    let url2 = server.url();
    let after = cli
        .run(&["get-secret-value", "-n", "/app/x", "--gateway-url", &url2])
        .ok();
    assert_eq!(after.stdout.trim_end(), v[2]);
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/other/y", "--gateway-url", &url2])
            .ok()
            .stdout
            .trim_end(),
        other_value
    );
    cli.run(&["audit", "verify", "--gateway-url", &url2]).ok();
    drop(server);

    // ---- offline audit tools on the stopped server's data ----
    let data = data_dir.to_str().unwrap();
    let offline = cli.run(&["audit", "verify", "--data-dir", data]).ok();
    assert!(offline.stdout.contains("intact"), "{offline:#?}");
    assert_eq!(
        cli.run(&["audit", "verify", "--data-dir", data, "--json"])
            .ok()
            .json()["valid"],
        true
    );
    let offline_list = cli
        .run(&[
            "audit",
            "list",
            "--data-dir",
            data,
            "--limit",
            "10000",
            "--json",
        ])
        .ok()
        .json();
    let offline_records = offline_list["records"].as_array().unwrap();
    assert!(offline_records.len() >= records.len(), "{offline_list}");
    let offline_text = offline_list.to_string();
    for secret in &secrets {
        assert!(
            !offline_text.contains(secret),
            "offline audit leaks {secret:?}"
        );
    }
}

#[test]
fn cli_reports_connection_errors_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let run = cli
        .run(&[
            "get-secret-value",
            "-n",
            "/x",
            "--token",
            "t-abc",
            "--gateway-url",
            &url,
        ])
        .failed();
    assert!(run.stderr.contains("cannot reach"), "{run:#?}");
    assert!(!run.stderr.contains("t-abc"));
    let run = cli.run(&["get-secret-value"]);
    assert_eq!(run.code, 2, "{run:#?}");
    let run = cli.run(&["list-roles"]).failed();
    assert!(run.stderr.contains("coffer configure"), "{run:#?}");
}

/// `coffer version`, and completion scripts every supported shell can load
/// (bash checks the script's syntax).
#[test]
fn version_and_shell_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let v = cli.run(&["version"]).ok();
    assert_eq!(v.stdout, format!("coffer {}\n", env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = cli.run(&["completion", shell]).ok();
        for command in [
            "get-secret-value",
            "create-secret",
            "operator",
            "completion",
        ] {
            assert!(run.stdout.contains(command), "{shell}: {command} missing");
        }
        if shell == "bash" {
            let script = tmp.path().join("coffer.bash");
            std::fs::write(&script, &run.stdout).unwrap();
            let check = Command::new("bash")
                .arg("-n")
                .arg(&script)
                .output()
                .expect("bash");
            assert!(check.status.success(), "{check:?}");
        }
    }
    let bad = cli.run(&["completion", "tcsh"]);
    assert_eq!(bad.code, 2, "an unknown shell is a usage error: {bad:#?}");
    assert!(
        bad.stderr.contains("bash"),
        "the accepted shells are named: {bad:#?}"
    );
}

/// `update-role`, `update-assoc`, `reset-access-key` and
/// `update-auth-method` through the CLI; the old access key is refused
/// over raw HTTP once reset.
#[test]
fn cli_updates_roles_associations_and_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let server = Server::start(&tmp.path().join("data"));
    let port = server.port;
    let (admin_id, admin_key) = server.bootstrap_credentials();
    cli.run(&[
        "configure",
        "--access-id",
        &admin_id,
        "--access-key",
        &admin_key,
        "--gateway-url",
        &server.url(),
    ])
    .ok();
    cli.run(&["create-role", "-n", "/cli/r"]).ok();
    let am = cli.run(&["create-auth-method", "-n", "/cli/am"]).ok();
    let am_id = field_after(&am.stdout, "access_id:").expect("access_id");
    let old_key = field_after(&am.stdout, "access_key:").expect("access_key");
    let assoc = cli
        .run(&[
            "assoc-role-am",
            "-r",
            "/cli/r",
            "-a",
            "/cli/am",
            "-s",
            "team=a",
        ])
        .ok();
    let assoc_id = field_after(&assoc.stdout, "assoc_id:").expect("assoc_id");

    // update-assoc: repeated -s accumulate; the case flag is given.
    let up = cli
        .run(&[
            "update-assoc",
            "--assoc-id",
            &assoc_id,
            "-s",
            "team=b,c",
            "-s",
            "env=prod",
            "--case-sensitive",
            "false",
        ])
        .ok();
    assert!(up.stdout.contains(&assoc_id), "{up:#?}");
    // update-role: rename, description, audit access; the association stays.
    cli.run(&[
        "update-role",
        "-n",
        "/cli/r",
        "--new-name",
        "/cli/r2",
        "--description",
        "renamed",
        "--audit-access",
        "own",
    ])
    .ok();
    let role = cli
        .run(&["get-role", "-n", "/cli/r2", "--json"])
        .ok()
        .json();
    assert_eq!(role["description"], "renamed", "{role}");
    assert_eq!(role["audit_access"], "own", "{role}");
    let a = &role["role_auth_methods_assoc"][0];
    assert_eq!(a["assoc_id"], assoc_id.as_str(), "{role}");
    assert_eq!(
        a["auth_method_sub_claims"],
        json!({"env": ["prod"], "team": ["b", "c"]}),
        "{role}"
    );
    assert_eq!(a["sub_claims_case_sensitive"], false, "{role}");
    let bad = cli
        .run(&[
            "update-role",
            "-n",
            "/cli/r2",
            "--audit-access",
            "everything",
        ])
        .failed();
    assert!(bad.stderr.contains("audit-access"), "{bad:#?}");
    cli.run(&["get-role", "-n", "/cli/r", "--json"]).failed();

    // reset-access-key: the new key works, the old one is refused.
    let reset = cli.run(&["reset-access-key", "-n", "/cli/am"]).ok();
    let new_key = field_after(&reset.stdout, "access_key:").expect("new access_key");
    assert_ne!(new_key, old_key);
    let login = |key: &str| {
        post(
            port,
            "/auth",
            &json!({"access-id": am_id, "access-type": "access_key", "access-key": key}),
        )
    };
    assert_error(login(&old_key), 401, "login with the old key");
    let (status, body) = login(&new_key);
    assert_eq!(status, 200, "{body}");

    // update-auth-method: rename and a common option; the access ID stays.
    cli.run(&[
        "update-auth-method",
        "-n",
        "/cli/am",
        "--new-name",
        "/cli/am2",
        "--jwt-ttl",
        "5",
    ])
    .ok();
    let got = cli
        .run(&["get-auth-method", "-n", "/cli/am2", "--json"])
        .ok()
        .json();
    assert_eq!(got["auth_method_access_id"], am_id.as_str(), "{got}");
    assert_eq!(got["access_info"]["jwt_ttl"], 5, "{got}");
}

#[test]
fn wire_contract_over_raw_http() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let port = server.port;
    let (id, key) = server.bootstrap_credentials();

    // Bases and repeated slashes; kebab-case and snake_case keys.
    let (status, login) = post(
        port,
        "/v2/auth",
        &json!({"access-id": id, "access-type": "access_key", "access-key": key}),
    );
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_string();
    assert!(
        login["expiration"].as_str().is_some_and(|e| !e.is_empty()),
        "{login}"
    );
    assert!(login["creds"]["expiry"].as_i64().is_some(), "{login}");
    let (status, snake) = post(
        port,
        "/api/v2//auth",
        &json!({"access_id": id, "access_type": "api_key", "access_key": key}),
    );
    assert_eq!(status, 200, "{snake}");
    let (status, root) = post(port, "/auth", &json!({"access-id": id, "access-key": key}));
    assert_eq!(status, 200, "{root}");

    // Unknown keys are ignored; `names` as a comma string.
    for (name, value) in [("/raw/a", "va"), ("/raw/b", "vb")] {
        let (status, body) = post(
            port,
            "/create-secret",
            &json!({"name": name, "value": value, "token": token, "accessibility": "regular", "json": false}),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = post(
        port,
        "/v2/get-secret-value",
        &json!({"names": "/raw/a,/raw/b", "token": token}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"/raw/a": "va", "/raw/b": "vb"}));
    let (status, body) = post(
        port,
        "/get-secret-value",
        &json!({"names": ["/raw/a"], "uid-token": "ignored-when-token-present", "token": token}),
    );
    assert_eq!((status, body), (200, json!({"/raw/a": "va"})));

    // Booleans and numbers as strings.
    let (status, body) = post(
        port,
        "/update-secret-val",
        &json!({"name": "/raw/a", "value": "va2", "keep_prev_version": "true", "token": token}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        port,
        "/describe-item",
        &json!({"name": "/raw/a", "show-versions": "true", "token": token}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["item_versions"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let (status, body) = post(
        port,
        "/get-secret-value",
        &json!({"names": "/raw/a", "version": "1", "token": token}),
    );
    assert_eq!((status, body), (200, json!({"/raw/a": "va"})));
    let (status, body) = post(
        port,
        "/list-items",
        &json!({"path": "/raw", "minimal-view": "false", "current-folder": "true", "token": token}),
    );
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["item_name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"/raw/a") && names.contains(&"/raw/b"),
        "{body}"
    );

    // Errors.
    let (status, text) = http(port, "POST", "/get-secret-value", b"{\"names\": [").unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} {text:?}"));
    assert_error((status, body), 400, "malformed JSON");
    let big = json!({"name": "/raw/big", "value": "a".repeat(1024 * 1024 + 1024), "token": token});
    let (status, text) = http(port, "POST", "/create-secret", big.to_string().as_bytes()).unwrap();
    assert_eq!(status, 413, "over 1 MiB: {text}");
    assert_error(
        post(port, "/no-such-operation", &json!({"token": token})),
        404,
        "unknown operation",
    );
    assert_error(
        post(port, "/get-secret-value", &json!({"names": ["/raw/a"]})),
        401,
        "missing token",
    );
    assert_error(
        post(
            port,
            "/get-secret-value",
            &json!({"names": ["/raw/a"], "token": "t-0000000000000000000000000000000000000000000000000000000000000000"}),
        ),
        401,
        "forged token",
    );
    assert_error(
        post(
            port,
            "/auth",
            &json!({"access-id": id, "access-key": "wrong"}),
        ),
        401,
        "failed login",
    );
    assert_error(
        post(
            port,
            "/get-secret-value",
            &json!({"names": ["/raw/none"], "token": token}),
        ),
        404,
        "unknown item",
    );
    assert_error(
        post(
            port,
            "/create-secret",
            &json!({"name": "/raw/a", "value": "x", "token": token}),
        ),
        409,
        "name exists",
    );
    assert_error(
        post(
            port,
            "/create-secret",
            &json!({"name": "/raw/c", "token": token}),
        ),
        400,
        "missing value",
    );
}

#[test]
fn audit_verify_reports_the_tampered_record() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let mut server = Server::start(&data_dir);
    let url = server.url();
    let (id, key) = server.bootstrap_credentials();
    cli.run(&[
        "configure",
        "--access-id",
        &id,
        "--access-key",
        &key,
        "--gateway-url",
        &url,
    ])
    .ok();
    for i in 0..3 {
        cli.run(&["create-secret", "-n", &format!("/t/{i}"), "-v", "v"])
            .ok();
    }
    server.stop();
    let data = data_dir.to_str().unwrap();
    cli.run(&["audit", "verify", "--data-dir", data]).ok();

    // Edit record 3 behind the server's back.
    let db = format!("sqlite://{}", data_dir.join("coffer.db").display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
            let done = sqlx::query("UPDATE audit_log SET operation = 'tampered' WHERE seq = 3")
                .execute(&pool)
                .await
                .unwrap();
            assert_eq!(done.rows_affected(), 1);
            pool.close().await;
        });

    let broken = cli.run(&["audit", "verify", "--data-dir", data]).failed();
    assert!(broken.stderr.contains("record 3"), "{broken:#?}");
    let broken = cli.run(&["audit", "verify", "--data-dir", data, "--json"]);
    assert_eq!(broken.code, 1, "{broken:#?}");
    assert_eq!(broken.json()["valid"], false);

    let server = Server::start(&data_dir);
    let online = cli
        .run(&["audit", "verify", "--gateway-url", &server.url()])
        .failed();
    assert!(online.stderr.contains("record 3"), "{online:#?}");
}

/// Run openssl (used only to make a throwaway CA and server certificate).
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the TLS test needs the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tls_gateway_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Coffer test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let server = Server::start_with(
        &dir.join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let (id, access_key) = server.bootstrap_credentials();
    let url = format!("https://127.0.0.1:{}", server.port);
    let ca = dir.join("ca.pem");
    let cli = Cli {
        home: dir.join("home"),
    };

    // Not trusted without the CA: a transport error, exit 1.
    let untrusted = cli
        .run(&[
            "auth",
            "--access-id",
            &id,
            "--access-key",
            &access_key,
            "--gateway-url",
            &url,
        ])
        .failed();
    assert!(untrusted.stderr.contains("cannot reach"), "{untrusted:#?}");
    assert!(
        untrusted.stderr.contains("CA certificate"),
        "{untrusted:#?}"
    );
    assert!(!untrusted.stderr.contains(&access_key));

    // --ca-cert on the command line, then from the profile.
    cli.run(&[
        "auth",
        "--access-id",
        &id,
        "--access-key",
        &access_key,
        "--gateway-url",
        &url,
        "--ca-cert",
        ca.to_str().unwrap(),
    ])
    .ok();
    cli.run(&[
        "configure",
        "--profile",
        "tls",
        "--access-id",
        &id,
        "--access-key",
        &access_key,
        "--gateway-url",
        &url,
        "--ca-cert",
        ca.to_str().unwrap(),
    ])
    .ok();
    cli.run(&[
        "create-secret",
        "-n",
        "/tls/x",
        "-v",
        "over-tls",
        "--profile",
        "tls",
    ])
    .ok();
    let got = cli
        .run(&["get-secret-value", "-n", "/tls/x", "--profile", "tls"])
        .ok();
    assert_eq!(got.stdout, "over-tls\n");

    // coffer ci: the akeyless provider trusts the gateway through the
    // secret's gateway_ca_certificate, and only through it.
    let pem = std::fs::read_to_string(&ca).unwrap();
    let pem_block: String = pem.lines().map(|l| format!("          {l}\n")).collect();
    let job = |with_ca: bool| {
        let mut y = format!(
            "job:\n  secrets:\n    X:\n      file: false\n      akeyless:\n        name: /tls/x\n        akeyless_api_url: '{url}'\n        akeyless_access_type: api_key\n        akeyless_access_key: '{access_key}'\n"
        );
        if with_ca {
            y.push_str("        gateway_ca_certificate: |\n");
            y.push_str(&pem_block);
        }
        let f = dir.join(format!("ci-{with_ca}.yml"));
        std::fs::write(&f, y).unwrap();
        f
    };
    let var = format!("AKEYLESS_ACCESS_ID={id}");
    for (with_ca, ok) in [(true, true), (false, false)] {
        let file = job(with_ca);
        let run = cli.run(&[
            "ci",
            "resolve",
            "--job",
            "job",
            "--file",
            file.to_str().unwrap(),
            "--format",
            "json",
            "--var",
            &var,
        ]);
        if ok {
            let run = run.ok();
            assert_eq!(run.json(), json!({"X": "over-tls"}), "{run:#?}");
        } else {
            let run = run.failed();
            assert!(run.stderr.contains("X (akeyless)"), "{run:#?}");
            assert!(run.stderr.contains("certificate"), "{run:#?}");
            assert!(!run.stderr.contains(&access_key), "{run:#?}");
        }
    }
}

/// A running `coffer dev oidc`; stopped on drop.
struct DevOidc {
    child: Child,
    url: String,
}

impl DevOidc {
    fn start(key_file: &Path) -> DevOidc {
        let mut child = scrubbed(Command::new(COFFER))
            .args(["dev", "oidc", "--listen", "127.0.0.1:0", "--key-file"])
            .arg(key_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coffer dev oidc");
        let stdout = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(
            child.stderr.take().unwrap(),
            Arc::new(Mutex::new(String::new())),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = stdout.lock().unwrap().clone();
            if let Some(url) = field_after(&text, "issuer:")
                && field_after(&text, "kid:").is_some()
            {
                return DevOidc { child, url };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("coffer dev oidc exited with {status}");
            }
            assert!(Instant::now() < deadline, "coffer dev oidc did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevOidc {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// CI job identity end to end: `coffer dev oidc` mints GitLab-shaped
/// tokens, a JWT auth method trusts its JWKS, and sub-claims decide which
/// role a job gets.
#[test]
fn ci_job_logs_in_with_a_dev_oidc_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let url = server.url();
    let (admin_id, admin_key) = server.bootstrap_credentials();
    let admin = Cli {
        home: tmp.path().join("admin"),
    };
    let job = Cli {
        home: tmp.path().join("job"),
    };
    admin
        .run(&[
            "configure",
            "--access-id",
            &admin_id,
            // `=`: an access key may start with '-'.
            &format!("--access-key={admin_key}"),
            "--gateway-url",
            &url,
        ])
        .ok();
    let key_file = tmp.path().join("issuer.pem");
    let issuer = DevOidc::start(&key_file);
    assert!(key_file.exists(), "--key-file keeps the signing key");
    let (s, discovery) = {
        let port: u16 = issuer.url.rsplit(':').next().unwrap().parse().unwrap();
        let (s, body) = http(port, "GET", "/.well-known/openid-configuration", b"").unwrap();
        (s, serde_json::from_str::<Value>(&body).unwrap())
    };
    assert_eq!(s, 200);
    assert_eq!(discovery["issuer"], issuer.url.as_str());
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_owned();

    let am = admin
        .run(&[
            "create-auth-method-oauth2",
            "--name",
            "/ci/gitlab",
            "--jwks-uri",
            &jwks_uri,
            "--unique-identifier",
            "user_login",
            "--issuer",
            &issuer.url,
            "--audience",
            "coffer",
            "--json",
        ])
        .ok()
        .json();
    let access_id = am["access_id"].as_str().unwrap().to_owned();
    let shown = admin.run(&["get-auth-method", "-n", "/ci/gitlab"]).ok();
    assert!(shown.stdout.contains(&jwks_uri), "{shown:#?}");
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("force_sub_claims:") && l.ends_with("true")),
        "{shown:#?}"
    );

    for (name, value) in [
        ("/app/db", "app-db-S3CR3T"),
        ("/other/db", "other-db-S3CR3T"),
    ] {
        admin.run(&["create-secret", "-n", name, "-v", value]).ok();
    }
    admin.run(&["create-role", "-n", "app-job"]).ok();
    admin
        .run(&[
            "set-role-rule",
            "--role-name",
            "app-job",
            "--path",
            "/app/*",
            "--capability",
            "read",
        ])
        .ok();
    // force-sub-claims is on by default for JWT methods.
    let refused = admin
        .run(&["assoc-role-am", "-r", "app-job", "-a", "/ci/gitlab"])
        .failed();
    assert!(refused.stderr.contains("force-sub-claims"), "{refused:#?}");
    admin
        .run(&[
            "assoc-role-am",
            "-r",
            "app-job",
            "-a",
            "/ci/gitlab",
            "-s",
            "project_path=group/app",
            "-s",
            "ref=main",
        ])
        .ok();

    let mint = |git_ref: &str, extra: &[&str]| {
        let mut args = vec![
            "dev",
            "oidc",
            "mint",
            "--issuer-url",
            &issuer.url,
            "--profile",
            "gitlab",
            "--claim",
            "project_path=group/app",
            "--aud",
            "coffer",
        ];
        let claim = format!("ref={git_ref}");
        args.extend(["--claim", &claim]);
        args.extend(extra);
        let out = job.run(&args).ok();
        let token = out.stdout.trim().to_owned();
        assert_eq!(token.split('.').count(), 3, "{out:#?}");
        token
    };
    let login = |jwt: &str| {
        job.run(&[
            "auth",
            "--access-id",
            &access_id,
            "--access-type",
            "jwt",
            "--jwt",
            jwt,
            "--gateway-url",
            &url,
        ])
    };

    // main: reads /app/*, refused /other/*.
    let jwt = mint("main", &[]);
    let token = login(&jwt).ok().stdout.trim().to_owned();
    let got = job
        .run(&[
            "get-secret-value",
            "-n",
            "/app/db",
            "--token",
            &token,
            "--gateway-url",
            &url,
        ])
        .ok();
    assert_eq!(got.stdout, "app-db-S3CR3T\n");
    let denied = job
        .run(&[
            "get-secret-value",
            "-n",
            "/other/db",
            "--token",
            &token,
            "--gateway-url",
            &url,
        ])
        .failed();
    assert!(looks_denied(&denied.stderr), "{denied:#?}");

    // feature: logs in, but no role matches, so nothing is readable.
    let feature = login(&mint("feature", &[])).ok().stdout.trim().to_owned();
    let denied = job
        .run(&[
            "get-secret-value",
            "-n",
            "/app/db",
            "--token",
            &feature,
            "--gateway-url",
            &url,
        ])
        .failed();
    assert!(looks_denied(&denied.stderr), "{denied:#?}");

    // explain-access (admin): why main reads /app/db and feature does not.
    let explained = admin
        .run(&[
            "explain-access",
            "--access-id",
            &access_id,
            "--jwt",
            &jwt,
            "--path",
            "/app/db",
        ])
        .ok();
    assert!(
        explained.stdout.contains("login: verified as developer"),
        "{explained:#?}"
    );
    assert!(
        explained.stdout.contains("MATCH   /app-job"),
        "{explained:#?}"
    );
    assert!(
        explained
            .stdout
            .contains("capabilities on /app/db (item-rule): read"),
        "{explained:#?}"
    );
    let explained = admin
        .run(&[
            "explain-access",
            "--access-id",
            &access_id,
            "--jwt",
            &mint("feature", &[]),
            "--path",
            "/app/db",
        ])
        .ok();
    assert!(
        explained.stdout.contains("claim \"ref\" is [\"feature\"]"),
        "{explained:#?}"
    );
    assert!(
        explained
            .stdout
            .contains("capabilities on /app/db (item-rule): none"),
        "{explained:#?}"
    );

    // An expired dev-oidc token is refused with the reason.
    let expired_at = (time::OffsetDateTime::now_utc().unix_timestamp() - 3600).to_string();
    let old = format!("exp={expired_at}");
    let iat = format!(
        "iat={}",
        time::OffsetDateTime::now_utc().unix_timestamp() - 7200
    );
    let expired = mint("main", &["--claim", &old, "--claim", &iat]);
    let refused = login(&expired).failed();
    assert!(refused.stderr.contains("exp check"), "{refused:#?}");

    // The audit log names the job by its unique-identifier claim, without the JWT.
    let recs = admin
        .run(&["audit", "list", "--operation", "get-secret-value", "--json"])
        .ok()
        .json();
    let text = recs.to_string();
    assert!(text.contains("\"identity\":\"developer\""), "{text}");
    assert!(!text.contains(&jwt));
}

/// Issue 9 item 9 end to end: `coffer ci run` does not hand the credentials
/// it logged in with to the command (`AKEYLESS_ACCESS_KEY`, the variable a
/// job's `akeyless_token:` names, any other variable holding one of them),
/// and masks them, and the secrets also percent-encoded, in the command's
/// output. `--keep-login-env` keeps the variables, still masked.
#[test]
fn ci_run_strips_and_masks_its_login_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let url = server.url();
    let (admin_id, admin_key) = server.bootstrap_credentials();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    cli.run(&[
        "configure",
        "--access-id",
        &admin_id,
        &format!("--access-key={admin_key}"),
        "--gateway-url",
        &url,
    ])
    .ok();
    let db_value = "db p@ss/w0rd+1";
    cli.run(&["create-secret", "-n", "/app/db", "-v", db_value])
        .ok();
    let am = cli.run(&["create-auth-method", "-n", "/ci/runner"]).ok();
    let id = field_after(&am.stdout, "access_id:").unwrap();
    let key = field_after(&am.stdout, "access_key:").unwrap();
    cli.run(&["create-role", "-n", "runner"]).ok();
    cli.run(&[
        "set-role-rule",
        "--role-name",
        "runner",
        "--path",
        "/app/*",
        "--capability",
        "read",
    ])
    .ok();
    cli.run(&["assoc-role-am", "-r", "runner", "-a", "/ci/runner"])
        .ok();
    let token = cli
        .run(&[
            "auth",
            "--access-id",
            &id,
            &format!("--access-key={key}"),
            "--gateway-url",
            &url,
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let pipeline = tmp.path().join(".gitlab-ci.yml");
    std::fs::write(
        &pipeline,
        format!(
            "deploy:\n  secrets:\n    DB:\n      file: false\n      akeyless:\n        name: /app/db\n        akeyless_api_url: '{url}'\n        akeyless_token: $MY_TOKEN\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let out_dir = out.display().to_string();
    let script = r#"
        env > "$1/env.txt"
        printf 'key=%s\n' "$2"
        printf 'token=%s\n' "$3"
        printf 'pct=%s\n' "$4"
        printf 'form=%s\n' "$5"
        printf 'db=%s ref=%s\n' "$DB" "$REF"
        printf 'env-key=%s\n' "${AKEYLESS_ACCESS_KEY-unset}"
    "#;
    let env = [
        ("AKEYLESS_ACCESS_ID", id.as_str()),
        ("AKEYLESS_ACCESS_KEY", key.as_str()),
        ("AKEYLESS_API_URL", url.as_str()),
        ("MY_TOKEN", token.as_str()),
        ("KEY_COPY", key.as_str()),
        ("REF", "akeyless:///app/db"),
        ("KEEP_ME", "visible-value"),
    ];
    let run = |extra: &[&str]| {
        let mut args = vec![
            "ci",
            "run",
            "--job",
            "deploy",
            "--file",
            pipeline.to_str().unwrap(),
            "--resolve-refs",
        ];
        args.extend(extra);
        args.extend([
            "--",
            "sh",
            "-c",
            script,
            "sh",
            &out_dir,
            &key,
            &token,
            "db%20p%40ss%2Fw0rd%2B1",
            "db+p%40ss%2Fw0rd%2B1",
        ]);
        cli.run_env(&args, &env)
    };

    let ran = run(&[]).ok();
    assert_eq!(
        ran.stdout,
        "key=[MASKED]\ntoken=[MASKED]\npct=[MASKED]\nform=[MASKED]\n\
         db=[MASKED] ref=[MASKED]\nenv-key=unset\n",
        "{ran:#?}"
    );
    let seen = std::fs::read_to_string(out.join("env.txt")).unwrap();
    for gone in ["AKEYLESS_ACCESS_KEY=", "MY_TOKEN=", "KEY_COPY="] {
        assert!(
            !seen.lines().any(|l| l.starts_with(gone)),
            "{gone} reached the command: {seen}"
        );
    }
    assert!(!seen.contains(&key) && !seen.contains(&token), "{seen}");
    for kept in [
        "KEEP_ME=visible-value".to_owned(),
        format!("AKEYLESS_ACCESS_ID={id}"),
        format!("DB={db_value}"),
        format!("REF={db_value}"),
    ] {
        assert!(seen.lines().any(|l| l == kept), "{kept} missing: {seen}");
    }
    assert!(!ran.stderr.contains(&key) && !ran.stderr.contains(&token));

    // --keep-login-env: the variables stay, still masked in the output.
    let ran = run(&["--keep-login-env"]).ok();
    assert!(ran.stdout.ends_with("env-key=[MASKED]\n"), "{ran:#?}");
    assert!(!ran.stdout.contains(&key), "{ran:#?}");
    let seen = std::fs::read_to_string(out.join("env.txt")).unwrap();
    assert!(
        seen.lines()
            .any(|l| l == format!("AKEYLESS_ACCESS_KEY={key}")),
        "{seen}"
    );
    assert!(
        seen.lines().any(|l| l == format!("MY_TOKEN={token}")),
        "{seen}"
    );
}

/// Reads one HTTP/1.1 request (head and body) from `stream`.
fn read_http_request(stream: &mut TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut text = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return text;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        text.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok();
    text + &String::from_utf8_lossy(&body)
}

/// A loopback server on `bind` that records every request; with `location`
/// it answers each with `307` to it, else it answers nothing.
fn recording_server(bind: &str, location: Option<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let request = read_http_request(&mut stream);
            seen.lock().unwrap().push(request);
            if let Some(location) = &location {
                write!(
                    stream,
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .ok();
            }
        }
    });
    (format!("{}:{}", addr.ip(), addr.port()), log)
}

/// Issue 9 item 8 end to end: a 307 from the gateway is reported with its
/// status and target host, and the access key, token or JWT is not sent
/// to the target; plain http:// off loopback is refused before connecting
/// unless allowed (flag, environment or profile).
#[test]
fn cli_refuses_redirects_and_plain_http_off_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let (collector, collected) = recording_server("127.0.0.1:0", None);
    let (gateway, received) = recording_server(
        "127.0.0.1:0",
        Some(format!("http://{collector}/collect?stolen=1")),
    );
    let gateway_url = format!("http://{gateway}");
    let check = |run: Run, secret: &str| {
        let run = run.failed();
        assert!(run.stderr.contains("HTTP 307"), "{run:#?}");
        assert!(run.stderr.contains(&collector), "{run:#?}");
        assert!(
            !run.stderr.contains(secret) && !run.stderr.contains("stolen"),
            "{run:#?}"
        );
    };
    check(
        cli.run(&[
            "auth",
            "--access-id",
            "p-abcdefghijkl",
            "--access-key=ak-S3CR3T-access-key",
            "--gateway-url",
            &gateway_url,
        ]),
        "ak-S3CR3T-access-key",
    );
    check(
        cli.run(&[
            "auth",
            "--access-id",
            "p-abcdefghijkl",
            "--access-type",
            "jwt",
            "--jwt",
            "eyJ.S3CR3T-jwt.sig",
            "--gateway-url",
            &gateway_url,
        ]),
        "S3CR3T-jwt",
    );
    check(
        cli.run(&[
            "get-secret-value",
            "-n",
            "/app/db",
            "--token",
            "t-S3CR3T-token",
            "--gateway-url",
            &gateway_url,
        ]),
        "t-S3CR3T-token",
    );
    check(
        cli.run_env(
            &["ci", "get-secrets", "--secrets-paths", "db=/app/db"],
            &[
                ("AKEYLESS_API_URL", gateway_url.as_str()),
                ("AKEYLESS_ACCESS_ID", "p-abcdefghijkl"),
                ("AKEYLESS_ACCESS_KEY", "ak-S3CR3T-ci-key"),
            ],
        ),
        "ak-S3CR3T-ci-key",
    );
    std::thread::sleep(Duration::from_millis(300));
    let sent = received.lock().unwrap().clone();
    assert_eq!(sent.len(), 4, "{sent:#?}");
    for secret in [
        "ak-S3CR3T-access-key",
        "S3CR3T-jwt",
        "t-S3CR3T-token",
        "ak-S3CR3T-ci-key",
    ] {
        assert!(sent.iter().any(|r| r.contains(secret)), "{sent:#?}");
    }
    assert!(
        collected.lock().unwrap().is_empty(),
        "the redirect target got: {:#?}",
        collected.lock().unwrap()
    );

    // Plain HTTP to a host that is not loopback: refused, no connection
    // (an attempt on 10.255.255.1 would wait for the connect timeout).
    let started = Instant::now();
    let refused = cli
        .run(&[
            "list-roles",
            "--token",
            "t-S3CR3T",
            "--gateway-url",
            "http://10.255.255.1:8200",
        ])
        .failed();
    assert!(started.elapsed() < Duration::from_secs(5), "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("refusing plain HTTP to http://10.255.255.1:8200"),
        "{refused:#?}"
    );
    assert!(
        refused.stderr.contains("--allow-insecure-http"),
        "{refused:#?}"
    );
    // configure refuses it too, and stores the exception when asked.
    let refused = cli
        .run(&[
            "configure",
            "--access-id",
            "p-abcdefghijkl",
            "--access-key=k",
            "--gateway-url",
            "http://10.255.255.1:8200",
        ])
        .failed();
    assert!(
        refused.stderr.contains("--allow-insecure-http"),
        "{refused:#?}"
    );
    assert!(!cli.home.join("profiles/default.toml").exists());
    // (No login check: nothing is sent off loopback from tests.)
    cli.run(&[
        "configure",
        "--access-id",
        "p-abcdefghijkl",
        "--access-key=k",
        "--gateway-url",
        "http://10.255.255.1:8200",
        "--allow-insecure-http",
        "--no-login-check",
    ])
    .ok();
    let profile = std::fs::read_to_string(cli.home.join("profiles/default.toml")).unwrap();
    assert!(profile.contains("allow_insecure_http = true"), "{profile}");

    // `coffer ci explain` (which sends nothing) shows the refusal as the
    // secret's problem, and accepts the URL with the opt-in.
    let pipeline = tmp.path().join(".gitlab-ci.yml");
    std::fs::write(
        &pipeline,
        "deploy:\n  secrets:\n    DB:\n      akeyless:\n        name: /app/db\n        akeyless_api_url: http://10.255.255.1:8200\n        akeyless_access_type: api_key\n        akeyless_access_key: ak-x\n",
    )
    .unwrap();
    let explain = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "ci",
            "explain",
            "--job",
            "deploy",
            "--file",
            pipeline.to_str().unwrap(),
        ];
        args.extend(extra);
        let mut env = env.to_vec();
        env.push(("AKEYLESS_ACCESS_ID", "p-abcdefghijkl"));
        cli.run_env(&args, &env)
    };
    let problem = explain(&[], &[]).failed();
    assert!(
        problem.stdout.contains("PROBLEM") && problem.stdout.contains("refusing plain HTTP"),
        "{problem:#?}"
    );
    let ok = explain(&["--allow-insecure-http"], &[]).ok();
    assert!(!ok.stdout.contains("PROBLEM"), "{ok:#?}");
    explain(&[], &[("COFFER_ALLOW_INSECURE_HTTP", "1")]).ok();
    explain(
        &["--allow-insecure-http=false"],
        &[("COFFER_ALLOW_INSECURE_HTTP", "1")],
    )
    .failed();

    // Any 127.x address is loopback: the request is made (and here
    // answered with a redirect), not refused.
    let (other, other_log) = recording_server("127.0.0.2:0", Some(format!("http://{collector}/x")));
    let run = cli
        .run(&[
            "list-roles",
            "--token",
            "t-x",
            "--gateway-url",
            &format!("http://{other}"),
        ])
        .failed();
    assert!(run.stderr.contains("HTTP 307"), "{run:#?}");
    assert_eq!(other_log.lock().unwrap().len(), 1);
    assert!(collected.lock().unwrap().is_empty());
}

/// The MariaDB/MySQL server of `COFFER_TEST_MYSQL_URL`
/// (`mysql://user[:password]@host:port/db`), loopback only.
struct TestMysql {
    host: String,
    port: u16,
    user: String,
    password: String,
    db: String,
}

fn test_mysql() -> Option<TestMysql> {
    let Some(url) = std::env::var("COFFER_TEST_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("note: COFFER_TEST_MYSQL_URL is not set: the dynamic MySQL CLI test is skipped");
        return None;
    };
    let rest = url.split_once("://").expect("mysql://…").1;
    let (creds, hostpart) = rest.rsplit_once('@').expect("user@host");
    let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
    let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
    let (host, port) = hostport.rsplit_once(':').expect("host:port");
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "tests only talk to loopback servers, not {host}"
    );
    Some(TestMysql {
        host: host.trim_matches(['[', ']']).to_string(),
        port: port.parse().expect("port"),
        user: user.to_string(),
        password: password.to_string(),
        db: db.split('?').next().unwrap_or("").to_string(),
    })
}

/// Whether `user` can log in to the test server with `password`.
fn mysql_login_works(db: &TestMysql, user: &str, password: &str) -> bool {
    use sqlx::Connection;
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .username(user)
        .password(password);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            match sqlx::MySqlConnection::connect_with(&opts).await {
                Ok(conn) => {
                    conn.close().await.ok();
                    true
                }
                Err(_) => false,
            }
        })
}

/// A target, a MySQL dynamic secret, a credential (which logs in), its
/// lease listed and revoked (the user is gone), then the dynamic secret and
/// the target deleted: all through the CLI.
#[test]
fn dynamic_mysql_secret_through_the_cli() {
    let Some(db) = test_mysql() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let server = Server::start(&tmp.path().join("data"));
    let (admin_id, admin_key) = server.bootstrap_credentials();
    cli.run(&[
        "configure",
        "--access-id",
        &admin_id,
        "--access-key",
        &admin_key,
        "--gateway-url",
        &server.url(),
    ])
    .ok();

    // The admin password comes from standard input ("-"), not the command line.
    let port = db.port.to_string();
    let mut target = vec![
        "target-create-db",
        "--name",
        "/e2e/mysql",
        "--db-type",
        "mysql",
        "--host",
        &db.host,
        "--port",
        &port,
        "--user-name",
        &db.user,
        "--pwd",
        "-",
        "--description",
        "test target",
    ];
    if !db.db.is_empty() {
        target.extend(["--db-name", &db.db]);
    }
    let stdin = format!("{}\n", db.password);
    let created = cli.run_with_stdin(&target, Some(stdin.as_bytes())).ok();
    assert_eq!(created.stdout, "Created target /e2e/mysql\n");
    let listed = cli.run(&["target-list"]).ok();
    assert!(
        listed.stdout.contains("/e2e/mysql") && listed.stdout.contains("mysql"),
        "{listed:#?}"
    );
    let details = cli
        .run(&["target-get-details", "-n", "/e2e/mysql", "--json"])
        .ok()
        .json();
    assert_eq!(
        details["value"]["db_target_details"]["db_user_name"],
        db.user.as_str(),
        "{details}"
    );

    cli.run(&[
        "dynamic-secret",
        "create",
        "mysql",
        "--name",
        "/e2e/dyn",
        "--target-name",
        "/e2e/mysql",
        "--user-ttl",
        "30s",
        "--password-length",
        "20",
    ])
    .ok();
    let shown = cli.run(&["dynamic-secret", "get", "-n", "/e2e/dyn"]).ok();
    assert!(
        shown.stdout.contains("user_ttl:") && shown.stdout.contains("30s"),
        "{shown:#?}"
    );
    assert!(
        cli.run(&["dynamic-secret", "list"])
            .ok()
            .stdout
            .contains("/e2e/dyn")
    );

    // The value is the server's JSON, every field a string.
    let got = cli
        .run(&["get-dynamic-secret-value", "-n", "/e2e/dyn"])
        .ok();
    let value = got.json();
    for key in ["id", "user", "password", "ttl_in_minutes"] {
        assert!(value[key].is_string(), "{key} is not a string: {value}");
    }
    let id = value["id"].as_str().unwrap().to_string();
    let password = value["password"].as_str().unwrap().to_string();
    assert_eq!(value["user"], id.as_str());
    assert_eq!(password.len(), 20, "{value}");
    assert_eq!(value["ttl_in_minutes"], "1", "30 s rounds up to a minute");
    assert!(mysql_login_works(&db, &id, &password), "{id} cannot log in");

    // The lease is listed (table and JSON), then revoked.
    let leases = cli.run(&["lease", "list"]).ok();
    let row = leases
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {leases:#?}"));
    assert!(row.contains("/e2e/dyn") && row.contains("live"), "{row}");
    assert!(leases.stdout.starts_with("ID "), "{leases:#?}");
    let listed = cli
        .run(&["lease", "list", "--name", "/e2e/dyn", "--json"])
        .ok()
        .json();
    assert_eq!(listed["leases"][0]["id"], id.as_str(), "{listed}");
    let creds = cli
        .run(&["dynamic-secret", "tmp-creds-get", "-n", "/e2e/dyn"])
        .ok();
    assert!(creds.stdout.contains(&id), "{creds:#?}");

    let revoked = cli
        .run(&["lease", "revoke", "--name", "/e2e/dyn", "--id", &id])
        .ok();
    assert_eq!(revoked.stdout, format!("Revoked: {id}\n"));
    assert!(
        !mysql_login_works(&db, &id, &password),
        "{id} still logs in after its revocation"
    );
    let live = cli.run(&["lease", "list", "--name", "/e2e/dyn"]).ok();
    assert!(!live.stdout.contains(&id), "{live:#?}");
    let all = cli
        .run(&["lease", "list", "--name", "/e2e/dyn", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(all["leases"][0]["state"], "revoked", "{all}");
    // Revoking it again says what is wrong.
    let again = cli
        .run(&["lease", "revoke", "--name", "/e2e/dyn", "--id", &id])
        .failed();
    assert!(again.stderr.contains(&id), "{again:#?}");

    // Deleting the dynamic secret revokes its live credentials first.
    let second = cli
        .run(&["get-dynamic-secret-value", "-n", "/e2e/dyn"])
        .ok()
        .json();
    let second_id = second["id"].as_str().unwrap().to_string();
    let second_password = second["password"].as_str().unwrap().to_string();
    assert!(mysql_login_works(&db, &second_id, &second_password));
    let deleted = cli
        .run(&["dynamic-secret", "delete", "-n", "/e2e/dyn"])
        .ok();
    assert_eq!(deleted.stdout, "Deleted dynamic secret /e2e/dyn\n");
    assert!(!mysql_login_works(&db, &second_id, &second_password));
    assert!(
        !cli.run(&["dynamic-secret", "list"])
            .ok()
            .stdout
            .contains("/e2e/dyn")
    );
    cli.run(&["target-delete", "-n", "/e2e/mysql"]).ok();
    assert!(!cli.run(&["target-list"]).ok().stdout.contains("/e2e/mysql"));
}

/// update-item, get-tags, soft deletion and restore-item, delete-items.
#[test]
fn cli_update_item_tags_soft_delete_and_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, _url, cli, _) = admin_cli(tmp.path());
    cli.run(&[
        "create-secret",
        "-n",
        "/life/a",
        "-v",
        "a-S3CR3T",
        "--tags",
        "one",
    ])
    .ok();
    cli.run(&["create-secret", "-n", "/life/sub/b", "-v", "b-S3CR3T"])
        .ok();
    // update-item: tags, description, rename.
    cli.run(&[
        "update-item",
        "-n",
        "/life/a",
        "--add-tag",
        "two",
        "--add-tag",
        "three",
        "--rm-tag",
        "one",
        "--description",
        "from the cli",
    ])
    .ok();
    let tags = cli.run(&["get-tags", "-n", "/life/a"]).ok();
    assert_eq!(tags.stdout, "three\ntwo\n", "{tags:#?}");
    let tags = cli
        .run(&["get-tags", "-n", "/life/a", "--json"])
        .ok()
        .json();
    assert_eq!(tags, serde_json::json!(["three", "two"]));
    let renamed = cli
        .run(&["update-item", "-n", "/life/a", "--new-name", "/life/c"])
        .ok();
    assert!(renamed.stdout.contains("/life/c"), "{renamed:#?}");
    let d = cli
        .run(&["describe-item", "-n", "/life/c", "--json"])
        .ok()
        .json();
    assert_eq!(d["item_metadata"], "from the cli");
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/life/c"])
            .ok()
            .stdout
            .trim_end(),
        "a-S3CR3T"
    );
    cli.run(&["get-tags", "-n", "/life/a"]).failed_with(5);
    // An out-of-range value is refused by the server.
    cli.run(&["update-item", "-n", "/life/c", "--max-versions", "5000"])
        .failed();
    // Soft deletion: pending, not readable, described, restorable.
    let del = cli
        .run(&["delete-item", "-n", "/life/c", "--delete-in-days", "3"])
        .ok();
    assert!(del.stdout.contains("pending deletion until"), "{del:#?}");
    let gone = cli
        .run(&["get-secret-value", "-n", "/life/c"])
        .failed_with(5);
    assert!(gone.stderr.contains("restore-item"), "{gone:#?}");
    let d = cli.run(&["describe-item", "-n", "/life/c"]).ok();
    assert!(d.stdout.contains("pending deletion"), "{d:#?}");
    let listed = cli.run(&["list-items", "--path", "/life"]).ok();
    assert!(!listed.stdout.contains("/life/c"), "{listed:#?}");
    let pending = cli
        .run(&["list-items", "--path", "/life", "--pending-deletion"])
        .ok();
    let items: Vec<&str> = pending
        .stdout
        .lines()
        .filter(|l| !l.ends_with('/'))
        .collect();
    assert_eq!(items, vec!["/life/c"], "{pending:#?}");
    cli.run(&["create-secret", "-n", "/life/c", "-v", "x"])
        .failed_with(6);
    cli.run(&["restore-item", "-n", "/life/c"]).ok();
    assert_eq!(
        cli.run(&["get-secret-value", "-n", "/life/c"])
            .ok()
            .stdout
            .trim_end(),
        "a-S3CR3T"
    );
    // delete-items: the whole folder at once.
    let bulk = cli.run(&["delete-items", "--path", "/life"]).ok();
    assert!(
        bulk.stdout.contains("/life/c") && bulk.stdout.contains("/life/sub/b"),
        "{bulk:#?}"
    );
    cli.run(&["get-secret-value", "-n", "/life/sub/b"])
        .failed_with(5);
    // delete-immediately: the name is free at once.
    cli.run(&["delete-item", "-n", "/life/c", "--delete-immediately"])
        .ok();
    cli.run(&["create-secret", "-n", "/life/c", "-v", "again"])
        .ok();
}

/// A started dev server, its URL, and a CLI configured as its admin.
fn admin_cli(tmp: &Path) -> (Server, String, Cli, (String, String)) {
    let server = Server::start(&tmp.join("data"));
    let url = server.url();
    let creds = server.bootstrap_credentials();
    let cli = Cli {
        home: tmp.join("home"),
    };
    cli.run(&[
        "configure",
        "--access-id",
        &creds.0,
        "--access-key",
        &creds.1,
        "--gateway-url",
        &url,
    ])
    .ok();
    (server, url, cli, creds)
}

/// docs/cli.md's exit statuses, each produced by its cause.
#[test]
fn exit_statuses_follow_the_kind_of_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url, cli, (admin_id, _)) = admin_cli(tmp.path());
    // 2: usage (clap), and an invalid jq expression before anything is sent.
    assert_eq!(cli.run(&["get-secret-value"]).code, 2);
    let bad_jq = cli.run(&["list-roles", "--jq-expression", ".roles |"]);
    assert_eq!(bad_jq.code, 2, "{bad_jq:#?}");
    assert!(
        bad_jq.stderr.contains("invalid --jq-expression"),
        "{bad_jq:#?}"
    );
    // 3: a wrong access key.
    let run = cli
        .run(&[
            "auth",
            "--access-id",
            &admin_id,
            "--access-key",
            "not-the-key",
            "--gateway-url",
            &url,
        ])
        .failed_with(3);
    assert!(!run.stderr.contains("not-the-key"), "{run:#?}");
    // ... and a token the server does not know.
    cli.run(&["list-roles", "--token", "t-unknown"])
        .failed_with(3);
    // 4: an identity without a role may not create.
    let am = cli
        .run(&["create-auth-method", "-n", "/exit/norole", "--json"])
        .ok()
        .json();
    let token = cli
        .run(&[
            "auth",
            "--access-id",
            am["access_id"].as_str().unwrap(),
            "--access-key",
            am["access_key"].as_str().unwrap(),
            "--gateway-url",
            &url,
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    cli.run(&[
        "create-secret",
        "-n",
        "/exit/x",
        "-v",
        "v",
        "--token",
        &token,
    ])
    .failed_with(4);
    // 5: a missing item; 6: creating it twice.
    cli.run(&["get-secret-value", "-n", "/exit/missing"])
        .failed_with(5);
    cli.run(&["create-secret", "-n", "/exit/dup", "-v", "1"])
        .ok();
    cli.run(&["create-secret", "-n", "/exit/dup", "-v", "2"])
        .failed_with(6);
    // 7: nothing listens on the port.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let run = cli
        .run(&["list-roles", "--gateway-url", &closed])
        .failed_with(7);
    assert!(run.stderr.contains("cannot reach"), "{run:#?}");
    // 0.
    assert_eq!(cli.run(&["list-roles"]).code, 0);
}

/// `--json` and `--jq-expression` on every command, like the Akeyless CLI.
#[test]
fn json_and_jq_expression_on_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, _url, cli, (admin_id, _)) = admin_cli(tmp.path());
    cli.run(&["create-secret", "-n", "/jq/a", "-v", "alpha", "--tag", "t1"])
        .ok();
    cli.run(&["update-secret-val", "-n", "/jq/a", "-v", "beta"])
        .ok();
    cli.run(&["create-secret", "-n", "/jq/b", "-v", "gamma"])
        .ok();
    // --json: the server's answer.
    let v = cli
        .run(&["get-secret-value", "-n", "/jq/a", "--json"])
        .ok()
        .json();
    assert_eq!(v["/jq/a"], "beta", "{v}");
    let d = cli
        .run(&["describe-item", "-n", "/jq/a", "--json"])
        .ok()
        .json();
    assert_eq!(d["last_version"], 2, "{d}");
    let who = cli.run(&["whoami", "--json"]).ok().json();
    assert_eq!(who["access_id"], admin_id.as_str(), "{who}");
    let version = cli.run(&["version", "--json"]).ok().json();
    assert!(version["version"].is_string(), "{version}");
    // --jq-expression: strings raw, one per line; other values as JSON.
    let name = cli
        .run(&[
            "describe-item",
            "-n",
            "/jq/a",
            "--jq-expression",
            ".item_name",
        ])
        .ok();
    assert_eq!(name.stdout, "/jq/a\n", "{name:#?}");
    let n = cli
        .run(&[
            "describe-item",
            "-n",
            "/jq/a",
            "--jq-expression",
            ".last_version",
        ])
        .ok();
    assert_eq!(n.stdout, "2\n", "{n:#?}");
    let names = cli
        .run(&[
            "list-items",
            "--path",
            "/jq",
            "--jq-expression",
            "[.items[].item_name] | sort | .[]",
        ])
        .ok();
    assert_eq!(names.stdout, "/jq/a\n/jq/b\n", "{names:#?}");
    let value = cli
        .run(&[
            "get-secret-value",
            "-n",
            "/jq/b",
            "--jq-expression",
            ".[\"/jq/b\"]",
        ])
        .ok();
    assert_eq!(value.stdout, "gamma\n", "{value:#?}");
    let roles = cli
        .run(&["whoami", "--jq-expression", "{id: .access_id}"])
        .ok();
    assert_eq!(
        serde_json::from_str::<Value>(&roles.stdout).unwrap(),
        json!({"id": admin_id})
    );
    // The top-level help lists the commands by group, with the exit statuses.
    let help = cli.run(&["--help"]).ok();
    for heading in [
        "Auth & profiles:",
        "Static secrets & items:",
        "Roles:",
        "CI:",
        "Exit statuses",
    ] {
        assert!(help.stdout.contains(heading), "{heading}: {help:#?}");
    }
    // Commands whose output is not an answer refuse it (usage).
    let refused = cli.run(&["completion", "bash", "--json"]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("do not apply"), "{refused:#?}");
}

/// COFFER_TOKEN / AKEYLESS_TOKEN, AKEYLESS_ACCESS_ID + KEY, and the
/// gateway variables, with flag > environment > profile.
#[test]
fn environment_variables_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url, cli, (admin_id, admin_key)) = admin_cli(tmp.path());
    cli.run(&["create-secret", "-n", "/env/a", "-v", "from-env"])
        .ok();
    let token = cli
        .run(&["auth", "--access-id", &admin_id, "--access-key", &admin_key])
        .ok()
        .stdout
        .trim()
        .to_owned();
    // No profile at all: everything from the environment.
    let bare = Cli {
        home: tmp.path().join("bare-home"),
    };
    let get = ["get-secret-value", "-n", "/env/a"];
    for (name, value) in [("COFFER_TOKEN", &token), ("AKEYLESS_TOKEN", &token)] {
        let run = bare
            .run_env(&get, &[(name, value), ("COFFER_GATEWAY_URL", &url)])
            .ok();
        assert_eq!(run.stdout, "from-env\n", "{name}: {run:#?}");
    }
    let run = bare
        .run_env(
            &get,
            &[
                ("AKEYLESS_GATEWAY_URL", &url),
                ("AKEYLESS_ACCESS_ID", &admin_id),
                ("AKEYLESS_ACCESS_KEY", &admin_key),
                ("AKEYLESS_ACCESS_TYPE", "access_key"),
            ],
        )
        .ok();
    assert_eq!(run.stdout, "from-env\n", "{run:#?}");
    assert!(
        !bare.home.join("tokens").exists(),
        "an environment login is not cached"
    );
    let run = bare
        .run_env(
            &get,
            &[
                ("AKEYLESS_GATEWAY_URL", &url),
                ("AKEYLESS_ACCESS_ID", &admin_id),
            ],
        )
        .failed();
    assert!(run.stderr.contains("AKEYLESS_ACCESS_KEY"), "{run:#?}");
    // The environment beats the profile, the flag beats the environment.
    let closed = format!("http://127.0.0.1:{}", free_port());
    cli.run_env(&get, &[("COFFER_GATEWAY_URL", &closed)])
        .failed_with(7);
    cli.run_env(
        &["get-secret-value", "-n", "/env/a", "--gateway-url", &url],
        &[("COFFER_GATEWAY_URL", &closed)],
    )
    .ok();
    cli.run_env(&get, &[("COFFER_TOKEN", "t-not-a-token")])
        .failed_with(3);
    let run = cli
        .run_env(
            &["get-secret-value", "-n", "/env/a", "--token", &token],
            &[("COFFER_TOKEN", "t-not-a-token")],
        )
        .ok();
    assert_eq!(run.stdout, "from-env\n");
}

/// `configure` logs in before saving; `--access-key -` reads standard
/// input; `whoami` shows the identity.
#[test]
fn configure_checks_the_login_and_whoami_shows_the_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let url = server.url();
    let (admin_id, admin_key) = server.bootstrap_credentials();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let profile = cli.home.join("profiles/default.toml");
    let refused = cli
        .run(&[
            "configure",
            "--access-id",
            &admin_id,
            "--access-key",
            "wrong-key",
            "--gateway-url",
            &url,
        ])
        .failed_with(3);
    assert!(refused.stderr.contains("profile not saved"), "{refused:#?}");
    assert!(!refused.stderr.contains("wrong-key"), "{refused:#?}");
    assert!(!profile.exists());
    // The key from standard input (not a terminal here: read as is, trimmed).
    let saved = cli
        .run_with_stdin(
            &[
                "configure",
                "--access-id",
                &admin_id,
                "--access-key",
                "-",
                "--gateway-url",
                &url,
            ],
            Some(format!("{admin_key}\n").as_bytes()),
        )
        .ok();
    assert!(saved.stdout.contains("logged in"), "{saved:#?}");
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(
        text.contains(&format!("access_key = \"{admin_key}\"")),
        "trimmed"
    );
    let who = cli.run(&["whoami"]).ok();
    for want in [
        "access_id:".to_owned(),
        admin_id.clone(),
        "auth_method:".into(),
        "(api_key)".into(),
        "roles:".into(),
        "expiration:".into(),
    ] {
        assert!(who.stdout.contains(&want), "{want}: {who:#?}");
    }
    let who = cli.run(&["whoami", "--json"]).ok().json();
    assert!(!who["roles"].as_array().unwrap().is_empty(), "{who}");
    assert!(who["ttl"].as_i64().unwrap() > 0, "{who}");
    // A role-less identity: whoami still answers, with no roles.
    let am = cli
        .run(&["create-auth-method", "-n", "/who/bare", "--json"])
        .ok()
        .json();
    let token = cli
        .run(&[
            "auth",
            "--access-id",
            am["access_id"].as_str().unwrap(),
            "--access-key",
            am["access_key"].as_str().unwrap(),
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let bare = cli.run(&["whoami", "--token", &token]).ok();
    assert!(bare.stdout.contains("(none)"), "{bare:#?}");
    assert!(bare.stdout.contains("/who/bare"), "{bare:#?}");
}

/// A loopback HTTP server that answers every request with `reply`.
fn fixed_reply_server(reply: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            read_http_request(&mut stream);
            stream.write_all(reply.as_bytes()).ok();
        }
    });
    port
}

/// The error messages of issue 13 item 5, each from its cause.
#[test]
fn errors_say_what_they_know() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cli = Cli {
        home: dir.join("home"),
    };
    // A URL that is not a Coffer API (a web server's 404 page).
    let port = fixed_reply_server(
        "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: 39\r\nconnection: close\r\n\r\n<html><body>404 Not Found</body></html>",
    );
    let web = format!("http://127.0.0.1:{port}");
    let run = cli
        .run(&[
            "configure",
            "--access-id",
            "p-abcdefghijkl",
            "--access-key",
            "k",
            "--gateway-url",
            &web,
        ])
        .failed();
    assert!(
        run.stderr
            .contains("does not look like a Coffer or Akeyless API")
            && run
                .stderr
                .contains("POST /auth answered HTTP 404 with an HTML page")
            && run.stderr.contains("/api/v2"),
        "{run:#?}"
    );
    // HTTPS to a plain-HTTP server.
    let server = Server::start(&dir.join("data"));
    let https = format!("https://127.0.0.1:{}", server.port);
    let run = cli
        .run(&["list-roles", "--gateway-url", &https, "--token", "t-x"])
        .failed_with(7);
    assert!(run.stderr.contains("speaks plain HTTP"), "{run:#?}");
    drop(server);
    // A self-signed server certificate passed as --ca-cert is the trust
    // anchor (as with curl); a CA certificate used as the server's own is
    // refused with the reason.
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    let tls_args = |name: &str| {
        [
            "--tls-cert".to_owned(),
            dir.join(format!("{name}.pem")).display().to_string(),
            "--tls-key".to_owned(),
            dir.join(format!("{name}.key")).display().to_string(),
        ]
    };
    let leaf = tls_args("leaf");
    let leaf: Vec<&str> = leaf.iter().map(String::as_str).collect();
    let leaf_server = Server::start_with(&dir.join("data-leaf"), &leaf);
    let leaf_url = format!("https://127.0.0.1:{}", leaf_server.port);
    let leaf_pem = dir.join("leaf.pem").display().to_string();
    let run = cli
        .run(&[
            "validate-token",
            "--gateway-url",
            &leaf_url,
            "--token",
            "t-x",
        ])
        .failed_with(7);
    assert!(run.stderr.contains("--ca-cert"), "{run:#?}");
    let (leaf_id, leaf_key) = leaf_server.bootstrap_credentials();
    cli.run(&[
        "auth",
        "--access-id",
        &leaf_id,
        "--access-key",
        &leaf_key,
        "--gateway-url",
        &leaf_url,
        "--ca-cert",
        &leaf_pem,
    ])
    .ok();
    drop(leaf_server);
    let ca = tls_args("ca");
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    let ca_server = Server::start_with(&dir.join("data-ca"), &ca);
    let ca_url = format!("https://127.0.0.1:{}", ca_server.port);
    let ca_pem = dir.join("ca.pem").display().to_string();
    let run = cli
        .run(&[
            "validate-token",
            "--gateway-url",
            &ca_url,
            "--ca-cert",
            &ca_pem,
            "--token",
            "t-x",
        ])
        .failed_with(7);
    assert!(
        run.stderr.contains("CA:TRUE") && run.stderr.contains("leaf certificate"),
        "{run:#?}"
    );
    drop(ca_server);

    // `coffer ci`: a missing file named once, YAML frames kept, an unset ID
    // token explained, 127/126 for commands that cannot run, --format
    // github only in GitHub Actions.
    let missing = dir.join("nope.yml").display().to_string();
    let run = cli
        .run(&["ci", "explain", "--job", "x", "--file", &missing])
        .failed();
    assert_eq!(run.stderr.matches("No such file").count(), 1, "{run:#?}");
    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "job:\n  script: [echo\n  bad: : :\n").unwrap();
    let run = cli.run(&[
        "ci",
        "explain",
        "--job",
        "job",
        "--file",
        bad.to_str().unwrap(),
    ]);
    // (A frame's gutter lines are short: not `failed()`'s shape.)
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.starts_with("Error: invalid YAML"), "{run:#?}");
    assert!(run.stderr.contains("  3 |   bad: : :"), "{run:#?}");
    assert!(run.stderr.contains("|      ^"), "{run:#?}");
    let pipeline = dir.join("ok.yml");
    std::fs::write(
        &pipeline,
        "job:\n  script: echo\n  id_tokens:\n    COFFER_ID:\n      aud: coffer\n  secrets:\n    A:\n      akeyless:\n        name: /x\n        akeyless_api_url: http://127.0.0.1:9/api/v2\n      token: $COFFER_ID\n",
    )
    .unwrap();
    let p = pipeline.to_str().unwrap();
    let run = cli
        .run_env(
            &["ci", "explain", "--job", "job", "--file", p],
            &[("AKEYLESS_ACCESS_ID", "p-abcdefghijkl")],
        )
        .failed();
    assert!(
        run.stdout.contains("$COFFER_ID is not set")
            && run.stdout.contains("--id-token COFFER_ID=")
            && run.stdout.contains("coffer dev oidc mint --aud coffer")
            && run.stdout.contains("id_tokens:"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("ID token(s) not set"), "{run:#?}");
    let run = cli.run(&["ci", "run", "--resolve-refs", "--", "/nonexistent/command"]);
    assert_eq!(run.code, 127, "{run:#?}");
    assert!(run.stderr.contains("command not found"), "{run:#?}");
    let not_exec = dir.join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let run = cli.run(&[
        "ci",
        "run",
        "--resolve-refs",
        "--",
        not_exec.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 126, "{run:#?}");
    let gh_env = dir.join("github_env");
    let run = cli.run_env(
        &[
            "ci", "resolve", "--job", "job", "--file", p, "--format", "github",
        ],
        &[
            ("GITHUB_ENV", gh_env.to_str().unwrap()),
            ("AKEYLESS_ACCESS_ID", "p-abcdefghijkl"),
        ],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stdout.is_empty() && run.stderr.contains("GITHUB_ACTIONS"),
        "{run:#?}"
    );
    assert!(!gh_env.exists());

    // The hint after create-auth-method-oauth2 names ID tokens.
    let (_server, _url, admin, _) = admin_cli(&dir.join("admin"));
    let created = admin
        .run(&[
            "create-auth-method-oauth2",
            "-n",
            "/hint/gitlab",
            "--jwks-uri",
            "http://127.0.0.1:9/keys",
            "--unique-identifier",
            "user_login",
            "--audience",
            "https://coffer.example",
        ])
        .ok();
    assert!(
        created.stderr.contains("id_tokens:")
            && created.stderr.contains("aud: https://coffer.example")
            && !created.stderr.contains("CI_JOB_JWT"),
        "{created:#?}"
    );
}

/// `coffer ci` secrets that name no API URL go to COFFER_GATEWAY_URL or the
/// profile's gateway; the public SaaS only when nothing names one, with a
/// note on stderr. (`ci explain` sends nothing.)
#[test]
fn ci_falls_back_to_the_profile_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        home: tmp.path().join("home"),
    };
    let pipeline = tmp.path().join("ci.yml");
    std::fs::write(
        &pipeline,
        "job:\n  script: echo\n  secrets:\n    A:\n      akeyless:\n        name: /x\n        akeyless_access_type: api_key\n        akeyless_access_key: ak-x\n",
    )
    .unwrap();
    let explain = |env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(("AKEYLESS_ACCESS_ID", "p-abcdefghijkl"));
        cli.run_env(
            &[
                "ci",
                "explain",
                "--job",
                "job",
                "--file",
                pipeline.to_str().unwrap(),
            ],
            &env,
        )
    };
    let saas = explain(&[]).ok();
    assert!(
        saas.stdout.contains("endpoint  https://api.akeyless.io"),
        "{saas:#?}"
    );
    assert!(
        saas.stderr
            .contains("note: A uses the public Akeyless SaaS"),
        "{saas:#?}"
    );
    cli.run(&[
        "configure",
        "--access-id",
        "p-abcdefghijkl",
        "--access-key=k",
        "--gateway-url",
        "http://127.0.0.1:8299",
        "--no-login-check",
    ])
    .ok();
    let profile = explain(&[]).ok();
    assert!(
        profile.stdout.contains("endpoint  http://127.0.0.1:8299"),
        "{profile:#?}"
    );
    assert!(!profile.stderr.contains("SaaS"), "{profile:#?}");
    // Not silently: the job's credentials go to a profile's gateway.
    assert!(
        profile
            .stderr
            .contains("note: A uses http://127.0.0.1:8299, the gateway of profile default"),
        "{profile:#?}"
    );
    let env = explain(&[("COFFER_GATEWAY_URL", "http://127.0.0.1:8298")]).ok();
    assert!(
        env.stdout.contains("endpoint  http://127.0.0.1:8298"),
        "{env:#?}"
    );
    assert!(!env.stderr.contains("note:"), "named by the user: {env:#?}");
    let v = cli
        .run_env(
            &[
                "ci",
                "explain",
                "--job",
                "job",
                "--file",
                pipeline.to_str().unwrap(),
                "--jq-expression",
                ".secrets[0].endpoint",
            ],
            &[("AKEYLESS_ACCESS_ID", "p-abcdefghijkl")],
        )
        .ok();
    assert_eq!(v.stdout, "http://127.0.0.1:8299\n", "{v:#?}");
}

/// `--access-key -` on a terminal: asked for without echo (a pty from
/// util-linux `script`; the key is typed after the prompt appeared).
#[test]
fn configure_reads_the_key_from_a_terminal_without_echo() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: needs /usr/bin/script (util-linux) for a pseudo-terminal");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let command = format!(
        "{COFFER} configure --access-id p-abcdefghijkl --access-key - --gateway-url http://127.0.0.1:1 --no-login-check"
    );
    let out = scrubbed(Command::new("sh"))
        .arg("-c")
        .arg("(sleep 1; printf 'TYPED-KEY-4711\\n') | script -qec \"$CMD\" /dev/null")
        .env("CMD", &command)
        .env("COFFER_HOME", &home)
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("Access key (input hidden):"), "{screen}");
    assert!(!screen.contains("TYPED-KEY-4711"), "echoed: {screen}");
    let profile = std::fs::read_to_string(home.join("profiles/default.toml")).unwrap();
    assert!(
        profile.contains("access_key = \"TYPED-KEY-4711\""),
        "{profile}"
    );
}

/// Each credential goes only to its own source's gateway (docs/cli.md):
/// the profile's to the profile's gateway whatever AKEYLESS_GATEWAY_URL
/// says; AKEYLESS_* credentials and tokens only to AKEYLESS_GATEWAY_URL
/// (or an explicit --gateway-url / COFFER_GATEWAY_URL), never to the
/// profile's. A recording listener stands for the wrong gateway.
#[test]
fn credentials_go_only_to_their_own_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url, cli, (admin_id, admin_key)) = admin_cli(tmp.path());
    cli.run(&["create-secret", "-n", "/own/a", "-v", "mine"])
        .ok();
    let (wrong, received) = recording_server("127.0.0.1:0", None);
    let wrong = format!("http://{wrong}");
    let nothing_sent = |step: &str| {
        let got = received.lock().unwrap();
        assert!(
            got.is_empty(),
            "{step}: the wrong gateway received {got:#?}"
        );
    };
    let get = ["get-secret-value", "-n", "/own/a"];
    // The profile's key, and its cached token, go to the profile's gateway.
    std::fs::remove_dir_all(cli.home.join("tokens")).ok();
    let run = cli.run_env(&get, &[("AKEYLESS_GATEWAY_URL", &wrong)]).ok();
    assert_eq!(run.stdout, "mine\n", "{run:#?}");
    cli.run_env(&get, &[("AKEYLESS_GATEWAY_URL", &wrong)]).ok();
    cli.run_env(&["auth"], &[("AKEYLESS_GATEWAY_URL", &wrong)])
        .ok();
    nothing_sent("profile with AKEYLESS_GATEWAY_URL");
    // configure's login check: the profile's gateway, else
    // COFFER_GATEWAY_URL, else the default; never AKEYLESS_GATEWAY_URL.
    let checked = cli.run_env(
        &[
            "configure",
            "--profile",
            "checked",
            "--access-id",
            &admin_id,
            "--access-key",
            &admin_key,
        ],
        &[("AKEYLESS_GATEWAY_URL", &wrong)],
    );
    assert!(!checked.stdout.contains(&wrong), "{checked:#?}");
    nothing_sent("configure's login check");
    // A profile whose gateway is the listener: AKEYLESS_* credentials are
    // not sent there.
    cli.run(&[
        "configure",
        "--profile",
        "elsewhere",
        "--access-id",
        "p-abcdefghijkl",
        "--access-key",
        "profile-key-4711",
        "--gateway-url",
        &wrong,
        "--no-login-check",
    ])
    .ok();
    let elsewhere = ["get-secret-value", "-n", "/own/a", "--profile", "elsewhere"];
    let auth_elsewhere = ["auth", "--profile", "elsewhere"];
    let ak_credentials = [
        ("AKEYLESS_ACCESS_ID", admin_id.as_str()),
        ("AKEYLESS_ACCESS_KEY", "ak-secret-4711"),
    ];
    let ak_token = [("AKEYLESS_TOKEN", "t-ak-secret-4711")];
    for (args, env) in [
        (&elsewhere[..], &ak_credentials[..]),
        (&auth_elsewhere[..], &ak_credentials[..]),
        (&elsewhere[..], &ak_token[..]),
    ] {
        let run = cli.run_env(args, env).failed_with(1);
        assert!(
            run.stderr.contains("AKEYLESS_GATEWAY_URL is not"),
            "{run:#?}"
        );
        nothing_sent(&format!("{env:?} {args:?}"));
    }
    // With their own gateway they work, the profile's notwithstanding.
    let akeyless = [
        ("AKEYLESS_ACCESS_ID", admin_id.as_str()),
        ("AKEYLESS_ACCESS_KEY", admin_key.as_str()),
        ("AKEYLESS_GATEWAY_URL", url.as_str()),
    ];
    let run = cli.run_env(&elsewhere, &akeyless).ok();
    assert_eq!(run.stdout, "mine\n", "{run:#?}");
    cli.run_env(&auth_elsewhere, &akeyless).ok();
    // Or with an explicit gateway when AKEYLESS_GATEWAY_URL is unset.
    let run = cli
        .run_env(
            &elsewhere,
            &[akeyless[0], akeyless[1], ("COFFER_GATEWAY_URL", &url)],
        )
        .ok();
    assert_eq!(run.stdout, "mine\n", "{run:#?}");
    nothing_sent("AKEYLESS_* with their gateway");
    // Two different gateways for them: refused.
    let run = cli
        .run_env(
            &elsewhere,
            &[
                akeyless[0],
                akeyless[1],
                akeyless[2],
                ("COFFER_GATEWAY_URL", &wrong),
            ],
        )
        .failed_with(1);
    assert!(
        run.stderr.contains("belongs to AKEYLESS_GATEWAY_URL"),
        "{run:#?}"
    );
    nothing_sent("two gateways");
}

/// Logins with credentials from the environment are never written to the
/// token cache, also when the profile names the same access ID; the
/// environment's key goes only with the environment's access ID.
#[test]
fn environment_logins_are_never_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url, cli, (admin_id, admin_key)) = admin_cli(tmp.path());
    let tokens = cli.home.join("tokens");
    std::fs::remove_dir_all(&tokens).ok();
    let coffer_env = [
        ("COFFER_ACCESS_ID", admin_id.as_str()),
        ("COFFER_ACCESS_KEY", admin_key.as_str()),
    ];
    let token = cli.run_env(&["auth"], &coffer_env).ok();
    assert!(token.stdout.trim().starts_with("t-"), "{token:#?}");
    cli.run_env(&["list-roles"], &coffer_env).ok();
    assert!(!tokens.exists(), "COFFER_ACCESS_* login cached");
    // No profile: AKEYLESS_* credentials, not cached either.
    let bare = Cli {
        home: tmp.path().join("bare-home"),
    };
    bare.run_env(
        &["auth"],
        &[
            ("AKEYLESS_ACCESS_ID", &admin_id),
            ("AKEYLESS_ACCESS_KEY", &admin_key),
            ("AKEYLESS_GATEWAY_URL", &url),
        ],
    )
    .ok();
    assert!(
        !bare.home.join("tokens").exists(),
        "AKEYLESS_* login cached"
    );
    // A login from the flags is still cached, as before.
    cli.run(&["auth", "--access-id", &admin_id, "--access-key", &admin_key])
        .ok();
    assert!(tokens.exists(), "a login from flags is cached");
    // --access-id X with COFFER_ACCESS_KEY (the key of the environment's
    // ID): the key is not sent with X.
    let (gateway, received) = recording_server("127.0.0.1:0", None);
    let run = cli
        .run_env(
            &[
                "auth",
                "--access-id",
                "p-otherother12",
                "--gateway-url",
                &format!("http://{gateway}"),
            ],
            &[
                ("COFFER_ACCESS_ID", "p-envenvenv123"),
                ("COFFER_ACCESS_KEY", "env-key-4711"),
            ],
        )
        .failed_with(1);
    assert!(run.stderr.contains("--access-key is required"), "{run:#?}");
    // configure likewise: not saved (nor checked) with another ID's key.
    let run = cli
        .run_env(
            &[
                "configure",
                "--profile",
                "other",
                "--access-id",
                "p-otherother12",
                "--gateway-url",
                &format!("http://{gateway}"),
            ],
            &[
                ("COFFER_ACCESS_ID", "p-envenvenv123"),
                ("COFFER_ACCESS_KEY", "env-key-4711"),
            ],
        )
        .failed_with(1);
    assert!(run.stderr.contains("--access-key is required"), "{run:#?}");
    assert!(!cli.home.join("profiles/other.toml").exists());
    assert!(received.lock().unwrap().is_empty(), "{received:#?}");
    // COFFER_ACCESS_KEY with its own ID (or no ID) still configures.
    cli.run_env(
        &[
            "configure",
            "--profile",
            "same",
            "--access-id",
            &admin_id,
            "--gateway-url",
            &url,
        ],
        &[
            ("COFFER_ACCESS_ID", &admin_id),
            ("COFFER_ACCESS_KEY", &admin_key),
        ],
    )
    .ok();
}

/// Ctrl-C at the hidden prompt: the terminal gets its echo back (the
/// prompt reads with signals off and restores the settings), exit 130.
#[test]
fn ctrl_c_at_the_hidden_prompt_restores_the_terminal() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: needs /usr/bin/script (util-linux) for a pseudo-terminal");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // The shell traps SIGINT so that it survives one, and shows the
    // terminal's settings after coffer ends.
    let command = format!(
        "trap 'echo TRAPPED' INT; {COFFER} configure --access-id p-abcdefghijkl --access-key - --gateway-url http://127.0.0.1:1 --no-login-check; echo STATUS=$?; stty -a"
    );
    let out = scrubbed(Command::new("sh"))
        .arg("-c")
        .arg("(sleep 2; printf 'TYPED\\003'; sleep 2) | script -qec \"$CMD\" /dev/null")
        .env("CMD", &command)
        .env("COFFER_HOME", &home)
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("Access key (input hidden):"), "{screen}");
    assert!(screen.contains("STATUS=130"), "{screen}");
    assert!(screen.contains("cancelled"), "{screen}");
    assert!(
        !screen.contains("TYPED\r") && !screen.contains("TYPED\n"),
        "echoed: {screen}"
    );
    let settings: Vec<&str> = screen.split_whitespace().collect();
    for want in ["echo", "icanon", "isig"] {
        assert!(settings.contains(&want), "{want} not restored: {screen}");
    }
    assert!(!home.join("profiles/default.toml").exists());
}
