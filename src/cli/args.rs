//! Nomad-style flags for clap: `-config x` means `--config x`.
//!
//! Nomad's CLI uses Go's flag package, where a long flag takes one dash. clap wants two. Before
//! parsing, [`normalize`] walks the arguments along the clap command tree and rewrites `-name` and
//! `-name=value` to `--name` / `--name=value` where `name` is a long flag of the command being
//! parsed, so both spellings work and nothing else (values, commands run by `alloc exec`) is
//! touched.

use std::ffi::OsString;

use clap::Command;

/// Nomad's short forms of common commands (`nomad run` is `nomad job run`), and the
/// hyphenated names older scripts still call (Nomad: `command/commands.go`).
pub const ALIASES: &[(&str, &[&str])] = &[
    ("run", &["job", "run"]),
    ("stop", &["job", "stop"]),
    ("plan", &["job", "plan"]),
    ("validate", &["job", "validate"]),
    ("inspect", &["job", "inspect"]),
    ("init", &["job", "init"]),
    ("logs", &["alloc", "logs"]),
    ("exec", &["alloc", "exec"]),
    ("fs", &["alloc", "fs"]),
    ("alloc-status", &["alloc", "status"]),
    ("eval-status", &["eval", "status"]),
    ("node-status", &["node", "status"]),
    ("node-drain", &["node", "drain"]),
    ("server-members", &["server", "members"]),
    ("server-join", &["server", "join"]),
    ("server-force-leave", &["server", "force-leave"]),
    ("client-config", &["node", "config"]),
];

/// Replaces an alias in the command position (right after the program name) by the command it
/// stands for; anything else is left as it is.
pub fn expand_alias(mut args: Vec<OsString>) -> Vec<OsString> {
    let expansion = args
        .get(1)
        .and_then(|arg| arg.to_str())
        .and_then(|name| ALIASES.iter().find(|(alias, _)| *alias == name))
        .map(|(_, command)| *command);
    if let Some(command) = expansion {
        args.splice(1..2, command.iter().map(OsString::from));
    }
    args
}

/// Rewrites single-dash long flags to double-dash ones.
pub fn normalize(command: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut current = command.clone();
    let mut normalized = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(program) = iter.next() {
        normalized.push(program);
    }
    let mut passthrough = false;
    let mut takes_value_next = false;
    let mut seen_positional = false;
    for arg in iter {
        if passthrough {
            normalized.push(arg);
            continue;
        }
        let Some(text) = arg.to_str().map(str::to_owned) else {
            normalized.push(arg);
            continue;
        };
        if takes_value_next {
            takes_value_next = false;
            normalized.push(arg);
            continue;
        }
        if text == "--" {
            passthrough = true;
            normalized.push(arg);
            continue;
        }
        if let Some(rest) = text.strip_prefix("--") {
            let name = rest.split('=').next().unwrap_or(rest);
            takes_value_next = !rest.contains('=') && flag_takes_value(&current, name);
            normalized.push(arg);
            continue;
        }
        if let Some(rest) = text.strip_prefix('-')
            && rest.len() > 1
        {
            let name = rest.split('=').next().unwrap_or(rest);
            if is_long_flag(&current, name) {
                takes_value_next = !rest.contains('=') && flag_takes_value(&current, name);
                normalized.push(OsString::from(format!("-{text}")));
                continue;
            }
            normalized.push(arg);
            continue;
        }
        if text.starts_with('-') {
            // A short flag (`-f`) or a negative number.
            let short = text.chars().nth(1);
            takes_value_next = text.len() == 2
                && current
                    .get_arguments()
                    .any(|a| a.get_short() == short && a.get_action().takes_values());
            normalized.push(arg);
            continue;
        }
        if !seen_positional && let Some(sub) = current.find_subcommand(&text).cloned() {
            current = sub;
            normalized.push(arg);
            continue;
        }
        seen_positional = true;
        // After the first positional of a command that runs another command (`alloc exec ID
        // cmd -flag`), everything is the other command's.
        if current.is_trailing_var_arg_set() {
            passthrough = true;
        }
        normalized.push(arg);
    }
    normalized
}

fn is_long_flag(command: &Command, name: &str) -> bool {
    command.get_arguments().any(|arg| {
        arg.get_long() == Some(name)
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

fn flag_takes_value(command: &Command, name: &str) -> bool {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(name))
        .is_some_and(|arg| arg.get_action().takes_values())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    fn check(input: &[&str], expected: &[&str]) {
        let args = input.iter().map(OsString::from).collect();
        let normalized = normalize(&Cli::command(), args);
        let normalized: Vec<&str> = normalized.iter().filter_map(|a| a.to_str()).collect();
        assert_eq!(normalized, expected);
    }

    #[test]
    fn aliases_expand_in_the_command_position_only() {
        let expand = |input: &[&str]| -> Vec<String> {
            expand_alias(input.iter().map(OsString::from).collect())
                .into_iter()
                .filter_map(|arg| arg.into_string().ok())
                .collect()
        };
        assert_eq!(
            expand(&["caravan", "run", "-detach", "x.hcl"]),
            ["caravan", "job", "run", "-detach", "x.hcl"]
        );
        assert_eq!(
            expand(&["caravan", "node-status", "-self"]),
            ["caravan", "node", "status", "-self"]
        );
        // `job run` stays; an argument named like an alias is not a command.
        assert_eq!(
            expand(&["caravan", "job", "run", "stop"]),
            ["caravan", "job", "run", "stop"]
        );
        assert_eq!(
            expand(&["caravan", "client-config", "-servers"]),
            ["caravan", "node", "config", "-servers"]
        );
        assert_eq!(expand(&["caravan"]), ["caravan"]);
        // Every alias names a real command.
        for (alias, command) in ALIASES {
            let mut current = Cli::command();
            for name in *command {
                current = current
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("{alias}: no command {command:?}"))
                    .clone();
            }
        }
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        check(
            &["caravan", "agent", "-config", "server.hcl", "-dev"],
            &["caravan", "agent", "--config", "server.hcl", "--dev"],
        );
        check(
            &["caravan", "job", "run", "-output", "example.nomad.hcl"],
            &["caravan", "job", "run", "--output", "example.nomad.hcl"],
        );
        check(
            &[
                "caravan",
                "job",
                "run",
                "-var=image=redis:7",
                "-address=http://127.0.0.1:5656",
                "x.hcl",
            ],
            &[
                "caravan",
                "job",
                "run",
                "--var=image=redis:7",
                "--address=http://127.0.0.1:5656",
                "x.hcl",
            ],
        );
    }

    #[test]
    fn values_and_short_flags_are_left_alone() {
        check(
            &["caravan", "alloc", "logs", "-f", "-stderr", "abc", "redis"],
            &["caravan", "alloc", "logs", "-f", "--stderr", "abc", "redis"],
        );
        // A value that looks like a flag stays a value.
        check(
            &["caravan", "job", "run", "-var", "-dev", "x.hcl"],
            &["caravan", "job", "run", "--var", "-dev", "x.hcl"],
        );
    }

    #[test]
    fn exec_command_arguments_pass_through() {
        check(
            &[
                "caravan", "alloc", "exec", "-task", "web", "abc123", "/bin/ls", "-la", "-output",
            ],
            &[
                "caravan", "alloc", "exec", "--task", "web", "abc123", "/bin/ls", "-la", "-output",
            ],
        );
    }
}
