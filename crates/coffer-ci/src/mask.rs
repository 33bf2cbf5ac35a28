//! Streaming masking: every secret value, and the forms it is commonly
//! printed in, is replaced by `[MASKED]` in a byte stream.
//!
//! # What is masked
//!
//! For each variable (name, value):
//!
//! - the value, whitespace-trimmed (as GitLab does);
//! - each line of a multi-line value, trimmed (a leak of one line of a key
//!   is still a leak: see GHSA-4mgv-m5cm-f9h7, actions/runner#161);
//! - the JSON-escaped form (exactly as `serde_json` escapes a string, without
//!   the quotes) of the value and of each line, when it differs;
//! - the base64 forms of the value, as given and trimmed: standard and
//!   URL-safe alphabets, padded and unpadded, plus the characters that are
//!   fully determined by the value wherever it sits in a longer base64
//!   string (the three byte alignments; only when that part is at least
//!   [`MIN_EMBEDDED_BASE64`] characters long);
//! - the URL-encoded (percent-encoded) forms of the whole value (not of
//!   each line on its own), as the common
//!   encoders write them ([`URL_ENCODINGS`]): RFC 3986 (`%20` for a space)
//!   and its `+` variant (Go `QueryEscape`, Python `quote_plus`), the
//!   WHATWG form encoding (browsers' `URLSearchParams`, Java `URLEncoder`,
//!   Rust `form_urlencoded`), PHP `urlencode`, JavaScript
//!   `encodeURIComponent` and `encodeURI`, Python `quote`, Go `PathEscape`,
//!   and every non-alphanumeric byte encoded; upper-case hex digits, plus
//!   lower-case ones for the RFC 3986 forms. A percent-encoded value stays a
//!   contiguous substring inside a longer encoded string (a query, a form
//!   body), so these match wherever the value sits. Also the RFC 3986 form
//!   of the value's standard and URL-safe padded base64 (a base64 token in a
//!   query string: `%2B`, `%2F`, `%3D`).
//!
//! Patterns are de-duplicated and empties dropped. Where patterns overlap or
//! nest, the **leftmost-longest** match wins (a longer pattern starting at
//! the same place beats a shorter one; an earlier start beats a later one),
//! and matches do not overlap: the same result as trying GitLab's
//! longest-first phrase list at each position.
//!
//! # Short values
//!
//! A value (trimmed) shorter than [`MIN_MASKED_CHARS`] characters is **not
//! masked**: masking `1` or `on` would blank every occurrence of common text
//! and make logs useless while protecting nothing (such a value is not a
//! secret). Values under [`RECOMMENDED_MIN_CHARS`] characters (GitLab's
//! minimum for masked variables) are masked but reported. Lines of a
//! multi-line value shorter than [`MIN_MASKED_CHARS`] (`{`, `},`) are not
//! masked on their own; the value as a whole still is. Every such case
//! yields a [`Warning`] naming the variable, never the value.
//!
//! # Hold-back policy
//!
//! [`MaskStream::push`] returns everything that can no longer be part of a
//! match at once, and keeps back only the trailing bytes that are a proper
//! prefix of some pattern (at most the longest pattern − 1 bytes). Patterns
//! never begin with whitespace, so output ending in a newline is never held
//! back, except in one case: the first lines of a multi-line secret, which
//! are kept until the line that follows shows whether the whole value is
//! being printed (each line alone is masked too, so this only delays
//! `[MASKED]`).
//!
//! There is deliberately **no time-based flush**. The trade-off: a child
//! that prints the beginning of a secret (or text whose tail happens to look
//! like one, e.g. a progress line ending in `ab` when a secret starts with
//! `ab`) and then waits shows those few bytes only when it writes more or
//! exits. Flushing them after a timeout would leak the prefix of a secret
//! whose rest arrives later, which defeats the masking.
//!
//! # Cost
//!
//! One automaton step per input byte (amortized), plus a rescan of the
//! bytes read past a match while it was being confirmed (fewer than the
//! longest pattern). Only highly repetitive secrets in matching repetitive
//! output make that rescan add up.
//!
//! # Memory
//!
//! The automaton's tables, the pattern list while building, and the bytes a
//! stream holds back are kept in [`zeroize::Zeroizing`] buffers allocated at
//! their final size (or grown by copying into a new zeroizing buffer), so
//! they are wiped when dropped. What cannot be wiped from here: the
//! caller's `SecretString`s (wiped by `secrecy`) and the I/O buffers of the
//! child's pipes in the kernel.

mod automaton;

use std::fmt;
use std::future::Future;

use base64::Engine as _;
use base64::engine::Config as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::{Zeroize, Zeroizing};

use automaton::{Automaton, ROOT};

/// What a match is replaced with.
pub const MASK: &[u8] = b"[MASKED]";

/// Values (trimmed) shorter than this many characters are not masked.
pub const MIN_MASKED_CHARS: usize = 4;

/// Values shorter than this many characters are masked but reported:
/// GitLab refuses to mask variables shorter than 8 characters.
pub const RECOMMENDED_MIN_CHARS: usize = 8;

/// Shortest run of base64 characters masked for a value embedded in a longer
/// base64 string (shorter runs would match unrelated base64 too often).
pub const MIN_EMBEDDED_BASE64: usize = 8;

/// URL encoders whose output is masked: the punctuation each leaves as it
/// is (ASCII letters and digits are always kept; every other byte of the
/// UTF-8 value becomes `%XX`), and whether a space becomes `+`.
pub const URL_ENCODINGS: &[(&str, bool)] = &[
    // RFC 3986 unreserved: Python quote(safe=''), PHP rawurlencode, curl.
    ("-._~", false),
    // The same with `+` for a space: Go url.QueryEscape, Python quote_plus.
    ("-._~", true),
    // WHATWG application/x-www-form-urlencoded (URLSearchParams, Rust
    // form_urlencoded, Java URLEncoder).
    ("*-._", true),
    // PHP urlencode.
    ("-._", true),
    // JavaScript encodeURIComponent.
    ("!'()*-._~", false),
    // JavaScript encodeURI.
    ("!#$&'()*+,-./:;=?@_~", false),
    // Python urllib.parse.quote (default safe='/').
    ("-./_~", false),
    // Go url.PathEscape.
    ("$&+,-./:;=@_~", false),
    // Every byte that is not a letter or digit (Rust percent-encoding's
    // NON_ALPHANUMERIC).
    ("", false),
];

/// Size of the read buffer of [`copy_masked`].
const COPY_BUFFER: usize = 16 * 1024;

/// A problem with one variable's value. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The variable's name.
    pub variable: String,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// Shorter than [`MIN_MASKED_CHARS`] characters: **not masked**.
    NotMasked { chars: usize },
    /// Masked, but shorter than [`RECOMMENDED_MIN_CHARS`] characters: may
    /// also mask unrelated output, and short values are guessable.
    Short { chars: usize },
    /// This many lines of a multi-line value are shorter than
    /// [`MIN_MASKED_CHARS`] characters and are not masked on their own (the
    /// whole value still is).
    ShortLines { lines: usize },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.variable;
        match self.kind {
            WarningKind::NotMasked { chars } => write!(
                f,
                "{name}: the value is {chars} character(s) long and will NOT be masked \
                 (values shorter than {MIN_MASKED_CHARS} characters are never masked)"
            ),
            WarningKind::Short { chars } => write!(
                f,
                "{name}: the value is only {chars} characters long; it is masked, but values \
                 shorter than {RECOMMENDED_MIN_CHARS} characters may also mask unrelated output \
                 and cannot be masked by GitLab"
            ),
            WarningKind::ShortLines { lines } => write!(
                f,
                "{name}: {lines} line(s) of this multi-line value are shorter than \
                 {MIN_MASKED_CHARS} characters and are not masked on their own \
                 (the whole value is)"
            ),
        }
    }
}

/// The set of patterns to mask, compiled. Cheap to share by reference
/// between the streams of one child (stdout and stderr).
pub struct Masker {
    automaton: Automaton,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("patterns", &self.automaton.patterns())
            .field("longest", &self.automaton.max_len())
            .finish_non_exhaustive()
    }
}

impl Masker {
    /// Compiles the masking patterns of `vars` (variable name, value).
    /// Returns the warnings (short values, see the module docs) in the order
    /// of `vars`.
    pub fn new(vars: &[(String, SecretString)]) -> (Masker, Vec<Warning>) {
        Masker::with_values(vars.iter().map(|(name, value)| (name.as_str(), value)))
    }

    /// Like [`Masker::new`], from borrowed (name, value) pairs.
    pub fn with_values<'a, I>(vars: I) -> (Masker, Vec<Warning>)
    where
        I: IntoIterator<Item = (&'a str, &'a SecretString)>,
    {
        let mut warnings = Vec::new();
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for (name, value) in vars {
            add_value(name, value.expose_secret(), &mut patterns, &mut warnings);
        }
        // Sorting moves only the vectors' headers, not their (secret) bytes.
        patterns.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        patterns.dedup_by(|a, b| a.as_slice() == b.as_slice());
        let automaton = Automaton::new(&patterns);
        (Masker { automaton }, warnings)
    }

    /// A masker that masks nothing.
    pub fn empty() -> Masker {
        Masker {
            automaton: Automaton::new(&[]),
        }
    }

    /// Number of distinct patterns (values and their variants).
    pub fn pattern_count(&self) -> usize {
        self.automaton.patterns()
    }

    /// Length of the longest pattern in bytes; a stream never holds back
    /// more than this minus one.
    pub fn longest_pattern(&self) -> usize {
        self.automaton.max_len()
    }

    /// A new stream (one per output stream of a child).
    pub fn stream(&self) -> MaskStream<'_> {
        MaskStream {
            masker: self,
            buf: Zeroizing::new(Vec::new()),
            start: 0,
            scanned: 0,
            state: ROOT,
            best: None,
        }
    }

    /// Masks a complete text at once (same result as any chunking through
    /// [`Masker::stream`]).
    pub fn mask(&self, data: &[u8]) -> Vec<u8> {
        let mut stream = self.stream();
        let mut out = stream.push(data);
        out.extend_from_slice(&stream.finish());
        out
    }
}

/// Adds the patterns for one value.
fn add_value(
    name: &str,
    raw: &str,
    patterns: &mut Vec<Zeroizing<Vec<u8>>>,
    warnings: &mut Vec<Warning>,
) {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return;
    }
    let chars = trimmed.chars().count();
    if chars < MIN_MASKED_CHARS {
        warnings.push(Warning {
            variable: name.to_owned(),
            kind: WarningKind::NotMasked { chars },
        });
        return;
    }
    if chars < RECOMMENDED_MIN_CHARS {
        warnings.push(Warning {
            variable: name.to_owned(),
            kind: WarningKind::Short { chars },
        });
    }

    add_phrase(trimmed.as_bytes(), patterns);
    if trimmed.contains('\n') {
        let mut short_lines = 0;
        for line in trimmed.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
            if line.chars().count() < MIN_MASKED_CHARS {
                short_lines += 1;
            } else {
                add_phrase(line.as_bytes(), patterns);
            }
        }
        if short_lines > 0 {
            warnings.push(Warning {
                variable: name.to_owned(),
                kind: WarningKind::ShortLines { lines: short_lines },
            });
        }
    }

    add_base64(trimmed.as_bytes(), patterns);
    if raw.len() != trimmed.len() {
        add_base64(raw.as_bytes(), patterns);
    }
    add_url_encoded(trimmed.as_bytes(), patterns);
}

/// The URL-encoded forms of `value` ([`URL_ENCODINGS`], upper-case hex,
/// and lower-case hex for the RFC 3986 ones), and the RFC 3986 form of its
/// padded base64 encodings. Forms equal to the value are left to the
/// de-duplication.
fn add_url_encoded(value: &[u8], patterns: &mut Vec<Zeroizing<Vec<u8>>>) {
    for (index, &(keep, plus)) in URL_ENCODINGS.iter().enumerate() {
        patterns.push(url_encode(value, keep.as_bytes(), plus, false));
        if index < 2 {
            patterns.push(url_encode(value, keep.as_bytes(), plus, true));
        }
    }
    let (rfc3986, _) = URL_ENCODINGS[0];
    for engine in [&STANDARD, &URL_SAFE] {
        let encoded = encode_zeroizing(engine, value);
        patterns.push(url_encode(&encoded, rfc3986.as_bytes(), false, false));
    }
}

/// Percent-encodes `value`: ASCII letters, digits and the bytes in `keep`
/// stay, a space becomes `+` when `plus`, every other byte `%XX`.
pub(crate) fn url_encode(value: &[u8], keep: &[u8], plus: bool, lower: bool) -> Zeroizing<Vec<u8>> {
    let kept = |b: u8| b.is_ascii_alphanumeric() || keep.contains(&b) || (plus && b == b' ');
    let len: usize = value.iter().map(|&b| if kept(b) { 1 } else { 3 }).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let hex: &[u8; 16] = if lower {
        b"0123456789abcdef"
    } else {
        b"0123456789ABCDEF"
    };
    for &b in value {
        if plus && b == b' ' {
            out.push(b'+');
        } else if kept(b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(hex[usize::from(b >> 4)]);
            out.push(hex[usize::from(b & 0xf)]);
        }
    }
    out
}

/// A phrase and its JSON-escaped form.
fn add_phrase(phrase: &[u8], patterns: &mut Vec<Zeroizing<Vec<u8>>>) {
    patterns.push(copy_zeroizing(phrase));
    let escaped = json_escape(phrase);
    if escaped.as_slice() != phrase {
        patterns.push(escaped);
    }
}

/// The base64 forms of `value`.
fn add_base64(value: &[u8], patterns: &mut Vec<Zeroizing<Vec<u8>>>) {
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        patterns.push(encode_zeroizing(engine, value));
    }
    // Embedded in a longer base64 string: the value starts at byte offset
    // `k` (mod 3) of the encoded data. Keep the characters whose 6 bits all
    // come from the value.
    for k in 0..3usize {
        let mut shifted = Zeroizing::new(Vec::with_capacity(k + value.len()));
        shifted.resize(k, 0);
        shifted.extend_from_slice(value);
        let first = (8 * k).div_ceil(6);
        let end = (8 * (k + value.len())) / 6;
        if end <= first || end - first < MIN_EMBEDDED_BASE64 {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = encode_zeroizing(engine, &shifted);
            patterns.push(copy_zeroizing(&encoded[first..end]));
        }
    }
}

fn copy_zeroizing(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(bytes.len()));
    v.extend_from_slice(bytes);
    v
}

fn encode_zeroizing(engine: &base64::engine::GeneralPurpose, value: &[u8]) -> Zeroizing<Vec<u8>> {
    let padding = engine.config().encode_padding();
    let len = base64::encoded_len(value.len(), padding).unwrap_or(0);
    let mut out = Zeroizing::new(vec![0u8; len]);
    match engine.encode_slice(value, &mut out[..]) {
        Ok(written) => out.truncate(written),
        // Only for inputs larger than memory: mask nothing rather than panic.
        Err(_) => out.clear(),
    }
    out
}

/// The JSON string escape of `s` (without quotes), byte for byte what
/// `serde_json` produces: `"` `\` and control characters below U+0020 are
/// escaped (`\n` `\r` `\t` `\b` `\f`, others as `\u00xx`), nothing else.
pub(crate) fn json_escape(s: &[u8]) -> Zeroizing<Vec<u8>> {
    fn escape(b: u8) -> Option<&'static [u8]> {
        Some(match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => return None,
        })
    }
    let len: usize = s
        .iter()
        .map(|&b| match escape(b) {
            Some(e) => e.len(),
            None if b < 0x20 => 6,
            None => 1,
        })
        .sum();
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match escape(b) {
            Some(e) => out.extend_from_slice(e),
            None if b < 0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            None => out.push(b),
        }
    }
    out
}

/// Masking state for one output stream. Feed it with [`push`](Self::push),
/// end it with [`finish`](Self::finish).
pub struct MaskStream<'a> {
    masker: &'a Masker,
    /// Input not yet emitted starts at `buf[start]`.
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    /// `buf[start..scanned]` has been fed to the automaton (from `ROOT` at
    /// `start` or at the end of the last match).
    scanned: usize,
    state: usize,
    /// The best match found so far, (start, length), positions in `buf`:
    /// leftmost, then longest. Emitted once no longer or earlier match is
    /// possible.
    best: Option<(usize, usize)>,
}

impl fmt::Debug for MaskStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskStream")
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

impl MaskStream<'_> {
    /// Feeds `data`; returns the bytes that are safe to emit now.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + MASK.len());
        self.push_into(data, &mut out);
        out
    }

    /// Like [`push`](Self::push), appending to `out`.
    pub fn push_into(&mut self, data: &[u8], out: &mut Vec<u8>) {
        append_zeroizing(&mut self.buf, data);
        self.scan(out, false);
        self.compact();
    }

    /// Ends the stream: returns everything still held back, masked.
    pub fn finish(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.scan(&mut out, true);
        self.compact();
        out
    }

    /// Number of input bytes held back (a possible beginning of a match).
    pub fn held(&self) -> usize {
        self.buf.len() - self.start
    }

    fn scan(&mut self, out: &mut Vec<u8>, eof: bool) {
        let automaton = &self.masker.automaton;
        loop {
            while self.scanned < self.buf.len() {
                self.state = automaton.step(self.state, self.buf[self.scanned]);
                self.scanned += 1;
                let len = automaton.out_len(self.state);
                if len > 0 {
                    let s = self.scanned - len;
                    if self
                        .best
                        .is_none_or(|(bs, bl)| s < bs || (s == bs && len > bl))
                    {
                        self.best = Some((s, len));
                    }
                }
                // Final once no match still in progress starts at or before it.
                if let Some((bs, bl)) = self.best
                    && bs < self.scanned - automaton.hold(self.state)
                {
                    self.emit_match(out, bs, bl);
                }
            }
            if eof {
                if let Some((bs, bl)) = self.best {
                    self.emit_match(out, bs, bl);
                    continue;
                }
                out.extend_from_slice(&self.buf[self.start..]);
                self.start = self.buf.len();
            } else {
                // `best`, if any, starts at or after `safe`.
                let safe = self.scanned - automaton.hold(self.state);
                if safe > self.start {
                    out.extend_from_slice(&self.buf[self.start..safe]);
                    self.start = safe;
                }
            }
            return;
        }
    }

    /// Emits the text before the match and the mask, and restarts the scan
    /// right after the match (bytes already scanned past it are scanned
    /// again: the automaton state included bytes of the match).
    fn emit_match(&mut self, out: &mut Vec<u8>, start: usize, len: usize) {
        out.extend_from_slice(&self.buf[self.start..start]);
        out.extend_from_slice(MASK);
        self.start = start + len;
        self.scanned = self.start;
        self.state = ROOT;
        self.best = None;
    }

    /// Drops emitted bytes from the buffer (and wipes the freed tail).
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let len = self.buf.len();
        self.buf.copy_within(self.start.., 0);
        let kept = len - self.start;
        self.buf[kept..].zeroize();
        self.buf.truncate(kept);
        self.scanned -= self.start;
        if let Some((bs, _)) = &mut self.best {
            *bs -= self.start;
        }
        self.start = 0;
    }
}

/// Appends without leaving a stale copy behind when the buffer grows.
fn append_zeroizing(buf: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    if buf.capacity() - buf.len() < data.len() {
        let capacity = (buf.len() + data.len()).max(2 * buf.capacity());
        let mut bigger = Zeroizing::new(Vec::with_capacity(capacity));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
    buf.extend_from_slice(data);
}

/// Copies `reader` to `writer` through `masker` until end of input. Every
/// chunk is written and flushed as soon as it is read (minus what is held
/// back). Returns the number of bytes read.
pub async fn copy_masked<R, W>(
    reader: &mut R,
    writer: &mut W,
    masker: &Masker,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    copy_masked_until(reader, writer, masker, std::future::pending()).await
}

/// Like [`copy_masked`], but stops reading when `stop` completes (the rest
/// held back is still masked and written). Used to stop waiting for the end
/// of a pipe that a command's background process keeps open.
pub async fn copy_masked_until<R, W, S>(
    reader: &mut R,
    writer: &mut W,
    masker: &Masker,
    stop: S,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
    S: Future<Output = ()>,
{
    let mut stream = masker.stream();
    let mut buf = Zeroizing::new(vec![0u8; COPY_BUFFER]);
    let mut out = Vec::with_capacity(COPY_BUFFER + MASK.len());
    let mut total = 0u64;
    tokio::pin!(stop);
    let mut read_error = None;
    loop {
        let n = tokio::select! {
            biased;
            read = reader.read(&mut buf[..]) => match read {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    read_error = Some(e);
                    0
                }
            },
            () = &mut stop => 0,
        };
        if n == 0 {
            break;
        }
        total += n as u64;
        out.clear();
        stream.push_into(&buf[..n], &mut out);
        buf[..n].zeroize();
        if !out.is_empty() {
            writer.write_all(&out).await?;
            writer.flush().await?;
        }
    }
    let rest = stream.finish();
    if !rest.is_empty() {
        writer.write_all(&rest).await?;
    }
    writer.flush().await?;
    match read_error {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masker(values: &[&str]) -> (Masker, Vec<Warning>) {
        let vars: Vec<(String, SecretString)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("V{i}"), SecretString::from(v.to_string())))
            .collect();
        Masker::new(&vars)
    }

    #[test]
    fn json_escape_matches_serde_json_for_all_control_characters() {
        let all: String = (0u8..0x80).map(char::from).collect::<String>() + "é\u{2028}\u{1F600}/";
        let expected = serde_json::to_string(&all).expect("serializes");
        let got = json_escape(all.as_bytes());
        assert_eq!(got.as_slice(), &expected.as_bytes()[1..expected.len() - 1]);
    }

    proptest! {
        #[test]
        fn json_escape_matches_serde_json(s in any::<String>()) {
            let expected = serde_json::to_string(&s).expect("serializes");
            let got = json_escape(s.as_bytes());
            prop_assert_eq!(got.as_slice(), &expected.as_bytes()[1..expected.len() - 1]);
        }
    }

    #[test]
    fn embedded_base64_is_masked_at_every_alignment() {
        let secret = "correct-horse-battery";
        let (m, warnings) = masker(&[secret]);
        assert!(warnings.is_empty());
        for prefix in ["", "u", "us", "use", "user:"] {
            for suffix in ["", "x", "xy", ":tail-data"] {
                let plain = format!("{prefix}{secret}{suffix}");
                for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
                    let encoded = engine.encode(plain.as_bytes());
                    let masked = String::from_utf8(m.mask(encoded.as_bytes())).expect("utf8");
                    assert!(
                        masked.contains("[MASKED]"),
                        "{prefix:?}/{suffix:?}: {masked}"
                    );
                    // At most 2 characters on each side of the secret's
                    // bytes may remain (they mix in neighbouring bytes).
                    let visible = masked.replace("[MASKED]", "");
                    let neighbours = engine.encode(prefix).len() + engine.encode(suffix).len() + 8;
                    assert!(
                        visible.len() <= neighbours,
                        "{prefix:?}/{suffix:?}: {masked}"
                    );
                }
            }
        }
    }

    #[test]
    fn url_encode_forms() {
        let v = "a b/c+d~é";
        let enc = |keep: &str, plus, lower| {
            String::from_utf8(url_encode(v.as_bytes(), keep.as_bytes(), plus, lower).to_vec())
                .expect("ascii")
        };
        assert_eq!(enc("-._~", false, false), "a%20b%2Fc%2Bd~%C3%A9");
        assert_eq!(enc("-._~", true, false), "a+b%2Fc%2Bd~%C3%A9");
        assert_eq!(enc("-._~", false, true), "a%20b%2fc%2bd~%c3%a9");
        assert_eq!(enc("", false, false), "a%20b%2Fc%2Bd%7E%C3%A9");
        assert_eq!(enc("$&+,-./:;=@_~", false, false), "a%20b/c+d~%C3%A9");
    }

    #[test]
    fn debug_output_shows_no_pattern() {
        let (m, _) = masker(&["hunter2hunter2"]);
        let mut stream = m.stream();
        let _ = stream.push(b"hunter2");
        let text = format!("{m:?} {stream:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("held: 7"), "{text}");
    }
}
