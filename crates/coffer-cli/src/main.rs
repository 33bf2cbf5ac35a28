//! `coffer`: the Coffer server and an admin CLI that mirrors the Akeyless CLI.
#![forbid(unsafe_code)]

mod args;
mod ci_args;
mod commands;
mod db_args;
mod exit;
mod help;
mod jq;
mod key_args;
mod output;
mod profile;
mod session;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

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
    let cli = parse();
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
        return ExitCode::from(exit::OTHER);
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(commands::run(cli)));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            output::print_error(&err);
            ExitCode::from(exit::code(&err))
        }
    }
}

/// Parse the command line (with the grouped top-level help), fix the
/// output mode from `--json`/`--jq-expression` (a bad expression is a
/// usage error, before anything is sent), then build the commands, whose
/// `GlobalArgs::json` reads that mode.
fn parse() -> args::Cli {
    let mut matches = help::with_grouped_help(args::Cli::command()).get_matches();
    let jq = matches.get_one::<String>("jq_expression").cloned();
    if let Some(expression) = &jq
        && let Err(why) = jq::check(expression)
    {
        args::Cli::command()
            .error(clap::error::ErrorKind::InvalidValue, why)
            .exit();
    }
    output::set_mode(output::Mode {
        json: matches.get_flag("json"),
        jq,
    });
    args::Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
}
