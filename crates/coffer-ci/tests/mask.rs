//! Streaming masking: chunking invariance, variants, hold-back, warnings.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use coffer_ci::mask::{
    MIN_MASKED_CHARS, Masker, RECOMMENDED_MIN_CHARS, Warning, WarningKind, copy_masked,
    copy_masked_until,
};
use proptest::prelude::*;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn vars(values: &[&str]) -> Vec<(String, SecretString)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("SECRET_{i}"), SecretString::from(v.to_string())))
        .collect()
}

fn masker(values: &[&str]) -> Masker {
    Masker::new(&vars(values)).0
}

/// Pushes `data` in the given chunk sizes (cycled), then finishes.
fn stream_in_chunks(masker: &Masker, data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut stream = masker.stream();
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        out.extend(stream.push(&rest[..n]));
        assert!(
            stream.held() < masker.longest_pattern().max(1),
            "held back too much"
        );
        rest = &rest[n..];
        i += 1;
    }
    out.extend(stream.finish());
    out
}

/// Percent-encoding written independently of the masker: ASCII letters,
/// digits and `keep` stay, a space is `+` when `plus`, every other UTF-8
/// byte is `%XX` (upper-case hex, or lower-case with `lower`).
fn percent_with(value: &str, keep: &str, plus: bool, lower: bool) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3986 (`encodeURIComponent` minus `!'()*`, Python `quote(safe='')`).
fn percent(value: &str, plus: bool) -> String {
    percent_with(value, "-._~", plus, false)
}

/// The WHATWG `application/x-www-form-urlencoded` form, by the `url` crate.
fn form_encoded(value: &str) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("url");
    url.query_pairs_mut().append_pair("v", value);
    url.query().expect("query")["v=".len()..].to_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every form of a value that must never appear in masked output, computed
/// independently of the masker.
fn forbidden_forms(value: &str) -> Vec<Vec<u8>> {
    let trimmed = value.trim();
    if trimmed.chars().count() < MIN_MASKED_CHARS {
        return Vec::new();
    }
    let mut phrases = vec![trimmed.to_owned()];
    for line in trimmed.split('\n').map(str::trim) {
        if line.chars().count() >= MIN_MASKED_CHARS {
            phrases.push(line.to_owned());
        }
    }
    let mut forms = Vec::new();
    for phrase in &phrases {
        forms.push(phrase.as_bytes().to_vec());
        let json = serde_json::to_string(phrase).expect("json");
        forms.push(json.as_bytes()[1..json.len() - 1].to_vec());
    }
    for v in [value, trimmed] {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(v).into_bytes());
        }
    }
    forms.push(percent(trimmed, false).into_bytes());
    forms.push(percent(trimmed, true).into_bytes());
    forms.push(form_encoded(trimmed).into_bytes());
    forms
}

#[test]
fn plain_value_is_masked_and_text_around_it_kept() {
    let m = masker(&["s3cr3t-value"]);
    assert_eq!(
        m.mask(b"token=s3cr3t-value; done\n"),
        b"token=[MASKED]; done\n"
    );
    assert_eq!(m.mask(b"s3cr3t-values3cr3t-value"), b"[MASKED][MASKED]");
    assert_eq!(m.mask(b"s3cr3t-valu"), b"s3cr3t-valu");
}

#[test]
fn output_without_a_possible_match_is_returned_at_once() {
    let m = masker(&["hunter2-is-my-password", "line one\nline two"]);
    let mut stream = m.stream();
    assert_eq!(stream.push(b"hello\n"), b"hello\n");
    assert_eq!(stream.held(), 0);
    assert_eq!(stream.push(b"no match here"), b"no match here");
    // Only the tail that could begin a secret is kept...
    assert_eq!(stream.push(b"user: hunt"), b"user: ");
    assert_eq!(stream.held(), 4);
    // ...and released as soon as it cannot.
    assert_eq!(stream.push(b"ing\n"), b"hunting\n");
    assert_eq!(stream.held(), 0);
    assert_eq!(stream.push(b"x hunter2-is-my-pass"), b"x ");
    assert_eq!(stream.push(b"word!"), b"[MASKED]!");
    assert!(stream.finish().is_empty());
}

#[test]
fn a_held_prefix_is_flushed_at_the_end() {
    let m = masker(&["abcdefgh"]);
    let mut stream = m.stream();
    assert_eq!(stream.push(b"xyz abcd"), b"xyz ");
    assert_eq!(stream.held(), 4);
    assert_eq!(stream.finish(), b"abcd");
}

#[test]
fn secret_split_across_every_boundary() {
    let m = masker(&["0123456789abcdef"]);
    let text = b"a 0123456789abcdef b 0123456789abcdeX c";
    for split in 0..=text.len() {
        let mut stream = m.stream();
        let mut out = stream.push(&text[..split]);
        out.extend(stream.push(&text[split..]));
        out.extend(stream.finish());
        assert_eq!(out, b"a [MASKED] b 0123456789abcdeX c", "split at {split}");
    }
    // One byte at a time.
    assert_eq!(
        stream_in_chunks(&m, text, &[1]),
        b"a [MASKED] b 0123456789abcdeX c"
    );
}

#[test]
fn multi_line_value_line_by_line_and_whole() {
    let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n";
    let m = masker(&[key]);
    // Printed whole: one mask.
    let whole = format!("key:\n{key}done\n");
    assert_eq!(m.mask(whole.as_bytes()), b"key:\n[MASKED]\ndone\n");
    // Printed line by line with other output in between, in tiny chunks.
    let mut interleaved = String::new();
    for (i, line) in key.lines().enumerate() {
        interleaved.push_str(&format!("{i}: {line}\r\n"));
    }
    for sizes in [&[1usize][..], &[3, 7], &[64]] {
        let out = stream_in_chunks(&m, interleaved.as_bytes(), sizes);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "0: [MASKED]\r\n1: [MASKED]\r\n2: [MASKED]\r\n3: [MASKED]\r\n",
            "chunk sizes {sizes:?}"
        );
    }
    // Indented, CRLF line endings: lines are matched trimmed.
    let crlf = key.replace('\n', "\r\n    ");
    let out = String::from_utf8(m.mask(crlf.as_bytes())).expect("utf8");
    assert!(
        !out.contains("MIIEvQ") && !out.contains("BKcwgg") && !out.contains("BEGIN"),
        "{out}"
    );
}

#[test]
fn base64_forms_are_masked() {
    // Chosen so that the standard and URL-safe alphabets differ (+ / vs - _)
    // and padding is needed.
    let secret = "p>?>s~w0rd\u{e9}";
    let m = masker(&[secret]);
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        let encoded = engine.encode(secret);
        let text = format!("auth: {encoded}\n");
        assert_eq!(m.mask(text.as_bytes()), b"auth: [MASKED]\n", "{encoded}");
    }
    assert_ne!(STANDARD.encode(secret), URL_SAFE.encode(secret));
    // The value as given (with its trailing newline, as `base64 < file` sees it).
    let m = masker(&["file-content-123\n"]);
    let encoded = STANDARD.encode("file-content-123\n");
    assert_eq!(m.mask(encoded.as_bytes()), b"[MASKED]");
    // Inside a longer base64 blob, e.g. a basic-auth header or a docker config.
    let m = masker(&["correct-horse-battery-staple"]);
    let header = format!(
        "Authorization: Basic {}\n",
        STANDARD.encode("admin:correct-horse-battery-staple")
    );
    let out = String::from_utf8(m.mask(header.as_bytes())).expect("utf8");
    assert!(out.contains("[MASKED]"), "{out}");
    assert!(
        out.len() < "Authorization: Basic [MASKED]".len() + 10,
        "{out}"
    );
}

/// Issue 9 item 9: a secret printed URL-encoded (a query string, a form
/// body, a URL with a password) is masked in every common encoder's form.
#[test]
fn url_encoded_forms_are_masked() {
    let secret = "p@ss w/rd+~*!'é%";
    let m = masker(&[secret]);
    let forms = [
        ("RFC 3986", percent(secret, false)),
        ("RFC 3986 +", percent(secret, true)),
        (
            "RFC 3986 lower-case",
            percent_with(secret, "-._~", false, true),
        ),
        (
            "RFC 3986 + lower-case",
            percent_with(secret, "-._~", true, true),
        ),
        ("WHATWG form", form_encoded(secret)),
        ("PHP urlencode", percent_with(secret, "-._", true, false)),
        (
            "encodeURIComponent",
            percent_with(secret, "!'()*-._~", false, false),
        ),
        (
            "encodeURI",
            percent_with(secret, "!#$&'()*+,-./:;=?@_~", false, false),
        ),
        ("Python quote", percent_with(secret, "-./_~", false, false)),
        (
            "Go PathEscape",
            percent_with(secret, "$&+,-./:;=@_~", false, false),
        ),
        (
            "all but alphanumerics",
            percent_with(secret, "", false, false),
        ),
    ];
    assert_eq!(forms[0].1, "p%40ss%20w%2Frd%2B~%2A%21%27%C3%A9%25");
    assert_eq!(forms[4].1, "p%40ss+w%2Frd%2B%7E*%21%27%C3%A9%25");
    for (encoder, form) in &forms {
        assert_ne!(form, secret);
        let text = format!("GET /login?user=me&password={form}&next=%2F HTTP/1.1\n");
        assert_eq!(
            String::from_utf8(m.mask(text.as_bytes())).expect("utf8"),
            "GET /login?user=me&password=[MASKED]&next=%2F HTTP/1.1\n",
            "{encoder}: {form}"
        );
        // Streamed a byte at a time: the same.
        assert_eq!(
            stream_in_chunks(&m, text.as_bytes(), &[1]),
            m.mask(text.as_bytes()),
            "{encoder}"
        );
    }
    // Inside a longer encoded string, the value's encoding is contiguous.
    let body = form_encoded(&format!("user=admin {secret} tail"));
    let out = String::from_utf8(m.mask(body.as_bytes())).expect("utf8");
    assert!(out.contains("[MASKED]"), "{out}");
    assert!(!out.contains(&form_encoded(secret)), "{out}");
    // A base64 token in a query string.
    for engine in [&STANDARD, &URL_SAFE] {
        let token = percent(&engine.encode(secret), false);
        let text = format!("?sig={token}&x=1");
        assert_eq!(m.mask(text.as_bytes()), b"?sig=[MASKED]&x=1", "{token}");
    }
}

#[test]
fn json_escaped_form_is_masked() {
    let secret = "pa\"ss\\word\nline2\ttab";
    let m = masker(&[secret]);
    let json = serde_json::to_string(&serde_json::json!({ "password": secret })).expect("json");
    assert_eq!(m.mask(json.as_bytes()), br#"{"password":"[MASKED]"}"#);
    let pretty =
        serde_json::to_string_pretty(&serde_json::json!({ "a": [secret, 1] })).expect("json");
    let out = String::from_utf8(m.mask(pretty.as_bytes())).expect("utf8");
    assert!(out.contains("\"[MASKED]\""), "{out}");
    // Control characters escaped as \u00xx.
    let secret = "bell\u{7}secret";
    let m = masker(&[secret]);
    let json = serde_json::to_string(secret).expect("json");
    assert_eq!(m.mask(json.as_bytes()), b"\"[MASKED]\"");
}

#[test]
fn longest_match_wins_for_nested_and_overlapping_values() {
    let m = masker(&["abcd", "abcdefgh", "efghijkl"]);
    assert_eq!(m.mask(b"abcdefghijkl"), b"[MASKED]ijkl");
    assert_eq!(m.mask(b"abcdefg"), b"[MASKED]efg");
    assert_eq!(m.mask(b"xxefghijkl"), b"xx[MASKED]");
    // Same value in two variables, surrounding whitespace ignored.
    let m = masker(&["  same-value\n", "same-value", "", "   "]);
    assert_eq!(m.mask(b"=same-value="), b"=[MASKED]=");
}

#[test]
fn short_values_follow_the_floor_and_warn_by_name_only() {
    let values = [
        "abc",
        "abcd",
        "abcdefg",
        "abcdefgh",
        "x\n{\nlong-enough-line\n}",
        "  ",
        "",
    ];
    let (m, warnings) = Masker::new(&vars(&values));
    assert_eq!(
        warnings,
        vec![
            Warning {
                variable: "SECRET_0".into(),
                kind: WarningKind::NotMasked { chars: 3 }
            },
            Warning {
                variable: "SECRET_1".into(),
                kind: WarningKind::Short { chars: 4 }
            },
            Warning {
                variable: "SECRET_2".into(),
                kind: WarningKind::Short { chars: 7 }
            },
            Warning {
                variable: "SECRET_4".into(),
                kind: WarningKind::ShortLines { lines: 3 }
            },
        ]
    );
    for w in &warnings {
        let text = w.to_string();
        assert!(text.starts_with(&w.variable), "{text}");
        assert!(!text.contains("abc"), "{text}");
    }
    assert!(warnings[0].to_string().contains("NOT be masked"));
    assert_eq!(MIN_MASKED_CHARS, 4);
    assert_eq!(RECOMMENDED_MIN_CHARS, 8);
    // 3 characters: left alone; 4: masked.
    assert_eq!(m.mask(b"abc xyz"), b"abc xyz");
    assert_eq!(m.mask(b"[abcd]"), b"[[MASKED]]");
    // The short lines of the multi-line value stay; the long one is masked.
    assert_eq!(m.mask(b"{\nlong-enough-line\n}\n"), b"{\n[MASKED]\n}\n");
    // Characters, not bytes: 4 two-byte characters are masked.
    let (m, warnings) = Masker::new(&vars(&["éééé"]));
    assert_eq!(warnings[0].kind, WarningKind::Short { chars: 4 });
    assert_eq!(m.mask("<éééé>".as_bytes()), b"<[MASKED]>");
}

#[test]
fn empty_masker_passes_everything_through() {
    let (m, warnings) = Masker::new(&[]);
    assert!(warnings.is_empty());
    assert_eq!(m.pattern_count(), 0);
    let mut stream = m.stream();
    assert_eq!(stream.push(b"anything at all"), b"anything at all");
    assert!(stream.finish().is_empty());
    assert_eq!(Masker::empty().mask(b"x"), b"x");
}

#[test]
fn large_output_with_a_long_secret_is_masked_quickly() {
    let key: String = (0..60).map(|i| format!("{:064x}\n", i * 7919)).collect();
    let m = masker(&[&key]);
    let mut text = Vec::new();
    for i in 0..20_000 {
        text.extend_from_slice(
            format!("log line {i} with some ordinary text 0123456789abcdef\n").as_bytes(),
        );
    }
    text.extend_from_slice(key.as_bytes());
    let started = std::time::Instant::now();
    let out = stream_in_chunks(&m, &text, &[4096, 17, 8191]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(out.ends_with(b"[MASKED]\n"));
    assert!(!contains(&out, &key.as_bytes()[..64]));
}

#[tokio::test]
async fn copy_masked_flushes_each_chunk_without_waiting_for_eof() {
    let m = masker(&["super-secret-token"]);
    let (mut child_out, mut reader) = tokio::io::duplex(64);
    let (mut writer, mut terminal) = tokio::io::duplex(1024);
    let copy = async {
        let n = copy_masked(&mut reader, &mut writer, &m)
            .await
            .expect("copy");
        drop(writer);
        n
    };
    let drive = async {
        let mut buf = [0u8; 256];
        child_out.write_all(b"starting\n").await.expect("write");
        let n = tokio::time::timeout(Duration::from_secs(5), terminal.read(&mut buf))
            .await
            .expect("line arrives before EOF")
            .expect("read");
        assert_eq!(&buf[..n], b"starting\n");
        // A secret written a byte at a time.
        for b in b"token: super-secret-token\n" {
            child_out.write_all(&[*b]).await.expect("write");
        }
        drop(child_out);
        let mut rest = Vec::new();
        terminal.read_to_end(&mut rest).await.expect("read");
        rest
    };
    let (n, rest) = tokio::join!(copy, drive);
    assert_eq!(n, 35);
    assert_eq!(rest, b"token: [MASKED]\n");
}

#[tokio::test]
async fn copy_masked_until_stops_and_flushes_what_it_held() {
    let m = masker(&["super-secret-token"]);
    let (mut child_out, mut reader) = tokio::io::duplex(64);
    let mut out = Vec::new();
    child_out.write_all(b"partial super").await.expect("write");
    // The writer end stays open (like a pipe kept by a background process).
    let n = copy_masked_until(
        &mut reader,
        &mut out,
        &m,
        tokio::time::sleep(Duration::from_millis(200)),
    )
    .await
    .expect("copy");
    assert_eq!(n, 13);
    assert_eq!(out, b"partial super");
    drop(child_out);
}

fn arb_secret() -> impl Strategy<Value = String> {
    // No '[' or ']' so that a secret cannot be formed with the mask text.
    let line = "[a-z0-9 \"\\\\\t$%{}.:=+/é-]{1,24}";
    prop_oneof![
        line.prop_map(|s| s),
        prop::collection::vec(line, 2..5).prop_map(|lines| lines.join("\n")),
        prop::collection::vec(line, 2..4).prop_map(|lines| format!(" {}\n", lines.join("\r\n"))),
    ]
}

#[derive(Debug, Clone)]
enum Piece {
    Filler(String),
    /// Secret `i`, in form `form`, or a prefix of it.
    Secret {
        index: usize,
        form: usize,
        prefix: Option<usize>,
    },
}

fn arb_piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[a-z0-9 \n\"\\\\=:/+-]{0,12}".prop_map(Piece::Filler),
        (0usize..4, 0usize..10, prop::option::of(0usize..40)).prop_map(|(index, form, prefix)| {
            Piece::Secret {
                index,
                form,
                prefix,
            }
        }),
    ]
}

fn render(secrets: &[String], pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Filler(s) => out.extend_from_slice(s.as_bytes()),
            Piece::Secret {
                index,
                form,
                prefix,
            } => {
                let value = &secrets[index % secrets.len()];
                let bytes = match form {
                    0 => value.as_bytes().to_vec(),
                    1 => STANDARD.encode(value).into_bytes(),
                    2 => URL_SAFE_NO_PAD.encode(value).into_bytes(),
                    3 => {
                        let j = serde_json::to_string(value).expect("json");
                        j.into_bytes()
                    }
                    4 => value
                        .trim()
                        .lines()
                        .map(|l| format!("> {l}\n"))
                        .collect::<String>()
                        .into_bytes(),
                    5 => STANDARD.encode(format!("user:{value}")).into_bytes(),
                    7 => percent(value, false).into_bytes(),
                    8 => form_encoded(&format!("q {value}")).into_bytes(),
                    _ => value.trim().as_bytes().to_vec(),
                };
                let n = prefix.map_or(bytes.len(), |p| p.min(bytes.len()));
                out.extend_from_slice(&bytes[..n]);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunking_never_changes_the_result_and_nothing_leaks(
        secrets in prop::collection::vec(arb_secret(), 1..4),
        pieces in prop::collection::vec(arb_piece(), 0..16),
        sizes in prop::collection::vec(1usize..24, 1..6),
    ) {
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let m = masker(&refs);
        let text = render(&secrets, &pieces);
        let one_shot = m.mask(&text);
        let streamed = stream_in_chunks(&m, &text, &sizes);
        prop_assert_eq!(&streamed, &one_shot);
        let bytewise = stream_in_chunks(&m, &text, &[1]);
        prop_assert_eq!(&bytewise, &one_shot);
        for secret in &secrets {
            for form in forbidden_forms(secret) {
                prop_assert!(
                    !contains(&one_shot, &form),
                    "leaked {:?} of {:?} in {:?}",
                    String::from_utf8_lossy(&form),
                    secret,
                    String::from_utf8_lossy(&one_shot)
                );
            }
        }
    }

    /// Text that cannot contain a secret comes out unchanged, and a stream
    /// never holds back more than it must.
    #[test]
    fn unrelated_text_is_untouched(
        secrets in prop::collection::vec("[a-z]{8,16}", 1..4),
        text in "[ \n!#&*(),;<>?@^`|~]{0,200}",
        sizes in prop::collection::vec(1usize..24, 1..6),
    ) {
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let m = masker(&refs);
        let mut stream = m.stream();
        for chunk in text.as_bytes().chunks(sizes[0]) {
            prop_assert_eq!(stream.push(chunk), chunk.to_vec());
            prop_assert_eq!(stream.held(), 0);
        }
        prop_assert!(stream.finish().is_empty());
    }
}
