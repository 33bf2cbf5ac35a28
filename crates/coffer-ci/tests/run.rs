//! `coffer ci run` mechanics: injection, masking, exit codes, signals and
//! cleanup of the secret files. Unix only; commands run through `sh`.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use coffer_ci::run::{ForwardSignal, RunError, RunOutcome, RunSpec, SecretVar, run, run_with};
use secrecy::SecretString;
use tokio::sync::mpsc;

fn secret(name: &str, value: &str, file: bool) -> SecretVar {
    SecretVar {
        name: name.to_owned(),
        value: SecretString::from(value.to_owned()),
        file,
    }
}

/// `sh -c SCRIPT sh OUT`: the script finds the test's output directory in `$1`.
fn spec(script: &str, out: &Path, secrets: Vec<SecretVar>, secret_parent: &Path) -> RunSpec {
    let mut spec = RunSpec::new(
        "sh",
        [
            "-c".into(),
            script.into(),
            "sh".into(),
            out.as_os_str().to_owned(),
        ],
        secrets,
    );
    spec.secret_dir_parent = Some(secret_parent.to_path_buf());
    spec.own_process_group = true;
    spec
}

struct Captured {
    outcome: RunOutcome,
    stdout: String,
    stderr: String,
}

async fn capture(spec: RunSpec) -> Result<Captured, RunError> {
    let (_tx, rx) = mpsc::unbounded_channel();
    capture_with(spec, rx).await
}

async fn capture_with(
    spec: RunSpec,
    signals: mpsc::UnboundedReceiver<ForwardSignal>,
) -> Result<Captured, RunError> {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let outcome = run_with(spec, &mut stdout, &mut stderr, signals).await?;
    Ok(Captured {
        outcome,
        stdout: String::from_utf8(stdout).expect("utf8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf8 stderr"),
    })
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).expect("read_dir").next().is_none()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process still runs (absent or zombie counts as gone).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_until_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(pid) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const FILE_VALUE: &str = "line one\nline 'two' $HOME `x`\n\n  trailing spaces  ";

#[tokio::test]
async fn file_and_env_injection_with_private_modes_then_cleanup() {
    let (out, parent) = (tempdir(), tempdir());
    let script = r#"
        printf '%s' "$FILE_SECRET" > "$1/path"
        cp "$FILE_SECRET" "$1/content"
        stat -c %a "$FILE_SECRET" > "$1/file_mode"
        stat -c %a "$(dirname "$FILE_SECRET")" > "$1/dir_mode"
        ls -A "$(dirname "$FILE_SECRET")" > "$1/listing"
        printf '%s' "$ENV_SECRET" > "$1/env"
        printf '%s' "${FILE_SECRET_2:-unset}" > "$1/second"
    "#;
    let secrets = vec![
        secret("FILE_SECRET", FILE_VALUE, true),
        secret("ENV_SECRET", "env value with 'quotes' and\nnewline", false),
        secret("FILE_SECRET_2", "x", true),
    ];
    let captured = capture(spec(script, out.path(), secrets, parent.path()))
        .await
        .expect("runs");
    assert_eq!(captured.outcome.exit_code, 0, "stderr: {}", captured.stderr);
    assert!(captured.outcome.cleanup_error.is_none());

    let path = PathBuf::from(read(out.path().join("path")));
    let dir = path.parent().expect("parent").to_path_buf();
    assert_eq!(dir.parent(), Some(parent.path()));
    let dir_name = dir.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        dir_name.starts_with(&format!("coffer-ci-{}-", std::process::id())),
        "{dir_name}"
    );
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some("FILE_SECRET")
    );
    // Byte-exact: no newline added, whitespace kept.
    assert_eq!(
        std::fs::read(out.path().join("content")).expect("content"),
        FILE_VALUE.as_bytes()
    );
    assert_eq!(read(out.path().join("file_mode")), "600\n");
    assert_eq!(read(out.path().join("dir_mode")), "700\n");
    assert_eq!(
        read(out.path().join("listing")),
        "FILE_SECRET\nFILE_SECRET_2\n"
    );
    assert_eq!(
        read(out.path().join("env")),
        "env value with 'quotes' and\nnewline"
    );
    assert!(read(out.path().join("second")).ends_with("/FILE_SECRET_2"));
    // Gone afterwards.
    assert!(!path.exists() && !dir.exists());
    assert!(is_empty_dir(parent.path()));
    // The short value was reported, by name.
    assert!(
        captured
            .stderr
            .contains("coffer ci: warning: FILE_SECRET_2:"),
        "{}",
        captured.stderr
    );
}

#[tokio::test]
async fn exit_codes_are_propagated() {
    let (out, parent) = (tempdir(), tempdir());
    for (script, code, signal) in [
        ("exit 0", 0, None),
        ("exit 3", 3, None),
        ("exit 255", 255, None),
        ("kill -TERM $$", 143, Some(15)),
        ("kill -KILL $$", 137, Some(9)),
    ] {
        let captured = capture(spec(script, out.path(), vec![], parent.path()))
            .await
            .expect("runs");
        assert_eq!(
            (captured.outcome.exit_code, captured.outcome.signal),
            (code, signal),
            "{script}"
        );
    }
}

#[tokio::test]
async fn files_are_removed_after_a_failure_and_after_being_killed() {
    let (out, parent) = (tempdir(), tempdir());
    for (script, code) in [
        (r#"printf '%s' "$F" > "$1/path"; exit 3"#, 3),
        (
            r#"printf '%s' "$F" > "$1/path"; chmod 500 "$(dirname "$F")"; kill -KILL $$"#,
            137,
        ),
        (
            r#"printf '%s' "$F" > "$1/path"; mkdir "$(dirname "$F")/left-over"; touch "$(dirname "$F")/left-over/x""#,
            0,
        ),
    ] {
        let captured = capture(spec(
            script,
            out.path(),
            vec![secret("F", "some-secret-file", true)],
            parent.path(),
        ))
        .await
        .expect("runs");
        assert_eq!(captured.outcome.exit_code, code, "{script}");
        assert!(captured.outcome.cleanup_error.is_none(), "{script}");
        let path = PathBuf::from(read(out.path().join("path")));
        assert!(!path.exists(), "{script}");
        assert!(is_empty_dir(parent.path()), "{script}");
    }
}

#[tokio::test]
async fn forwarded_sigterm_reaches_the_command_and_its_group_then_files_are_removed() {
    let (out, parent) = (tempdir(), tempdir());
    // The trap proves the signal was forwarded (not a kill); the background
    // sleep, which holds stdout open, proves it went to the whole group.
    let script = r#"
        trap 'echo got TERM; exit 7' TERM
        printf '%s' "$F" > "$1/path"
        sleep 30 &
        echo $! > "$1/sleep_pid"
        touch "$1/ready"
        wait
    "#;
    let (tx, rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let run = capture_with(
        spec(
            script,
            out.path(),
            vec![secret("F", "file-secret-value", true)],
            parent.path(),
        ),
        rx,
    );
    let signal = async {
        wait_for_file(&out.path().join("ready")).await;
        assert!(PathBuf::from(read(out.path().join("path"))).exists());
        tx.send(ForwardSignal::Terminate).expect("send");
    };
    let (captured, ()) = tokio::join!(run, signal);
    let captured = captured.expect("runs");
    assert_eq!(captured.outcome.exit_code, 7);
    assert_eq!(captured.stdout, "got TERM\n");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited for the drain timeout"
    );
    let sleep_pid: i32 = read(out.path().join("sleep_pid"))
        .trim()
        .parse()
        .expect("pid");
    wait_until_gone(sleep_pid).await;
    assert!(is_empty_dir(parent.path()));
}

#[tokio::test]
async fn a_signal_that_kills_the_command_gives_128_plus_its_number() {
    let (out, parent) = (tempdir(), tempdir());
    for (signal, code) in [
        (ForwardSignal::Terminate, 143),
        (ForwardSignal::Interrupt, 130),
        (ForwardSignal::Hangup, 129),
        (ForwardSignal::Quit, 131),
    ] {
        let ready = out.path().join(format!("ready-{code}"));
        let script = format!("touch '{}'; exec sleep 30", ready.display());
        let (tx, rx) = mpsc::unbounded_channel();
        let run = capture_with(
            spec(
                &script,
                out.path(),
                vec![secret("F", "file-secret-value", true)],
                parent.path(),
            ),
            rx,
        );
        let send = async {
            wait_for_file(&ready).await;
            tx.send(signal).expect("send");
        };
        let (captured, ()) = tokio::join!(run, send);
        let outcome = captured.expect("runs").outcome;
        assert_eq!(
            (outcome.exit_code, outcome.signal),
            (code, Some(code - 128)),
            "{signal:?}"
        );
        assert_eq!(signal.number(), code - 128);
        assert!(is_empty_dir(parent.path()));
    }
}

#[tokio::test]
async fn a_signal_before_the_start_stops_the_run_without_starting_the_command() {
    let (out, parent) = (tempdir(), tempdir());
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(ForwardSignal::Interrupt).expect("send");
    let script = r#"touch "$1/started""#;
    let captured = capture_with(
        spec(
            script,
            out.path(),
            vec![secret("F", "file-secret-value", true)],
            parent.path(),
        ),
        rx,
    )
    .await
    .expect("runs");
    assert_eq!(
        (captured.outcome.exit_code, captured.outcome.signal),
        (130, Some(2))
    );
    assert!(!out.path().join("started").exists());
    assert!(is_empty_dir(parent.path()));
}

#[tokio::test]
async fn a_command_that_cannot_start_is_a_clear_error_and_leaves_no_file() {
    let parent = tempdir();
    let mut spec = RunSpec::new(
        "/nonexistent/coffer-test-command",
        ["arg"],
        vec![secret("F", "file-secret-value", true)],
    );
    spec.secret_dir_parent = Some(parent.path().to_path_buf());
    let (_tx, rx) = mpsc::unbounded_channel();
    let err = run_with(spec, Vec::new(), Vec::new(), rx)
        .await
        .expect_err("cannot start");
    assert!(matches!(err, RunError::Spawn { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/coffer-test-command"),
        "{message}"
    );
    assert!(message.contains("No such file"), "{message}");
    assert!(is_empty_dir(parent.path()));

    // A secret directory that cannot be created.
    let mut spec = RunSpec::new(
        "true",
        Vec::<String>::new(),
        vec![secret("F", "file-secret-value", true)],
    );
    spec.secret_dir_parent = Some(parent.path().join("missing"));
    let (_tx, rx) = mpsc::unbounded_channel();
    let err = run_with(spec, Vec::new(), Vec::new(), rx)
        .await
        .expect_err("no dir");
    assert!(
        err.to_string()
            .contains("cannot create a private directory"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_names_duplicates_and_nul_in_environment_values_are_rejected_up_front() {
    let (out, parent) = (tempdir(), tempdir());
    let cases = [
        (
            vec![secret("1ABC", "value-long", false)],
            "invalid variable name",
        ),
        (
            vec![secret("A-B", "value-long", true)],
            "invalid variable name",
        ),
        (
            vec![secret("", "value-long", false)],
            "invalid variable name",
        ),
        (
            vec![secret("../X", "value-long", true)],
            "invalid variable name",
        ),
        (
            vec![
                secret("A", "value-long", false),
                secret("A", "other-value", true),
            ],
            "more than once",
        ),
        (vec![secret("A", "nul\0inside", false)], "NUL"),
    ];
    for (secrets, expected) in cases {
        let script = r#"touch "$1/started""#;
        let err = capture(spec(script, out.path(), secrets, parent.path()))
            .await
            .err()
            .expect("rejected");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!out.path().join("started").exists());
        assert!(is_empty_dir(parent.path()));
    }
    // In a file, a NUL byte is fine.
    let captured = capture(spec(
        r#"od -An -c "$F""#,
        out.path(),
        vec![secret("F", "nul\0inside", true)],
        parent.path(),
    ))
    .await
    .expect("runs");
    assert!(captured.stdout.contains("\\0"), "{}", captured.stdout);
}

#[tokio::test]
async fn output_is_masked_end_to_end() {
    let (out, parent) = (tempdir(), tempdir());
    let token = "tok-3f9a8b7c6d5e4f";
    let key = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nAASCBKcwggSjAgEAAoIBAQC7VJTU\n-----END TEST KEY-----";
    let script = r#"
        echo "token is $TOKEN"
        printf '%s' "$TOKEN" | base64
        printf '%s' "$TOKEN" | base64 | tr '+/' '-_' | tr -d '=\n'; echo
        echo "to stderr: $TOKEN" >&2
        while IFS= read -r line || [ -n "$line" ]; do echo "key line: $line"; done < "$KEY"
        cat "$KEY"; echo
        printf '{"t":"%s"}\n' "$TOKEN"
        printf 'partial %s' "$(printf '%s' "$TOKEN" | cut -c1-6)"
    "#;
    let secrets = vec![secret("TOKEN", token, false), secret("KEY", key, true)];
    let captured = capture(spec(script, out.path(), secrets, parent.path()))
        .await
        .expect("runs");
    assert_eq!(captured.outcome.exit_code, 0, "{}", captured.stderr);
    assert_eq!(
        captured.stdout,
        "token is [MASKED]\n[MASKED]\n[MASKED]\n\
         key line: [MASKED]\nkey line: [MASKED]\nkey line: [MASKED]\nkey line: [MASKED]\n\
         [MASKED]\n{\"t\":\"[MASKED]\"}\npartial tok-3f"
    );
    assert_eq!(captured.stderr, "to stderr: [MASKED]\n");
    for leak in [token, "MIIEvQIBADAN", "AASCBKcwggSj", "BEGIN TEST KEY"] {
        assert!(!captured.stdout.contains(leak), "{leak}");
    }
    assert!(
        !captured
            .stdout
            .contains(&base64::engine::general_purpose::STANDARD.encode(token))
    );
}

#[tokio::test]
async fn large_concurrent_stdout_and_stderr_do_not_deadlock_and_keep_their_order() {
    let (out, parent) = (tempdir(), tempdir());
    let script = r#"
        i=0
        while [ $i -lt 3000 ]; do
            echo "out $i ................................................................"
            echo "err $i ................................................................" >&2
            i=$((i+1))
        done
    "#;
    let captured = capture(spec(
        script,
        out.path(),
        vec![secret("S", "never-printed-secret", false)],
        parent.path(),
    ))
    .await
    .expect("runs");
    assert_eq!(captured.outcome.exit_code, 0);
    for (text, tag) in [(&captured.stdout, "out"), (&captured.stderr, "err")] {
        let numbers: Vec<usize> = text
            .lines()
            .map(|l| {
                let rest = l.strip_prefix(tag).expect("tag");
                rest.split_whitespace()
                    .next()
                    .expect("n")
                    .parse()
                    .expect("number")
            })
            .collect();
        assert_eq!(numbers, (0..3000).collect::<Vec<_>>(), "{tag}");
    }
}

#[tokio::test]
async fn a_background_process_holding_the_pipe_does_not_hang_the_run() {
    let (out, parent) = (tempdir(), tempdir());
    let script = r#"sleep 30 & echo $! > "$1/bg"; echo done"#;
    let mut spec = spec(script, out.path(), vec![], parent.path());
    spec.drain_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let captured = capture(spec).await.expect("runs");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        (captured.outcome.exit_code, captured.stdout.as_str()),
        (0, "done\n")
    );
    let pid: i32 = read(out.path().join("bg")).trim().parse().expect("pid");
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).ok();
    }
}

/// An output stream that is closed, like our stdout in `coffer ci run -- cmd | head -1`.
struct ClosedWriter;

impl tokio::io::AsyncWrite for ClosedWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_closed_stdout_gives_the_command_sigpipe_instead_of_a_hang() {
    let (out, parent) = (tempdir(), tempdir());
    let spec = spec("exec yes", out.path(), vec![], parent.path());
    let (_tx, rx) = mpsc::unbounded_channel();
    let mut stderr = Vec::new();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        run_with(spec, ClosedWriter, &mut stderr, rx),
    )
    .await
    .expect("no hang")
    .expect("runs");
    assert_eq!((outcome.exit_code, outcome.signal), (141, Some(13)));
    let stderr = String::from_utf8(stderr).expect("utf8");
    assert!(
        stderr.contains("copying the command's stdout failed"),
        "{stderr}"
    );
}

#[tokio::test]
async fn without_its_own_group_only_the_command_gets_the_signal() {
    let (out, parent) = (tempdir(), tempdir());
    let script = r#"
        trap 'echo got TERM; exit 4' TERM
        sleep 30 &
        echo $! > "$1/sleep_pid"
        touch "$1/ready"
        wait
    "#;
    let mut spec = spec(script, out.path(), vec![], parent.path());
    spec.own_process_group = false;
    spec.drain_timeout = Duration::from_millis(200);
    let (tx, rx) = mpsc::unbounded_channel();
    let send = async {
        wait_for_file(&out.path().join("ready")).await;
        tx.send(ForwardSignal::Terminate).expect("send");
    };
    let (captured, ()) = tokio::join!(capture_with(spec, rx), send);
    let captured = captured.expect("runs");
    assert_eq!(
        (captured.outcome.exit_code, captured.stdout.as_str()),
        (4, "got TERM\n")
    );
    // The background sleep did not get it (and held stdout until the drain timeout).
    let sleep_pid: i32 = read(out.path().join("sleep_pid"))
        .trim()
        .parse()
        .expect("pid");
    assert!(running(sleep_pid));
    if let Some(pid) = rustix::process::Pid::from_raw(sleep_pid) {
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).ok();
    }
}

/// An output stream that panics: stands for a bug in our code mid-run.
struct PanickingWriter;

impl tokio::io::AsyncWrite for PanickingWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        panic!("simulated bug while copying output");
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_panic_in_our_code_removes_the_files_and_kills_the_command() {
    let (out, parent) = (tempdir(), tempdir());
    let script = r#"
        printf '%s' "$F" > "$1/path"
        sleep 30 &
        echo $! > "$1/sleep_pid"
        echo $$ > "$1/sh_pid"
        echo hello
        wait
    "#;
    let spec = spec(
        script,
        out.path(),
        vec![secret("F", "file-secret-value", true)],
        parent.path(),
    );
    let task = tokio::spawn(async move {
        let (_tx, rx) = mpsc::unbounded_channel();
        run_with(spec, PanickingWriter, Vec::new(), rx).await
    });
    let err = task.await.expect_err("panicked");
    assert!(err.is_panic());
    let path = PathBuf::from(read(out.path().join("path")));
    assert!(!path.exists());
    assert!(is_empty_dir(parent.path()));
    for pid_file in ["sh_pid", "sleep_pid"] {
        wait_for_file(&out.path().join(pid_file)).await;
        let pid: i32 = read(out.path().join(pid_file)).trim().parse().expect("pid");
        wait_until_gone(pid).await;
    }
}

const HELPER_ENV: &str = "COFFER_CI_TEST_RUN_HELPER";

/// Not a test on its own: the process that
/// `real_sigterm_sent_to_coffer_is_forwarded_and_files_are_removed` starts
/// (this test binary again) to receive a real SIGTERM. Does nothing unless
/// that test set `COFFER_CI_TEST_RUN_HELPER`.
#[test]
#[ignore = "helper process, started by real_sigterm_sent_to_coffer_is_forwarded_and_files_are_removed"]
fn helper_run_with_real_signals() {
    let Some(dir) = std::env::var_os(HELPER_ENV).map(PathBuf::from) else {
        return;
    };
    let script = r#"
        trap 'echo "trapped TERM"; exit 5' TERM
        echo "secret: $TOKEN"
        printf '%s' "$F" > "$1/path"
        sleep 30 &
        touch "$1/ready"
        wait
    "#;
    let secrets = vec![
        secret("TOKEN", "real-signal-token-value", false),
        secret("F", "real-signal-file-value", true),
    ];
    let spec = spec(script, &dir, secrets, &dir.join("secrets"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(run(spec)).expect("runs");
    std::fs::write(dir.join("exit_code"), outcome.exit_code.to_string()).expect("write");
}

#[tokio::test]
async fn real_sigterm_sent_to_coffer_is_forwarded_and_files_are_removed() {
    let out = tempdir();
    std::fs::create_dir(out.path().join("secrets")).expect("mkdir");
    let helper = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "helper_run_with_real_signals",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, out.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("helper starts");
    let pid = helper
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        .expect("pid");
    wait_for_file(&out.path().join("ready")).await;
    let secret_file = PathBuf::from(read(out.path().join("path")));
    assert!(secret_file.exists());
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    let output = tokio::time::timeout(Duration::from_secs(20), helper.wait_with_output())
        .await
        .expect("helper ends")
        .expect("helper output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(read(out.path().join("exit_code")), "5");
    assert!(stdout.contains("secret: [MASKED]\n"), "{stdout}");
    assert!(stdout.contains("trapped TERM\n"), "{stdout}");
    assert!(!stdout.contains("real-signal-token-value"), "{stdout}");
    assert!(!secret_file.exists());
    assert!(is_empty_dir(&out.path().join("secrets")));
}

/// Issue 9 item 9, at the run level: the variables in `env_remove` are not
/// in the command's environment (a secret of the same name still is), and
/// the `mask_only` credentials are masked in its output, also
/// percent-encoded, without being injected.
#[tokio::test]
async fn login_variables_are_removed_and_login_credentials_masked() {
    let (out, parent) = (tempdir(), tempdir());
    // A variable this test process surely has, standing for a login
    // variable (the environment cannot be changed from a safe-code test).
    let (inherited, inherited_value) = std::env::vars()
        .find(|(k, v)| k != "PATH" && v.len() >= 4 && !v.contains('\n'))
        .expect("the test process has some environment");
    let credential = "ak-LOGIN-cr3d/ential+x";
    let percent_secret = "db p@ss/w0rd";
    let script = r#"
        env > "$1/env.txt"
        printf 'credential=%s\n' "$2"
        printf 'pct=%s\n' "$3"
        printf 'form=%s\n' "$4"
        printf 'db=%s\n' "$DB"
    "#;
    let out_dir = out.path().display().to_string();
    let mut spec = RunSpec::new(
        "sh",
        [
            "-c",
            script,
            "sh",
            out_dir.as_str(),
            credential,
            "db%20p%40ss%2Fw0rd",
            "db+p%40ss%2Fw0rd",
        ],
        vec![
            secret("DB", percent_secret, false),
            secret("SHADOWED", "injected-value", false),
        ],
    );
    spec.secret_dir_parent = Some(parent.path().to_path_buf());
    spec.own_process_group = true;
    spec.env_remove = vec![inherited.clone().into(), "SHADOWED".into()];
    spec.mask_only = vec![(
        "AKEYLESS_ACCESS_KEY".to_owned(),
        SecretString::from(credential.to_owned()),
    )];
    let captured = capture(spec).await.expect("runs");
    assert_eq!(captured.outcome.exit_code, 0, "{}", captured.stderr);
    assert_eq!(
        captured.stdout,
        "credential=[MASKED]\npct=[MASKED]\nform=[MASKED]\ndb=[MASKED]\n"
    );
    let env = read(out.path().join("env.txt"));
    assert!(
        !env.lines().any(|l| l.starts_with(&format!("{inherited}="))),
        "{inherited} should be removed: {env}"
    );
    assert!(env.lines().any(|l| l == "SHADOWED=injected-value"), "{env}");
    assert!(!env.contains(credential), "{env}");
    assert!(!inherited_value.is_empty());
}
