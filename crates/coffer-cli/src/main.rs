//! `coffer`: the Coffer server and an admin CLI that mirrors the Akeyless CLI.
#![forbid(unsafe_code)]

mod args;
mod ci_args;
mod commands;
mod db_args;
mod key_args;
mod output;
mod profile;
mod session;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: under load glibc's allocator took
/// about 20 % of the server's CPU (perf, JWT logins); see docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One crypto provider for every TLS user (reqwest, the server, sqlx).
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    // Usage errors exit with clap's status 2.
    let cli = args::Cli::parse();
    // Operator commands too: a long data-key rotation would otherwise keep
    // the root key readable in /proc/<pid>/environ.
    if matches!(
        cli.command,
        args::Command::Server(_) | args::Command::Operator(_)
    ) && let Err(err) = coffer_server::scrub_root_key_env()
    {
        // Only returns on failure: COFFER_ROOT_KEY is set and re-executing
        // without it did not work. Refuse rather than run with the key in
        // the environment.
        output::print_error(&err);
        return ExitCode::FAILURE;
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(commands::run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::print_error(&err);
            ExitCode::FAILURE
        }
    }
}
