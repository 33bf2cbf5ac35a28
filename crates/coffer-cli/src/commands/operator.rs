//! `coffer operator`: backup/restore of the embedded store and key
//! rotation, run against the storage directly (see
//! `coffer_server::operator`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use coffer_server::operator::{self, DataKeyRotation, StoreArgs};

#[derive(Debug, Args)]
pub(crate) struct OperatorCommand {
    #[command(subcommand)]
    pub command: OperatorSubcommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OperatorSubcommand {
    /// Consistent snapshot of the embedded SQLite store (also while the
    /// server serves writes) into a new file (mode 0600). The root key is
    /// not in it. PostgreSQL: use pg_dump (see docs/operations.md).
    Backup(BackupArgs),
    /// Lay a backup into a new, empty data directory.
    Restore(RestoreArgs),
    /// Re-wrap every data key under a new root key, in one transaction.
    RotateRootKey(RotateRootKeyArgs),
    /// Add a data key for new writes and re-seal every value under it.
    RotateDataKey(RotateDataKeyArgs),
    /// Does the root key open the store; data keys and what each seals.
    KeyStatus(KeyStatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The backup file to create (refused if it exists).
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup file (made by `coffer operator backup`).
    #[arg(long)]
    pub from: PathBuf,
    /// The new data directory (must not exist or be empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The original root key: checks that it opens the backup and that the
    /// audit chain verifies (it is not copied).
    #[arg(long)]
    pub root_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RotateRootKeyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The new root key; generated into this file (mode 0600) when it does
    /// not exist.
    #[arg(long)]
    pub new_root_key_file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RotateDataKeyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Values re-sealed per transaction (1 to 10000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    /// Seconds running servers get to load the new key before values are
    /// re-sealed under it (they check the store every second by default).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub(crate) struct KeyStatusArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub(crate) async fn run(cmd: OperatorCommand) -> anyhow::Result<()> {
    match cmd.command {
        OperatorSubcommand::Backup(a) => operator::backup(&a.store, &a.to).await,
        OperatorSubcommand::Restore(a) => {
            operator::restore(&a.from, &a.data_dir, a.root_key_file.as_deref()).await
        }
        OperatorSubcommand::RotateRootKey(a) => {
            operator::rotate_root_key(&a.store, &a.new_root_key_file).await
        }
        OperatorSubcommand::RotateDataKey(a) => {
            operator::rotate_data_key(
                &a.store,
                &DataKeyRotation {
                    batch: a.batch_size as usize,
                    wait: Duration::from_secs(a.wait),
                },
            )
            .await
        }
        OperatorSubcommand::KeyStatus(a) => operator::key_status(&a.store).await,
    }
}
