//! The streaming masker (coffer-ci `mask.rs`), differential: the patterns
//! are derived here from the module's documented rules (trimmed value,
//! lines, JSON escape, base64 forms and embedded base64), then a plain
//! leftmost-longest replace over the whole text must equal both
//! `Masker::mask` and a `MaskStream` fed in arbitrary chunks; a stream
//! never holds back a longest pattern's worth of bytes.
#![no_main]

use arbitrary::Arbitrary;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use coffer_ci::mask::{MASK, MIN_EMBEDDED_BASE64, MIN_MASKED_CHARS, Masker};
use coffer_fuzz::replace_model;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

#[derive(Arbitrary, Debug)]
struct Input {
    values: Vec<String>,
    /// Pieces of output: plain bytes, or (value index, form) to print a
    /// value in one of its forms, so that matches are common.
    pieces: Vec<Piece>,
    chunks: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum Piece {
    Bytes(Vec<u8>),
    Value { index: u8, form: u8, cut: u8 },
}

fn json_escape(s: &str) -> Vec<u8> {
    let j = serde_json::to_string(s).expect("string to JSON");
    j.as_bytes()[1..j.len() - 1].to_vec()
}

fn add_phrase(p: &str, out: &mut Vec<Vec<u8>>) {
    out.push(p.as_bytes().to_vec());
    out.push(json_escape(p));
}

fn add_base64(v: &[u8], out: &mut Vec<Vec<u8>>) {
    for e in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(e.encode(v).into_bytes());
    }
    // The characters fully determined by `v` inside a longer base64 string
    // in which `v` starts at byte offset k (mod 3).
    for k in 0..3usize {
        let first = (8 * k).div_ceil(6);
        let end = 8 * (k + v.len()) / 6;
        if end < first + MIN_EMBEDDED_BASE64 {
            continue;
        }
        let mut shifted = vec![0u8; k];
        shifted.extend_from_slice(v);
        for e in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            out.push(e.encode(&shifted).as_bytes()[first..end].to_vec());
        }
    }
}

/// The URL encodings the module documents, as the `percent-encoding`
/// crate's sets (bytes kept besides letters and digits) and whether a space
/// is written `+`: RFC 3986, the same with `+`, WHATWG form, PHP urlencode,
/// encodeURIComponent, encodeURI, Python quote, Go PathEscape, every
/// non-alphanumeric byte.
static DOCUMENTED_URL_FORMS: [(AsciiSet, bool); 9] = [
    (keeping(b"-._~", false), false),
    (keeping(b"-._~", true), true),
    (keeping(b"*-._", true), true),
    (keeping(b"-._", true), true),
    (keeping(b"!'()*-._~", false), false),
    (keeping(b"!#$&'()*+,-./:;=?@_~", false), false),
    (keeping(b"-./_~", false), false),
    (keeping(b"$&+,-./:;=@_~", false), false),
    (keeping(b"", false), false),
];

/// Every non-alphanumeric byte is encoded but `keep` (and a space, when
/// it is written `+`).
const fn keeping(keep: &[u8], plus: bool) -> AsciiSet {
    let mut set = NON_ALPHANUMERIC.remove(b'A');
    let mut i = 0;
    while i < keep.len() {
        set = set.remove(keep[i]);
        i += 1;
    }
    if plus {
        set = set.remove(b' ');
    }
    set
}

/// Percent-encoding through the `percent-encoding` crate (not the
/// module's encoder), form `i` of [`DOCUMENTED_URL_FORMS`]: upper-case hex.
fn url_form(v: &[u8], i: usize) -> Vec<u8> {
    let (set, plus) = &DOCUMENTED_URL_FORMS[i];
    let encoded: String = percent_encoding::percent_encode(v, set).collect();
    if *plus {
        encoded.replace(' ', "+").into_bytes()
    } else {
        encoded.into_bytes()
    }
}

/// `%2F` → `%2f`.
fn lower_hex(v: &[u8]) -> Vec<u8> {
    let mut out = v.to_vec();
    let mut i = 0;
    while i < out.len() {
        if out[i] == b'%' {
            for j in [i + 1, i + 2] {
                if let Some(c) = out.get_mut(j) {
                    *c = c.to_ascii_lowercase();
                }
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

fn add_url_forms(v: &[u8], out: &mut Vec<Vec<u8>>) {
    for i in 0..DOCUMENTED_URL_FORMS.len() {
        let form = url_form(v, i);
        if i < 2 {
            out.push(lower_hex(&form));
        }
        out.push(form);
    }
    for e in [&STANDARD, &URL_SAFE] {
        out.push(url_form(e.encode(v).as_bytes(), 0));
    }
}

/// Every pattern of `values`, per the module documentation.
fn patterns(values: &[String]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for raw in values {
        let t = raw.trim();
        if t.chars().count() < MIN_MASKED_CHARS {
            continue;
        }
        add_phrase(t, &mut out);
        if t.contains('\n') {
            for line in t.split('\n').map(str::trim) {
                if line.chars().count() >= MIN_MASKED_CHARS {
                    add_phrase(line, &mut out);
                }
            }
        }
        add_base64(t.as_bytes(), &mut out);
        if raw.len() != t.len() {
            add_base64(raw.as_bytes(), &mut out);
        }
        add_url_forms(t.as_bytes(), &mut out);
    }
    out.retain(|p| !p.is_empty());
    out.sort();
    out.dedup();
    out
}

fn render(values: &[String], pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces.iter().take(32) {
        match piece {
            Piece::Bytes(b) => out.extend_from_slice(&b[..b.len().min(256)]),
            Piece::Value { index, form, cut } => {
                if values.is_empty() {
                    continue;
                }
                let v = &values[usize::from(*index) % values.len()];
                let bytes = match form % 9 {
                    0 => v.as_bytes().to_vec(),
                    1 => STANDARD.encode(v).into_bytes(),
                    2 => URL_SAFE_NO_PAD.encode(v).into_bytes(),
                    3 => serde_json::to_string(v).expect("json").into_bytes(),
                    4 => v
                        .trim()
                        .lines()
                        .map(|l| format!("> {l}\r\n"))
                        .collect::<String>()
                        .into_bytes(),
                    5 => STANDARD.encode(format!("user:{v}")).into_bytes(),
                    // In a query string, as two common encoders write it.
                    6 => url_form(v.trim().as_bytes(), 0),
                    7 => url_form(v.trim().as_bytes(), 2),
                    _ => v.trim().as_bytes().to_vec(),
                };
                // cut == 0: whole; else a prefix (a partial secret).
                let n = if *cut == 0 {
                    bytes.len()
                } else {
                    usize::from(*cut).min(bytes.len())
                };
                out.extend_from_slice(&bytes[..n]);
            }
        }
    }
    out
}

fuzz_target!(|input: Input| {
    let values: Vec<String> = input
        .values
        .iter()
        .take(4)
        .map(|v| match v.char_indices().nth(64) {
            Some((i, _)) => v[..i].to_owned(),
            None => v.clone(),
        })
        .collect();
    let vars: Vec<(String, SecretString)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V{i}"), SecretString::from(v.clone())))
        .collect();
    let (masker, _warnings) = Masker::new(&vars);
    let pats = patterns(&values);
    assert_eq!(masker.pattern_count(), pats.len(), "pattern count");
    assert_eq!(
        masker.longest_pattern(),
        pats.iter().map(Vec::len).max().unwrap_or(0),
        "longest pattern"
    );

    let text = render(&values, &input.pieces);
    let want = replace_model(&text, &pats, MASK);
    let whole = masker.mask(&text);
    assert!(whole == want, "mask() differs from the model");

    let sizes: Vec<usize> = if input.chunks.is_empty() {
        vec![1]
    } else {
        input
            .chunks
            .iter()
            .take(16)
            .map(|&c| usize::from(c))
            .collect()
    };
    let mut stream = masker.stream();
    let mut out = Vec::new();
    let mut rest = &text[..];
    let mut i = 0;
    while !rest.is_empty() {
        // A size of 0 pushes an empty chunk (allowed), then one byte.
        let mut n = sizes[i % sizes.len()].min(rest.len());
        if n == 0 {
            assert!(stream.push(&[]).is_empty() || stream.held() == 0);
            n = 1;
        }
        out.extend(stream.push(&rest[..n]));
        assert!(
            stream.held() < masker.longest_pattern().max(1),
            "held back {} bytes, longest pattern {}",
            stream.held(),
            masker.longest_pattern()
        );
        rest = &rest[n..];
        i += 1;
    }
    out.extend(stream.finish());
    assert!(out == want, "streamed output differs from the model");
});
