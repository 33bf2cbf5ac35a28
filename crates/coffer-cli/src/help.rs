//! `coffer --help` with the commands in groups (clap lists subcommands
//! under one heading only). Every visible command lands in exactly one
//! group; a command no rule knows goes to "Other commands", so a new one
//! is never hidden.

use clap::Command;

/// The groups, in the order shown.
const GROUPS: &[&str] = &[
    "Auth & profiles",
    "Static secrets & items",
    "Auth methods",
    "Roles",
    "Targets",
    "Dynamic secrets",
    "Rotated secrets",
    "Keys & certificates",
    "Audit",
    "CI",
    "Server & operator",
    "Other commands",
];

/// The group of a top-level command, by its name.
fn group_of(name: &str) -> &'static str {
    let has = |p: &str| name.contains(p);
    match name {
        "configure" | "unconfigure" | "auth" | "whoami" | "validate-token" | "revoke-token" => {
            "Auth & profiles"
        }
        "server" | "operator" | "dev" | "version" | "completion" => "Server & operator",
        "audit" => "Audit",
        "ci" => "CI",
        "lease" => "Dynamic secrets",
        "cert" | "encrypt" | "decrypt" => "Keys & certificates",
        _ if has("uid-") || has("auth-method") || name == "explain-access" => "Auth methods",
        _ if has("role") || has("assoc") => "Roles",
        _ if name.starts_with("target") => "Targets",
        _ if has("dynamic") || has("producer") || has("tmp-creds") => "Dynamic secrets",
        _ if has("rotated") || has("rotate-secret") => "Rotated secrets",
        _ if has("key") || has("cert") || has("rsa") => "Keys & certificates",
        _ if has("secret") || has("item") || has("folder") || has("tag") => {
            "Static secrets & items"
        }
        _ => "Other commands",
    }
}

/// The commands section of the top-level help: each group with its
/// commands and their one-line descriptions.
pub(crate) fn grouped_commands(cmd: &Command) -> String {
    let visible: Vec<&Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    let width = visible
        .iter()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for group in GROUPS {
        let members: Vec<&&Command> = visible
            .iter()
            .filter(|c| group_of(c.get_name()) == *group)
            .collect();
        if members.is_empty() {
            continue;
        }
        out.push_str(&format!("{group}:\n"));
        for c in members {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            let first = about.lines().next().unwrap_or_default();
            out.push_str(&format!("  {:<width$}  {first}\n", c.get_name()));
        }
        out.push('\n');
    }
    out
}

/// `cmd` with the grouped command list as its help template.
pub(crate) fn with_grouped_help(cmd: Command) -> Command {
    let groups = grouped_commands(&cmd);
    cmd.help_template(format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}Options:\n{{options}}{{after-help}}"
    ))
    .after_help(
        "Run `coffer COMMAND --help` for a command's options. Exit statuses: 0 ok, 1 other error, 2 usage, 3 authentication, 4 permission, 5 not found, 6 conflict, 7 network (docs/cli.md).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_visible_command_is_listed_once() {
        let cmd = crate::args::Cli::command();
        let text = grouped_commands(&cmd);
        for c in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let lines = text
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(c.get_name()))
                .count();
            assert_eq!(lines, 1, "{} in\n{text}", c.get_name());
        }
        assert!(!text.contains("gateway-create-producer-mysql"), "hidden");
    }

    #[test]
    fn groups_follow_the_families() {
        assert_eq!(group_of("get-secret-value"), "Static secrets & items");
        assert_eq!(group_of("list-items"), "Static secrets & items");
        assert_eq!(group_of("get-tags"), "Static secrets & items");
        assert_eq!(group_of("create-auth-method-oauth2"), "Auth methods");
        assert_eq!(group_of("uid-generate-token"), "Auth methods");
        assert_eq!(group_of("assoc-role-am"), "Roles");
        assert_eq!(group_of("set-role-rule"), "Roles");
        assert_eq!(group_of("target-create-db"), "Targets");
        assert_eq!(group_of("get-dynamic-secret-value"), "Dynamic secrets");
        assert_eq!(group_of("gateway-rotate-secret"), "Rotated secrets");
        assert_eq!(group_of("get-rotated-secret-value"), "Rotated secrets");
        assert_eq!(group_of("create-classic-key"), "Keys & certificates");
        assert_eq!(group_of("get-ssh-certificate"), "Keys & certificates");
        assert_eq!(group_of("whoami"), "Auth & profiles");
        assert_eq!(group_of("operator"), "Server & operator");
    }
}
