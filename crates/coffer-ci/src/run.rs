//! `coffer ci run -- cmd args`: run a command with secrets injected and its
//! output masked.
//!
//! - `file: true` secrets are written byte-exact (no trailing newline) to
//!   `<dir>/<NAME>` with mode 0600, in a private directory (mode 0700,
//!   unique name `coffer-ci-<pid>-<random>`), and `NAME` holds the path.
//!   The directory is created under [`RunSpec::secret_dir_parent`], by
//!   default `$RUNNER_TEMP_PROJECT_DIR` (GitLab), `$RUNNER_TEMP` (GitHub),
//!   `$AGENT_TEMPDIRECTORY` (Azure DevOps), else `$TMPDIR` or `/tmp`: the
//!   CI temporary directories are wiped by the CI after each job.
//! - `file: false` secrets go into the command's environment (overriding a
//!   variable of the same name).
//! - The variables in [`RunSpec::env_remove`] (the login credentials `coffer
//!   ci` used) are removed from the command's environment, and the values
//!   in [`RunSpec::mask_only`] are masked without being injected: the
//!   command does not get the credential that fetched its secrets, and
//!   cannot print it if it finds it elsewhere.
//! - The command's stdout and stderr are piped through a [`Masker`] built
//!   from every secret (file contents included) to ours, concurrently, each
//!   stream in order.
//! - SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to us are forwarded to the
//!   command (to its whole process group when it has its own, see
//!   [`RunSpec::own_process_group`]); we keep waiting for it to end.
//! - The result is the command's exit code, or 128 + the signal number when
//!   a signal ended it (as shells report it).
//!
//! # Secret files never outlive the run
//!
//! The directory is removed when the command ends, whether it succeeded,
//! failed, was ended by a signal or could not be started. It is owned by a
//! guard whose `Drop` removes it, so a panic in our code (unwinding) or a
//! dropped (cancelled) `run` future removes it too; the command is then
//! killed (SIGKILL, to its process group when it has its own) since its
//! output could no longer be masked. What cannot be covered:
//!
//! - **SIGKILL to us** (or a power loss) cannot be handled: the files stay
//!   until the CI wipes its temporary directory. Prefer a tmpfs there.
//! - `std::process::exit` or `panic = "abort"` skip destructors: the caller
//!   must return the exit code from `main` after `run` returns.
//! - Copies the command makes itself, obviously.
//!
//! Files are unlinked, not overwritten: overwriting gives no guarantee on
//! journaling or copy-on-write file systems and SSDs.
//!
//! Environment values are copied into the child's environment block by
//! `std::process::Command`, whose buffers are freed (not wiped) right after
//! the spawn; file secrets never enter our environment.
//!
//! # Waiting for output
//!
//! After the command exits we keep copying its output until end of file,
//! but at most [`RunSpec::drain_timeout`] (default 5 s): a background
//! process it started may hold the pipes open for ever.

#![cfg(unix)]

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use crate::mask::{Masker, Warning, copy_masked_until};

/// How long to wait for the end of the output once the command has exited.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// One resolved secret to inject.
pub struct SecretVar {
    /// Variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub name: String,
    pub value: SecretString,
    /// `true`: write the value to a file and put the path in the variable.
    pub file: bool,
}

impl fmt::Debug for SecretVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVar")
            .field("name", &self.name)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// What to run.
#[derive(Debug)]
pub struct RunSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub secrets: Vec<SecretVar>,
    /// Where to create the private directory for file secrets (`None`: see
    /// [`default_secret_dir_parent`]).
    pub secret_dir_parent: Option<PathBuf>,
    /// Start the command in a process group of its own and forward signals
    /// to the whole group (so pipelines and helpers started by a shell get
    /// them too, and a signal sent to our group reaches them once, not
    /// twice). Off means signals go to the command's process only; it must
    /// be off for an interactive command reading a terminal, which a
    /// background process group cannot do. [`RunSpec::new`] turns it on
    /// unless stdin is a terminal.
    pub own_process_group: bool,
    pub drain_timeout: Duration,
    /// Variables removed from the command's environment (a secret of the
    /// same name is still injected).
    pub env_remove: Vec<OsString>,
    /// (label, value) pairs masked in the output but not injected (login
    /// credentials). The label names the value in masking warnings.
    pub mask_only: Vec<(String, SecretString)>,
}

impl RunSpec {
    pub fn new<P, I, A>(program: P, args: I, secrets: Vec<SecretVar>) -> RunSpec
    where
        P: Into<OsString>,
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        use std::io::IsTerminal as _;
        RunSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            secrets,
            secret_dir_parent: None,
            own_process_group: !io::stdin().is_terminal(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            env_remove: Vec::new(),
            mask_only: Vec::new(),
        }
    }
}

/// The signals forwarded to the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardSignal {
    Interrupt,
    Terminate,
    Hangup,
    Quit,
}

impl ForwardSignal {
    pub const ALL: [ForwardSignal; 4] = [
        ForwardSignal::Interrupt,
        ForwardSignal::Terminate,
        ForwardSignal::Hangup,
        ForwardSignal::Quit,
    ];

    fn signal(self) -> Signal {
        match self {
            ForwardSignal::Interrupt => Signal::INT,
            ForwardSignal::Terminate => Signal::TERM,
            ForwardSignal::Hangup => Signal::HUP,
            ForwardSignal::Quit => Signal::QUIT,
        }
    }

    /// The signal number (2, 15, 1, 3 on Linux).
    pub fn number(self) -> i32 {
        self.signal().as_raw()
    }
}

/// How the run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// The command's exit code, or 128 + the signal that ended it (or that
    /// we received before it could be started).
    pub exit_code: i32,
    /// The signal that ended the command, if one did.
    pub signal: Option<i32>,
    /// Masking warnings (also printed to stderr before the command started).
    pub warnings: Vec<Warning>,
    /// The secret directory could not be removed completely (also printed
    /// to stderr). The caller should fail the job.
    pub cleanup_error: Option<io::Error>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "invalid variable name {0:?}: use only letters, digits and underscores, not starting with a digit"
    )]
    InvalidName(String),
    #[error("variable {0} is given more than once")]
    DuplicateName(String),
    #[error(
        "the value of {0} contains a NUL byte and cannot be put in the environment (use a file variable)"
    )]
    NulInValue(String),
    #[error("cannot create a private directory for secret files in {}: {source}", parent.display())]
    SecretDir { parent: PathBuf, source: io::Error },
    #[error("cannot write the secret file for {name}: {source}")]
    SecretFile { name: String, source: io::Error },
    #[error("cannot start {program:?}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    #[error("waiting for the command failed: {0}")]
    Wait(io::Error),
}

/// Where the secret directory goes by default: the CI's per-job temporary
/// directory if there is one, else `$TMPDIR` or `/tmp`.
pub fn default_secret_dir_parent() -> PathBuf {
    [
        "RUNNER_TEMP_PROJECT_DIR",
        "RUNNER_TEMP",
        "AGENT_TEMPDIRECTORY",
    ]
    .iter()
    .filter_map(std::env::var_os)
    .find(|v| !v.is_empty())
    .map(PathBuf::from)
    .unwrap_or_else(std::env::temp_dir)
}

/// Runs the command with our stdout/stderr and the real signals (handlers
/// for SIGINT, SIGTERM, SIGHUP and SIGQUIT are installed for the rest of the
/// process's life: exit soon after this returns).
pub async fn run(spec: RunSpec) -> Result<RunOutcome, RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let mut quit = signal(SignalKind::quit()).map_err(RunError::Signals)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let work = run_with(spec, tokio::io::stdout(), tokio::io::stderr(), rx);
    tokio::pin!(work);
    loop {
        let signal = tokio::select! {
            biased;
            result = &mut work => return result,
            Some(()) = int.recv() => ForwardSignal::Interrupt,
            Some(()) = term.recv() => ForwardSignal::Terminate,
            Some(()) = hup.recv() => ForwardSignal::Hangup,
            Some(()) = quit.recv() => ForwardSignal::Quit,
        };
        // The receiver lives as long as `work`.
        tx.send(signal).ok();
    }
}

/// [`run`] with the output streams and the signals to forward given by the
/// caller (for tests, or a caller with its own signal handling). Signals
/// received before the command started stop the run without starting it.
pub async fn run_with<O, E>(
    spec: RunSpec,
    mut stdout: O,
    mut stderr: E,
    mut signals: mpsc::UnboundedReceiver<ForwardSignal>,
) -> Result<RunOutcome, RunError>
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    check_secrets(&spec.secrets)?;
    let (masker, warnings) = Masker::with_values(
        spec.secrets
            .iter()
            .map(|s| (s.name.as_str(), &s.value))
            .chain(spec.mask_only.iter().map(|(label, v)| (label.as_str(), v))),
    );
    for warning in &warnings {
        note(&mut stderr, &format!("coffer ci: warning: {warning}")).await;
    }

    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if spec.own_process_group {
        command.process_group(0);
    }
    for name in &spec.env_remove {
        command.env_remove(name);
    }

    // Declared before the child: on unwinding the child is killed first,
    // then the files are removed.
    let mut dir = None;
    if spec.secrets.iter().any(|s| s.file) {
        let parent = spec
            .secret_dir_parent
            .clone()
            .unwrap_or_else(default_secret_dir_parent);
        let created =
            SecretDir::create(&parent).map_err(|source| RunError::SecretDir { parent, source })?;
        let dir = dir.insert(created);
        for secret in spec.secrets.iter().filter(|s| s.file) {
            let path = dir
                .write(&secret.name, secret.value.expose_secret().as_bytes())
                .map_err(|source| RunError::SecretFile {
                    name: secret.name.clone(),
                    source,
                })?;
            command.env(&secret.name, path);
        }
    }
    for secret in spec.secrets.iter().filter(|s| !s.file) {
        command.env(&secret.name, secret.value.expose_secret());
    }

    if let Ok(signal) = signals.try_recv() {
        drop(command);
        let cleanup_error = remove_dir(dir, &mut stderr).await;
        return Ok(RunOutcome {
            exit_code: 128 + signal.number(),
            signal: Some(signal.number()),
            warnings,
            cleanup_error,
        });
    }

    let spawned = command.spawn();
    // The command holds copies of the environment values.
    drop(command);
    let mut child = spawned.map_err(|source| RunError::Spawn {
        program: spec.program.to_string_lossy().into_owned(),
        source,
    })?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let group_guard = GroupKillGuard {
        pid: pid.filter(|_| spec.own_process_group),
        armed: AtomicBool::new(true),
    };
    let (Some(child_out), Some(child_err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(RunError::Wait(io::Error::other(
            "the command's output is not piped",
        )));
    };

    let (exited_tx, exited_rx) = watch::channel(false);
    let drain = spec.drain_timeout;
    let stop_after_exit = |mut exited: watch::Receiver<bool>| async move {
        exited.wait_for(|e| *e).await.ok();
        tokio::time::sleep(drain).await;
    };
    // Each copy owns its pipe and closes it as soon as it stops: when our
    // stdout is closed (`coffer ci run -- cmd | head`), the command gets
    // EPIPE/SIGPIPE on its next write, as it would without us, instead of
    // blocking on a full pipe.
    let (out_stop, err_stop) = (
        stop_after_exit(exited_rx.clone()),
        stop_after_exit(exited_rx),
    );
    let copy_out = async {
        let mut pipe = child_out;
        copy_masked_until(&mut pipe, &mut stdout, &masker, out_stop).await
    };
    let copy_err = async {
        let mut pipe = child_err;
        copy_masked_until(&mut pipe, &mut stderr, &masker, err_stop).await
    };
    let wait = async {
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                Some(signal) = signals.recv() => {
                    if let Some(pid) = pid {
                        // ESRCH (already gone) is fine.
                        if spec.own_process_group {
                            rustix::process::kill_process_group(pid, signal.signal())
                        } else {
                            rustix::process::kill_process(pid, signal.signal())
                        }
                        .ok();
                    }
                }
            }
        };
        // Exited normally: leave its background processes alone.
        group_guard.armed.store(false, Ordering::SeqCst);
        exited_tx.send(true).ok();
        status
    };
    let (out_result, err_result, status) = tokio::join!(copy_out, copy_err, wait);

    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let _ = remove_dir(dir, &mut stderr).await;
            return Err(RunError::Wait(e));
        }
    };
    if let Err(e) = out_result {
        note(
            &mut stderr,
            &format!("coffer ci: warning: copying the command's stdout failed: {e}"),
        )
        .await;
    }
    if let Err(e) = err_result {
        note(
            &mut stderr,
            &format!("coffer ci: warning: copying the command's stderr failed: {e}"),
        )
        .await;
    }
    let cleanup_error = remove_dir(dir, &mut stderr).await;

    use std::os::unix::process::ExitStatusExt as _;
    let (exit_code, signal) = match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(signal)) => (128 + signal, Some(signal)),
        (None, None) => (1, None),
    };
    Ok(RunOutcome {
        exit_code,
        signal,
        warnings,
        cleanup_error,
    })
}

fn check_secrets(secrets: &[SecretVar]) -> Result<(), RunError> {
    let mut seen = std::collections::HashSet::new();
    for secret in secrets {
        if crate::format::validate_name(&secret.name).is_err() {
            return Err(RunError::InvalidName(secret.name.clone()));
        }
        if !seen.insert(secret.name.as_str()) {
            return Err(RunError::DuplicateName(secret.name.clone()));
        }
        if !secret.file && secret.value.expose_secret().contains('\0') {
            return Err(RunError::NulInValue(secret.name.clone()));
        }
    }
    Ok(())
}

/// Writes one line to stderr, ignoring errors (there is nowhere else to
/// report them).
async fn note<E: AsyncWrite + Unpin>(stderr: &mut E, line: &str) {
    stderr.write_all(format!("{line}\n").as_bytes()).await.ok();
    stderr.flush().await.ok();
}

async fn remove_dir<E: AsyncWrite + Unpin>(
    dir: Option<SecretDir>,
    stderr: &mut E,
) -> Option<io::Error> {
    let mut dir = dir?;
    let error = dir.remove().err()?;
    note(
        stderr,
        &format!(
            "coffer ci: error: could not remove the secret files in {}: {error}",
            dir.path.display()
        ),
    )
    .await;
    Some(error)
}

/// Kills the command's process group if the run is abandoned (panic,
/// cancelled future) while the command is still running. `kill_on_drop`
/// only reaches the command itself.
struct GroupKillGuard {
    pid: Option<Pid>,
    armed: AtomicBool,
}

impl Drop for GroupKillGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid
            && self.armed.load(Ordering::SeqCst)
        {
            rustix::process::kill_process_group(pid, Signal::KILL).ok();
        }
    }
}

/// The private directory holding the secret files; removed on drop.
struct SecretDir {
    path: PathBuf,
    files: Vec<PathBuf>,
    removed: bool,
}

impl SecretDir {
    fn create(parent: &Path) -> io::Result<SecretDir> {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        let mut last_error = None;
        for _ in 0..16 {
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
            let name = format!(
                "coffer-ci-{}-{}",
                std::process::id(),
                random
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            let path = parent.join(name);
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let dir = SecretDir {
                        path,
                        files: Vec::new(),
                        removed: false,
                    };
                    // Exactly 0700 whatever the umask.
                    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no unique directory name")))
    }

    /// Writes `value` byte-exact to `<dir>/<name>` (mode 0600).
    fn write(&mut self, name: &str, value: &[u8]) -> io::Result<PathBuf> {
        use std::io::Write as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let path = self.path.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        self.files.push(path.clone());
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(value)?;
        Ok(path)
    }

    /// Removes the files and the directory (also anything the command left
    /// in it, whatever it did to the directory's mode).
    fn remove(&mut self) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        for file in &self.files {
            std::fs::remove_file(file).ok();
        }
        if ignore_missing(std::fs::remove_dir(&self.path)).is_ok() {
            return Ok(());
        }
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o700)).ok();
        ignore_missing(std::fs::remove_dir_all(&self.path))
    }
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        self.remove().ok();
    }
}
