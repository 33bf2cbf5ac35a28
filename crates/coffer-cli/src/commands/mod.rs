//! One module per command family; [`run`] dispatches.

mod access;
mod audit;
mod auth;
mod cert_auth;
mod certs;
mod ci;
mod configure;
mod dev;
mod dynamic;
mod identity;
mod keys;
mod oidc_auth;
pub(crate) mod operator;
mod rotated;
mod secrets;
mod targets;
mod uid;

use coffer_client::Operation;

use crate::args::{Cli, Command, GlobalArgs};
use crate::output::{emit, emit_json};
use crate::session::Session;

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server(s) => {
            crate::output::refuse_json(
                "server",
                "it serves until stopped (for JSON logs use --log-format json)",
            )?;
            coffer_server::run(s.args).await
        }
        Command::Version if crate::output::json_wanted() => {
            emit_json(&serde_json::json!({"version": env!("CARGO_PKG_VERSION")}))
        }
        Command::Version => emit(&format!("coffer {}", env!("CARGO_PKG_VERSION"))),
        Command::Completion(a) => {
            crate::output::refuse_json("completion", "it prints a shell script")?;
            use clap::CommandFactory;
            // Into a buffer first: clap_complete panics on a write error
            // (`coffer completion bash | head`); emit handles a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "coffer", &mut script);
            emit(&String::from_utf8(script)?)
        }
        Command::Configure(a) => configure::configure(a).await,
        Command::Unconfigure(a) => configure::unconfigure(a),
        Command::Auth(a) => auth::auth(a).await,
        Command::ValidateToken(a) => auth::validate_token(a).await,
        Command::Whoami(a) => auth::whoami(a).await,
        Command::RevokeToken(a) => auth::revoke_token(a).await,
        Command::GetSecretValue(a) => secrets::get_secret_value(a).await,
        Command::CreateSecret(a) => secrets::create_secret(a).await,
        Command::UpdateSecretVal(a) => secrets::update_secret_val(a).await,
        Command::DescribeItem(a) => secrets::describe_item(a).await,
        Command::ListItems(a) => secrets::list_items(a).await,
        Command::DeleteItem(a) => secrets::delete_item(a).await,
        Command::UpdateItem(a) => secrets::update_item(a).await,
        Command::GetTags(a) => secrets::get_tags(a).await,
        Command::DeleteItems(a) => secrets::delete_items(a).await,
        Command::RestoreItem(a) => secrets::restore_item(a).await,
        Command::CreateAuthMethod(a) => access::create_auth_method(a).await,
        Command::CreateAuthMethodOauth2(a) => access::create_auth_method_oauth2(a).await,
        Command::CreateAuthMethodAwsIam(a) => access::create_auth_method_aws_iam(a).await,
        Command::CreateAuthMethodK8s(a) => identity::create_auth_method_k8s(a).await,
        Command::CreateAuthMethodAzureAd(a) => identity::create_auth_method_azure_ad(a).await,
        Command::CreateAuthMethodGcp(a) => identity::create_auth_method_gcp(a).await,
        Command::ExplainAccess(a) => identity::explain_access(a).await,
        Command::CreateAuthMethodCert(a) => cert_auth::create_auth_method_cert(a).await,
        Command::UpdateAuthMethodCert(a) => cert_auth::update_auth_method_cert(a).await,
        Command::CreateAuthMethodOidc(a) => oidc_auth::create_auth_method_oidc(a).await,
        Command::UpdateAuthMethodOidc(a) => oidc_auth::update_auth_method_oidc(a).await,
        Command::CreateAuthMethodUniversalIdentity(a) => {
            uid::create_auth_method_universal_identity(a).await
        }
        Command::UidGenerateToken(a) => uid::generate_token(a).await,
        Command::UidRotateToken(a) => uid::rotate_token(a).await,
        Command::UidCreateChildToken(a) => uid::create_child_token(a).await,
        Command::UidRevokeToken(a) => uid::revoke_token(a).await,
        Command::UidListChildren(a) => uid::list_children(a).await,
        Command::GetAuthMethod(a) => access::get_auth_method(a).await,
        Command::ListAuthMethods(a) => access::list_auth_methods(a).await,
        Command::DeleteAuthMethod(a) => access::delete_auth_method(a).await,
        Command::CreateRole(a) => access::create_role(a).await,
        Command::GetRole(a) => access::get_role(a).await,
        Command::ListRoles(a) => access::list_roles(a).await,
        Command::DeleteRole(a) => access::delete_role(a).await,
        Command::SetRoleRule(a) => access::set_role_rule(a).await,
        Command::DeleteRoleRule(a) => access::delete_role_rule(a).await,
        Command::AssocRoleAm(a) => access::assoc_role_am(a).await,
        Command::DeleteAssoc(a) => access::delete_assoc(a).await,
        Command::UpdateAssoc(a) => access::update_assoc(a).await,
        Command::UpdateRole(a) => access::update_role(a).await,
        Command::UpdateAuthMethod(a) => access::update_auth_method(a).await,
        Command::ResetAccessKey(a) => access::reset_access_key(a).await,
        Command::TargetCreateDb(a) => targets::create_db(a).await,
        Command::TargetUpdateDb(a) => targets::update_db(a).await,
        Command::TargetGet(a) => targets::get(a).await,
        Command::TargetGetDetails(a) => targets::get_details(a).await,
        Command::TargetList(a) => targets::list(a).await,
        Command::TargetDelete(a) => targets::delete(a).await,
        Command::DynamicSecret(a) => dynamic::run(a).await,
        Command::GetDynamicSecretValue(a) => dynamic::get_value(a).await,
        Command::Lease(a) => dynamic::lease(a).await,
        Command::RotatedSecret(a) => rotated::run(a).await,
        Command::GetRotatedSecretValue(a) => rotated::get_value(a).await,
        Command::GatewayRotateSecret(a) => rotated::rotate(a).await,
        Command::CreateKey(a) => keys::create_key(a).await,
        Command::CreateClassicKey(a) => keys::create_classic_key(a).await,
        Command::GetRsaPublic(a) => keys::get_rsa_public(a).await,
        Command::Encrypt(a) => keys::encrypt(a).await,
        Command::Decrypt(a) => keys::decrypt(a).await,
        Command::RotateKey(a) => keys::rotate_key(a).await,
        Command::UpdateClassicKeyCertificate(a) => keys::update_classic_key_certificate(a).await,
        Command::CreateSshCertIssuer(a) => certs::create_ssh_cert_issuer(a).await,
        Command::UpdateSshCertIssuer(a) => certs::update_ssh_cert_issuer(a).await,
        Command::GetSshCertificate(a) => certs::get_ssh_certificate(a).await,
        Command::CreatePkiCertIssuer(a) => certs::create_pki_cert_issuer(a).await,
        Command::UpdatePkiCertIssuer(a) => certs::update_pki_cert_issuer(a).await,
        Command::GetPkiCertificate(a) => certs::get_pki_certificate(a).await,
        Command::Cert(a) => certs::cert(a).await,
        Command::GatewayCreateProducerMysql(a) => dynamic::create_mysql(a).await,
        Command::GatewayCreateProducerPostgresql(a) => dynamic::create_postgresql(a).await,
        Command::GatewayUpdateProducerMysql(a) => dynamic::update_mysql(a).await,
        Command::GatewayUpdateProducerPostgresql(a) => dynamic::update_postgresql(a).await,
        Command::GatewayGetProducer(a) => dynamic::get(a).await,
        Command::GatewayListProducers(a) => dynamic::list(a).await,
        Command::GatewayDeleteProducer(a) => dynamic::delete(a).await,
        Command::GatewayGetProducerTmpCreds(a) => dynamic::tmp_creds_get(a).await,
        Command::GatewayRevokeProducerTmpCreds(a) => dynamic::tmp_creds_delete(a).await,
        Command::DynamicSecretTmpCredsUpdate(a) => dynamic::tmp_creds_update(a).await,
        Command::RotatedSecretCreateMysql(a) => rotated::create_mysql(a).await,
        Command::RotatedSecretCreatePostgresql(a) => rotated::create_postgresql(a).await,
        Command::RotatedSecretUpdateMysql(a) => rotated::update_mysql(a).await,
        Command::RotatedSecretUpdatePostgresql(a) => rotated::update_postgresql(a).await,
        Command::RotatedSecretList(a) => rotated::list(a).await,
        Command::RotatedSecretDelete(a) => rotated::delete(a).await,
        Command::CertList(a) => certs::list(a).await,
        Command::RevokeCertificate(a) => certs::revoke(a).await,
        Command::Audit(a) => audit::run(a).await,
        Command::Operator(a) => {
            crate::output::refuse_json(
                "operator",
                "it prints a report for the operator, not an API answer",
            )?;
            operator::run(a).await
        }
        Command::Dev(a) => dev::run(a).await,
        Command::Ci(a) => ci::run(a).await,
    }
}

/// Send `request` with the caller's token, then print the server's JSON
/// (`--json`) or the human form made by `human`.
async fn respond<O: Operation>(
    global: &GlobalArgs,
    request: &O,
    human: impl FnOnce(O::Output) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let mut session = Session::open(global).await?;
    let raw = session.call(request).await?;
    print_response::<O>(global.json, raw, human)
}

/// Print a raw response as JSON or through `human`.
fn print_response<O: Operation>(
    json: bool,
    raw: serde_json::Value,
    human: impl FnOnce(O::Output) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    if json {
        emit_json(&raw)
    } else {
        emit(&human(coffer_client::decode::<O>(raw)?)?)
    }
}

/// A date for humans: as sent, or "-" when absent.
fn date(d: &Option<String>) -> String {
    d.clone().unwrap_or_else(|| "-".to_string())
}

/// `k=v1,v2 k2=v3` for sub-claims.
fn sub_claims(map: &coffer_client::SubClaims) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", v.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}
