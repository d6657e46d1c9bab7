//! `caravan agent-info`: the agent's counters per subsystem, from `/v1/agent/self`.
//!
//! Nomad: `command/agent_info.go` (each subsystem's name, then its counters sorted, indented).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::output::outln;
use super::{ApiArgs, OutputArgs, block_on};
use crate::api::types::agent::AgentSelf;

#[derive(Debug, Args)]
pub struct AgentInfoArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: &AgentInfoArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let info: AgentSelf = client
            .get("/v1/agent/self")
            .await
            .map_err(|err| anyhow::anyhow!("Error querying agent info: {err}"))?;
        if !args.output.printed(&info)? {
            outln!("{}", stats_text(&info))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Each subsystem, then its counters as `  key = value`, both sorted.
fn stats_text(info: &AgentSelf) -> String {
    let mut text = String::new();
    for (section, counters) in &info.stats {
        let _ = writeln!(text, "{section}");
        for (key, value) in counters {
            let _ = writeln!(text, "  {key} = {value}");
        }
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn sections_and_counters_print_sorted_and_indented() {
        let counters = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        let info = AgentSelf {
            stats: BTreeMap::from([
                (
                    String::from("raft"),
                    counters(&[("term", "2"), ("applied_index", "17")]),
                ),
                (String::from("broker"), counters(&[("total_ready", "0")])),
            ]),
            ..AgentSelf::default()
        };
        assert_eq!(
            stats_text(&info),
            "broker\n  total_ready = 0\nraft\n  applied_index = 17\n  term = 2"
        );
    }
}
