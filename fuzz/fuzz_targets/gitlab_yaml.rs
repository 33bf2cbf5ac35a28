//! The GitLab CI loader (coffer-ci `gitlab/`): arbitrary `.gitlab-ci.yml`
//! text is loaded for a job (`job`, else one of the jobs the file
//! defines), validated, and a loaded job's variables, ID tokens and secrets
//! are expanded as `coffer ci` does. `$VARIABLE` expansion is also checked
//! against a model of Go's `os.Expand` on the whole text. Any panic, hang
//! (alias bombs, `extends:`/`!reference` loops) or huge allocation fails.
#![no_main]

use coffer_ci::gitlab::{self, GitlabError, Job, Variables};
use coffer_fuzz::expand_model;
use libfuzzer_sys::fuzz_target;

fn env() -> Variables {
    [
        ("CI_SERVER_URL", "https://gitlab.example.com"),
        ("CI_PROJECT_PATH", "group/app"),
        ("CI_COMMIT_REF_NAME", "main"),
        ("AKEYLESS_ACCESS_ID", "p-abcdefghijkl"),
        ("AKEYLESS_GATEWAY_URL", "http://127.0.0.1:8200"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci"),
        ("AZURE_KEY_VAULT_SERVER_URL", "https://vault.example.net"),
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
        ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002"),
        ("VAULT_SERVER_URL", "https://vault.example.com"),
        ("REF", "$CI_COMMIT_REF_NAME"),
        ("EMPTY", ""),
    ]
    .into_iter()
    .collect()
}

fn exercise(job: &Job, env: &Variables) {
    let mut env = env.clone();
    for name in job.id_tokens.keys() {
        env.insert(name.clone(), "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    }
    let vars = job.expansion_variables(&env);
    // A name present in the CI/CD variables keeps their value.
    for (k, v) in env.iter() {
        assert_eq!(vars.get(k), Some(v), "CI/CD variable {k} was replaced");
    }
    for name in job.variables.keys() {
        assert!(
            vars.contains(name),
            "job variable {name} missing from the expansion set"
        );
    }
    for tok in job.id_tokens.values() {
        let auds = tok.audiences(&vars);
        assert_eq!(auds.len(), tok.aud.len());
    }
    let _ = job.check_providers(&vars);
    for secret in &job.secrets {
        let _ = job.jwt_reference(secret);
        let _ = job.jwt(secret, &vars);
        let expanded = secret.expanded(&vars);
        assert_eq!(expanded.var, secret.var);
        assert_eq!(expanded.provider.kind(), secret.provider.kind());
        assert!(job.secret(&secret.var).is_some());
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env = env();

    // `$VARIABLE` expansion against the model of Go's os.Expand.
    let lookup = |n: &str| env.get(n).map(str::to_owned);
    assert_eq!(
        env.expand(&text),
        expand_model(&text, &lookup),
        "expand differs from os.Expand"
    );

    let jobs = match gitlab::load(&text, "job", &env) {
        Ok(job) => {
            exercise(&job, &env);
            return;
        }
        Err(GitlabError::JobNotFound { jobs, .. }) => jobs,
        Err(e) => {
            let _ = e.to_string();
            let _ = e.validation_errors();
            return;
        }
    };
    // One of the jobs the file defines (chosen by the input's length, so a
    // run is deterministic): each load parses the whole file again.
    if let Some(name) = jobs.get(data.len() % jobs.len().max(1)) {
        match gitlab::load(&text, name, &env) {
            Ok(job) => {
                assert_eq!(&job.name, name);
                exercise(&job, &env);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
