//! The aws_iam login's untrusted input, everything reachable without the
//! network (coffer-server `identity/aws_iam.rs`), chosen by the first byte:
//! - the decoded cloud-id JSON text, or the `cloud-id` parameter as sent
//!   (base64), through every check of the signed STS request;
//! - a structurally valid cloud-id built from fuzzed parts (URL, method,
//!   body, SigV4 `Authorization`, dates, headers), so that the fuzzer
//!   reaches the deep checks;
//! - STS's answer (status and body) through the XML reader, the caller's
//!   ARN parsing and a method's bounds; and the XML reader alone.
//! Oracles: an accepted request goes only with allow-listed headers and
//! exactly the GetCallerIdentity form body, signed within 15 minutes; a
//! refusal never contains the signature or the session token; STS
//! messages are shown without the request's secrets.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coffer_server::fuzzing::aws_iam::{
    Checked, check_cloud_id, check_sts_answer, decode_cloud_id, parse_xml,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const NOW: i64 = 1_790_000_000; // 2026-09-21T14:13:20Z
const ENDPOINT: &str = "https://sts.amazonaws.com";
const FORWARDED: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "content-type",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "x-amz-user-agent",
];
/// Secrets of the STS-answer mode: an STS message may quote them.
const STS_SECRETS: &[&str] = &[
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "FQoGZXIvYXdzEXAMPLESESSIONTOKEN",
];

fn form_decode(s: &str) -> Option<String> {
    let b = s.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn amz_date(secs: i64) -> String {
    // Civil from days (Howard Hinnant's algorithm), UTC.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYYMMDDTHHMMSSZ` back to seconds (days from civil, Hinnant).
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// What an accepted request must look like.
fn check_accepted(c: &Checked) {
    let mut names: Vec<&str> = c.headers.iter().map(|(n, _)| *n).collect();
    for n in &names {
        assert!(FORWARDED.contains(n), "header {n} forwarded");
    }
    for required in ["authorization", "x-amz-date", "content-type"] {
        assert!(names.contains(&required), "{required} missing");
    }
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a header is sent twice");
    let mut pairs: Vec<(String, String)> = c
        .body
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').expect("form pair");
            (
                form_decode(k).expect("form key"),
                form_decode(v).expect("form value"),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("Action".to_owned(), "GetCallerIdentity".to_owned()),
            ("Version".to_owned(), "2011-06-15".to_owned())
        ],
        "body {:?}",
        c.body
    );
    let auth = &c
        .headers
        .iter()
        .find(|(n, _)| *n == "authorization")
        .expect("auth")
        .1;
    let sig = auth.rsplit("Signature=").next().unwrap_or_default();
    let sig = sig.split(',').next().unwrap_or_default().trim();
    assert!(
        c.secrets.iter().any(|s| s == sig),
        "the signature is not kept secret"
    );
    let date = &c
        .headers
        .iter()
        .find(|(n, _)| *n == "x-amz-date")
        .expect("date")
        .1;
    let signed_at = parse_amz_date(date).expect("an accepted X-Amz-Date parses");
    assert!(
        (signed_at - NOW).abs() <= 900,
        "signed at {date:?}, too far from now"
    );
}

fn raw_text(text: &str) {
    if let Ok(c) = check_cloud_id(text, ENDPOINT, NOW) {
        check_accepted(&c);
    }
}

#[derive(Arbitrary, Debug)]
struct Cid {
    method: u8,
    url: u8,
    url_other: String,
    url_encoding: u8,
    body: Option<u8>,
    body_other: String,
    date_offset: i16,
    date_other: Option<String>,
    akid: u8,
    scope_day_offset: i8,
    region: u8,
    service: u8,
    signed: Vec<u8>,
    signed_other: String,
    sig: [u8; 32],
    sig_shape: u8,
    token: Option<[u8; 24]>,
    host: Option<u8>,
    content_length: Option<u8>,
    content_type: Option<u8>,
    extra: Vec<(String, String)>,
    value_form: u8,
    upper_names: bool,
    auth_order: u8,
    top_extra: Option<String>,
}

fn pick<'a>(list: &[&'a str], i: u8, other: &'a str) -> &'a str {
    list.get(usize::from(i)).copied().unwrap_or(other)
}

fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let c = Cid::arbitrary(u)?;
    let method = pick(&["POST", " post ", "GET", "PUT", ""], c.method, "POST");
    let url = pick(
        &[
            "https://sts.amazonaws.com/",
            "https://sts.amazonaws.com",
            "https://sts.amazonaws.com:443/",
            "https://STS.amazonaws.com/",
            "https://sts.amazonaws.com/?Action=GetCallerIdentity",
            "https://user:pw@sts.amazonaws.com/",
            "http://sts.amazonaws.com/",
            "https://sts.amazonaws.com.evil.example/",
            "https://sts.amazonaws.com/#x",
            "https://sts.us-east-1.amazonaws.com/",
        ],
        c.url,
        &c.url_other,
    );
    let body = c.body.map(|b| {
        pick(
            &[
                "Action=GetCallerIdentity&Version=2011-06-15",
                "Version=2011-06-15&Action=GetCallerIdentity",
                "Action=Get%43allerIdentity&Version=2011%2D06%2D15",
                "Action=GetCallerIdentity&Version=2011-06-15&Action=GetCallerIdentity",
                "Action=AssumeRole&Version=2011-06-15",
                "Action=GetCallerIdentity&Version=2011-06-15&X=1",
                "Action=GetCallerIdentity",
                "",
                "Action=GetCallerIdentity&Version=2011-06-15%",
            ],
            b,
            &c.body_other,
        )
        .to_owned()
    });
    let date = c
        .date_other
        .clone()
        .unwrap_or_else(|| amz_date(NOW + i64::from(c.date_offset)));
    let scope_date =
        amz_date(NOW + i64::from(c.date_offset) + 86_400 * i64::from(c.scope_day_offset % 2));
    let scope_date = scope_date.get(..8).unwrap_or("20260921");
    let akid = pick(&["ASIAEXAMPLE", "", "AS IA", "ASIA/X"], c.akid, "AKIA1");
    let region = pick(
        &["us-east-1", "", "US-EAST-1", "eu-west-3"],
        c.region,
        "us-east-1",
    );
    let service = pick(&["sts", "s3", "STS", "iam"], c.service, "sts");
    const NAMES: &[&str] = &[
        "host",
        "x-amz-date",
        "content-type",
        "x-amz-security-token",
        "content-length",
        "user-agent",
        "amz-sdk-invocation-id",
        "x-amz-content-sha256",
        "x-amz-user-agent",
        "Host",
        "",
    ];
    let mut signed: Vec<&str> = if c.signed.is_empty() {
        vec!["host", "x-amz-date"]
    } else {
        c.signed
            .iter()
            .take(8)
            .map(|i| pick(NAMES, *i, &c.signed_other))
            .collect()
    };
    signed.dedup();
    let sig_hex: String = c.sig.iter().map(|b| format!("{b:02x}")).collect();
    let sig = match c.sig_shape % 4 {
        0 => sig_hex.clone(),
        1 => sig_hex[..63].to_owned(),
        2 => sig_hex.to_uppercase(),
        _ => format!("{sig_hex}00"),
    };
    let credential = format!("Credential={akid}/{scope_date}/{region}/{service}/aws4_request");
    let signed_headers = format!("SignedHeaders={}", signed.join(";"));
    let signature = format!("Signature={sig}");
    let parts = match c.auth_order % 4 {
        0 => vec![credential, signed_headers, signature],
        1 => vec![signature, credential, signed_headers],
        2 => vec![credential.clone(), signed_headers, signature, credential],
        _ => vec![credential, signature],
    };
    let authorization = format!("AWS4-HMAC-SHA256 {}", parts.join(", "));
    let token = c.token.map(|t| format!("FQoGZXIv{}", STANDARD.encode(t)));

    let mut headers: Vec<(String, String)> = vec![
        ("Authorization".into(), authorization),
        ("X-Amz-Date".into(), date.clone()),
    ];
    if let Some(t) = &token {
        headers.push(("X-Amz-Security-Token".into(), t.clone()));
    }
    if let Some(h) = c.host {
        let v = pick(
            &[
                "sts.amazonaws.com",
                "STS.amazonaws.com ",
                "sts.amazonaws.com:443",
                "evil.example",
            ],
            h,
            "",
        );
        headers.push(("Host".into(), v.into()));
    }
    if let Some(l) = c.content_length {
        let len = body
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or("Action=GetCallerIdentity&Version=2011-06-15")
            .len();
        let v = match l % 3 {
            0 => len.to_string(),
            1 => format!(" {len} "),
            _ => (len + usize::from(l)).to_string(),
        };
        headers.push(("Content-Length".into(), v));
    }
    if let Some(t) = c.content_type {
        let v = pick(
            &[
                "application/x-www-form-urlencoded; charset=utf-8",
                "application/x-www-form-urlencoded",
                "APPLICATION/X-WWW-FORM-URLENCODED",
                "application/json",
                "",
            ],
            t,
            "text/plain",
        );
        headers.push(("Content-Type".into(), v.into()));
    }
    for (k, v) in c.extra.iter().take(4) {
        headers.push((k.clone(), v.clone()));
    }
    let mut map = Map::new();
    for (k, v) in &headers {
        let k = if c.upper_names {
            k.to_ascii_uppercase()
        } else {
            k.clone()
        };
        let v = match c.value_form % 4 {
            0 => json!([v]),
            1 => json!(v),
            2 => json!([v, v]),
            _ => json!([]),
        };
        map.insert(k, v);
    }
    let headers_json = Value::Object(map).to_string();
    let enc = |s: &str| match c.url_encoding % 3 {
        0 => STANDARD.encode(s),
        1 => URL_SAFE_NO_PAD.encode(s),
        _ => s.to_owned(),
    };
    let mut obj = json!({
        "sts_request_method": method,
        "sts_request_url": enc(url),
        "sts_request_headers": STANDARD.encode(&headers_json),
    });
    if let Some(b) = &body {
        obj["sts_request_body"] = json!(STANDARD.encode(b));
    }
    if let Some(x) = &c.top_extra {
        obj["sts_request_extra"] = json!(x);
    }
    let text = obj.to_string();

    match check_cloud_id(&text, ENDPOINT, NOW) {
        Ok(checked) => check_accepted(&checked),
        Err(msg) => {
            // The decoded material, to tell a leak from an echo of a field
            // that happens to hold the same text.
            let material = format!(
                "{method}{url}{}{headers_json}",
                body.clone().unwrap_or_default()
            );
            let mut secrets = vec![sig.clone()];
            secrets.extend(token.clone());
            for s in secrets {
                if s.len() >= 16 && material.matches(s.as_str()).count() == 1 {
                    assert!(!msg.contains(&s), "a refusal shows a secret: {msg}");
                }
            }
        }
    }
    Ok(())
}

fn sts_answer(data: &[u8]) {
    let [a, b, cfg, body @ ..] = data else {
        return;
    };
    let status =
        [200, 200, 200, 403, 400, 500, 503, 302, 404, 0][usize::from(*a) % 10] + u16::from(*b % 4);
    let config = match cfg % 4 {
        0 => json!({"sts_url": ENDPOINT, "bound_account_ids": ["123456789012"]}),
        1 => json!({"sts_url": ENDPOINT, "bound_account_ids": ["123456789012"],
                    "bound_arns": ["arn:aws:iam::123456789012:role/ci-*", "arn:aws:sts::123456789012:assumed-role/*/job-?"]}),
        2 => json!({"sts_url": ENDPOINT, "bound_account_ids": ["123456789012", "210987654321"],
                    "bound_role_names": ["ci-deployer"], "bound_role_ids": ["AROA3XFRBF535PLBIFPI4"],
                    "bound_resource_ids": ["job-42", "i-0123456789abcdef0"]}),
        _ => json!({"sts_url": ENDPOINT, "bound_account_ids": ["123456789012"],
                    "bound_user_names": ["deployer"], "bound_user_ids": ["AIDAEXAMPLE"]}),
    };
    let secrets: Vec<String> = STS_SECRETS.iter().map(|s| (*s).to_owned()).collect();
    match check_sts_answer(status, body, ENDPOINT, &secrets, &config) {
        Ok((arn, claims)) => {
            assert!(arn.starts_with("arn:"), "{arn:?}");
            assert!(claims.get("arn").is_some_and(|v| v.first() == Some(&arn)));
            let account = claims
                .get("account_id")
                .and_then(|v| v.first())
                .expect("account");
            let allowed = config["bound_account_ids"].as_array().expect("list");
            assert!(
                allowed.iter().any(|a| a == account.as_str()),
                "unbound account {account}"
            );
        }
        Err(msg) => {
            for s in STS_SECRETS {
                assert!(
                    !msg.contains(s),
                    "an STS message shows a request secret: {msg}"
                );
            }
            assert!(!msg.contains('\n'), "a message spans lines: {msg:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0..=47 => raw_text(&String::from_utf8_lossy(rest)),
        48..=63 => {
            if let Ok(text) = decode_cloud_id(&String::from_utf8_lossy(rest)) {
                raw_text(&text);
            }
        }
        64..=127 => sts_answer(rest),
        128..=143 => {
            let _ = parse_xml(&String::from_utf8_lossy(rest));
        }
        _ => {
            let _ = structured(&mut Unstructured::new(rest));
        }
    }
});
