//! GitLab's validation of `secrets:`, `id_tokens:`, `variables:` and
//! `inherit:`, producing the normalized types.
//!
//! Each error is `<location> <message>`, the location being the path of
//! keys (`jobs:deploy:secrets:DATABASE_PASSWORD:aws_secrets_manager`) and
//! the message GitLab's validator text. GitLab prints the whole line in
//! lower case; here names keep their case (`DATABASE_PASSWORD`), the
//! validator text is GitLab's lower-case text.
//!
//! All errors are collected. GitLab stops descending into an entry whose
//! own keys are wrong; here the provider settings are checked as well.

use std::collections::BTreeMap;
use std::fmt;

use super::secret::{
    AkeylessSecret, AwsSecret, AzureSecret, DeclaredVariable, GcpSecret,
    GitlabSecretsManagerSecret, IdToken, Provider, Secret, VaultEngine, VaultSecret,
};
use super::yaml::{Map, Node};

/// Keys allowed under a secret: GitLab's list plus `akeyless`.
pub(crate) const SECRET_KEYS: &[&str] = &[
    "vault",
    "file",
    "azure_key_vault",
    "gcp_secret_manager",
    "akeyless",
    "gitlab_secrets_manager",
    "token",
    "aws_secrets_manager",
];

/// Provider keys, in the order of GitLab's message when `akeyless` was
/// still supported (GitLab 18.2–18.3).
pub(crate) const PROVIDER_KEYS: &[&str] = &[
    "vault",
    "azure_key_vault",
    "gcp_secret_manager",
    "akeyless",
    "gitlab_secrets_manager",
    "aws_secrets_manager",
];

const AWS_KEYS: &[&str] = &[
    "secret_id",
    "region",
    "version_id",
    "version_stage",
    "role_arn",
    "role_session_name",
    "field",
];

pub(crate) const AKEYLESS_KEYS: &[&str] = &[
    "name",
    "data_key",
    "cert_user_name",
    "public_key_data",
    "csr_data",
    "akeyless_api_url",
    "akeyless_access_type",
    "akeyless_token",
    "akeyless_access_key",
    "uid_token",
    "gcp_audience",
    "azure_object_id",
    "k8s_service_account_token",
    "k8s_auth_config_name",
    "gateway_ca_certificate",
];

/// `value:` data keys allowed in the global `variables:`.
pub(crate) const GLOBAL_VARIABLE_KEYS: &[&str] = &["value", "description", "expand", "options"];
/// `value:` data keys allowed in a job's `variables:`.
pub(crate) const JOB_VARIABLE_KEYS: &[&str] = &["value", "expand"];

/// Validation errors, in the order they are found.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<String>);

impl Errors {
    pub(crate) fn add(&mut self, location: &str, message: impl fmt::Display) {
        self.0.push(format!("{location} {message}"));
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Rails' `humanize` of an attribute, lower-cased: `_id` suffix dropped,
/// underscores as spaces (`version_id` → `version`, `role_arn` → `role arn`).
fn humanize(attribute: &str) -> String {
    attribute
        .strip_suffix("_id")
        .unwrap_or(attribute)
        .replace('_', " ")
}

fn one_of_message() -> String {
    format!(
        "config must use exactly one of these keys: {}",
        PROVIDER_KEYS.join(", ")
    )
}

/// `config contains unknown keys: …` when `map` has keys outside `allowed`.
fn check_unknown_keys(map: &Map, allowed: &[&str], loc: &str, errs: &mut Errors) {
    let unknown: Vec<&str> = map
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        errs.add(
            loc,
            format_args!("config contains unknown keys: {}", unknown.join(", ")),
        );
    }
}

/// `validates :key, presence: true, type: String` (or `type` first when
/// `type_first`, as AWS's `secret_id`).
fn required_string(
    map: &Map,
    key: &str,
    loc: &str,
    errs: &mut Errors,
    type_first: bool,
) -> Option<String> {
    let node = map.get(key).unwrap_or(&Node::Null);
    let name = humanize(key);
    let blank = node.is_blank();
    let string = node.as_str();
    let blank_error = |errs: &mut Errors| {
        if blank {
            errs.add(loc, format_args!("{name} can't be blank"));
        }
    };
    let type_error = |errs: &mut Errors| {
        if string.is_none() {
            errs.add(loc, format_args!("{name} should be a string"));
        }
    };
    if type_first {
        type_error(errs);
        blank_error(errs);
    } else {
        blank_error(errs);
        type_error(errs);
    }
    match string {
        Some(s) if !blank => Some(s.to_owned()),
        _ => None,
    }
}

/// `validates :key, type: String, allow_nil: true`.
fn optional_string(map: &Map, key: &str, loc: &str, errs: &mut Errors) -> Option<String> {
    match map.get(key) {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) => Some(s.clone()),
        Some(_) => {
            errs.add(loc, format_args!("{} should be a string", humanize(key)));
            None
        }
    }
}

/// `secrets:` of a job (`loc` = `jobs:<job>:secrets`), sorted by variable.
pub(crate) fn secrets(node: &Node, loc: &str, errs: &mut Errors) -> Vec<Secret> {
    let map = match node {
        Node::Null => return Vec::new(),
        Node::Map(map) => map,
        _ => {
            errs.add(loc, "config should be a hash");
            return Vec::new();
        }
    };
    let mut out: Vec<Secret> = map
        .iter()
        .filter_map(|(var, value)| secret(var, value, &format!("{loc}:{var}"), errs))
        .collect();
    out.sort_by(|a, b| a.var.cmp(&b.var));
    out
}

fn secret(var: &str, node: &Node, loc: &str, errs: &mut Errors) -> Option<Secret> {
    let start = errs.len();
    let empty = Map::new();
    let map = match node {
        // GitLab's `ComposableHash` reads a null entry as `{}`.
        Node::Null => &empty,
        Node::Map(map) => map,
        _ => {
            errs.add(loc, "config should be a hash");
            errs.add(loc, one_of_message());
            return None;
        }
    };
    check_unknown_keys(map, SECRET_KEYS, loc, errs);
    let present: Vec<&str> = PROVIDER_KEYS
        .iter()
        .copied()
        .filter(|k| map.contains_key(k))
        .collect();
    if present.len() != 1 {
        errs.add(loc, one_of_message());
    }
    let token = match map.get("token") {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) => Some(s.clone()),
        Some(_) => {
            errs.add(loc, "token should be a string");
            None
        }
    };
    let gcp_present = map.get("gcp_secret_manager").is_some_and(|g| !g.is_blank());
    if gcp_present && map.get("token").is_none_or(Node::is_blank) {
        errs.add(loc, "token is required with gcp secrets manager");
    }

    // Children, in the order GitLab declares its entries.
    let mut file = true;
    let mut provider = None;
    for key in [
        "vault",
        "aws_secrets_manager",
        "file",
        "azure_key_vault",
        "gcp_secret_manager",
        "akeyless",
        "gitlab_secrets_manager",
    ] {
        let Some(value) = map.get(key) else { continue };
        let child = format!("{loc}:{key}");
        let parsed = match key {
            "file" => {
                match value {
                    Node::Null => {}
                    Node::Bool(b) => file = *b,
                    _ => errs.add(&child, "config should be a boolean value"),
                }
                continue;
            }
            "vault" => vault(value, &child, errs).map(Provider::Vault),
            "aws_secrets_manager" => aws(value, &child, errs).map(Provider::Aws),
            "azure_key_vault" => azure(value, &child, errs).map(Provider::Azure),
            "gcp_secret_manager" => gcp(value, &child, errs).map(Provider::Gcp),
            "akeyless" => akeyless(value, &child, errs).map(Provider::Akeyless),
            _ => gitlab_secrets_manager(value, &child, errs).map(Provider::GitlabSecretsManager),
        };
        if provider.is_none() {
            provider = parsed;
        }
    }
    if errs.len() > start {
        return None;
    }
    Some(Secret {
        var: var.to_owned(),
        file,
        token,
        provider: provider?,
    })
}

fn hash_or_string(loc: &str, errs: &mut Errors) {
    // GitLab's `UnknownStrategy`: no `config` word in this message.
    errs.add(loc, "should be a hash or a string");
}

fn vault(node: &Node, loc: &str, errs: &mut Errors) -> Option<VaultSecret> {
    match node {
        Node::Str(s) => {
            if node.is_blank() {
                errs.add(loc, "config can't be blank");
                return None;
            }
            Some(vault_short(s))
        }
        Node::Map(map) => {
            check_unknown_keys(map, &["engine", "path", "field"], loc, errs);
            let path = required_string(map, "path", loc, errs, false);
            let field = required_string(map, "field", loc, errs, false);
            let engine_node = map.get("engine").unwrap_or(&Node::Null);
            if engine_node.is_blank() {
                errs.add(loc, "engine can't be blank");
            }
            let engine = match engine_node {
                Node::Map(engine) => vault_engine(engine, &format!("{loc}:engine"), errs),
                _ => {
                    errs.add(loc, "engine should be a hash");
                    None
                }
            };
            Some(VaultSecret {
                engine: engine?,
                path: path?,
                field: field?,
            })
        }
        _ => {
            hash_or_string(loc, errs);
            None
        }
    }
}

fn vault_engine(map: &Map, loc: &str, errs: &mut Errors) -> Option<VaultEngine> {
    check_unknown_keys(map, &["name", "path"], loc, errs);
    let missing: Vec<&str> = ["name", "path"]
        .into_iter()
        .filter(|k| !map.contains_key(k))
        .collect();
    if !missing.is_empty() {
        errs.add(
            loc,
            format_args!("config missing required keys: {}", missing.join(", ")),
        );
    }
    let name = required_string(map, "name", loc, errs, false);
    let path = required_string(map, "path", loc, errs, false);
    Some(VaultEngine {
        name: name?,
        path: path?,
    })
}

/// The short form `path/to/secret/field@engine_path` (engine `kv-v2`):
/// the engine path follows the last `@`, the field the last `/`.
fn vault_short(s: &str) -> VaultSecret {
    // Ruby `rpartition('@')`; an empty left side means "no engine".
    let (secret, engine_path) = match s.rfind('@') {
        Some(i) if i > 0 => (&s[..i], &s[i + 1..]),
        _ => (s, "kv-v2"),
    };
    let (path, field) = match secret.rfind('/') {
        Some(i) => (&secret[..i], &secret[i + 1..]),
        None => ("", secret),
    };
    VaultSecret {
        engine: VaultEngine {
            name: "kv-v2".to_owned(),
            path: engine_path.to_owned(),
        },
        path: path.to_owned(),
        field: field.to_owned(),
    }
}

fn aws(node: &Node, loc: &str, errs: &mut Errors) -> Option<AwsSecret> {
    match node {
        Node::Str(s) => {
            if node.is_blank() {
                errs.add(loc, "config can't be blank");
                return None;
            }
            if s.matches('#').count() > 1 {
                errs.add(loc, "config must contain at most one '#'");
                return None;
            }
            // Ruby `split('#')` drops trailing empty parts: `x#` → [x].
            let mut parts: Vec<&str> = s.split('#').collect();
            while parts.last() == Some(&"") {
                parts.pop();
            }
            Some(AwsSecret {
                secret_id: parts.first().copied().unwrap_or_default().to_owned(),
                field: parts.get(1).map(|f| (*f).to_owned()),
                ..AwsSecret::default()
            })
        }
        Node::Map(map) => {
            let start = errs.len();
            check_unknown_keys(map, AWS_KEYS, loc, errs);
            let secret_id = required_string(map, "secret_id", loc, errs, true);
            let region = optional_string(map, "region", loc, errs);
            let version_id = optional_string(map, "version_id", loc, errs);
            let version_stage = optional_string(map, "version_stage", loc, errs);
            let role_arn = optional_string(map, "role_arn", loc, errs);
            let role_session_name = optional_string(map, "role_session_name", loc, errs);
            let field = optional_string(map, "field", loc, errs);
            // Coffer's own check: GitLab's documentation forbids both, its
            // code passes both on and AWS answers with an error at best.
            let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
            if set(&version_id) && set(&version_stage) {
                errs.add(
                    loc,
                    "version_id and version_stage cannot be used together: set only one of them",
                );
            }
            if errs.len() > start {
                return None;
            }
            Some(AwsSecret {
                secret_id: secret_id?,
                field,
                region,
                version_id,
                version_stage,
                role_arn,
                role_session_name,
            })
        }
        _ => {
            hash_or_string(loc, errs);
            None
        }
    }
}

/// The entries that accept only a mapping; `None` after reporting otherwise.
fn hash<'a>(node: &'a Node, loc: &str, errs: &mut Errors) -> Option<&'a Map> {
    match node {
        Node::Map(map) => Some(map),
        _ => {
            errs.add(loc, "config should be a hash");
            None
        }
    }
}

fn azure(node: &Node, loc: &str, errs: &mut Errors) -> Option<AzureSecret> {
    let map = hash(node, loc, errs)?;
    check_unknown_keys(map, &["name", "version"], loc, errs);
    let name = required_string(map, "name", loc, errs, false);
    let version = optional_string(map, "version", loc, errs);
    Some(AzureSecret {
        name: name?,
        version,
    })
}

fn gcp(node: &Node, loc: &str, errs: &mut Errors) -> Option<GcpSecret> {
    let map = hash(node, loc, errs)?;
    check_unknown_keys(map, &["name", "version"], loc, errs);
    let name = required_string(map, "name", loc, errs, false);
    let version = match map.get("version") {
        None | Some(Node::Null) => Some("latest".to_owned()),
        Some(Node::Str(s)) => Some(s.clone()),
        Some(Node::Int(i)) => Some(i.to_string()),
        Some(_) => {
            errs.add(loc, "version must be an alphanumeric string");
            None
        }
    };
    Some(GcpSecret {
        name: name?,
        version: version?,
    })
}

fn gitlab_secrets_manager(
    node: &Node,
    loc: &str,
    errs: &mut Errors,
) -> Option<GitlabSecretsManagerSecret> {
    let map = hash(node, loc, errs)?;
    check_unknown_keys(map, &["name", "source"], loc, errs);
    let name = required_string(map, "name", loc, errs, false);
    let source = optional_string(map, "source", loc, errs);
    if let Some(source) = &source {
        let group_path = source.strip_prefix("group/").is_some_and(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        });
        if source != "project" && !group_path {
            errs.add(
                loc,
                "source must follow the format group/group_full_path or 'project'",
            );
            return None;
        }
    }
    Some(GitlabSecretsManagerSecret {
        name: name?,
        source,
    })
}

fn akeyless(node: &Node, loc: &str, errs: &mut Errors) -> Option<AkeylessSecret> {
    let empty = Map::new();
    let map = match node {
        // GitLab dropped a null `akeyless:` (the secret then had no
        // provider); its documentation's "JWT reuse" example relies on it
        // meaning "the token itself", so null is `{}` here.
        Node::Null => &empty,
        other => hash(other, loc, errs)?,
    };
    let start = errs.len();
    check_unknown_keys(map, AKEYLESS_KEYS, loc, errs);
    let mut get = |key: &str| optional_string(map, key, loc, errs);
    let secret = AkeylessSecret {
        name: get("name"),
        data_key: get("data_key"),
        cert_user_name: get("cert_user_name"),
        public_key_data: get("public_key_data"),
        csr_data: get("csr_data"),
        akeyless_api_url: get("akeyless_api_url"),
        akeyless_access_type: get("akeyless_access_type"),
        akeyless_token: get("akeyless_token"),
        akeyless_access_key: get("akeyless_access_key"),
        uid_token: get("uid_token"),
        gcp_audience: get("gcp_audience"),
        azure_object_id: get("azure_object_id"),
        k8s_service_account_token: get("k8s_service_account_token"),
        k8s_auth_config_name: get("k8s_auth_config_name"),
        gateway_ca_certificate: get("gateway_ca_certificate"),
    };
    (errs.len() == start).then_some(secret)
}

/// `id_tokens:` (`loc` = `jobs:<job>:id_tokens` or `default:id_tokens`):
/// the tokens and the first one declared.
pub(crate) fn id_tokens(
    node: &Node,
    loc: &str,
    errs: &mut Errors,
) -> (BTreeMap<String, IdToken>, Option<String>) {
    let mut out = BTreeMap::new();
    let map = match node {
        Node::Null => return (out, None),
        Node::Map(map) => map,
        _ => {
            errs.add(loc, "config should be a hash");
            return (out, None);
        }
    };
    let empty = Map::new();
    for (name, value) in map.iter() {
        let tloc = format!("{loc}:{name}");
        // A null entry is `{}`; a scalar has no keys either.
        let token = value.as_map().unwrap_or(&empty);
        if !token.contains_key("aud") {
            errs.add(&tloc, "config missing required keys: aud");
        }
        check_unknown_keys(token, &["aud"], &tloc, errs);
        let aud = match token.get("aud") {
            Some(Node::Str(s)) => Some(vec![s.clone()]),
            Some(Node::Seq(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>(),
            _ => None,
        };
        match aud {
            Some(aud) => {
                out.insert(name.clone(), IdToken { aud });
            }
            None => errs.add(&tloc, "aud should be an array of strings or a string"),
        }
    }
    (out, map.keys().next().cloned())
}

/// `variables:` (`loc` = `variables` or `jobs:<job>:variables`).
pub(crate) fn variables(
    node: &Node,
    loc: &str,
    data_keys: &[&str],
    allow_array: bool,
    errs: &mut Errors,
) -> Vec<(String, DeclaredVariable)> {
    let map = match node {
        Node::Null => return Vec::new(),
        Node::Map(map) => map,
        _ => {
            errs.add(loc, "config should be a hash of key value pairs");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (name, value) in map.iter() {
        let vloc = format!("{loc}:{name}");
        let declared = match value {
            Node::Str(s) => Some(DeclaredVariable {
                value: s.clone(),
                raw: false,
            }),
            Node::Int(i) => Some(DeclaredVariable {
                value: i.to_string(),
                raw: false,
            }),
            // An empty `NAME:` is read as an empty value.
            Node::Null => Some(DeclaredVariable {
                value: String::new(),
                raw: false,
            }),
            Node::Map(data) => complex_variable(data, &vloc, data_keys, allow_array, errs),
            _ => {
                errs.add(
                    &vloc,
                    "variable definition must be either a string or a hash",
                );
                None
            }
        };
        if let Some(declared) = declared {
            out.push((name.clone(), declared));
        }
    }
    out
}

fn complex_variable(
    data: &Map,
    loc: &str,
    data_keys: &[&str],
    allow_array: bool,
    errs: &mut Errors,
) -> Option<DeclaredVariable> {
    let start = errs.len();
    let value = match data.get("value") {
        None => Some(String::new()),
        Some(Node::Str(s)) => Some(s.clone()),
        Some(Node::Int(i)) => Some(i.to_string()),
        // `value: [a, b]` (global only): the first element is the default.
        Some(Node::Seq(items)) if allow_array => {
            let strings: Option<Vec<&str>> = items.iter().map(Node::as_str).collect();
            match strings {
                Some(strings) => Some(strings.first().copied().unwrap_or_default().to_owned()),
                None => {
                    errs.add(loc, "config value should be an array of strings");
                    None
                }
            }
        }
        Some(_) => {
            errs.add(loc, "config value must be an alphanumeric string");
            None
        }
    };
    if let Some(description) = data.get("description")
        && !matches!(description, Node::Str(_) | Node::Int(_))
    {
        errs.add(loc, "config description must be an alphanumeric string");
    }
    let raw = match data.get("expand") {
        None => false,
        Some(Node::Bool(expand)) => !expand,
        Some(_) => {
            errs.add(loc, "config expand should be a boolean value");
            false
        }
    };
    let extra: Vec<&str> = data
        .keys()
        .filter(|k| !data_keys.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        errs.add(
            loc,
            format_args!("config uses invalid data keys: {}", extra.join(", ")),
        );
    }
    if errs.len() > start {
        return None;
    }
    Some(DeclaredVariable { value: value?, raw })
}

/// One rule of `inherit:` (`default:` or `variables:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Inherit {
    All,
    Nothing,
    Only(Vec<String>),
}

impl Inherit {
    pub(crate) fn allows(&self, key: &str) -> bool {
        match self {
            Inherit::All => true,
            Inherit::Nothing => false,
            Inherit::Only(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// `inherit:` of a job: the rules for `default:` and the global `variables:`.
pub(crate) fn inherit(node: Option<&Node>, loc: &str, errs: &mut Errors) -> (Inherit, Inherit) {
    let loc = format!("{loc}:inherit");
    let map = match node {
        None | Some(Node::Null) => return (Inherit::All, Inherit::All),
        Some(Node::Map(map)) => map,
        Some(_) => {
            errs.add(&loc, "config should be a hash");
            return (Inherit::All, Inherit::All);
        }
    };
    check_unknown_keys(map, &["default", "variables"], &loc, errs);
    let rule = |key: &str, errs: &mut Errors| match map.get(key) {
        None | Some(Node::Null) | Some(Node::Bool(true)) => Inherit::All,
        Some(Node::Bool(false)) => Inherit::Nothing,
        Some(Node::Seq(items)) => match items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect()
        {
            Some(keys) => Inherit::Only(keys),
            None => {
                errs.add(
                    &format!("{loc}:{key}"),
                    "config should be a boolean value or an array of strings",
                );
                Inherit::All
            }
        },
        Some(_) => {
            errs.add(
                &format!("{loc}:{key}"),
                "config should be a boolean value or an array of strings",
            );
            Inherit::All
        }
    };
    let default = rule("default", errs);
    let variables = rule("variables", errs);
    (default, variables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::yaml::parse;

    fn node(text: &str) -> Node {
        parse(text).unwrap()
    }

    fn errors_of(text: &str) -> Vec<String> {
        let mut errs = Errors::default();
        let secrets = secrets(&node(text), "jobs:j:secrets", &mut errs);
        assert!(secrets.is_empty() || errs.0.is_empty());
        errs.0
    }

    #[test]
    fn humanize_matches_rails() {
        assert_eq!(humanize("secret_id"), "secret");
        assert_eq!(humanize("version_id"), "version");
        assert_eq!(humanize("version_stage"), "version stage");
        assert_eq!(humanize("role_session_name"), "role session name");
        assert_eq!(humanize("azure_object_id"), "azure object");
    }

    #[test]
    fn vault_short_form_edges() {
        let v = vault_short("production/db/password@ops");
        assert_eq!(
            (v.engine.name.as_str(), v.engine.path.as_str()),
            ("kv-v2", "ops")
        );
        assert_eq!(
            (v.path.as_str(), v.field.as_str()),
            ("production/db", "password")
        );
        let v = vault_short("production/db/password");
        assert_eq!(v.engine.path, "kv-v2");
        let v = vault_short("password");
        assert_eq!((v.path.as_str(), v.field.as_str()), ("", "password"));
        let v = vault_short("a/b@");
        assert_eq!(
            (v.engine.path.as_str(), v.path.as_str(), v.field.as_str()),
            ("", "a", "b")
        );
        let v = vault_short("@ops");
        assert_eq!(
            (v.engine.path.as_str(), v.field.as_str()),
            ("kv-v2", "@ops")
        );
        let v = vault_short("a@b/c@d");
        assert_eq!(
            (v.engine.path.as_str(), v.path.as_str(), v.field.as_str()),
            ("d", "a@b", "c")
        );
    }

    #[test]
    fn inherit_rules() {
        let mut errs = Errors::default();
        let n = node("default: [id_tokens]\nvariables: false\n");
        let (d, v) = inherit(Some(&n), "jobs:j", &mut errs);
        assert!(d.allows("id_tokens") && !d.allows("image"));
        assert!(!v.allows("A"));
        assert!(errs.0.is_empty());
        let n = node("default: 3\nfoo: 1\n");
        inherit(Some(&n), "jobs:j", &mut errs);
        assert_eq!(
            errs.0,
            [
                "jobs:j:inherit config contains unknown keys: foo",
                "jobs:j:inherit:default config should be a boolean value or an array of strings",
            ]
        );
    }

    #[test]
    fn a_secret_that_is_a_list_reports_both_errors() {
        assert_eq!(
            errors_of("A: [1]\n"),
            [
                "jobs:j:secrets:A config should be a hash",
                "jobs:j:secrets:A config must use exactly one of these keys: vault, azure_key_vault, gcp_secret_manager, akeyless, gitlab_secrets_manager, aws_secrets_manager",
            ]
        );
    }
}
