//! The request parameters of every operation: the server's own request
//! types. The pipeline binds each body to its operation's list, and in
//! debug builds (every test run) a handler that reads a parameter not
//! listed here, or with another type, panics (`wire::Body`); `/openapi.json`
//! (`openapi.rs`) is generated from these lists and the operation table.
//!
//! `token`, `uid-token` (the caller's credentials) and `json` (the Akeyless
//! CLI's output flag) are accepted by every operation and not listed.
//! A new operation adds its row here; a test checks that every operation of
//! the table has one and that no row names an operation the server lacks.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::wire::{Kind, Param};

macro_rules! params {
    (@req req) => { true };
    (@req opt) => { false };
    ($($req:ident $name:literal : $kind:ident),* $(,)?) => {
        &[$(Param { name: $name, kind: Kind::$kind, required: params!(@req $req) }),*]
    };
}

/// The parameters an operation (by its canonical name) reads.
pub fn declared(op: &str) -> Option<&'static [Param]> {
    static BY_NAME: LazyLock<HashMap<&'static str, &'static [Param]>> =
        LazyLock::new(|| PARAMS.iter().copied().collect());
    BY_NAME.get(op).copied()
}

/// Operations whose settings decide who gets in: auth methods, roles,
/// rules and associations. They refuse a setting they do not declare
/// (a misspelt `bound-common-name` must not quietly admit every
/// certificate); other operations ignore unknown keys like the Akeyless
/// gateway does, and refuse the options they know they lack.
fn strict(op: &super::Operation) -> bool {
    let module = op.handler_path.split("::").next().unwrap_or("").trim();
    matches!(module, "auth_methods" | "auth_method_update" | "roles")
}

/// Refuse, for a strict operation, a set parameter it does not declare.
pub(crate) fn refuse_undeclared(
    op: &super::Operation,
    body: &crate::wire::Body,
) -> Result<(), crate::error::ApiError> {
    if !strict(op) {
        return Ok(());
    }
    match body.undeclared_setting() {
        None => Ok(()),
        Some(key) => Err(crate::error::ApiError::bad(format!(
            "{op} does not take {key}: Coffer does not implement that setting, or it is misspelt; \
             the accepted parameters are listed in /openapi.json and docs/api.md",
            op = op.name,
            key = coffer_core::name::truncate_for_message(key),
        ))),
    }
}

/// Every operation's parameters, in the operation table's order.
pub static PARAMS: &[(&str, &[Param])] = &[
    (
        "auth",
        params![req "access-id": Str, opt "access-key": Str, opt "access-type": Str, opt "cert-challenge": Str, opt "cert-data": Str, opt "client-nonce": Str, opt "cloud-id": Str, opt "code": Str, opt "gcp-audience": Str, opt "jwt": Str, opt "k8s-service-account-token": Str, opt "key-data": Str, opt "signed-cert-challenge": Str, opt "state": Str, opt "uid-token": Str],
    ),
    ("validate-token", params![]),
    ("revoke-token", params![]),
    ("get-caller-identity", params![]),
    (
        "oidc-auth-url",
        params![req "access-id": Str, req "client-nonce": Str, req "redirect-uri": Str],
    ),
    (
        "get-cert-challenge",
        params![req "access-id": Str, opt "cert-data": Str, opt "key-data": Str],
    ),
    (
        "uid-rotate-token",
        params![opt "fork": Json, opt "send-manual-ack-token": Json, opt "uid-token": Str, opt "with-manual-ack": Json],
    ),
    (
        "uid-create-child-token",
        params![req "auth-method-name": Str, opt "child-deny-inheritance": Bool, opt "child-deny-rotate": Bool, opt "child-ttl": Int, opt "comment": Str, opt "description": Str, opt "uid-token": Str, opt "uid-token-id": Str],
    ),
    (
        "uid-revoke-token",
        params![req "auth-method-name": Str, req "revoke-token": Str, req "revoke-type": Str, opt "uid-token": Str],
    ),
    (
        "uid-list-children",
        params![req "auth-method-name": Str, opt "uid-token": Str],
    ),
    (
        "uid-generate-token",
        params![req "auth-method-name": Str, opt "child-deny-inheritance": Bool, opt "child-deny-rotate": Bool, opt "comment": Str, opt "description": Str],
    ),
    (
        "create-auth-method",
        params![req "name": Str, opt "access-expires": Int, opt "bound-ips": List, opt "description": Str, opt "force-sub-claims": Bool, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool],
    ),
    (
        "create-auth-method-oauth2",
        params![req "name": Str, opt "access-expires": Int, opt "audience": List, opt "bound-client-ids": List, opt "bound-ips": List, opt "description": Str, opt "force-sub-claims": Bool, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool, opt "refuse-events": Json, opt "refuse-replay": Bool, opt "unique-identifier": Str],
    ),
    (
        "create-auth-method-k8s",
        params![req "name": Str, opt "access-expires": Int, opt "audience": Str, opt "bound-ips": List, opt "bound-namespaces": List, opt "bound-pod-names": List, opt "bound-sa-names": List, opt "description": Str, opt "force-sub-claims": Bool, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "k8s-ca-cert": Str, opt "k8s-host": Str, opt "k8s-issuer": Str, opt "lease-tied-to-token": Bool, opt "token-reviewer-jwt": Str],
    ),
    (
        "create-auth-method-aws-iam",
        params![req "name": Str, opt "access-expires": Int, opt "bound-arn": List, opt "bound-aws-account-id": List, opt "bound-ips": List, opt "bound-resource-id": List, opt "bound-role-id": List, opt "bound-role-name": List, opt "bound-user-id": List, opt "bound-user-name": List, opt "description": Str, opt "force-sub-claims": Bool, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool, opt "sts-url": Str],
    ),
    (
        "create-auth-method-azure-ad",
        params![req "name": Str, opt "access-expires": Int, opt "audience": Str, opt "bound-group-id": List, opt "bound-ips": List, opt "bound-providers": List, opt "bound-resource-id": List, opt "bound-resource-names": List, opt "bound-resource-types": List, opt "bound-rg-id": List, opt "bound-spid": List, opt "bound-sub-id": List, opt "bound-tenant-id": Str, opt "description": Str, opt "force-sub-claims": Bool, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool, opt "unique-identifier": Str],
    ),
    (
        "create-auth-method-gcp",
        params![req "name": Str, opt "access-expires": Int, opt "audience": Str, opt "bound-ips": List, opt "bound-labels": List, opt "bound-projects": List, opt "bound-regions": List, opt "bound-service-accounts": List, opt "bound-zones": List, opt "description": Str, opt "force-sub-claims": Bool, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool, opt "service-account-creds-data": Str, opt "type": Str, opt "unique-identifier": Str],
    ),
    (
        "create-auth-method-universal-identity",
        params![req "name": Str, opt "access-expires": Int, opt "bound-ips": List, opt "child-ttl-limit": Int, opt "deny-inheritance": Bool, opt "deny-rotate": Bool, opt "description": Str, opt "force-sub-claims": Bool, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool, opt "tree-length": Int, opt "ttl": Int],
    ),
    (
        "create-auth-method-cert",
        params![req "name": Str, opt "access-expires": Int, opt "bound-common-names": List, opt "bound-dns-sans": List, opt "bound-email-sans": List, opt "bound-extensions": List, opt "bound-ips": List, opt "bound-organizational-units": List, opt "bound-uri-sans": List, opt "certificate-data": Str, opt "description": Str, opt "force-sub-claims": Bool, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool, opt "require-crl-dp": Bool, opt "revoked-cert-ids": List, opt "unique-identifier": Str],
    ),
    (
        "create-auth-method-oidc",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-redirect-uri": List, opt "audience": Str, opt "bound-ips": List, opt "client-id": Str, opt "client-secret": Str, opt "description": Str, opt "force-sub-claims": Bool, opt "issuer": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Bool, opt "required-scopes": List, opt "required-scopes-prefix": Str, opt "unique-identifier": Str],
    ),
    ("get-auth-method", params![req "name": Str]),
    (
        "list-auth-methods",
        params![opt "filter": Str, opt "pagination-token": Str, opt "type": List],
    ),
    ("delete-auth-method", params![req "name": Str]),
    (
        "update-auth-method",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audit-logs-claims": Json, opt "bound-ips": Json, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "uid-expiration-event-at": Json],
    ),
    (
        "auth-method-update-api-key",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audit-logs-claims": Json, opt "bound-ips": Json, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "uid-expiration-event-at": Json],
    ),
    (
        "auth-method-update-oauth2",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audience": List, opt "audit-logs-claims": Json, opt "bound-client-ids": List, opt "bound-ips": Json, opt "cert": Json, opt "cert-file-data": Json, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gateway-url": Json, opt "gw-bound-ips": Json, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "refuse-events": Json, opt "refuse-replay": Bool, opt "subclaims-delimiters": Json, opt "uid-expiration-event-at": Json, opt "unique-identifier": Str],
    ),
    (
        "auth-method-update-k8s",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audience": Str, opt "audit-logs-claims": Json, opt "bound-ips": Json, opt "bound-namespaces": List, opt "bound-pod-names": List, opt "bound-sa-names": List, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gen-key": Json, opt "gw-bound-ips": Json, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "k8s-ca-cert": Str, opt "k8s-host": Str, opt "k8s-issuer": Str, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "public-key": Json, opt "token-reviewer-jwt": Str, opt "uid-expiration-event-at": Json],
    ),
    (
        "auth-method-update-aws-iam",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audit-logs-claims": Json, opt "bound-arn": List, opt "bound-aws-account-id": List, opt "bound-ips": Json, opt "bound-resource-id": List, opt "bound-role-id": List, opt "bound-role-name": List, opt "bound-user-id": List, opt "bound-user-name": List, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "sts-url": Str, opt "uid-expiration-event-at": Json, opt "unique-identifier": Json],
    ),
    (
        "auth-method-update-azure-ad",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audience": Str, opt "audit-logs-claims": Json, opt "bound-group-id": List, opt "bound-ips": Json, opt "bound-providers": List, opt "bound-resource-id": List, opt "bound-resource-names": List, opt "bound-resource-types": List, opt "bound-rg-id": List, opt "bound-spid": List, opt "bound-sub-id": List, opt "bound-tenant-id": Str, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "uid-expiration-event-at": Json, opt "unique-identifier": Str],
    ),
    (
        "auth-method-update-gcp",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audience": Str, opt "audit-logs-claims": Json, opt "bound-ips": Json, opt "bound-labels": List, opt "bound-projects": List, opt "bound-regions": List, opt "bound-service-accounts": List, opt "bound-zones": List, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "issuer": Str, opt "jwks-json-data": Str, opt "jwks-uri": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "service-account-creds-data": Str, opt "type": Str, opt "uid-expiration-event-at": Json, opt "unique-identifier": Str],
    ),
    (
        "auth-method-update-universal-identity",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audit-logs-claims": Json, opt "bound-ips": Json, opt "child-ttl-limit": Int, opt "delete-protection": Json, opt "deny-inheritance": Bool, opt "deny-rotate": Bool, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "tree-length": Int, opt "ttl": Int, opt "uid-expiration-event-at": Json],
    ),
    (
        "auth-method-update-cert",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "audit-logs-claims": Json, opt "bound-common-names": List, opt "bound-dns-sans": List, opt "bound-email-sans": List, opt "bound-extensions": List, opt "bound-ips": Json, opt "bound-organizational-units": List, opt "bound-uri-sans": List, opt "certificate-data": Str, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "require-crl-dp": Bool, opt "revoked-cert-ids": List, opt "uid-expiration-event-at": Json, opt "unique-identifier": Str],
    ),
    (
        "auth-method-update-oidc",
        params![req "name": Str, opt "access-expires": Int, opt "allowed-client-type": Json, opt "allowed-redirect-uri": List, opt "audience": Str, opt "audit-logs-claims": Json, opt "bound-ips": Json, opt "client-id": Str, opt "client-secret": Str, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "force-sub-claims": Json, opt "gw-bound-ips": Json, opt "issuer": Str, opt "jwt-ttl": Int, opt "lease-tied-to-token": Json, opt "new-name": Str, opt "product-type": Json, opt "required-scopes": List, opt "required-scopes-prefix": Str, opt "uid-expiration-event-at": Json, opt "unique-identifier": Str],
    ),
    ("reset-access-key", params![req "name": Str]),
    (
        "create-role",
        params![req "name": Str, opt "analytics-access": Str, opt "approve-access-request": Str, opt "ara-reports-access": Str, opt "audit-access": Str, opt "comment": Str, opt "delete-protection": Json, opt "description": Str, opt "event-center-access": Str, opt "event-forwarder-access": Str, opt "event-forwarders-access": Str, opt "gw-analytics-access": Str, opt "isi-access": Str, opt "reverse-rbac-access": Str, opt "sra-reports-access": Str, opt "unlock-secrets": Str, opt "usage-reports-access": Str],
    ),
    ("get-role", params![req "name": Str]),
    ("list-roles", params![]),
    ("delete-role", params![req "name": Str]),
    (
        "set-role-rule",
        params![req "path": Str, req "role-name": Str, opt "capability": List, opt "rule-type": Str, opt "ttl": Int],
    ),
    (
        "delete-role-rule",
        params![req "path": Str, req "role-name": Str, opt "rule-type": Str],
    ),
    (
        "assoc-role-am",
        params![req "am-name": Str, req "role-name": Str, opt "case-sensitive": Bool, opt "sub-claims": Json],
    ),
    (
        "update-role",
        params![req "name": Str, opt "analytics-access": Str, opt "approve-access-request": Str, opt "ara-reports-access": Str, opt "audit-access": Str, opt "delete-protection": Json, opt "description": Str, opt "event-center-access": Str, opt "event-forwarder-access": Str, opt "event-forwarders-access": Str, opt "gw-analytics-access": Str, opt "isi-access": Str, opt "new-comment": Str, opt "new-name": Str, opt "reverse-rbac-access": Str, opt "sra-reports-access": Str, opt "unlock-secrets": Str, opt "usage-reports-access": Str],
    ),
    (
        "update-assoc",
        params![req "assoc-id": Str, opt "case-sensitive": Bool, opt "sub-claims": Json],
    ),
    ("delete-assoc", params![req "assoc-id": Str]),
    (
        "create-secret",
        params![req "name": Str, opt "accessibility": Str, opt "ara-enabled": Json, opt "change-event": Json, opt "custom-field": Json, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "format": Str, opt "host-provider": Json, opt "inject-url": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "lock-during-sra-session": Json, opt "lock-on-read": Json, opt "lock-ttl": Json, opt "max-versions": Int, opt "metadata": Str, opt "multiline-value": Bool, opt "output-rule": Json, opt "password": Json, opt "protection-key": Str, opt "providertype": Json, opt "secure-access-bastion-issuer": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-enable": Json, opt "secure-access-enforce-hosts-restriction": Json, opt "secure-access-gateway": Json, opt "secure-access-host": Json, opt "secure-access-rdp-user": Json, opt "secure-access-ssh-creds": Json, opt "secure-access-ssh-user": Json, opt "secure-access-url": Json, opt "secure-access-web": Json, opt "secure-access-web-browsing": Json, opt "secure-access-web-proxy": Json, opt "tag": List, opt "tags": Json, opt "target": Json, opt "type": Str, opt "username": Json, opt "value": Json],
    ),
    (
        "update-secret-val",
        params![req "name": Str, opt "accessibility": Str, opt "custom-field": Json, opt "format": Str, opt "inject-url": Json, opt "keep-prev-version": Bool, opt "key": Str, opt "last-version": Int, opt "multiline": Bool, opt "new-version": Bool, opt "password": Json, opt "username": Json, opt "value": Json],
    ),
    (
        "get-secret-value",
        params![opt "name": List, opt "names": List, opt "version": Int],
    ),
    ("describe-item", params![req "name": Str]),
    (
        "list-items",
        params![opt "accessibility": Str, opt "advanced-filter": Str, opt "ara-only": Bool, opt "auto-pagination": Str, opt "current-folder": Bool, opt "filter": Str, opt "minimal-view": Bool, opt "modified-after": Int, opt "pagination-token": Str, opt "path": Str, opt "pending-deletion": Bool, opt "sra-only": Bool, opt "sub-types": List, opt "tag": Str, opt "type": List],
    ),
    (
        "delete-item",
        params![req "name": Str, opt "delete-immediately": Bool, opt "delete-in-days": Int, opt "version": Int],
    ),
    (
        "update-item",
        params![req "name": Str, opt "accessibility": Str, opt "add-tag": List, opt "ara-enabled": Json, opt "cert-file-data": Json, opt "certificate-format": Json, opt "change-event": Json, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "expiration-event-in": Json, opt "gcp-sm-regions": Json, opt "host-provider": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "lock-during-sra-session": Json, opt "lock-on-read": Json, opt "lock-ttl": Json, opt "max-versions": Int, opt "new-metadata": Str, opt "new-name": Str, opt "output-rule": Json, opt "providertype": Json, opt "rm-tag": List, opt "rotate-after-disconnect": Json, opt "rotate-on-unlock": Json, opt "secure-access-add-host": Json, opt "secure-access-allow-external-user": Json, opt "secure-access-allow-port-forwading": Json, opt "secure-access-allow-port-forwarding": Json, opt "secure-access-api": Json, opt "secure-access-aws-account-id": Json, opt "secure-access-aws-native-cli": Json, opt "secure-access-aws-region": Json, opt "secure-access-bastion-api": Json, opt "secure-access-bastion-issuer": Json, opt "secure-access-bastion-ssh": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-cluster-endpoint": Json, opt "secure-access-dashboard-url": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-enable": Json, opt "secure-access-enforce-hosts-restriction": Json, opt "secure-access-gateway": Json, opt "secure-access-host": Json, opt "secure-access-rd-gateway-server": Json, opt "secure-access-rdp-domain": Json, opt "secure-access-rdp-user": Json, opt "secure-access-rm-host": Json, opt "secure-access-ssh": Json, opt "secure-access-ssh-creds": Json, opt "secure-access-ssh-creds-user": Json, opt "secure-access-url": Json, opt "secure-access-use-internal-bastion": Json, opt "secure-access-use-internal-ssh-access": Json, opt "secure-access-web": Json, opt "secure-access-web-browsing": Json, opt "secure-access-web-proxy": Json, opt "target": Json, opt "usc-tags": Json, opt "use-tags-as-filter": Json],
    ),
    ("get-tags", params![req "name": Str]),
    ("delete-items", params![opt "item": List, opt "path": Str]),
    ("restore-item", params![req "name": Str]),
    (
        "target-create-db",
        params![req "name": Str, opt "azure-client-id": Json, opt "azure-client-secret": Json, opt "azure-tenant-id": Json, opt "client-certificate": Json, opt "client-key-passphrase": Json, opt "client-private-key": Json, opt "cloud-service-provider": Json, opt "cluster-mode": Json, opt "comment": Str, opt "connection-type": Str, opt "db-name": Str, opt "db-server-certificates": Str, opt "db-server-name": Json, opt "db-type": Str, opt "delete-protection": Json, opt "description": Str, opt "enable-mtls": Json, opt "host": Str, opt "keep-prev-version": Json, opt "key": Json, opt "lock-on-read": Json, opt "lock-ttl": Json, opt "max-versions": Json, opt "mongodb-atlas": Json, opt "mongodb-atlas-api-private-key": Json, opt "mongodb-atlas-api-public-key": Json, opt "mongodb-atlas-project-id": Json, opt "mongodb-default-auth-db": Json, opt "mongodb-uri-options": Json, opt "new-name": Json, opt "oracle-service-name": Json, opt "oracle-wallet-login-type": Json, opt "oracle-wallet-p12-file-data": Json, opt "oracle-wallet-sso-file-data": Json, opt "parent-target-name": Json, opt "port": Int, opt "pwd": Str, opt "rotate-on-unlock": Json, opt "skip-server-name-validation": Json, opt "snowflake-account": Json, opt "snowflake-api-private-key": Json, opt "snowflake-api-private-key-password": Json, opt "ssl": Bool, opt "ssl-certificate": Str, opt "user-name": Str],
    ),
    (
        "target-update-db",
        params![req "name": Str, opt "azure-client-id": Json, opt "azure-client-secret": Json, opt "azure-tenant-id": Json, opt "client-certificate": Json, opt "client-key-passphrase": Json, opt "client-private-key": Json, opt "cloud-service-provider": Json, opt "cluster-mode": Json, opt "comment": Str, opt "connection-type": Str, opt "db-name": Str, opt "db-server-certificates": Str, opt "db-server-name": Json, opt "db-type": Str, opt "delete-protection": Json, opt "description": Str, opt "enable-mtls": Json, opt "host": Str, opt "keep-prev-version": Json, opt "key": Json, opt "lock-on-read": Json, opt "lock-ttl": Json, opt "max-versions": Json, opt "mongodb-atlas": Json, opt "mongodb-atlas-api-private-key": Json, opt "mongodb-atlas-api-public-key": Json, opt "mongodb-atlas-project-id": Json, opt "mongodb-default-auth-db": Json, opt "mongodb-uri-options": Json, opt "new-name": Json, opt "oracle-service-name": Json, opt "oracle-wallet-login-type": Json, opt "oracle-wallet-p12-file-data": Json, opt "oracle-wallet-sso-file-data": Json, opt "parent-target-name": Json, opt "port": Int, opt "pwd": Str, opt "rotate-on-unlock": Json, opt "skip-server-name-validation": Json, opt "snowflake-account": Json, opt "snowflake-api-private-key": Json, opt "snowflake-api-private-key-password": Json, opt "ssl": Bool, opt "ssl-certificate": Str, opt "user-name": Str],
    ),
    ("target-get", params![req "name": Str]),
    (
        "target-get-details",
        params![req "name": Str, opt "target-version": Int],
    ),
    (
        "target-list",
        params![opt "filter": Str, opt "pagination-token": Str, opt "type": List],
    ),
    (
        "target-delete",
        params![req "name": Str, opt "force-deletion": Bool, opt "target-version": Int],
    ),
    (
        "dynamic-secret-create-mysql",
        params![req "name": Str, opt "ara-enabled": Json, opt "custom-username-template": Str, opt "db-server-certificates": Str, opt "db-server-name": Json, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "max-leases": Int, opt "mysql-dbname": Str, opt "mysql-host": Str, opt "mysql-password": Str, opt "mysql-port": Int, opt "mysql-revocation-statements": Str, opt "mysql-screation-statements": Str, opt "mysql-username": Str, opt "output-rule": Json, opt "password-length": Int, opt "producer-encryption-key": Json, opt "producer-encryption-key-name": Json, opt "secure-access-bastion-issuer": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-delay": Json, opt "secure-access-enable": Json, opt "secure-access-host": Json, opt "secure-access-web": Json, opt "skip-dry-run": Bool, opt "ssl": Bool, opt "ssl-certificate": Str, opt "tag": List, opt "tags": List, opt "target-name": Str, opt "use-capital-letters": Bool, opt "use-lower-letters": Bool, opt "use-numbers": Bool, opt "use-special-characters": Bool, opt "user-ttl": Str],
    ),
    (
        "dynamic-secret-create-postgresql",
        params![req "name": Str, opt "ara-enabled": Json, opt "creation-statements": Str, opt "custom-username-template": Str, opt "db-server-name": Json, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "max-leases": Int, opt "output-rule": Json, opt "password-length": Int, opt "postgresql-db-name": Str, opt "postgresql-host": Str, opt "postgresql-password": Str, opt "postgresql-port": Int, opt "postgresql-username": Str, opt "producer-encryption-key": Json, opt "producer-encryption-key-name": Json, opt "revocation-statement": Str, opt "secure-access-bastion-issuer": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-delay": Json, opt "secure-access-enable": Json, opt "secure-access-host": Json, opt "secure-access-web": Json, opt "skip-dry-run": Bool, opt "tag": List, opt "tags": List, opt "target-name": Str, opt "use-capital-letters": Bool, opt "use-lower-letters": Bool, opt "use-numbers": Bool, opt "use-special-characters": Bool, opt "user-ttl": Str],
    ),
    (
        "dynamic-secret-create-azure",
        params![req "name": Str, opt "app-obj-id": Str, opt "ara-enabled": Json, opt "azure-client-id": Str, opt "azure-client-secret": Str, opt "azure-tenant-id": Str, opt "custom-username-template": Json, opt "db-server-name": Json, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "fixed-user-claim-keyname": Json, opt "fixed-user-only": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "max-leases": Int, opt "output-rule": Json, opt "password-length": Json, opt "producer-encryption-key": Json, opt "producer-encryption-key-name": Json, opt "secure-access-bastion-issuer": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-delay": Json, opt "secure-access-enable": Json, opt "secure-access-host": Json, opt "secure-access-web": Json, opt "skip-dry-run": Bool, opt "tag": List, opt "tags": List, opt "target-name": Json, opt "user-group-obj-id": Json, opt "user-portal-access": Json, opt "user-principal-name": Json, opt "user-programmatic-access": Bool, opt "user-role-template-id": Json, opt "user-ttl": Str],
    ),
    (
        "dynamic-secret-update-azure",
        params![req "name": Str, opt "azure-client-secret": Str, opt "description": Str, opt "max-leases": Int, opt "skip-dry-run": Bool, opt "tag": List, opt "tags": List, opt "user-programmatic-access": Bool, opt "user-ttl": Str],
    ),
    (
        "dynamic-secret-update-mysql",
        params![req "name": Str, opt "ara-enabled": Json, opt "db-server-certificates": Str, opt "db-server-name": Json, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "mysql-dbname": Str, opt "mysql-host": Str, opt "mysql-password": Str, opt "mysql-port": Int, opt "mysql-username": Str, opt "new-name": Str, opt "output-rule": Json, opt "producer-encryption-key": Json, opt "producer-encryption-key-name": Json, opt "secure-access-bastion-issuer": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-delay": Json, opt "secure-access-enable": Json, opt "secure-access-host": Json, opt "secure-access-web": Json, opt "skip-dry-run": Bool, opt "ssl": Bool, opt "ssl-certificate": Str, opt "tag": List, opt "tags": List, opt "target-name": Str],
    ),
    (
        "dynamic-secret-update-postgresql",
        params![req "name": Str, opt "description": Str, opt "new-name": Str, opt "skip-dry-run": Bool, opt "tag": List, opt "tags": List],
    ),
    ("dynamic-secret-get", params![req "name": Str]),
    ("dynamic-secret-list", params![]),
    ("dynamic-secret-delete", params![req "name": Str]),
    (
        "get-dynamic-secret-value",
        params![req "name": Str, opt "args": Json, opt "dbname": Json, opt "host": Json, opt "target": Str, opt "timeout": Int],
    ),
    ("dynamic-secret-tmp-creds-get", params![req "name": Str]),
    (
        "dynamic-secret-tmp-creds-delete",
        params![req "name": Str, req "tmp-creds-id": Str, opt "host": Json, opt "revoke-all": Bool, opt "soft-delete": Json],
    ),
    (
        "dynamic-secret-tmp-creds-update",
        params![req "name": Str, req "tmp-creds-id": Str, opt "new-ttl-min": Int],
    ),
    (
        "lease-list",
        params![opt "all": Bool, opt "failing": Bool, opt "limit": Int, opt "name": Str],
    ),
    (
        "rotated-secret-create-mysql",
        params![req "name": Str, req "rotated-username": Json, req "rotator-type": Str, req "target-name": Str, opt "ara-enabled": Json, opt "authentication-credentials": Str, opt "auto-rotate": Bool, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "grace-rotation": Json, opt "host": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "key": Json, opt "lock-during-sra-session": Json, opt "lock-on-read": Json, opt "lock-ttl": Json, opt "max-versions": Int, opt "metadata": Str, opt "new-name": Json, opt "output-rule": Json, opt "password-length": Int, opt "provider-type": Str, opt "providertype": Str, opt "rotate-after-disconnect": Json, opt "rotate-on-unlock": Json, opt "rotated-password": Json, opt "rotation-event-in": Json, opt "rotation-hour": Int, opt "rotation-interval": Int, opt "rotator-custom-cmd": Json, opt "same-password": Json, opt "secure-access-bastion-issuer": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-enable": Json, opt "secure-access-host": Json, opt "secure-access-web": Json, opt "skip-dry-run": Bool, opt "tag": List, opt "tags": List, opt "use-capital-letters": Json, opt "use-lower-letters": Json, opt "use-numbers": Json, opt "use-special-characters": Json],
    ),
    (
        "rotated-secret-create-postgresql",
        params![req "name": Str, req "rotated-username": Str, req "rotator-type": Str, req "target-name": Str, opt "ara-enabled": Json, opt "authentication-credentials": Str, opt "auto-rotate": Bool, opt "delete-protection": Json, opt "description": Str, opt "enable-agentic-runtime-authority": Json, opt "enable-ai-quorum": Json, opt "grace-rotation": Json, opt "host": Json, opt "input-rule": Json, opt "item-custom-fields": Json, opt "key": Json, opt "lock-during-sra-session": Json, opt "lock-on-read": Json, opt "lock-ttl": Json, opt "max-versions": Int, opt "metadata": Str, opt "new-name": Json, opt "output-rule": Json, opt "password-length": Int, opt "provider-type": Str, opt "providertype": Str, opt "rotate-after-disconnect": Json, opt "rotate-on-unlock": Json, opt "rotated-password": Str, opt "rotation-event-in": Json, opt "rotation-hour": Int, opt "rotation-interval": Int, opt "rotator-custom-cmd": Json, opt "same-password": Json, opt "secure-access-bastion-issuer": Json, opt "secure-access-certificate-issuer": Json, opt "secure-access-db-name": Json, opt "secure-access-db-schema": Json, opt "secure-access-enable": Json, opt "secure-access-host": Json, opt "secure-access-web": Json, opt "skip-dry-run": Bool, opt "tag": List, opt "tags": List, opt "use-capital-letters": Json, opt "use-lower-letters": Json, opt "use-numbers": Json, opt "use-special-characters": Json],
    ),
    (
        "create-rotated-secret",
        params![req "name": Str, req "rotated-username": Str, req "rotator-type": Str, req "target-name": Str, opt "auto-rotate": Bool, opt "description": Str, opt "max-versions": Int, opt "metadata": Str, opt "password-length": Int, opt "provider-type": Str, opt "rotated-password": Str, opt "rotation-hour": Int, opt "skip-dry-run": Bool, opt "use-capital-letters": Str, opt "use-lower-letters": Str, opt "use-numbers": Str, opt "use-special-characters": Str],
    ),
    (
        "rotated-secret-update-mysql",
        params![req "name": Str, opt "add-tag": List, opt "authentication-credentials": Str, opt "auto-rotate": Bool, opt "description": Str, opt "max-versions": Int, opt "password-length": Int, opt "rm-tag": List, opt "rotation-hour": Int, opt "use-capital-letters": Str, opt "use-lower-letters": Str, opt "use-numbers": Str, opt "use-special-characters": Str],
    ),
    (
        "get-rotated-secret-value",
        params![opt "host": Json, opt "name": List, opt "names": Json, opt "version": Int],
    ),
    (
        "gateway-rotate-secret",
        params![req "name": Str, opt "rotate-all-services": Json, opt "rotateallservicesboolean": Json],
    ),
    ("rotated-secret-list", params![]),
    ("rotated-secret-delete", params![req "name": Str]),
    (
        "create-key",
        params![req "alg": Str, req "name": Str, opt "auto-rotate": Json, opt "cert-file-data": Str, opt "certificate-common-name": Str, opt "certificate-country": Str, opt "certificate-digest-algo": Str, opt "certificate-format": Json, opt "certificate-locality": Str, opt "certificate-organization": Str, opt "certificate-province": Str, opt "certificate-ttl": Json, opt "conf-file-data": Json, opt "customer-frg-id": Json, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "generate-self-signed-certificate": Bool, opt "gpg-alg": Json, opt "hash-algorithm": Str, opt "item-custom-fields": Json, opt "key-data": Str, opt "metadata": Str, opt "protection-key-name": Json, opt "rotation-event-in": Json, opt "rotation-interval": Json, opt "split-level": Int, opt "tag": List, opt "tags": List],
    ),
    (
        "create-classic-key",
        params![req "alg": Str, req "name": Str, opt "auto-rotate": Json, opt "cert-file-data": Str, opt "certificate-common-name": Str, opt "certificate-country": Str, opt "certificate-digest-algo": Str, opt "certificate-format": Json, opt "certificate-locality": Str, opt "certificate-organization": Str, opt "certificate-province": Str, opt "certificate-ttl": Json, opt "conf-file-data": Json, opt "customer-frg-id": Json, opt "delete-protection": Json, opt "description": Str, opt "expiration-event-in": Json, opt "generate-self-signed-certificate": Bool, opt "gpg-alg": Json, opt "hash-algorithm": Str, opt "item-custom-fields": Json, opt "key-data": Str, opt "metadata": Str, opt "protection-key-name": Json, opt "rotation-event-in": Json, opt "rotation-interval": Json, opt "split-level": Int, opt "tag": List, opt "tags": List],
    ),
    ("get-rsa-public", params![req "name": Str]),
    (
        "encrypt",
        params![req "key-name": Str, opt "display-id": Str, opt "encryption-context": Json, opt "input-format": Str, opt "item-id": Int, opt "plaintext": Str, opt "version": Int],
    ),
    (
        "decrypt",
        params![req "ciphertext": Str, req "key-name": Str, opt "display-id": Str, opt "encryption-context": Json, opt "item-id": Int, opt "output-format": Str, opt "version": Int],
    ),
    ("rotate-key", params![req "name": Str]),
    (
        "update-classic-key-certificate",
        params![req "cert-file-data": Str, req "name": Str, opt "format": Str],
    ),
    (
        "create-ssh-cert-issuer",
        params![req "name": Str, opt "add-tag": Json, opt "allow-copy-ext-from-csr": Json, opt "allowed-extra-extensions": Json, opt "allowed-users": Json, opt "auto-renew": Json, opt "basic-constraints": Json, opt "ca-target": Json, opt "cert-type": Str, opt "create-private-ocsp": Json, opt "create-public-crl": Json, opt "create-public-ocsp": Json, opt "critical-options": Json, opt "delete-protection": Json, opt "description": Str, opt "destination-path": Json, opt "enable-acme": Json, opt "enable-scep": Json, opt "expiration-event-in": Json, opt "extensions": Json, opt "external-username": Bool, opt "fixed-user-claim-keyname": Json, opt "gw-cluster-url": Json, opt "host-provider": Json, opt "item-custom-fields": Json, opt "metadata": Str, opt "new-name": Str, opt "ocsp-ttl": Json, opt "principals": Json, opt "protect-certificates": Json, opt "providertype": Json, opt "rm-tag": Json, opt "scep-challenge-type": Json, opt "scep-password": Json, opt "scheduled-renew": Json, opt "secure-access-api": Json, opt "secure-access-bastion-api": Json, opt "secure-access-bastion-ssh": Json, opt "secure-access-enable": Json, opt "secure-access-enforce-hosts-restriction": Json, opt "secure-access-gateway": Json, opt "secure-access-host": Json, opt "secure-access-ssh": Json, opt "secure-access-ssh-creds-user": Json, opt "secure-access-use-internal-bastion": Json, opt "secure-access-use-internal-ssh-access": Json, opt "signer-key-name": Str, opt "split-certificate-chain": Json, opt "tag": List, opt "tags": List, opt "target": Json, opt "ttl": Json],
    ),
    (
        "update-ssh-cert-issuer",
        params![req "name": Str, opt "add-tag": Json, opt "allow-copy-ext-from-csr": Json, opt "allowed-extra-extensions": Json, opt "allowed-users": Json, opt "auto-renew": Json, opt "basic-constraints": Json, opt "ca-target": Json, opt "cert-type": Str, opt "create-private-ocsp": Json, opt "create-public-crl": Json, opt "create-public-ocsp": Json, opt "critical-options": Json, opt "delete-protection": Json, opt "description": Str, opt "destination-path": Json, opt "enable-acme": Json, opt "enable-scep": Json, opt "expiration-event-in": Json, opt "extensions": Json, opt "external-username": Bool, opt "fixed-user-claim-keyname": Json, opt "gw-cluster-url": Json, opt "host-provider": Json, opt "item-custom-fields": Json, opt "metadata": Str, opt "new-name": Str, opt "ocsp-ttl": Json, opt "principals": Json, opt "protect-certificates": Json, opt "providertype": Json, opt "rm-tag": Json, opt "scep-challenge-type": Json, opt "scep-password": Json, opt "scheduled-renew": Json, opt "secure-access-api": Json, opt "secure-access-bastion-api": Json, opt "secure-access-bastion-ssh": Json, opt "secure-access-enable": Json, opt "secure-access-enforce-hosts-restriction": Json, opt "secure-access-gateway": Json, opt "secure-access-host": Json, opt "secure-access-ssh": Json, opt "secure-access-ssh-creds-user": Json, opt "secure-access-use-internal-bastion": Json, opt "secure-access-use-internal-ssh-access": Json, opt "signer-key-name": Str, opt "split-certificate-chain": Json, opt "target": Json, opt "ttl": Json],
    ),
    (
        "get-ssh-certificate",
        params![req "cert-issuer-name": Str, opt "cert-username": List, opt "legacy-signing-alg-name": Bool, opt "public-key-data": Str, opt "ttl": Json],
    ),
    (
        "create-pki-cert-issuer",
        params![req "name": Str, opt "add-tag": Json, opt "allow-any-name": Json, opt "allow-copy-ext-from-csr": Json, opt "allow-subdomains": Json, opt "allowed-domains": Json, opt "allowed-extra-extensions": Json, opt "allowed-ip-sans": Json, opt "allowed-uri-sans": Json, opt "auto-renew": Json, opt "basic-constraints": Json, opt "ca-target": Json, opt "client-flag": Json, opt "code-signing-flag": Json, opt "country": Json, opt "create-private-crl": Bool, opt "create-private-ocsp": Json, opt "create-public-crl": Json, opt "create-public-ocsp": Json, opt "critical-key-usage": Json, opt "delete-protection": Json, opt "description": Str, opt "destination-path": Json, opt "disable-wildcards": Json, opt "enable-acme": Json, opt "enable-scep": Json, opt "expiration-event-in": Json, opt "fixed-user-claim-keyname": Json, opt "gw-cluster-url": Json, opt "host-provider": Json, opt "is-ca": Json, opt "item-custom-fields": Json, opt "key-usage": List, opt "locality": Json, opt "max-path-len": Int, opt "metadata": Str, opt "new-name": Str, opt "not-enforce-hostnames": Json, opt "not-require-cn": Json, opt "ocsp-ttl": Json, opt "organizational-units": Json, opt "organizations": Json, opt "postal-code": Json, opt "protect-certificates": Json, opt "providertype": Json, opt "province": Json, opt "rm-tag": Json, opt "scep-challenge-type": Json, opt "scep-password": Json, opt "scheduled-renew": Json, opt "secure-access-api": Json, opt "secure-access-bastion-api": Json, opt "secure-access-bastion-ssh": Json, opt "secure-access-enable": Json, opt "secure-access-enforce-hosts-restriction": Json, opt "secure-access-gateway": Json, opt "secure-access-host": Json, opt "secure-access-ssh": Json, opt "secure-access-ssh-creds-user": Json, opt "secure-access-use-internal-bastion": Json, opt "secure-access-use-internal-ssh-access": Json, opt "server-flag": Json, opt "signer-key-name": Str, opt "split-certificate-chain": Json, opt "street-address": Json, opt "tag": List, opt "tags": List, opt "target": Json, opt "ttl": Json],
    ),
    (
        "update-pki-cert-issuer",
        params![req "name": Str, opt "add-tag": Json, opt "allow-any-name": Json, opt "allow-copy-ext-from-csr": Json, opt "allow-subdomains": Json, opt "allowed-domains": Json, opt "allowed-extra-extensions": Json, opt "allowed-ip-sans": Json, opt "allowed-uri-sans": Json, opt "auto-renew": Json, opt "basic-constraints": Json, opt "ca-target": Json, opt "client-flag": Json, opt "code-signing-flag": Json, opt "country": Json, opt "create-private-crl": Bool, opt "create-private-ocsp": Json, opt "create-public-crl": Json, opt "create-public-ocsp": Json, opt "critical-key-usage": Json, opt "delete-protection": Json, opt "description": Str, opt "destination-path": Json, opt "disable-wildcards": Json, opt "enable-acme": Json, opt "enable-scep": Json, opt "expiration-event-in": Json, opt "fixed-user-claim-keyname": Json, opt "gw-cluster-url": Json, opt "host-provider": Json, opt "is-ca": Json, opt "item-custom-fields": Json, opt "key-usage": List, opt "locality": Json, opt "max-path-len": Int, opt "metadata": Str, opt "new-name": Str, opt "not-enforce-hostnames": Json, opt "not-require-cn": Json, opt "ocsp-ttl": Json, opt "organizational-units": Json, opt "organizations": Json, opt "postal-code": Json, opt "protect-certificates": Json, opt "providertype": Json, opt "province": Json, opt "rm-tag": Json, opt "scep-challenge-type": Json, opt "scep-password": Json, opt "scheduled-renew": Json, opt "secure-access-api": Json, opt "secure-access-bastion-api": Json, opt "secure-access-bastion-ssh": Json, opt "secure-access-enable": Json, opt "secure-access-enforce-hosts-restriction": Json, opt "secure-access-gateway": Json, opt "secure-access-host": Json, opt "secure-access-ssh": Json, opt "secure-access-ssh-creds-user": Json, opt "secure-access-use-internal-bastion": Json, opt "secure-access-use-internal-ssh-access": Json, opt "server-flag": Json, opt "signer-key-name": Str, opt "split-certificate-chain": Json, opt "street-address": Json, opt "target": Json, opt "ttl": Json],
    ),
    (
        "get-pki-certificate",
        params![req "cert-issuer-name": Str, opt "alt-names": List, opt "common-name": Str, opt "csr-data-base64": Str, opt "extended-key-usage": List, opt "extra-extensions": Json, opt "key-data-base64": Str, opt "max-path-len": Int, opt "ttl": Json, opt "uri-sans": List],
    ),
    (
        "cert-list",
        params![opt "cert-issuer-name": Str, opt "include-expired": Bool, opt "limit": Int, opt "revoked-only": Bool],
    ),
    (
        "revoke-certificate",
        params![req "cert-issuer-name": Str, req "serial-number": Str, opt "reason": Str],
    ),
    (
        "audit-list",
        params![opt "access-id": Str, opt "after-seq": Int, opt "item": Str, opt "limit": Int, opt "operation": Str, opt "outcome": Str, opt "since": Str, opt "until": Str],
    ),
    ("audit-verify", params![]),
    (
        "explain-access",
        params![opt "access-id": Str, opt "auth-method-name": Str, opt "cert-challenge": Str, opt "cert-data": Str, opt "cloud-id": Str, opt "gcp-audience": Str, opt "jwt": Str, opt "k8s-service-account-token": Str, opt "key-data": Str, opt "path": Str, opt "rule-type": Str, opt "signed-cert-challenge": Str, opt "uid-token": Str],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_declares_its_parameters() {
        for op in super::super::OPERATIONS {
            let params = declared(op.name)
                .unwrap_or_else(|| panic!("{} has no row in ops/params.rs", op.name));
            for (i, p) in params.iter().enumerate() {
                assert!(
                    !params[..i].iter().any(|q| q.name == p.name),
                    "{}: {} listed twice",
                    op.name,
                    p.name
                );
                assert!(
                    p.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                    "{}: {} is not a normalised (kebab-case) key",
                    op.name,
                    p.name
                );
                assert!(
                    !["token", "json"].contains(&p.name),
                    "{}: {} is implicit",
                    op.name,
                    p.name
                );
            }
        }
        for (name, _) in PARAMS {
            assert!(
                super::super::OPERATIONS.iter().any(|op| op.name == *name),
                "ops/params.rs has a row for {name}, which is not an operation (aliases use the canonical name)"
            );
        }
        assert_eq!(PARAMS.len(), super::super::OPERATIONS.len());
    }
}
