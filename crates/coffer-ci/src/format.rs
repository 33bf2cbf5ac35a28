//! Printing resolved secrets in each CI system's conventions.
//!
//! Pure functions: they return the text (in zeroizing strings, since it
//! holds the values) and the caller writes it where it belongs. Every
//! variable name must match `[A-Za-z_][A-Za-z0-9_]*` ([`validate_name`]);
//! a name appearing twice is an error.
//!
//! | format | output |
//! |---|---|
//! | [`env()`] | `export NAME='value'` lines for `eval`/`.` in any POSIX shell |
//! | [`dotenv`] | `NAME=value` lines that round-trip through `set -a; . file` |
//! | [`json`] | `{"NAME": "value"}` |
//! | [`github`] | `::add-mask::` commands (stdout) + `NAME<<DELIM` entries for `$GITHUB_ENV` / `$GITHUB_OUTPUT` |
//! | [`azure_devops`] | `##vso[task.setvariable …;issecret=true]` commands (stdout) |
//!
//! The CI formats ask the CI to mask the values; they follow the same floor
//! as [`crate::mask`]: a value or line shorter than
//! [`MIN_MASKED_CHARS`] characters is not registered for masking (it would
//! blank unrelated text all over the log), and a [`Warning`] says so.

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::mask::{MIN_MASKED_CHARS, RECOMMENDED_MIN_CHARS, Warning, WarningKind};

/// The output formats, by the names the CLI accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Env,
    Dotenv,
    Json,
    Github,
    AzureDevops,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Env,
        Format::Dotenv,
        Format::Json,
        Format::Github,
        Format::AzureDevops,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Env => "env",
            Format::Dotenv => "dotenv",
            Format::Json => "json",
            Format::Github => "github",
            Format::AzureDevops => "azure-devops",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| FormatError::UnknownFormat(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error(
        "invalid variable name {0:?}: use only letters, digits and underscores, not starting with a digit"
    )]
    InvalidName(String),
    #[error("variable {0} is given more than once")]
    DuplicateName(String),
    #[error("the value of {0} contains a NUL byte, which cannot be stored in a variable")]
    NulByte(String),
    #[error("the value of {variable} cannot be written in this format: {reason}")]
    Unrepresentable {
        variable: String,
        reason: &'static str,
    },
    #[error("unknown format {0:?} (expected env, dotenv, json, github or azure-devops)")]
    UnknownFormat(String),
}

/// Checks a variable name: `[A-Za-z_][A-Za-z0-9_]*`, the portable shell
/// and environment variable syntax (and what GitLab accepts as a key).
pub fn validate_name(name: &str) -> Result<(), FormatError> {
    let mut bytes = name.bytes();
    let valid = match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(FormatError::InvalidName(name.to_owned()))
    }
}

/// Validates every name and rejects duplicates.
fn validate_names(secrets: &[(String, SecretString)]) -> Result<(), FormatError> {
    let mut seen = std::collections::HashSet::new();
    for (name, _) in secrets {
        validate_name(name)?;
        if !seen.insert(name.as_str()) {
            return Err(FormatError::DuplicateName(name.clone()));
        }
    }
    Ok(())
}

fn reject_nul(name: &str, value: &str) -> Result<(), FormatError> {
    if value.contains('\0') {
        return Err(FormatError::NulByte(name.to_owned()));
    }
    Ok(())
}

/// `value` in POSIX single quotes: `'` becomes `'\''`. Nothing inside single
/// quotes is special to a shell, newlines included.
fn push_single_quoted(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// A string with room for the values, so that it rarely reallocates (a
/// reallocation would leave a copy of the values behind, unwiped).
fn output_buffer(secrets: &[(String, SecretString)], per_entry: usize) -> Zeroizing<String> {
    let size: usize = secrets
        .iter()
        .map(|(n, v)| n.len() + 2 * v.expose_secret().len() + per_entry)
        .sum();
    Zeroizing::new(String::with_capacity(size + 16))
}

/// `export NAME='value'` lines, for `eval "$(coffer ci … --format env)"` or
/// `. file` in any POSIX shell (sh, dash, bash, zsh, ksh).
pub fn env(secrets: &[(String, SecretString)]) -> Result<Zeroizing<String>, FormatError> {
    validate_names(secrets)?;
    let mut out = output_buffer(secrets, 16);
    for (name, value) in secrets {
        let value = value.expose_secret();
        reject_nul(name, value)?;
        out.push_str("export ");
        out.push_str(name);
        out.push('=');
        push_single_quoted(&mut out, value);
        out.push('\n');
    }
    Ok(out)
}

/// `NAME=value` lines (no `export`), quoted so that every value round-trips
/// exactly through `set -a; . file` in a POSIX shell:
///
/// - only `[A-Za-z0-9_./:@%+,=-]`: unquoted (also readable by `docker
///   --env-file`, which knows no quoting);
/// - no `'`: single quotes (also what the usual dotenv libraries read
///   literally);
/// - otherwise double quotes, with `\` `"` `$` and `` ` `` escaped by a
///   backslash (the only characters special inside double quotes);
///   newlines stay literal.
///
/// Dotenv parsers that are not shells do not agree on escapes; values with
/// both a `'` and a `\` may be read differently by them.
pub fn dotenv(secrets: &[(String, SecretString)]) -> Result<Zeroizing<String>, FormatError> {
    validate_names(secrets)?;
    let mut out = output_buffer(secrets, 8);
    for (name, value) in secrets {
        let value = value.expose_secret();
        reject_nul(name, value)?;
        out.push_str(name);
        out.push('=');
        let plain = |c: char| c.is_ascii_alphanumeric() || "_./:@%+,=-".contains(c);
        if !value.is_empty() && value.chars().all(plain) {
            out.push_str(value);
        } else if !value.contains('\'') {
            push_single_quoted(&mut out, value);
        } else {
            out.push('"');
            for c in value.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        out.push('\n');
    }
    Ok(out)
}

/// A JSON object `{"NAME": "value", …}` (in the given order, pretty-printed,
/// with a final newline).
pub fn json(secrets: &[(String, SecretString)]) -> Result<Zeroizing<String>, FormatError> {
    validate_names(secrets)?;
    let mut out = output_buffer(secrets, 16);
    out.push('{');
    for (i, (name, value)) in secrets.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        push_json_string(&mut out, name);
        out.push_str(": ");
        push_json_string(&mut out, value.expose_secret());
    }
    out.push_str(if secrets.is_empty() { "}\n" } else { "\n}\n" });
    Ok(out)
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let escaped = crate::mask::json_escape(s.as_bytes());
    // json_escape only inserts ASCII, so valid UTF-8 stays valid.
    out.push_str(std::str::from_utf8(&escaped).unwrap_or_default());
    out.push('"');
}

/// What [`github`] produces.
pub struct GithubOutput {
    /// `::add-mask::` workflow commands, one per line of every value: print
    /// them to stdout **before** the values can show up in the log.
    pub commands: Zeroizing<String>,
    /// `NAME<<DELIMITER` … entries: append them to the file named by
    /// `$GITHUB_ENV` (environment of later steps) or `$GITHUB_OUTPUT` (step
    /// outputs) with [`append_to_file`].
    pub file: Zeroizing<String>,
    pub warnings: Vec<Warning>,
}

impl fmt::Debug for GithubOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubOutput")
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// GitHub Actions: masks and environment-file entries.
///
/// - Masks: `::add-mask::LINE` for every line of every value (trimmed; the
///   runner masks line by line, see actions/runner#161), with `%`, `\r`,
///   `\n` escaped as `%25`, `%0D`, `%0A` as workflow commands require.
///   Lines under [`MIN_MASKED_CHARS`] characters are skipped (warning).
/// - File entries use the multi-line syntax `NAME<<DELIM`, value, `DELIM`,
///   with a random delimiter that does not occur in the value. The runner
///   (`SetEnvFileCommand` in actions/runner) takes everything between the
///   two lines byte for byte: CR, LF, empty lines and trailing newlines
///   included. Only on Windows, where it reads CR LF as one line break, a
///   value ending in `\r` cannot be written: that is an error there.
pub fn github(secrets: &[(String, SecretString)]) -> Result<GithubOutput, FormatError> {
    validate_names(secrets)?;
    let mut commands = output_buffer(secrets, 16);
    let mut file = output_buffer(secrets, 96);
    let mut warnings = Vec::new();
    for (name, value) in secrets {
        let value = value.expose_secret();
        reject_nul(name, value)?;
        if cfg!(windows) && value.ends_with('\r') {
            return Err(FormatError::Unrepresentable {
                variable: name.clone(),
                reason: "on Windows the runner reads CR LF as a line break, so a value ending in a carriage return would lose it",
            });
        }
        for line in mask_lines(name, value, &mut warnings) {
            commands.push_str("::add-mask::");
            push_escaped(
                &mut commands,
                line,
                &[('%', "%25"), ('\r', "%0D"), ('\n', "%0A")],
            );
            commands.push('\n');
        }
        let delimiter = delimiter_for(value);
        file.push_str(name);
        file.push_str("<<");
        file.push_str(&delimiter);
        file.push('\n');
        file.push_str(value);
        file.push('\n');
        file.push_str(&delimiter);
        file.push('\n');
    }
    Ok(GithubOutput {
        commands,
        file,
        warnings,
    })
}

/// A random heredoc delimiter that does not occur in `value`.
fn delimiter_for(value: &str) -> String {
    loop {
        let mut random = [0u8; 16];
        // Without an OS random source the time-and-counter fallback is still
        // unique enough: the loop guarantees the delimiter is not in the value.
        if getrandom::fill(&mut random).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            random = nanos.to_le_bytes();
        }
        let delimiter = format!("COFFER_EOF_{}", hex(&random));
        if !value.contains(&delimiter) {
            return delimiter;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `content` to the file at `path` (created with mode 0600 when
/// missing), in one write: for `$GITHUB_ENV` / `$GITHUB_OUTPUT`.
pub fn append_to_file(path: &Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    file.flush()
}

/// What [`azure_devops`] produces.
pub struct AzureOutput {
    /// Logging commands to print to stdout.
    pub commands: Zeroizing<String>,
    pub warnings: Vec<Warning>,
}

impl fmt::Debug for AzureOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureOutput")
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Azure DevOps logging commands:
/// `##vso[task.setvariable variable=NAME;issecret=true;isoutput=true]VALUE`
/// (`;isoutput=true` only when `output`), preceded, for a multi-line value,
/// by `##vso[task.setsecret]LINE` for each line (the agent masks log lines
/// one at a time, so a multi-line secret is never matched whole).
///
/// A logging command is one line, so the value is escaped the way the agent
/// unescapes it (`CommandStringConvertor` in azure-pipelines-agent): `%` →
/// `%AZP25` first, then `;` → `%3B`, `\r` → `%0D`, `\n` → `%0A`, `]` →
/// `%5D`. The agent decodes `%3B %0D %0A %5D` and then `%AZP25`, so every
/// value round-trips. `%AZP25` decoding is on by default since March 2021;
/// a job that sets `DECODE_PERCENTS=false` would keep a literal `%AZP25`.
///
/// Azure reserves variable names starting with `endpoint`, `input`,
/// `secret`, `path` or `securefile`; those are rejected.
pub fn azure_devops(
    secrets: &[(String, SecretString)],
    output: bool,
) -> Result<AzureOutput, FormatError> {
    validate_names(secrets)?;
    for (name, _) in secrets {
        let lower = name.to_ascii_lowercase();
        if ["endpoint", "input", "secret", "path", "securefile"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return Err(FormatError::Unrepresentable {
                variable: name.clone(),
                reason: "Azure DevOps reserves variable names starting with endpoint, input, secret, path or securefile",
            });
        }
    }
    let mut commands = output_buffer(secrets, 96);
    let mut warnings = Vec::new();
    const ESCAPES: &[(char, &str)] = &[
        ('%', "%AZP25"),
        (';', "%3B"),
        ('\r', "%0D"),
        ('\n', "%0A"),
        (']', "%5D"),
    ];
    for (name, value) in secrets {
        let value = value.expose_secret();
        reject_nul(name, value)?;
        let lines = mask_lines(name, value, &mut warnings);
        if value.trim().contains('\n') {
            for line in lines {
                commands.push_str("##vso[task.setsecret]");
                push_escaped(&mut commands, line, ESCAPES);
                commands.push('\n');
            }
        }
        commands.push_str("##vso[task.setvariable variable=");
        commands.push_str(name);
        commands.push_str(";issecret=true");
        if output {
            commands.push_str(";isoutput=true");
        }
        commands.push(']');
        push_escaped(&mut commands, value, ESCAPES);
        commands.push('\n');
    }
    Ok(AzureOutput { commands, warnings })
}

/// Replaces each character listed in `escapes` (in one pass, so `%` is
/// never escaped twice).
fn push_escaped(out: &mut String, s: &str, escapes: &[(char, &str)]) {
    for c in s.chars() {
        match escapes.iter().find(|(from, _)| *from == c) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
}

/// The trimmed lines of `value` a CI should mask, with the same floor and
/// warnings as [`crate::mask::Masker`].
fn mask_lines<'v>(name: &str, value: &'v str, warnings: &mut Vec<Warning>) -> Vec<&'v str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    let warn = |kind| Warning {
        variable: name.to_owned(),
        kind,
    };
    let chars = trimmed.chars().count();
    if chars < MIN_MASKED_CHARS {
        warnings.push(warn(WarningKind::NotMasked { chars }));
        return Vec::new();
    }
    if chars < RECOMMENDED_MIN_CHARS {
        warnings.push(warn(WarningKind::Short { chars }));
    }
    let mut lines = Vec::new();
    let mut short = 0;
    for line in trimmed.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
        if line.chars().count() < MIN_MASKED_CHARS {
            short += 1;
        } else {
            lines.push(line);
        }
    }
    if short > 0 {
        warnings.push(warn(WarningKind::ShortLines { lines: short }));
    }
    lines
}
