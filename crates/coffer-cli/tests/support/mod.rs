//! The harness the keys/certificates and cert-login end-to-end tests
//! share: a real `coffer server --dev` on a free loopback port, a CLI with
//! its own home, and runs of programs with a scrubbed environment.
// Each test binary uses its own part of it.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const COFFER: &str = env!("CARGO_BIN_EXE_coffer");

/// Environment variables that would change what the CLI or server does.
pub(crate) const SCRUBBED_ENV: &[&str] = &[
    "COFFER_GATEWAY_URL",
    "COFFER_PROFILE",
    "COFFER_CA_CERT",
    "COFFER_ACCESS_KEY",
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
];

pub(crate) fn scrubbed(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// A running `coffer server --dev`; stopped on drop (also when a test panics).
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) stdout: Arc<Mutex<String>>,
    pub(crate) stderr: Arc<Mutex<String>>,
}

pub(crate) fn drain(stream: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

pub(crate) fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request =
        format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok();
    answer.starts_with("HTTP/1.1 200")
}

impl Server {
    pub(crate) fn start(data_dir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = scrubbed(COFFER)
            .args(["server", "--dev", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coffer server");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(child.stderr.take().unwrap(), stderr.clone());
        let mut server = Server {
            child,
            port,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !healthy(port) {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("coffer server exited with {status}\n{}", server.logs());
            }
            assert!(
                Instant::now() < deadline,
                "server not healthy after 60 s\n{}",
                server.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn logs(&self) -> String {
        format!(
            "--- server stdout ---\n{}\n--- server stderr ---\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// The bootstrap admin credentials printed on first start.
    pub(crate) fn bootstrap_credentials(&self) -> (String, String) {
        let after = |text: &str, label: &str| {
            let start = text.find(label)? + label.len();
            text[start..].split_whitespace().next().map(String::from)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.stdout.lock().unwrap().clone();
            let id = after(&out, "access_id:").filter(|id| id.starts_with("p-"));
            if let (Some(id), Some(key)) = (id, after(&out, "access_key:")) {
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
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its pid: SIGTERM first, then SIGKILL.
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// One run of a program.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) args: String,
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    #[track_caller]
    pub(crate) fn ok(self) -> Run {
        assert_eq!(self.code, 0, "`{}` failed: {self:#?}", self.args);
        self
    }

    /// Exit code 1 with one `Error: …` line.
    #[track_caller]
    pub(crate) fn failed(self) -> Run {
        // 1, or a kind of docs/cli.md (3 auth … 7 network).
        assert!(
            matches!(self.code, 1 | 3..=7),
            "`{}` should fail (1, 3-7): {self:#?}",
            self.args
        );
        assert!(self.stderr.starts_with("Error: "), "{self:#?}");
        assert!(
            self.stdout.is_empty(),
            "nothing printed on failure: {self:#?}"
        );
        self
    }

    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}): {self:#?}", self.args))
    }
}

pub(crate) fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut cmd = scrubbed(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run {
        args: format!("{program} {}", args.join(" ")),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The CLI with its own `COFFER_HOME`.
pub(crate) struct Cli {
    pub(crate) home: PathBuf,
}

impl Cli {
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(COFFER, args, &[("COFFER_HOME", &self.home)])
    }
}

pub(crate) fn tool(program: &str, args: &[&str]) -> Run {
    run(program, args, &[])
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// Hex without leading zeros, lower case (serials as tools print them).
pub(crate) fn hex_digits(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase();
    s.trim_start_matches('0').to_string()
}
