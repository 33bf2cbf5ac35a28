-- Issue 11 (keys and certificates), SQLite flavour. Keep in step with
-- ../postgres/0005_certificates.sql. Keys and issuers are items (their
-- versions hold the sealed key material or the issuer's settings); this
-- table records every certificate issued (never a private key).
CREATE TABLE certificates (
    issuer_id         INTEGER NOT NULL,         -- no FK: records outlive their issuer
    serial            TEXT NOT NULL,            -- lowercase hex, unique per issuer
    issuer_name       TEXT NOT NULL,
    kind              TEXT NOT NULL,            -- ssh | pki
    signer_key        TEXT NOT NULL,            -- the CA key's name and version: a CRL
    signer_version    INTEGER NOT NULL,         -- lists what that key signed, whichever issuer
    subject           TEXT NOT NULL,            -- SSH key ID or X.509 subject
    names             TEXT NOT NULL,            -- JSON list: principals or SANs
    access_id         TEXT NOT NULL,
    identity          TEXT NOT NULL,
    request_id        TEXT NOT NULL,            -- the issuing request (its audit record)
    issued_ms         INTEGER NOT NULL,
    expires_ms        INTEGER NOT NULL,
    revoked_ms        INTEGER NOT NULL,         -- 0 = not revoked
    revocation_reason TEXT NOT NULL,
    PRIMARY KEY (issuer_id, serial)
) STRICT;
CREATE INDEX certificates_issuer ON certificates (issuer_name, issued_ms);
CREATE INDEX certificates_signer ON certificates (signer_key, signer_version, revoked_ms);
