//! `coffer_ci::gitlab`: the GitLab documentation's examples (copied
//! verbatim into `fixtures/gitlab/`), GitLab's validation messages, YAML
//! anchors / merges / `extends:` / `default:` / `!reference`, variable
//! expansion, the provider check and JWT selection.

use std::collections::BTreeMap;

use coffer_ci::gitlab::{
    self, AkeylessSecret, AwsSecret, AzureSecret, GcpSecret, GitlabError,
    GitlabSecretsManagerSecret, IdToken, Job, Provider, ProviderKind, Secret, Variables,
    VaultEngine, VaultSecret,
};

const ONE_OF: &str = "config must use exactly one of these keys: vault, azure_key_vault, gcp_secret_manager, akeyless, gitlab_secrets_manager, aws_secrets_manager";

fn env(pairs: &[(&str, &str)]) -> Variables {
    pairs.iter().copied().collect()
}

fn load(text: &str, job: &str) -> Job {
    gitlab::load(text, job, &Variables::new()).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str, job: &str) -> Vec<String> {
    match gitlab::load(text, job, &Variables::new()) {
        Err(GitlabError::Invalid { errors, .. }) => errors,
        other => panic!("expected validation errors, got {other:?}"),
    }
}

fn config_error(text: &str, job: &str) -> String {
    match gitlab::load(text, job, &Variables::new()) {
        Err(GitlabError::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

/// `secrets:` of job `j` with the given body (indented under the secret).
fn with_secret(body: &str) -> String {
    let mut text = String::from("j:\n  secrets:\n    S:\n");
    for line in body.lines() {
        text.push_str("      ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn secret_errors(body: &str) -> Vec<String> {
    errors(&with_secret(body), "j")
}

fn only_secret(job: &Job) -> &Secret {
    assert_eq!(job.secrets.len(), 1, "{:?}", job.secrets);
    &job.secrets[0]
}

fn tokens(pairs: &[(&str, &[&str])]) -> BTreeMap<String, IdToken> {
    pairs
        .iter()
        .map(|(n, aud)| {
            (
                (*n).to_owned(),
                IdToken {
                    aud: aud.iter().map(|a| (*a).to_owned()).collect(),
                },
            )
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

// ------------------------------------------------------------ seed: akeyless

fn akeyless_job(fixture: &str) -> Job {
    load(fixture, "job")
}

fn akeyless_secret(token: Option<&str>, ak: AkeylessSecret) -> Secret {
    Secret {
        var: "DATABASE_PASSWORD".into(),
        file: true,
        token: token.map(str::to_owned),
        provider: Provider::Akeyless(ak),
    }
}

fn named(extra: AkeylessSecret) -> AkeylessSecret {
    AkeylessSecret {
        name: s("secret_name"),
        ..extra
    }
}

#[test]
fn seed_akeyless_jwt_authentication() {
    let job = akeyless_job(include_str!(
        "fixtures/gitlab/akeyless_01_jwt_authentication.yml"
    ));
    assert_eq!(job.name, "job");
    assert_eq!(
        job.id_tokens,
        tokens(&[("AKEYLESS_JWT", &["https://gitlab.com"])])
    );
    assert_eq!(job.default_id_token.as_deref(), Some("AKEYLESS_JWT"));
    assert_eq!(
        job.secrets,
        [akeyless_secret(
            Some("$AKEYLESS_JWT"),
            named(AkeylessSecret::default())
        )]
    );
    assert_eq!(
        job.jwt_reference(&job.secrets[0]).as_deref(),
        Some("$AKEYLESS_JWT")
    );
    assert!(job.variables.is_empty());
}

#[test]
fn seed_akeyless_token() {
    let job = akeyless_job(include_str!(
        "fixtures/gitlab/akeyless_02_akeyless_token.yml"
    ));
    let expected = named(AkeylessSecret {
        akeyless_token: s("<akeyless_token>"),
        ..Default::default()
    });
    assert_eq!(job.secrets, [akeyless_secret(None, expected)]);
    assert!(job.id_tokens.is_empty());
    // No `token:`: Akeyless gets no JWT.
    assert_eq!(job.jwt_reference(&job.secrets[0]), None);
}

#[test]
fn seed_akeyless_access_types() {
    let cases: [(&str, AkeylessSecret); 6] = [
        (
            include_str!("fixtures/gitlab/akeyless_03_aws_iam.yml"),
            AkeylessSecret {
                akeyless_access_type: s("aws_iam"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_04_azure_ad.yml"),
            AkeylessSecret {
                akeyless_access_type: s("azure_ad"),
                azure_object_id: s("azure_object_id"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_05_gcp.yml"),
            AkeylessSecret {
                akeyless_access_type: s("gcp"),
                gcp_audience: s("gcp_audience"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_06_universal_identity.yml"),
            AkeylessSecret {
                akeyless_access_type: s("universal_identity"),
                uid_token: s("uid_token"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_07_k8s.yml"),
            AkeylessSecret {
                akeyless_access_type: s("k8s"),
                k8s_service_account_token: s("k8s_service_account_token"),
                k8s_auth_config_name: s("k8s_auth_config_name"),
                akeyless_api_url: s("akeyless_api_url"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_08_api_key.yml"),
            AkeylessSecret {
                akeyless_access_type: s("api_key"),
                akeyless_access_key: s("<Access Key>"),
                ..Default::default()
            },
        ),
    ];
    for (fixture, expected) in cases {
        let job = akeyless_job(fixture);
        assert_eq!(job.secrets, [akeyless_secret(None, named(expected))]);
    }
}

#[test]
fn seed_akeyless_jwt_reuse_null_akeyless_is_a_token_secret() {
    let job = akeyless_job(include_str!("fixtures/gitlab/akeyless_09_jwt_reuse.yml"));
    assert_eq!(
        job.secrets,
        [Secret {
            var: "AKEYLESS_TOKEN".into(),
            file: true,
            token: s("$AKEYLESS_JWT"),
            provider: Provider::Akeyless(AkeylessSecret::default()),
        }]
    );
    let vars = job.expansion_variables(&env(&[("AKEYLESS_JWT", "eyJ.jwt")]));
    assert_eq!(job.jwt(&job.secrets[0], &vars).as_deref(), Some("eyJ.jwt"));
}

#[test]
fn seed_akeyless_data_key_and_certificates_and_gateway() {
    let cases: [(&str, AkeylessSecret); 4] = [
        (
            include_str!("fixtures/gitlab/akeyless_10_fetch_a_json_secret.yml"),
            AkeylessSecret {
                data_key: s("imp"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_11_ssh.yml"),
            AkeylessSecret {
                cert_user_name: s("cert_user_name"),
                public_key_data: s("public_key_data"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_12_issue_certificate.yml"),
            AkeylessSecret {
                public_key_data: s("public_key_data"),
                ..Default::default()
            },
        ),
        (
            include_str!("fixtures/gitlab/akeyless_13_work_with_a_gateway.yml"),
            AkeylessSecret {
                akeyless_api_url: s("http://gateway_url:8080/v2"),
                gateway_ca_certificate: s("ca_certificate"),
                ..Default::default()
            },
        ),
    ];
    for (fixture, expected) in cases {
        let job = akeyless_job(fixture);
        assert_eq!(
            job.id_tokens,
            tokens(&[("AKEYLESS_JWT", &["https://gitlab.com"])])
        );
        assert_eq!(
            job.secrets,
            [akeyless_secret(Some("$AKEYLESS_JWT"), named(expected))]
        );
    }
}

#[test]
fn seed_akeyless_provider_check_needs_the_access_id() {
    let job = akeyless_job(include_str!(
        "fixtures/gitlab/akeyless_01_jwt_authentication.yml"
    ));
    let err = job.check_providers(&Variables::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The secrets provider can not be found. Check your CI/CD variables and try again. \
         akeyless (used by DATABASE_PASSWORD) needs AKEYLESS_ACCESS_ID"
    );
    job.check_providers(&env(&[("AKEYLESS_ACCESS_ID", "p-abc")]))
        .unwrap();
}

// ------------------------------------------------------------------ seed: aws

fn aws_secret(var: &str, token: Option<&str>, aws: AwsSecret) -> Secret {
    Secret {
        var: var.into(),
        file: false,
        token: token.map(str::to_owned),
        provider: Provider::Aws(aws),
    }
}

fn db_password() -> AwsSecret {
    AwsSecret {
        secret_id: "app-secrets/database".into(),
        field: s("password"),
        ..Default::default()
    }
}

#[test]
fn seed_aws_iam_role() {
    let job = load(
        include_str!("fixtures/gitlab/aws_01_with_iam_role_authentication.yml"),
        "database-migration",
    );
    assert_eq!(
        job.secrets,
        [aws_secret("DATABASE_PASSWORD", None, db_password())]
    );
    assert!(job.id_tokens.is_empty());
    assert_eq!(
        job.variables,
        BTreeMap::from([("AWS_REGION".into(), "us-east-1".into())])
    );
    // AWS_REGION comes from the YAML's global variables.
    let vars = job.expansion_variables(&Variables::new());
    job.check_providers(&vars).unwrap();
    assert_eq!(
        job.jwt_reference(&job.secrets[0]).as_deref(),
        Some("$AWS_ID_TOKEN")
    );
}

#[test]
fn seed_aws_openid_connect_default_token() {
    let job = load(
        include_str!("fixtures/gitlab/aws_02_with_openid_connect_authentication.yml"),
        "database-migration",
    );
    assert_eq!(
        job.secrets,
        [aws_secret("DATABASE_PASSWORD", None, db_password())]
    );
    assert_eq!(
        job.id_tokens,
        tokens(&[("AWS_ID_TOKEN", &["sts.amazonaws.com"])])
    );
    assert_eq!(
        job.variables,
        BTreeMap::from([
            ("AWS_REGION".into(), "us-east-1".into()),
            (
                "AWS_ROLE_ARN".into(),
                "arn:aws:iam::123456789012:role/gitlab-secrets-role".into()
            ),
        ])
    );
    let vars = job.expansion_variables(&env(&[("AWS_ID_TOKEN", "jwt-value")]));
    assert_eq!(
        job.jwt(&job.secrets[0], &vars).as_deref(),
        Some("jwt-value")
    );
}

#[test]
fn seed_aws_custom_token() {
    let job = load(
        include_str!("fixtures/gitlab/aws_03_custom_token.yml"),
        "database-migration",
    );
    assert_eq!(
        job.secrets,
        [aws_secret(
            "DATABASE_PASSWORD",
            Some("$CUSTOM_AWS_TOKEN"),
            db_password()
        )]
    );
    assert_eq!(
        job.id_tokens,
        tokens(&[("CUSTOM_AWS_TOKEN", &["sts.amazonaws.com"])])
    );
    assert_eq!(
        job.jwt_reference(&job.secrets[0]).as_deref(),
        Some("$CUSTOM_AWS_TOKEN")
    );
}

#[test]
fn seed_aws_short_form() {
    let job = load(
        include_str!("fixtures/gitlab/aws_04_short_form_syntax.yml"),
        "api-deployment",
    );
    assert_eq!(
        job.secrets,
        [
            aws_secret(
                "API_KEY",
                None,
                AwsSecret {
                    secret_id: "app-secrets/api".into(),
                    field: s("api_key"),
                    ..Default::default()
                }
            ),
            aws_secret(
                "FULL_SECRET",
                None,
                AwsSecret {
                    secret_id: "app-secrets/api".into(),
                    ..Default::default()
                }
            ),
        ]
    );
}

#[test]
fn seed_aws_versioning() {
    let job = load(
        include_str!("fixtures/gitlab/aws_05_secret_versioning.yml"),
        "production-deployment",
    );
    let base = AwsSecret {
        secret_id: "prod-app-secrets/database".into(),
        field: s("password"),
        ..Default::default()
    };
    assert_eq!(
        job.secrets,
        [
            aws_secret(
                "DATABASE_PASSWORD",
                None,
                AwsSecret {
                    version_stage: s("AWSCURRENT"),
                    ..base.clone()
                }
            ),
            aws_secret(
                "STAGING_DATABASE_PASSWORD",
                None,
                AwsSecret {
                    version_id: s("01234567-89ab-cdef-0123-456789abcdef"),
                    ..base
                }
            ),
        ]
    );
}

#[test]
fn seed_aws_cross_account() {
    let job = load(
        include_str!("fixtures/gitlab/aws_06_cross_account_secret_access.yml"),
        "cross-account-deployment",
    );
    assert_eq!(
        job.secrets,
        [aws_secret(
            "SHARED_API_KEY",
            None,
            AwsSecret {
                secret_id:
                    "arn:aws:secretsmanager:us-east-1:987654321098:secret:shared-api-keys-AbCdEf"
                        .into(),
                field: s("production_key"),
                ..Default::default()
            }
        )]
    );
    assert_eq!(
        job.id_tokens,
        tokens(&[("AWS_ID_TOKEN", &["sts.amazonaws.com"])])
    );
}

#[test]
fn seed_aws_per_secret_overrides() {
    let job = load(
        include_str!("fixtures/gitlab/aws_07_per_secret_configuration_overrides.yml"),
        "multi-region-deployment",
    );
    let eu = aws_secret(
        "EU_DATABASE_PASSWORD",
        Some("$EU_AWS_TOKEN"),
        AwsSecret {
            secret_id: "eu-app-secrets/database".into(),
            field: s("password"),
            region: s("eu-west-1"),
            role_arn: s("arn:aws:iam::123456789012:role/eu-deployment-role"),
            role_session_name: s("gitlab-eu-deployment"),
            ..Default::default()
        },
    );
    let us = aws_secret(
        "US_DATABASE_PASSWORD",
        None,
        AwsSecret {
            secret_id: "us-app-secrets/database".into(),
            field: s("password"),
            ..Default::default()
        },
    );
    assert_eq!(job.secrets, [eu, us]);
    assert_eq!(
        job.id_tokens,
        tokens(&[
            ("AWS_ID_TOKEN", &["sts.amazonaws.com"]),
            ("EU_AWS_TOKEN", &["sts.amazonaws.com"])
        ])
    );
    // Each secret keeps its own token (GitLab would reuse the first one's).
    let vars = job.expansion_variables(&env(&[
        ("AWS_ID_TOKEN", "us-jwt"),
        ("EU_AWS_TOKEN", "eu-jwt"),
    ]));
    assert_eq!(job.jwt(&job.secrets[0], &vars).as_deref(), Some("eu-jwt"));
    assert_eq!(job.jwt(&job.secrets[1], &vars).as_deref(), Some("us-jwt"));
}

// ---------------------------------------------------------------- seed: azure

#[test]
fn seed_azure_key_vault() {
    let job = load(
        include_str!("fixtures/gitlab/azure_01_use_azure_key_vault_secrets_in_a_ci_cd_job.yml"),
        "job",
    );
    assert_eq!(
        job.secrets,
        [Secret {
            var: "DATABASE_PASSWORD".into(),
            file: true,
            token: s("$AZURE_JWT"),
            provider: Provider::Azure(AzureSecret {
                name: "test".into(),
                version: s("00000000000000000000000000000000"),
            }),
        }]
    );
    assert_eq!(
        job.id_tokens,
        tokens(&[("AZURE_JWT", &["https://gitlab.com"])])
    );
    let err = job.check_providers(&Variables::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The secrets provider can not be found. Check your CI/CD variables and try again. \
         azure_key_vault (used by DATABASE_PASSWORD) needs AZURE_KEY_VAULT_SERVER_URL, AZURE_CLIENT_ID, AZURE_TENANT_ID"
    );
    let configured = env(&[
        ("AZURE_KEY_VAULT_SERVER_URL", "https://v.vault.azure.net"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_TENANT_ID", "t"),
    ]);
    job.check_providers(&configured).unwrap();
}

// ------------------------------------------------------ validation: secrets

#[test]
fn unknown_keys_are_listed() {
    let text = "deploy:\n  secrets:\n    DATABASE_PASSWORD:\n      vault: a/b\n      foo: 1\n      bar: 2\n";
    assert_eq!(
        errors(text, "deploy"),
        ["jobs:deploy:secrets:DATABASE_PASSWORD config contains unknown keys: foo, bar"]
    );
}

#[test]
fn secrets_must_be_a_hash() {
    assert_eq!(
        errors("j:\n  secrets: [a]\n", "j"),
        ["jobs:j:secrets config should be a hash"]
    );
    assert_eq!(
        errors("j:\n  secrets:\n    S: vault-path\n", "j"),
        [
            "jobs:j:secrets:S config should be a hash".to_owned(),
            format!("jobs:j:secrets:S {ONE_OF}")
        ]
    );
}

#[test]
fn exactly_one_provider() {
    let one_of = vec![format!("jobs:j:secrets:S {ONE_OF}")];
    assert_eq!(secret_errors("file: false"), one_of);
    assert_eq!(secret_errors("vault: a/b\naws_secrets_manager: x"), one_of);
    // A null secret is `{}`.
    assert_eq!(errors("j:\n  secrets:\n    S:\n", "j"), one_of);
}

#[test]
fn token_and_file_types() {
    assert_eq!(
        secret_errors("vault: a/b\ntoken: [x]\nfile: 'yes please'"),
        [
            "jobs:j:secrets:S token should be a string",
            "jobs:j:secrets:S:file config should be a boolean value",
        ]
    );
    // YAML 1.1 booleans are booleans, as for Psych.
    let job = load(&with_secret("vault: a/b\nfile: no"), "j");
    assert!(!only_secret(&job).file);
}

#[test]
fn gcp_requires_a_token() {
    assert_eq!(
        secret_errors("gcp_secret_manager:\n  name: n"),
        ["jobs:j:secrets:S token is required with gcp secrets manager"]
    );
    assert_eq!(
        secret_errors("gcp_secret_manager:\n  name: n\ntoken: ''"),
        ["jobs:j:secrets:S token is required with gcp secrets manager"]
    );
    let job = load(
        &with_secret("gcp_secret_manager:\n  name: n\ntoken: $GCP_ID"),
        "j",
    );
    let secret = only_secret(&job);
    assert_eq!(
        secret.provider,
        Provider::Gcp(GcpSecret {
            name: "n".into(),
            version: "latest".into(),
        })
    );
    assert_eq!(job.jwt_reference(secret).as_deref(), Some("$GCP_ID"));
}

#[test]
fn gcp_version_is_alphanumeric() {
    let job = load(
        &with_secret("gcp_secret_manager:\n  name: n\n  version: 3\ntoken: $T"),
        "j",
    );
    let Provider::Gcp(gcp) = &only_secret(&job).provider else {
        panic!()
    };
    assert_eq!(gcp.version, "3");
    assert_eq!(
        secret_errors("gcp_secret_manager:\n  name: n\n  version: 1.5\ntoken: $T"),
        ["jobs:j:secrets:S:gcp_secret_manager version must be an alphanumeric string"]
    );
    assert_eq!(
        secret_errors("gcp_secret_manager:\n  version: 1\n  extra: x\ntoken: $T"),
        [
            "jobs:j:secrets:S:gcp_secret_manager config contains unknown keys: extra",
            "jobs:j:secrets:S:gcp_secret_manager name can't be blank",
            "jobs:j:secrets:S:gcp_secret_manager name should be a string",
        ]
    );
}

#[test]
fn vault_short_and_long_forms() {
    let job = load(&with_secret("vault: production/db/password@ops"), "j");
    assert_eq!(
        only_secret(&job).provider,
        Provider::Vault(VaultSecret {
            engine: VaultEngine {
                name: "kv-v2".into(),
                path: "ops".into(),
            },
            path: "production/db".into(),
            field: "password".into(),
        })
    );
    let job = load(
        &with_secret("vault:\n  engine: {name: kv-v1, path: secret}\n  path: p/q\n  field: f"),
        "j",
    );
    assert_eq!(
        only_secret(&job).provider,
        Provider::Vault(VaultSecret {
            engine: VaultEngine {
                name: "kv-v1".into(),
                path: "secret".into(),
            },
            path: "p/q".into(),
            field: "f".into(),
        })
    );
}

#[test]
fn vault_errors() {
    assert_eq!(
        secret_errors("vault: ''"),
        ["jobs:j:secrets:S:vault config can't be blank"]
    );
    assert_eq!(
        secret_errors("vault: 12"),
        ["jobs:j:secrets:S:vault should be a hash or a string"]
    );
    assert_eq!(
        secret_errors("vault:\n  path: 1\n  other: x"),
        [
            "jobs:j:secrets:S:vault config contains unknown keys: other",
            "jobs:j:secrets:S:vault path should be a string",
            "jobs:j:secrets:S:vault field can't be blank",
            "jobs:j:secrets:S:vault field should be a string",
            "jobs:j:secrets:S:vault engine can't be blank",
            "jobs:j:secrets:S:vault engine should be a hash",
        ]
    );
    assert_eq!(
        secret_errors("vault:\n  engine: {name: kv-v2}\n  path: p\n  field: f"),
        [
            "jobs:j:secrets:S:vault:engine config missing required keys: path",
            "jobs:j:secrets:S:vault:engine path can't be blank",
            "jobs:j:secrets:S:vault:engine path should be a string",
        ]
    );
}

#[test]
fn aws_short_form_split_semantics() {
    let aws_of = |value: &str| {
        let job = load(
            &with_secret(&format!("aws_secrets_manager: '{value}'")),
            "j",
        );
        let Provider::Aws(aws) = only_secret(&job).provider.clone() else {
            panic!()
        };
        (aws.secret_id, aws.field)
    };
    assert_eq!(aws_of("app/api#api_key"), ("app/api".into(), s("api_key")));
    assert_eq!(aws_of("app/api"), ("app/api".into(), None));
    // Ruby `split('#')` drops the trailing empty part.
    assert_eq!(aws_of("x#"), ("x".into(), None));
    assert_eq!(aws_of("#f"), (String::new(), s("f")));
    assert_eq!(
        secret_errors("aws_secrets_manager: 'a#b#c'"),
        ["jobs:j:secrets:S:aws_secrets_manager config must contain at most one '#'"]
    );
    assert_eq!(
        secret_errors("aws_secrets_manager: ' '"),
        ["jobs:j:secrets:S:aws_secrets_manager config can't be blank"]
    );
    assert_eq!(
        secret_errors("aws_secrets_manager: [a]"),
        ["jobs:j:secrets:S:aws_secrets_manager should be a hash or a string"]
    );
}

#[test]
fn aws_hash_form_errors() {
    let loc = "jobs:j:secrets:S:aws_secrets_manager";
    assert_eq!(
        secret_errors("aws_secrets_manager:\n  secret_id: ''"),
        [format!("{loc} secret can't be blank")]
    );
    assert_eq!(
        secret_errors("aws_secrets_manager:\n  region: eu-west-1"),
        [
            format!("{loc} secret should be a string"),
            format!("{loc} secret can't be blank")
        ]
    );
    assert_eq!(
        secret_errors("aws_secrets_manager:\n  secret_id: s\n  foo: bar"),
        [format!("{loc} config contains unknown keys: foo")]
    );
    assert_eq!(
        secret_errors(
            "aws_secrets_manager:\n  secret_id: 1\n  version_id: 2.0\n  version_stage: true\n  field: false\n  region: {}\n  role_arn: []\n  role_session_name: 5"
        ),
        [
            format!("{loc} secret should be a string"),
            format!("{loc} region should be a string"),
            format!("{loc} version should be a string"),
            format!("{loc} version stage should be a string"),
            format!("{loc} role arn should be a string"),
            format!("{loc} role session name should be a string"),
            format!("{loc} field should be a string"),
        ]
    );
}

#[test]
fn aws_version_id_and_stage_together_are_refused() {
    assert_eq!(
        secret_errors(
            "aws_secrets_manager:\n  secret_id: s\n  version_id: v1\n  version_stage: AWSCURRENT"
        ),
        [
            "jobs:j:secrets:S:aws_secrets_manager version_id and version_stage cannot be used together: set only one of them"
        ]
    );
}

#[test]
fn azure_errors() {
    let loc = "jobs:j:secrets:S:azure_key_vault";
    assert_eq!(
        secret_errors("azure_key_vault:\n  version: 1\n  label: x"),
        [
            format!("{loc} config contains unknown keys: label"),
            format!("{loc} name can't be blank"),
            format!("{loc} name should be a string"),
            format!("{loc} version should be a string"),
        ]
    );
    assert_eq!(
        secret_errors("azure_key_vault: name"),
        [format!("{loc} config should be a hash")]
    );
    // GitLab drops a null provider silently; here it is an error.
    assert_eq!(
        secret_errors("azure_key_vault:"),
        [format!("{loc} config should be a hash")]
    );
    let job = load(&with_secret("azure_key_vault:\n  name: n"), "j");
    assert_eq!(
        only_secret(&job).provider,
        Provider::Azure(AzureSecret {
            name: "n".into(),
            version: None,
        })
    );
}

#[test]
fn gitlab_secrets_manager_form() {
    let job = load(
        &with_secret("gitlab_secrets_manager:\n  name: DB\n  source: group/a/b"),
        "j",
    );
    assert_eq!(
        only_secret(&job).provider,
        Provider::GitlabSecretsManager(GitlabSecretsManagerSecret {
            name: "DB".into(),
            source: s("group/a/b"),
        })
    );
    assert_eq!(
        secret_errors("gitlab_secrets_manager:\n  name: DB\n  source: elsewhere"),
        [
            "jobs:j:secrets:S:gitlab_secrets_manager source must follow the format group/group_full_path or 'project'"
        ]
    );
}

#[test]
fn akeyless_errors() {
    let loc = "jobs:j:secrets:S:akeyless";
    assert_eq!(
        secret_errors(
            "akeyless:\n  name: n\n  access_id: x\n  data_key: 1\n  azure_object_id: [1]"
        ),
        [
            format!("{loc} config contains unknown keys: access_id"),
            format!("{loc} data key should be a string"),
            format!("{loc} azure object should be a string"),
        ]
    );
    assert_eq!(
        secret_errors("akeyless: x"),
        [format!("{loc} config should be a hash")]
    );
}

#[test]
fn all_errors_are_collected_across_secrets_and_id_tokens() {
    let text = "\
deploy:
  id_tokens:
    A: {aud: 1}
    B: {foo: x}
    C: x
  secrets:
    ONE: {vault: '', foo: 1}
    TWO: {aws_secrets_manager: {region: 1}}
    THREE: {azure_key_vault: {name: n}, file: 1}
";
    assert_eq!(
        errors(text, "deploy"),
        [
            "jobs:deploy:id_tokens:A aud should be an array of strings or a string",
            "jobs:deploy:id_tokens:B config missing required keys: aud",
            "jobs:deploy:id_tokens:B config contains unknown keys: foo",
            "jobs:deploy:id_tokens:B aud should be an array of strings or a string",
            "jobs:deploy:id_tokens:C config missing required keys: aud",
            "jobs:deploy:id_tokens:C aud should be an array of strings or a string",
            "jobs:deploy:secrets:ONE config contains unknown keys: foo",
            "jobs:deploy:secrets:ONE:vault config can't be blank",
            "jobs:deploy:secrets:TWO:aws_secrets_manager secret should be a string",
            "jobs:deploy:secrets:TWO:aws_secrets_manager secret can't be blank",
            "jobs:deploy:secrets:TWO:aws_secrets_manager region should be a string",
            "jobs:deploy:secrets:THREE:file config should be a boolean value",
        ]
    );
    let err = gitlab::load(text, "deploy", &Variables::new()).unwrap_err();
    assert_eq!(err.validation_errors().len(), 12);
    assert!(
        err.to_string()
            .starts_with("job `deploy` is invalid:\n  jobs:deploy:id_tokens:A")
    );
}

#[test]
fn id_tokens_shapes() {
    let job = load(
        "j:\n  id_tokens:\n    ONE: {aud: a}\n    TWO: {aud: [b, c]}\n",
        "j",
    );
    assert_eq!(
        job.id_tokens,
        tokens(&[("ONE", &["a"]), ("TWO", &["b", "c"])])
    );
    assert_eq!(
        errors("j:\n  id_tokens: [a]\n", "j"),
        ["jobs:j:id_tokens config should be a hash"]
    );
    let vars = env(&[("AUD", "https://vault.example")]);
    let job = load("j:\n  id_tokens:\n    T: {aud: ['$AUD', x]}\n", "j");
    assert_eq!(
        job.id_tokens["T"].audiences(&vars),
        ["https://vault.example", "x"]
    );
}

#[test]
fn secrets_are_sorted_by_variable() {
    let job = load(
        "j:\n  secrets:\n    Z: {vault: a/z}\n    A: {vault: a/a}\n    M: {vault: a/m}\n",
        "j",
    );
    let vars: Vec<&str> = job.secrets.iter().map(|s| s.var.as_str()).collect();
    assert_eq!(vars, ["A", "M", "Z"]);
    assert_eq!(job.secret("M").map(|s| s.var.as_str()), Some("M"));
}

// --------------------------------------------- anchors, merges, extends, …

#[test]
fn anchors_and_merge_keys() {
    let text = "\
.aws: &aws
  secret_id: app/db
  region: eu-west-1
j:
  secrets:
    A:
      aws_secrets_manager:
        <<: *aws
        field: password
    B:
      aws_secrets_manager: *aws
      file: false
";
    let job = load(text, "j");
    let base = AwsSecret {
        secret_id: "app/db".into(),
        region: s("eu-west-1"),
        ..Default::default()
    };
    assert_eq!(
        job.secrets,
        [
            Secret {
                var: "A".into(),
                file: true,
                token: None,
                provider: Provider::Aws(AwsSecret {
                    field: s("password"),
                    ..base.clone()
                }),
            },
            Secret {
                var: "B".into(),
                file: false,
                token: None,
                provider: Provider::Aws(base),
            },
        ]
    );
}

#[test]
fn alias_bombs_are_refused() {
    let text = "\
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
j: {secrets: {}}
";
    match gitlab::load(text, "j", &Variables::new()) {
        Err(GitlabError::Yaml(message)) => assert!(message.contains("budget"), "{message}"),
        other => panic!("alias bomb accepted: {other:?}"),
    }
}

#[test]
fn invalid_yaml_names_the_line() {
    match gitlab::load("j:\n  secrets: [unclosed\n", "j", &Variables::new()) {
        Err(GitlabError::Yaml(message)) => assert!(message.contains("line 2"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        gitlab::load("", "j", &Variables::new()),
        Err(GitlabError::Empty)
    ));
    assert!(matches!(
        gitlab::load("- a\n", "j", &Variables::new()),
        Err(GitlabError::NotAMapping)
    ));
}

#[test]
fn extends_single_list_and_multi_level_with_deep_merge() {
    let text = "\
.vault:
  id_tokens:
    VAULT_ID: {aud: https://vault}
  secrets:
    DB:
      vault: {engine: {name: kv-v2, path: kv}, path: db, field: password}
.base:
  extends: .vault
  secrets:
    API:
      vault: api/key
deploy:
  extends: [.base]
  secrets:
    DB:
      vault: {field: user}
      file: false
single:
  extends: .vault
";
    let job = load(text, "deploy");
    assert_eq!(job.id_tokens, tokens(&[("VAULT_ID", &["https://vault"])]));
    assert_eq!(
        job.secrets,
        [
            Secret {
                var: "API".into(),
                file: true,
                token: None,
                provider: Provider::Vault(VaultSecret {
                    engine: VaultEngine {
                        name: "kv-v2".into(),
                        path: "kv-v2".into(),
                    },
                    path: "api".into(),
                    field: "key".into(),
                }),
            },
            // The child's `field` and `file` win; the rest comes from `.vault`.
            Secret {
                var: "DB".into(),
                file: false,
                token: None,
                provider: Provider::Vault(VaultSecret {
                    engine: VaultEngine {
                        name: "kv-v2".into(),
                        path: "kv".into(),
                    },
                    path: "db".into(),
                    field: "user".into(),
                }),
            },
        ]
    );
    let job = load(text, "single");
    assert_eq!(job.secrets.len(), 1);
    assert_eq!(
        job.jwt_reference(&job.secrets[0]).as_deref(),
        Some("$VAULT_ID")
    );
}

#[test]
fn extends_loops_and_unknown_bases_are_reported() {
    assert_eq!(
        config_error(
            "deploy:\n  extends: .a\n.a:\n  extends: .b\n.b:\n  extends: [.a]\n",
            "deploy"
        ),
        ".a: circular dependency detected in `extends` (deploy -> .a -> .b -> .a)"
    );
    assert_eq!(
        config_error(
            "include: other.yml\ndeploy:\n  extends: .from-include\n",
            "deploy"
        ),
        "deploy: unknown keys in `extends` (.from-include); the file uses `include:`, which coffer ci does not follow"
    );
}

#[test]
fn extending_a_provider_key_with_another_one_is_two_providers() {
    let text = "\
.base:
  secrets:
    S: {vault: a/b}
j:
  extends: .base
  secrets:
    S: {aws_secrets_manager: x}
";
    assert_eq!(errors(text, "j"), [format!("jobs:j:secrets:S {ONE_OF}")]);
}

#[test]
fn default_provides_id_tokens_only() {
    let text = "\
default:
  id_tokens:
    DEFAULT_ID: {aud: d}
plain:
  secrets:
    S: {vault: a/b}
own:
  id_tokens:
    OWN_ID: {aud: o}
no_inherit:
  inherit:
    default: false
only_listed:
  inherit:
    default: [id_tokens]
other_listed:
  inherit:
    default: [image, tags]
";
    assert_eq!(
        load(text, "plain").id_tokens,
        tokens(&[("DEFAULT_ID", &["d"])])
    );
    let plain = load(text, "plain");
    assert_eq!(
        plain.jwt_reference(&plain.secrets[0]).as_deref(),
        Some("$DEFAULT_ID")
    );
    assert_eq!(load(text, "own").id_tokens, tokens(&[("OWN_ID", &["o"])]));
    assert!(load(text, "no_inherit").id_tokens.is_empty());
    assert_eq!(
        load(text, "only_listed").id_tokens,
        tokens(&[("DEFAULT_ID", &["d"])])
    );
    assert!(load(text, "other_listed").id_tokens.is_empty());
}

#[test]
fn default_cannot_hold_secrets_and_reports_its_own_location() {
    let text =
        "default:\n  secrets:\n    S: {vault: a/b}\n  id_tokens:\n    T: {}\nj:\n  script: [x]\n";
    assert_eq!(
        errors(text, "j"),
        [
            "default config contains unknown keys: secrets",
            "default:id_tokens:T config missing required keys: aud",
            "default:id_tokens:T aud should be an array of strings or a string",
        ]
    );
}

#[test]
fn references_anywhere() {
    let text = "\
.tokens:
  id_tokens:
    REF_ID: {aud: r}
.secrets:
  common:
    A: {vault: a/a}
  token: $REF_ID
  aws: {secret_id: x}
.vars:
  variables:
    REGION: eu-west-1
j:
  id_tokens: !reference [.tokens, id_tokens]
  variables: !reference [.vars, variables]
  secrets:
    A: !reference [.secrets, common, A]
    B:
      aws_secrets_manager: !reference [.secrets, aws]
      token: !reference [.secrets, token]
";
    let job = load(text, "j");
    assert_eq!(job.id_tokens, tokens(&[("REF_ID", &["r"])]));
    assert_eq!(
        job.variables,
        BTreeMap::from([("REGION".into(), "eu-west-1".into())])
    );
    assert_eq!(job.secrets[0].var, "A");
    assert_eq!(job.secrets[1].token.as_deref(), Some("$REF_ID"));
    assert_eq!(
        job.secrets[1].provider,
        Provider::Aws(AwsSecret {
            secret_id: "x".into(),
            ..Default::default()
        })
    );
}

#[test]
fn whole_secrets_block_by_reference_through_extends() {
    let text = "\
.base:
  secrets:
    S: {azure_key_vault: {name: n}}
.child:
  extends: .base
j:
  secrets: !reference [.child, secrets]
";
    let job = load(text, "j");
    assert_eq!(job.secrets[0].var, "S");
}

#[test]
fn reference_errors() {
    assert_eq!(
        config_error("j:\n  secrets: !reference [.missing, secrets]\n", "j"),
        r#"!reference [".missing", "secrets"] could not be found"#
    );
    assert_eq!(
        config_error(
            ".a:\n  s: !reference [j, secrets]\nj:\n  secrets: !reference [.a, s]\n",
            "j"
        ),
        r#"!reference [".a", "s"] is part of a circular chain"#
    );
}

#[test]
fn missing_job_lists_the_jobs() {
    let text =
        "variables: {A: 1}\n.hidden: {script: [x]}\nbuild: {script: [x]}\ndeploy: {script: [x]}\n";
    let err = gitlab::load(text, "depoly", &Variables::new()).unwrap_err();
    let GitlabError::JobNotFound { jobs, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(jobs, &["build", "deploy"]);
    assert_eq!(
        err.to_string(),
        "no job named `depoly`; the jobs are: build, deploy"
    );
    let err = gitlab::load(text, ".hidden", &Variables::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no job named `.hidden` (a name starting with `.` is a hidden job: a template that never runs); the jobs are: build, deploy"
    );
    let err = gitlab::load(text, "variables", &Variables::new()).unwrap_err();
    assert!(err.to_string().contains("GitLab keyword"), "{err}");
}

#[test]
fn spec_header_is_skipped() {
    let text =
        "spec:\n  inputs:\n    stage: {default: test}\n---\nj:\n  secrets:\n    S: {vault: a/b}\n";
    assert_eq!(load(text, "j").secrets.len(), 1);
}

// ----------------------------------------------------------------- variables

#[test]
fn global_variables_under_job_variables() {
    let text = "\
variables:
  GLOBAL: g
  SHARED: global
  DESCRIBED: {value: dv, description: shown in the run form}
  NUMBER: 42
  CHOICE: {value: [first, second], options: [first, second]}
j:
  variables:
    SHARED: job
    OWN: '$GLOBAL-$SHARED'
    RAW: {value: '$GLOBAL', expand: false}
";
    let job = load(text, "j");
    assert_eq!(
        job.variables,
        BTreeMap::from([
            ("GLOBAL".into(), "g".into()),
            ("SHARED".into(), "job".into()),
            ("DESCRIBED".into(), "dv".into()),
            ("NUMBER".into(), "42".into()),
            ("CHOICE".into(), "first".into()),
            ("OWN".into(), "g-job".into()),
            ("RAW".into(), "$GLOBAL".into()),
        ])
    );
}

#[test]
fn ci_cd_variables_override_yaml_variables() {
    let text = "variables:\n  AWS_REGION: us-east-1\n  URL: https://$HOST/x\nj:\n  script: [x]\n";
    let env = env(&[
        ("AWS_REGION", "eu-west-1"),
        ("HOST", "h.example"),
        ("PRICE", "5$"),
    ]);
    let job = gitlab::load(text, "j", &env).unwrap();
    assert_eq!(job.variables["AWS_REGION"], "eu-west-1");
    assert_eq!(job.variables["URL"], "https://h.example/x");
    let vars = job.expansion_variables(&env);
    assert_eq!(vars.get("AWS_REGION"), Some("eu-west-1"));
    // Values from the environment are used as they are, never expanded.
    assert_eq!(vars.get("PRICE"), Some("5$"));
}

#[test]
fn inherit_variables() {
    let text = "variables:\n  A: a\n  B: b\nnone:\n  inherit: {variables: false}\nsome:\n  inherit: {variables: [B]}\n";
    assert!(load(text, "none").variables.is_empty());
    assert_eq!(
        load(text, "some").variables,
        BTreeMap::from([("B".into(), "b".into())])
    );
}

#[test]
fn variable_errors() {
    let text = "\
variables: [a]
j:
  variables:
    FLOAT: 1.5
    FLAG: true
    DESCRIBED: {value: x, description: job level}
    BAD_EXPAND: {value: x, expand: 'no'}
    LIST: {value: [a]}
";
    assert_eq!(
        errors(text, "j"),
        [
            "variables config should be a hash of key value pairs",
            "jobs:j:variables:FLOAT variable definition must be either a string or a hash",
            "jobs:j:variables:FLAG variable definition must be either a string or a hash",
            "jobs:j:variables:DESCRIBED config uses invalid data keys: description",
            "jobs:j:variables:BAD_EXPAND config expand should be a boolean value",
            "jobs:j:variables:LIST config value must be an alphanumeric string",
        ]
    );
}

// ----------------------------------------------------------------- expansion

#[test]
fn expansion_edge_cases() {
    let vars = env(&[("X", "ex"), ("EMPTY", "")]);
    assert_eq!(vars.expand("$$"), "$");
    assert_eq!(vars.expand("$$X"), "$X");
    assert_eq!(vars.expand("${X}y"), "exy");
    assert_eq!(vars.expand("$Xy"), "");
    assert_eq!(vars.expand("a/$UNKNOWN/b"), "a//b");
    assert_eq!(vars.expand("${UNKNOWN}"), "");
    assert_eq!(vars.expand("cost: 5$"), "cost: 5$");
    assert_eq!(gitlab::expand("$A", |n| (n == "A").then_some("a")), "a");
}

#[test]
fn expanded_follows_the_runner_table() {
    let text = "\
j:
  secrets:
    AK:
      token: $JWT
      akeyless:
        name: $NAME
        data_key: ${KEY}
        akeyless_api_url: $URL
        akeyless_access_type: $TYPE
        akeyless_token: $TOKEN
        akeyless_access_key: $ACCESS_KEY
        uid_token: $UID
        gateway_ca_certificate: $CA
    AWS:
      aws_secrets_manager:
        secret_id: $NAME
        field: $KEY
        region: $REGION
        version_stage: $$STAGE
        role_arn: $ARN
        role_session_name: $SESSION
    AZ:
      azure_key_vault: {name: $NAME, version: $VERSION}
    GL:
      gitlab_secrets_manager: {name: $NAME}
    V:
      vault: {engine: {name: $ENGINE, path: $MOUNT}, path: $NAME, field: $KEY}
    G:
      gcp_secret_manager: {name: $NAME, version: $VERSION}
      token: $JWT
";
    let job = load(text, "j");
    let vars = env(&[
        ("NAME", "n"),
        ("KEY", "k"),
        ("URL", "https://api"),
        ("TYPE", "jwt"),
        ("TOKEN", "t"),
        ("ACCESS_KEY", "ak"),
        ("UID", "u"),
        ("CA", "ca"),
        ("REGION", "eu-west-1"),
        ("ARN", "arn"),
        ("SESSION", "sess"),
        ("VERSION", "7"),
        ("ENGINE", "kv-v1"),
        ("MOUNT", "secret"),
        ("JWT", "the-jwt"),
    ]);
    let expanded = |var: &str| job.secret(var).unwrap().expanded(&vars).provider;
    assert_eq!(
        expanded("AK"),
        Provider::Akeyless(AkeylessSecret {
            name: s("n"),
            data_key: s("k"),
            akeyless_api_url: s("https://api"),
            akeyless_access_type: s("jwt"),
            akeyless_token: s("t"),
            // Not expanded by the runner:
            akeyless_access_key: s("$ACCESS_KEY"),
            uid_token: s("u"),
            gateway_ca_certificate: s("$CA"),
            ..Default::default()
        })
    );
    assert_eq!(
        expanded("AWS"),
        Provider::Aws(AwsSecret {
            secret_id: "n".into(),
            field: s("k"),
            region: s("eu-west-1"),
            version_id: None,
            version_stage: s("$STAGE"),
            role_arn: s("arn"),
            role_session_name: s("sess"),
        })
    );
    assert_eq!(
        expanded("AZ"),
        Provider::Azure(AzureSecret {
            name: "n".into(),
            version: s("7"),
        })
    );
    assert_eq!(
        expanded("GL"),
        Provider::GitlabSecretsManager(GitlabSecretsManagerSecret {
            name: "$NAME".into(),
            source: None,
        })
    );
    assert_eq!(
        expanded("V"),
        Provider::Vault(VaultSecret {
            engine: VaultEngine {
                name: "kv-v1".into(),
                path: "secret".into(),
            },
            path: "n".into(),
            field: "k".into(),
        })
    );
    assert_eq!(
        expanded("G"),
        Provider::Gcp(GcpSecret {
            name: "n".into(),
            version: "7".into(),
        })
    );
    // The token stays a reference; `jwt` expands it.
    let ak = job.secret("AK").unwrap();
    assert_eq!(ak.expanded(&vars).token.as_deref(), Some("$JWT"));
    assert_eq!(job.jwt(ak, &vars).as_deref(), Some("the-jwt"));
}

#[test]
fn expansion_variables_see_id_tokens() {
    let text =
        "variables:\n  FORWARDED: $AWS_ID_TOKEN\n  PATH_LIKE: ${HOME}/x\nj:\n  script: [x]\n";
    let env_only = env(&[("HOME", "/home/ci")]);
    let job = gitlab::load(text, "j", &env_only).unwrap();
    assert_eq!(job.variables["FORWARDED"], "");
    assert_eq!(job.variables["PATH_LIKE"], "/home/ci/x");
    let mut with_token = env_only.clone();
    with_token.insert("AWS_ID_TOKEN", "jwt");
    let vars = job.expansion_variables(&with_token);
    assert_eq!(vars.get("FORWARDED"), Some("jwt"));
    assert_eq!(vars.get("HOME"), Some("/home/ci"));
}

// --------------------------------------------------------- provider check

#[test]
fn aws_region_is_required_even_with_per_secret_regions() {
    let job = load(
        "j:\n  secrets:\n    S:\n      aws_secrets_manager: {secret_id: x, region: eu-west-1}\n",
        "j",
    );
    let err = job.check_providers(&Variables::new()).unwrap_err();
    let GitlabError::ProviderNotConfigured(missing) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].provider, ProviderKind::Aws);
    assert_eq!(missing[0].variables, ["AWS_REGION"]);
    assert!(err.to_string().starts_with(gitlab::PROVIDER_NOT_FOUND));
    // AWS_DEFAULT_REGION does not count; a blank value does not either.
    assert!(
        job.check_providers(&env(&[("AWS_DEFAULT_REGION", "eu-west-1")]))
            .is_err()
    );
    assert!(job.check_providers(&env(&[("AWS_REGION", "  ")])).is_err());
    job.check_providers(&env(&[("AWS_REGION", "us-east-1")]))
        .unwrap();
}

#[test]
fn provider_check_lists_every_provider_and_secret() {
    let text = "\
j:
  secrets:
    V1: {vault: a/b}
    V2: {vault: a/c}
    G: {gcp_secret_manager: {name: n}, token: $T}
    GL: {gitlab_secrets_manager: {name: n}}
";
    let job = load(text, "j");
    let missing = gitlab::missing_providers(&job.secrets, &env(&[("GCP_PROJECT_NUMBER", "1")]));
    let summary: Vec<(ProviderKind, Vec<&str>, Vec<String>)> = missing
        .into_iter()
        .map(|m| (m.provider, m.variables, m.secrets))
        .collect();
    assert_eq!(
        summary,
        [
            (
                ProviderKind::Vault,
                vec!["VAULT_SERVER_URL"],
                vec!["V1".to_owned(), "V2".to_owned()]
            ),
            (
                ProviderKind::Gcp,
                vec![
                    "GCP_WORKLOAD_IDENTITY_FEDERATION_POOL_ID",
                    "GCP_WORKLOAD_IDENTITY_FEDERATION_PROVIDER_ID"
                ],
                vec!["G".to_owned()]
            ),
        ]
    );
}

// ------------------------------------------------------------ JWT selection

#[test]
fn vault_and_azure_use_the_first_declared_id_token() {
    let text = "\
j:
  id_tokens:
    ZED: {aud: z}
    ALPHA: {aud: a}
  secrets:
    V: {vault: a/b}
    AZ: {azure_key_vault: {name: n}}
    OWN: {vault: a/c, token: $ALPHA}
bare:
  secrets:
    V: {vault: a/b}
    AZ: {azure_key_vault: {name: n}}
    AWS: {aws_secrets_manager: x}
    AK: {akeyless: {name: n}}
";
    let job = load(text, "j");
    assert_eq!(job.default_id_token.as_deref(), Some("ZED"));
    let reference = |job: &Job, var: &str| job.jwt_reference(job.secret(var).unwrap());
    assert_eq!(reference(&job, "V").as_deref(), Some("$ZED"));
    assert_eq!(reference(&job, "AZ").as_deref(), Some("$ZED"));
    assert_eq!(reference(&job, "OWN").as_deref(), Some("$ALPHA"));
    let bare = load(text, "bare");
    assert_eq!(reference(&bare, "V").as_deref(), Some("${CI_JOB_JWT}"));
    assert_eq!(reference(&bare, "AZ").as_deref(), Some("${CI_JOB_JWT_V2}"));
    assert_eq!(reference(&bare, "AWS").as_deref(), Some("$AWS_ID_TOKEN"));
    assert_eq!(reference(&bare, "AK"), None);
    // An unset reference expands to an empty JWT, as in the runner.
    let v = bare.secret("V").unwrap();
    assert_eq!(bare.jwt(v, &Variables::new()).as_deref(), Some(""));
}

// ------------------------------------------------------------------ misc

#[test]
fn load_file_reads_and_reports_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".gitlab-ci.yml");
    std::fs::write(
        &path,
        include_str!("fixtures/gitlab/aws_04_short_form_syntax.yml"),
    )
    .unwrap();
    let job = gitlab::load_file(&path, "api-deployment", &Variables::new()).unwrap();
    assert_eq!(job.secrets.len(), 2);
    let missing = dir.path().join("nope.yml");
    let err = gitlab::load_file(&missing, "j", &Variables::new()).unwrap_err();
    assert!(matches!(err, GitlabError::Read { .. }));
    assert!(err.to_string().contains("nope.yml"), "{err}");
}

#[test]
fn akeyless_debug_redacts_credentials() {
    let secret = AkeylessSecret {
        name: s("visible-name"),
        akeyless_token: s("t-SECRET"),
        akeyless_access_key: s("k-SECRET"),
        uid_token: s("u-SECRET"),
        k8s_service_account_token: s("sa-SECRET"),
        ..Default::default()
    };
    let shown = format!("{secret:?}");
    assert!(shown.contains("visible-name"), "{shown}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[test]
fn provider_keys_and_resolver_names() {
    assert_eq!(gitlab::PROVIDER_KEYS.len(), 6);
    assert_eq!(ProviderKind::Azure.key(), "azure_key_vault");
    assert_eq!(ProviderKind::Azure.resolver_name(), "azure-key-vault");
    assert_eq!(ProviderKind::Aws.to_string(), "aws_secrets_manager");
    assert_eq!(
        ProviderKind::Akeyless.required_variables(),
        ["AKEYLESS_ACCESS_ID"]
    );
}
