//! Output formats, checked by reading them back the way their consumers do:
//! real `bash` and `sh` for env/dotenv, `serde_json` for json, models of the
//! GitHub runner's and the Azure DevOps agent's parsers for the CI formats.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]
#![cfg(unix)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use coffer_ci::format::{
    Format, FormatError, append_to_file, azure_devops, dotenv, env, github, json, validate_name,
};
use coffer_ci::mask::WarningKind;
use proptest::prelude::*;
use secrecy::SecretString;

const TRICKY: &[&str] = &[
    "",
    "plain",
    "with space",
    "it's",
    "''",
    "'",
    "\"double\"",
    "back\\slash",
    "trailing backslash\\",
    "\\n is not a newline",
    "$HOME",
    "${HOME}",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a'b\"c$d`e\\f\ng",
    "new\nline",
    "\n",
    "ends with newline\n",
    "\n\nleading newlines",
    "\r\nCRLF\r\n",
    "ends with cr\r",
    "%",
    "%25 %0A %0D %3B %5D %AZP25",
    "unicode é ü 日本 🎉",
    "tab\tsep",
    "!bang !!",
    "~tilde",
    "x=~/y:~/z",
    "-dash",
    "=equals=",
    "#hash",
    "*glob?[a]",
    ";semicolon]bracket[",
    "::add-mask::x",
    "##vso[task.complete result=Failed]",
    "EOF",
    "NAME<<EOF",
    "user@host:/path,with+chars%.",
];

fn vars(values: &[&str]) -> Vec<(String, SecretString)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V_{i}"), SecretString::from(v.to_string())))
        .collect()
}

/// Sources `file` in `shell` (with `set -a` when `export_all`) in an empty
/// environment and returns the exported variables.
fn source_in(shell: &str, file: &Path, export_all: bool) -> HashMap<String, Vec<u8>> {
    let script = if export_all {
        r#"set -a; . "$1"; set +a; exec env -0"#
    } else {
        r#". "$1"; exec env -0"#
    };
    let output = Command::new(shell)
        .args(["-c", script, shell])
        .arg(file)
        .current_dir(file.parent().expect("dir"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("shell runs");
    assert!(
        output.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{shell}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            Some((
                String::from_utf8_lossy(&entry[..eq]).into_owned(),
                entry[eq + 1..].to_vec(),
            ))
        })
        .collect()
}

fn assert_round_trip(shell: &str, text: &str, values: &[&str], export_all: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secrets.env");
    std::fs::write(&file, text).expect("write");
    let read = source_in(shell, &file, export_all);
    for (i, value) in values.iter().enumerate() {
        let name = format!("V_{i}");
        assert_eq!(
            read.get(&name)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            Some(value.to_string()),
            "{shell}: {name} from\n{text}"
        );
    }
    assert!(
        !dir.path().join("PWNED").exists(),
        "{shell} executed a value"
    );
}

#[test]
fn env_round_trips_tricky_values_through_bash_and_sh() {
    let out = env(&vars(TRICKY)).expect("env");
    assert!(out.lines().next().is_some_and(|l| l == "export V_0=''"));
    for shell in ["bash", "sh"] {
        assert_round_trip(shell, &out, TRICKY, false);
    }
}

#[test]
fn dotenv_round_trips_tricky_values_through_set_a() {
    let out = dotenv(&vars(TRICKY)).expect("dotenv");
    assert!(!out.contains("export"));
    for shell in ["bash", "sh"] {
        assert_round_trip(shell, &out, TRICKY, true);
    }
}

#[test]
fn dotenv_quotes_as_little_as_needed() {
    let out = dotenv(&vars(&[
        "simple-value_1.2:3@x/y+z,w=%",
        "has space",
        "it's $x",
        "",
    ]))
    .expect("dotenv");
    assert_eq!(
        &*out,
        "V_0=simple-value_1.2:3@x/y+z,w=%\nV_1='has space'\nV_2=\"it's \\$x\"\nV_3=''\n"
    );
}

#[test]
fn env_quotes_everything_in_single_quotes() {
    let out = env(&vars(&["it's", "a\nb"])).expect("env");
    assert_eq!(&*out, "export V_0='it'\\''s'\nexport V_1='a\nb'\n");
}

#[test]
fn json_round_trips_and_keeps_the_order() {
    let secrets = vars(TRICKY);
    let out = json(&secrets).expect("json");
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&out).expect("valid json");
    assert_eq!(parsed.len(), TRICKY.len());
    for (i, value) in TRICKY.iter().enumerate() {
        assert_eq!(
            parsed[&format!("V_{i}")],
            serde_json::Value::String(value.to_string())
        );
    }
    assert_eq!(
        &*json(&vars(&["b", "a\"\n"])).expect("json"),
        "{\n  \"V_0\": \"b\",\n  \"V_1\": \"a\\\"\\n\"\n}\n"
    );
    assert_eq!(&*json(&[]).expect("json"), "{}\n");
    // NUL is fine in JSON.
    let parsed: serde_json::Value =
        serde_json::from_str(&json(&vars(&["a\0b"])).expect("json")).expect("valid");
    assert_eq!(parsed["V_0"], "a\0b");
}

/// The runner's `SetEnvFileCommand` parser (actions/runner,
/// `src/Runner.Worker/FileCommandManager.cs`), Linux/macOS line breaks.
fn parse_github_file(text: &str) -> Vec<(String, String)> {
    fn read_line<'t>(text: &'t str, index: &mut usize) -> Option<(&'t str, usize)> {
        if *index >= text.len() {
            return None;
        }
        let start = *index;
        match text[start..].find('\n') {
            None => {
                *index = text.len();
                Some((&text[start..], 0))
            }
            Some(lf) => {
                *index = start + lf + 1;
                Some((&text[start..start + lf], 1))
            }
        }
    }
    let mut vars = Vec::new();
    let mut index = 0;
    while let Some((line, _)) = read_line(text, &mut index) {
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                vars.push((line[..e].to_owned(), line[e + 1..].to_owned()));
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                assert!(!name.is_empty() && !delimiter.is_empty());
                let start = index;
                let mut end = index;
                loop {
                    let (temp, newline) =
                        read_line(text, &mut index).expect("Matching delimiter not found");
                    if temp == delimiter {
                        break;
                    }
                    end = index - newline;
                }
                let value = if end > start { &text[start..end] } else { "" };
                vars.push((name.to_owned(), value.to_owned()));
            }
            _ => panic!("Invalid environment variable format '{line}'"),
        }
    }
    vars
}

/// Reverses GitHub's workflow command data escaping.
fn unescape_github(data: &str) -> String {
    data.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

#[test]
fn github_env_file_round_trips_every_value() {
    let secrets = vars(TRICKY);
    let out = github(&secrets).expect("github");
    let parsed = parse_github_file(&out.file);
    let expected: Vec<(String, String)> = TRICKY
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V_{i}"), v.to_string()))
        .collect();
    assert_eq!(parsed, expected);
    // Delimiters are random and differ per value.
    let delimiters: Vec<&str> = out.file.lines().filter(|l| l.starts_with("V_")).collect();
    let again = github(&secrets).expect("github");
    assert_ne!(out.file.as_str(), again.file.as_str());
    assert!(
        delimiters.iter().all(|l| l.contains("<<COFFER_EOF_")),
        "{delimiters:?}"
    );
}

#[test]
fn github_appends_to_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("github_env");
    std::fs::write(&path, "EXISTING=1\n").expect("write");
    let out = github(&vars(&["first\nsecond", "x'y"])).expect("github");
    append_to_file(&path, &out.file).expect("append");
    append_to_file(&path, "LATER=2\n").expect("append");
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(
        parse_github_file(&text),
        vec![
            ("EXISTING".to_owned(), "1".to_owned()),
            ("V_0".to_owned(), "first\nsecond".to_owned()),
            ("V_1".to_owned(), "x'y".to_owned()),
            ("LATER".to_owned(), "2".to_owned()),
        ]
    );
    // A new file is private.
    use std::os::unix::fs::PermissionsExt as _;
    let fresh = dir.path().join("github_output");
    append_to_file(&fresh, &out.file).expect("append");
    assert_eq!(
        std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn github_masks_every_line_escaped_and_skips_short_lines() {
    let key = "-----BEGIN KEY-----\r\n  abc%def\r\nghij\n}\n\n-----END KEY-----\n";
    let secrets = vars(&[key, "100%\rsure", "abc", "short12", ""]);
    let out = github(&secrets).expect("github");
    assert_eq!(
        &*out.commands,
        "::add-mask::-----BEGIN KEY-----\n\
         ::add-mask::abc%25def\n\
         ::add-mask::ghij\n\
         ::add-mask::-----END KEY-----\n\
         ::add-mask::100%25%0Dsure\n\
         ::add-mask::short12\n"
    );
    let masked: Vec<String> = out
        .commands
        .lines()
        .map(|l| unescape_github(l.strip_prefix("::add-mask::").expect("command")))
        .collect();
    assert_eq!(masked[4], "100%\rsure");
    let kinds: Vec<(&str, WarningKind)> = out
        .warnings
        .iter()
        .map(|w| (w.variable.as_str(), w.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("V_0", WarningKind::ShortLines { lines: 1 }),
            ("V_2", WarningKind::NotMasked { chars: 3 }),
            ("V_3", WarningKind::Short { chars: 7 }),
        ]
    );
    for w in &out.warnings {
        assert!(!w.to_string().contains("abc"), "{w}");
    }
}

/// The agent's `CommandStringConvertor.Unescape` (azure-pipelines-agent),
/// with `DECODE_PERCENTS` on (the default).
fn unescape_azure(s: &str) -> String {
    s.replace("%3B", ";")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%5D", "]")
        .replace("%AZP25", "%")
}

/// Parses `##vso[area.event k=v;k=v]data` like the agent: the data starts
/// after the first `]`.
fn parse_vso(line: &str) -> (String, HashMap<String, String>, String) {
    let rest = line.strip_prefix("##vso[").expect("prefix");
    let close = rest.find(']').expect("]");
    let (head, data) = (&rest[..close], &rest[close + 1..]);
    let (command, props) = head.split_once(' ').unwrap_or((head, ""));
    let props = props
        .split(';')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').expect("k=v");
            (k.to_owned(), unescape_azure(v))
        })
        .collect();
    (command.to_owned(), props, unescape_azure(data))
}

#[test]
fn azure_devops_commands_round_trip_through_the_agent_unescaping() {
    let secrets = vars(TRICKY);
    let out = azure_devops(&secrets, true).expect("azure");
    assert!(
        out.commands.lines().all(|l| l.starts_with("##vso[")),
        "one command per line"
    );
    let mut values = HashMap::new();
    for line in out.commands.lines() {
        let (command, props, data) = parse_vso(line);
        match command.as_str() {
            "task.setvariable" => {
                assert_eq!(props["issecret"], "true");
                assert_eq!(props["isoutput"], "true");
                values.insert(props["variable"].clone(), data);
            }
            "task.setsecret" => assert!(!data.contains('\n')),
            other => panic!("unexpected command {other}"),
        }
    }
    for (i, value) in TRICKY.iter().enumerate() {
        assert_eq!(
            values.get(&format!("V_{i}")).map(String::as_str),
            Some(*value),
            "V_{i}"
        );
    }
}

#[test]
fn azure_devops_exact_output_and_line_masks() {
    let out =
        azure_devops(&vars(&["50%;]done", "line-one\n{\nline-two\r\n"]), false).expect("azure");
    assert_eq!(
        &*out.commands,
        "##vso[task.setvariable variable=V_0;issecret=true]50%AZP25%3B%5Ddone\n\
         ##vso[task.setsecret]line-one\n\
         ##vso[task.setsecret]line-two\n\
         ##vso[task.setvariable variable=V_1;issecret=true]line-one%0A{%0Aline-two%0D%0A\n"
    );
    assert_eq!(out.warnings.len(), 1);
    assert_eq!(out.warnings[0].kind, WarningKind::ShortLines { lines: 1 });
    // Reserved names.
    let reserved = [(
        "SECRET_X".to_owned(),
        SecretString::from("value".to_owned()),
    )];
    let err = azure_devops(&reserved, false).expect_err("reserved");
    assert!(err.to_string().contains("reserves"), "{err}");
}

#[test]
fn names_are_validated_and_duplicates_rejected_by_every_format() {
    for bad in [
        "", "1A", "A-B", "A B", "A=B", "É", "A.B", "A<<B", "$A", "a\n",
    ] {
        assert_eq!(
            validate_name(bad),
            Err(FormatError::InvalidName(bad.to_owned())),
            "{bad:?}"
        );
        let secrets = [(bad.to_owned(), SecretString::from("value".to_owned()))];
        assert!(matches!(env(&secrets), Err(FormatError::InvalidName(_))));
        assert!(matches!(dotenv(&secrets), Err(FormatError::InvalidName(_))));
        assert!(matches!(json(&secrets), Err(FormatError::InvalidName(_))));
        assert!(matches!(github(&secrets), Err(FormatError::InvalidName(_))));
        assert!(matches!(
            azure_devops(&secrets, true),
            Err(FormatError::InvalidName(_))
        ));
    }
    for good in ["A", "_", "a_1", "_9", "CI_JOB_JWT_V2"] {
        assert_eq!(validate_name(good), Ok(()));
    }
    let err = validate_name("1A").expect_err("invalid").to_string();
    assert!(
        err.contains("\"1A\"") && err.contains("letters, digits and underscores"),
        "{err}"
    );
    let twice = [
        ("A".to_owned(), SecretString::from("x".to_owned())),
        ("A".to_owned(), SecretString::from("y".to_owned())),
    ];
    assert_eq!(
        env(&twice).err(),
        Some(FormatError::DuplicateName("A".to_owned()))
    );
    assert_eq!(
        json(&twice).err(),
        Some(FormatError::DuplicateName("A".to_owned()))
    );
    // NUL cannot be stored in a shell or environment variable.
    let nul = [("A".to_owned(), SecretString::from("a\0b".to_owned()))];
    for result in [
        env(&nul).err(),
        dotenv(&nul).err(),
        github(&nul).err(),
        azure_devops(&nul, false).err(),
    ] {
        assert_eq!(result, Some(FormatError::NulByte("A".to_owned())));
    }
}

#[test]
fn format_names_parse() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>(), Ok(f));
        assert_eq!(f.to_string(), f.name());
    }
    assert_eq!("azure-devops".parse::<Format>(), Ok(Format::AzureDevops));
    assert!(matches!(
        "yaml".parse::<Format>(),
        Err(FormatError::UnknownFormat(_))
    ));
    // The module is reachable by path too.
    assert!(validate_name("OK").is_ok());
}

fn arb_value() -> impl Strategy<Value = String> {
    // Any characters but NUL, weighted towards the ones that need quoting.
    prop_oneof!["[^\u{0}]{0,40}", "['\"$`\\\\\n\r!~*?#% a-z]{0,40}",]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_values_round_trip_through_bash(values in prop::collection::vec(arb_value(), 1..6)) {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let secrets = vars(&refs);
        assert_round_trip("bash", &env(&secrets).expect("env"), &refs, false);
        assert_round_trip("bash", &dotenv(&secrets).expect("dotenv"), &refs, true);
        let parsed = parse_github_file(&github(&secrets).expect("github").file);
        prop_assert_eq!(parsed.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), values.clone());
        let azure = azure_devops(&secrets, false).expect("azure");
        let set: Vec<String> = azure
            .commands
            .lines()
            .map(parse_vso)
            .filter(|(c, _, _)| c == "task.setvariable")
            .map(|(_, _, data)| data)
            .collect();
        prop_assert_eq!(set, values);
    }
}
