//! Everything the CLI prints: results on stdout, the one-line error on stderr.

use std::io::Write;
use std::sync::OnceLock;

use serde_json::Value;

/// The output the global flags ask for, fixed once at start-up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mode {
    /// `--json`: the server's JSON answer.
    pub json: bool,
    /// `--jq-expression`: a jq filter over the JSON answer (implies JSON).
    pub jq: Option<String>,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Fix the output mode (the first call wins).
pub(crate) fn set_mode(mode: Mode) {
    MODE.set(mode).ok();
}

/// True when the answer must be printed as JSON (`--json` or
/// `--jq-expression`).
pub(crate) fn json_wanted() -> bool {
    MODE.get().is_some_and(|m| m.json || m.jq.is_some())
}

/// The `--jq-expression`, if any.
pub(crate) fn jq_expression() -> Option<&'static str> {
    MODE.get().and_then(|m| m.jq.as_deref())
}

/// A command line that cannot work (exit status 2, as clap's own usage
/// errors), e.g. `--json` on a command that prints no answer.
#[derive(Debug)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Refuse `--json`/`--jq-expression` for a command whose output is not an
/// answer (a server, a child process, a script).
pub(crate) fn refuse_json(command: &str, why: &str) -> anyhow::Result<()> {
    if json_wanted() {
        return Err(UsageError(format!(
            "--json and --jq-expression do not apply to `coffer {command}`: {why}"
        ))
        .into());
    }
    Ok(())
}

/// Write a command's result to stdout. A closed pipe (`coffer … | head`)
/// is not an error.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| {
        if !text.is_empty() && !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    });
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Print a JSON value, pretty, or what `--jq-expression` makes of it.
pub(crate) fn emit_json(value: &Value) -> anyhow::Result<()> {
    match jq_expression() {
        Some(expression) => emit(&crate::jq::apply(expression, value)?),
        None => emit(&serde_json::to_string_pretty(value)?),
    }
}

/// A human message for stderr (progress, hints), never a result.
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}

/// `key: value` lines with aligned values; empty values are skipped.
pub(crate) fn fields(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    rows.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{:<w$} {v}\n", format!("{k}:"), w = width + 1))
        .collect()
}

/// Columns aligned under `headers`, two spaces apart; the last column is
/// not padded, and runs of whitespace in a cell (an error message over
/// several lines) are folded. No rows: empty (nothing to print).
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let fold = |cell: &str| cell.split_whitespace().collect::<Vec<_>>().join(" ");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| fold(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in &rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// The error text: `Error: <message>` (the server's message for API errors;
/// context chains joined with ": ", each cause once: a cause whose text the
/// message already holds, as when an error prints its source and the chain
/// repeats it, is left out). Runs of whitespace are folded, but a message
/// made of several lines (one per failed secret, say) keeps them, each
/// further line indented, and a source frame (a YAML error's lines with
/// `|` gutters and `^` markers) keeps its spacing.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        let part = part.trim();
        if part.is_empty() || text.contains(part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(part);
    }
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if is_frame_line(l) {
                l.trim_end().to_string()
            } else {
                l.split_whitespace().collect::<Vec<_>>().join(" ")
            }
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    format!("Error: {}", lines.join("\n  "))
}

/// A line of a source frame: `12 |   key: value`, `   |   ^ here`, `--> file:2:3`.
fn is_frame_line(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('|')
        || t.starts_with("-->")
        || t.starts_with('^')
        || t.split_once('|').is_some_and(|(n, _)| {
            !n.trim().is_empty() && n.trim().chars().all(|c| c.is_ascii_digit())
        })
}

/// Print the error line to stderr.
pub(crate) fn print_error(err: &anyhow::Error) {
    eprintln!("{}", error_line(err));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_fields_skip_empty_values() {
        let text = fields(&[
            ("name", "/a".into()),
            ("description", String::new()),
            ("last_version", "3".into()),
        ]);
        assert_eq!(text, "name:         /a\nlast_version: 3\n");
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["tmp_a".to_string(), "live".to_string(), "-".to_string()],
            vec![
                "tmp_bbbbbb".to_string(),
                "revoked".to_string(),
                "access denied\n for x".to_string(),
            ],
        ];
        assert_eq!(
            table(&["ID", "STATE", "LAST ERROR"], &rows),
            "ID          STATE    LAST ERROR\ntmp_a       live     -\ntmp_bbbbbb  revoked  access denied for x\n"
        );
        assert_eq!(table(&["ID"], &[]), "");
    }

    #[test]
    fn each_cause_is_named_once() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("No such file or directory (os error 2)")
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read ci.yml: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = anyhow::Error::from(Outer(Inner)).context("loading the job");
        assert_eq!(
            error_line(&err),
            "Error: loading the job: cannot read ci.yml: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn source_frames_keep_their_spacing() {
        let err = anyhow::anyhow!(
            "invalid YAML: did not find expected ']' at line 2\n --> <input>:2:11\n  |\n2 |   script: [echo\n  |           ^ here"
        );
        assert_eq!(
            error_line(&err),
            "Error: invalid YAML: did not find expected ']' at line 2\n   --> <input>:2:11\n    |\n  2 |   script: [echo\n    |           ^ here"
        );
    }

    #[test]
    fn errors_fold_whitespace_and_keep_lines() {
        let err = anyhow::anyhow!("access  denied:\t read\n\n  on /other/y\n").context("x");
        assert_eq!(
            error_line(&err),
            "Error: x: access denied: read\n  on /other/y"
        );
    }
}
