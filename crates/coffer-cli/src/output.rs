//! Everything the CLI prints: results on stdout, the one-line error on stderr.

use std::io::Write;

use serde_json::Value;

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

/// Print a JSON value, pretty.
pub(crate) fn emit_json(value: &Value) -> anyhow::Result<()> {
    emit(&serde_json::to_string_pretty(value)?)
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
/// context chains joined with ": "). Runs of whitespace are folded, but a
/// message made of several lines (one per failed secret, say) keeps them,
/// each further line indented.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    format!("Error: {}", lines.join("\n  "))
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
    fn errors_fold_whitespace_and_keep_lines() {
        let err = anyhow::anyhow!("access  denied:\t read\n\n  on /other/y\n").context("x");
        assert_eq!(
            error_line(&err),
            "Error: x: access denied: read\n  on /other/y"
        );
    }
}
