//! Arguments of the database commands: targets, dynamic secrets and their
//! leases, rotated secrets. Names and flags follow the Akeyless CLI
//! (`target-create-db`, `dynamic-secret create mysql`, `rotated-secret
//! create postgresql`); the flat names of the wire and of the older CLI
//! (`gateway-create-producer-mysql`, `rotated-secret-create-mysql`, …) are
//! accepted as hidden commands.
//!
//! Passwords (`--pwd`, `--mysql-password`, `--postgresql-password`,
//! `--rotated-password`) may be given as `-` to read them from standard
//! input: a command line is visible in `ps` and kept in shell history.

use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand};
use secrecy::SecretString;

use crate::args::{GlobalArgs, NameArgs, secret};

// ---- targets ----

#[derive(Debug, Args)]
pub(crate) struct TargetCreateDbArgs {
    /// Target name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// mysql (also MariaDB) or postgres.
    #[arg(long)]
    pub db_type: String,
    /// Database host name or address.
    #[arg(long)]
    pub host: String,
    /// Admin user: it must be able to create users.
    #[arg(long)]
    pub user_name: String,
    #[command(flatten)]
    pub conn: TargetConnArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TargetUpdateDbArgs {
    /// Target name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The target's type (it cannot change).
    #[arg(long)]
    pub db_type: Option<String>,
    /// Database host name or address.
    #[arg(long)]
    pub host: Option<String>,
    /// Admin user: it must be able to create users.
    #[arg(long)]
    pub user_name: Option<String>,
    #[command(flatten)]
    pub conn: TargetConnArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Connection options of `target-create-db` and `target-update-db`.
#[derive(Debug, Args)]
pub(crate) struct TargetConnArgs {
    /// Port (default 3306 for mysql, 5432 for postgres).
    #[arg(long)]
    pub port: Option<u16>,
    /// The admin user's password ("-" reads it from standard input, which
    /// keeps it out of `ps` and shell history). On update, absent keeps it.
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub pwd: Option<SecretString>,
    /// Database to connect to.
    #[arg(long)]
    pub db_name: Option<String>,
    /// Connect over TLS (verifying the server).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub ssl: Option<bool>,
    /// CA certificate of the database server for --ssl: a PEM file, or the
    /// PEM or its base64.
    #[arg(long)]
    pub ssl_certificate: Option<String>,
    /// Description.
    #[arg(long, alias = "comment")]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TargetListArgs {
    /// Only names containing this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Only this type: mysql or postgres (repeatable).
    #[arg(long = "type")]
    pub types: Vec<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TargetDeleteArgs {
    /// Target name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Delete even while dynamic or rotated secrets use it (they then fail
    /// until given another target).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub force_deletion: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

// ---- dynamic secrets ----

#[derive(Debug, Args)]
pub(crate) struct DynamicSecretCommand {
    #[command(subcommand)]
    pub command: DynamicSecretSubcommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DynamicSecretSubcommand {
    /// Create a dynamic secret: a new database user for every request.
    Create(DynamicSecretDbCommand),
    /// Change a dynamic secret's settings (options not given stay).
    Update(DynamicSecretDbCommand),
    /// Show a dynamic secret's settings.
    Get(NameArgs),
    /// List dynamic secrets.
    List(crate::args::NoArgs),
    /// Delete a dynamic secret, revoking its live credentials first.
    Delete(NameArgs),
    /// Create a database user and print it as JSON (same as get-dynamic-secret-value).
    GetValue(GetDynamicSecretValueArgs),
    /// List the live credentials of a dynamic secret.
    TmpCredsGet(NameArgs),
    /// Revoke one credential (--tmp-creds-id) or all (--revoke-all) now.
    TmpCredsDelete(TmpCredsDeleteArgs),
    /// Give a credential a new lifetime, counted from now.
    TmpCredsUpdate(TmpCredsUpdateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DynamicSecretDbCommand {
    #[command(subcommand)]
    pub db: DynamicSecretDb,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DynamicSecretDb {
    /// MySQL or MariaDB.
    #[command(alias = "mariadb")]
    Mysql(DynamicSecretMysqlArgs),
    /// PostgreSQL.
    #[command(alias = "postgres")]
    Postgresql(DynamicSecretPostgresqlArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DynamicSecretMysqlArgs {
    /// Dynamic secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Inline admin connection (instead of --target-name): host.
    #[arg(long)]
    pub mysql_host: Option<String>,
    /// Inline admin connection: port (default 3306).
    #[arg(long)]
    pub mysql_port: Option<u16>,
    /// Inline admin connection: user.
    #[arg(long)]
    pub mysql_username: Option<String>,
    /// Inline admin connection: password ("-" reads it from standard input,
    /// which keeps it out of `ps` and shell history).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub mysql_password: Option<SecretString>,
    /// Inline admin connection: database.
    #[arg(long)]
    pub mysql_dbname: Option<String>,
    /// Statements creating the user, separated by ';', with {{name}},
    /// {{password}}, {{expiration}} (default: CREATE USER, GRANT SELECT ON *.*).
    #[arg(long, alias = "mysql-creation-statements")]
    pub mysql_screation_statements: Option<String>,
    /// Statements revoking the user (default: kill its connections, drop it).
    #[arg(long)]
    pub mysql_revocation_statements: Option<String>,
    #[command(flatten)]
    pub common: DynamicSecretCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DynamicSecretPostgresqlArgs {
    /// Dynamic secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Inline admin connection (instead of --target-name): host.
    #[arg(long)]
    pub postgresql_host: Option<String>,
    /// Inline admin connection: port (default 5432).
    #[arg(long)]
    pub postgresql_port: Option<u16>,
    /// Inline admin connection: user.
    #[arg(long)]
    pub postgresql_username: Option<String>,
    /// Inline admin connection: password ("-" reads it from standard input,
    /// which keeps it out of `ps` and shell history).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub postgresql_password: Option<SecretString>,
    /// Inline admin connection: database.
    #[arg(long)]
    pub postgresql_db_name: Option<String>,
    /// Statements creating the role, separated by ';', with {{name}},
    /// {{password}}, {{expiration}} (default: CREATE ROLE … VALID UNTIL,
    /// GRANT SELECT ON ALL TABLES IN SCHEMA public).
    #[arg(long)]
    pub creation_statements: Option<String>,
    /// Statements revoking the role (default: end its sessions, drop what
    /// it owns, drop it).
    #[arg(long)]
    pub revocation_statement: Option<String>,
    #[command(flatten)]
    pub common: DynamicSecretCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options of dynamic secrets of every database type.
#[derive(Debug, Args)]
pub(crate) struct DynamicSecretCommonArgs {
    /// The database target whose admin creates the users.
    #[arg(long)]
    pub target_name: Option<String>,
    /// Inline connection over TLS.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub ssl: Option<bool>,
    /// Inline connection: CA certificate of the server (a PEM file, or the
    /// PEM or its base64).
    #[arg(long)]
    pub ssl_certificate: Option<String>,
    /// Lifetime of each user: 15s, 60m, 2h, 1d, 1h30m; a bare number is
    /// minutes (default 60m).
    #[arg(long)]
    pub user_ttl: Option<String>,
    /// Length of the generated passwords (12-128, default 24).
    #[arg(long)]
    pub password_length: Option<i64>,
    /// Passwords include capital letters.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_capital_letters: Option<bool>,
    /// Passwords include lower-case letters.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_lower_letters: Option<bool>,
    /// Passwords include digits.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_numbers: Option<bool>,
    /// Passwords include the characters -_.~.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_special_characters: Option<bool>,
    /// User names: literal text with {{random}} (required), {{item}}, {{time}}.
    #[arg(long)]
    pub custom_username_template: Option<String>,
    /// Do not check the statements by creating and dropping a user.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub skip_dry_run: Option<bool>,
    /// Live credentials at most (default 1000).
    #[arg(long)]
    pub max_leases: Option<i64>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Tag (repeatable).
    #[arg(long = "tag", alias = "tags")]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct GetDynamicSecretValueArgs {
    /// Dynamic secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The dynamic secret's target (checked, not chosen).
    #[arg(long)]
    pub target: Option<String>,
    /// Seconds the gateway may take (0-300).
    #[arg(long)]
    pub timeout: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TmpCredsDeleteArgs {
    /// Dynamic secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The credential to revoke (its user name, the `id` of get-dynamic-secret-value).
    #[arg(
        long,
        required_unless_present = "revoke_all",
        conflicts_with = "revoke_all"
    )]
    pub tmp_creds_id: Option<String>,
    /// Revoke every live credential of the dynamic secret.
    #[arg(long)]
    pub revoke_all: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TmpCredsUpdateArgs {
    /// Dynamic secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The credential (its user name).
    #[arg(long)]
    pub tmp_creds_id: String,
    /// New lifetime in minutes from now (at most the dynamic secret's user-ttl).
    #[arg(long)]
    pub new_ttl_min: i64,
    #[command(flatten)]
    pub global: GlobalArgs,
}

// ---- leases ----

#[derive(Debug, Args)]
pub(crate) struct LeaseCommand {
    #[command(subcommand)]
    pub command: LeaseSubcommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LeaseSubcommand {
    /// List the leases (issued credentials) of the dynamic secrets you may read.
    List(LeaseListArgs),
    /// Revoke a lease (--id) or every lease of a dynamic secret (--all) now.
    Revoke(LeaseRevokeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LeaseListArgs {
    /// Only this dynamic secret.
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Only leases whose revocation failed (the server keeps retrying them).
    #[arg(long)]
    pub failing: bool,
    /// Include revoked leases.
    #[arg(long)]
    pub all: bool,
    /// At most this many leases (default 10000).
    #[arg(long)]
    pub limit: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LeaseRevokeArgs {
    /// The dynamic secret.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The lease (its database user name).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Every live lease of the dynamic secret.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

// ---- rotated secrets ----

#[derive(Debug, Args)]
pub(crate) struct RotatedSecretCommand {
    #[command(subcommand)]
    pub command: RotatedSecretSubcommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RotatedSecretSubcommand {
    /// Create a rotated secret: a database user's password Coffer changes.
    Create(RotatedSecretCreateCommand),
    /// Change a rotated secret's schedule, password policy, description or tags.
    Update(RotatedSecretUpdateCommand),
    /// List rotated secrets.
    List(crate::args::NoArgs),
    /// Delete a rotated secret (a target it rotated keeps the current password).
    Delete(NameArgs),
    /// Rotate now (same as gateway-rotate-secret).
    Rotate(NameArgs),
    /// Print the username and password as JSON (same as get-rotated-secret-value).
    GetValue(GetRotatedSecretValueArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RotatedSecretCreateCommand {
    #[command(subcommand)]
    pub db: RotatedSecretCreateDb,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RotatedSecretCreateDb {
    /// A MySQL or MariaDB user.
    #[command(alias = "mariadb")]
    Mysql(RotatedSecretCreateArgs),
    /// A PostgreSQL user.
    #[command(alias = "postgres")]
    Postgresql(RotatedSecretCreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RotatedSecretUpdateCommand {
    #[command(subcommand)]
    pub db: RotatedSecretUpdateDb,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RotatedSecretUpdateDb {
    /// A MySQL or MariaDB rotated secret.
    #[command(alias = "mariadb")]
    Mysql(RotatedSecretUpdateArgs),
    /// A PostgreSQL rotated secret.
    #[command(alias = "postgres")]
    Postgresql(RotatedSecretUpdateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RotatedSecretCreateArgs {
    /// Rotated secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The database target to connect through.
    #[arg(long)]
    pub target_name: String,
    /// target: the target's own admin password; password: --rotated-username's.
    #[arg(long, value_parser = ["target", "password"])]
    pub rotator_type: String,
    /// The user whose password is rotated (rotator-type password).
    #[arg(long, required_if_eq("rotator_type", "password"))]
    pub rotated_username: Option<String>,
    /// That user's current password ("-" reads it from standard input,
    /// which keeps it out of `ps` and shell history).
    #[arg(
        long,
        value_parser = secret,
        allow_hyphen_values = true,
        required_if_eq("rotator_type", "password")
    )]
    pub rotated_password: Option<SecretString>,
    /// use-user-creds: the user changes its own password (default);
    /// use-target-creds: the target's admin does.
    #[arg(long, value_parser = ["use-user-creds", "use-target-creds"])]
    pub authentication_credentials: Option<String>,
    #[command(flatten)]
    pub settings: RotationArgs,
    /// Do not check that the given credentials log in.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub skip_dry_run: Option<bool>,
    /// Tag (repeatable).
    #[arg(long = "tag", alias = "tags")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RotatedSecretUpdateArgs {
    /// Rotated secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// use-user-creds or use-target-creds.
    #[arg(long, value_parser = ["use-user-creds", "use-target-creds"])]
    pub authentication_credentials: Option<String>,
    #[command(flatten)]
    pub settings: RotationArgs,
    /// Tag to add (repeatable).
    #[arg(long)]
    pub add_tag: Vec<String>,
    /// Tag to remove (repeatable).
    #[arg(long)]
    pub rm_tag: Vec<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Schedule and password policy of a rotated secret.
#[derive(Debug, Args)]
pub(crate) struct RotationArgs {
    /// Rotate every --rotation-interval days.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub auto_rotate: Option<bool>,
    /// Days between automatic rotations (1-365, default 30).
    #[arg(long)]
    pub rotation_interval: Option<i64>,
    /// Hour of the automatic rotation, UTC (0-23, default 14).
    #[arg(long)]
    pub rotation_hour: Option<i64>,
    /// Length of the new passwords (12-128, default 24).
    #[arg(long)]
    pub password_length: Option<i64>,
    /// Passwords include capital letters.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_capital_letters: Option<bool>,
    /// Passwords include lower-case letters.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_lower_letters: Option<bool>,
    /// Passwords include digits.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_numbers: Option<bool>,
    /// Passwords include the characters -_.~.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub use_special_characters: Option<bool>,
    /// Number of versions to keep.
    #[arg(long)]
    pub max_versions: Option<i64>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct GetRotatedSecretValueArgs {
    /// Rotated secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Version to read (default: the current one).
    #[arg(long)]
    pub version: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}
