//! `caravan alloc logs` and `caravan alloc fs`: a task's stdout/stderr, and the allocation
//! directory, read through the client API.
//!
//! Nomad: `command/alloc_logs.go`, `command/alloc_fs.go`.

use std::io::Write;
use std::process::ExitCode;

use futures::StreamExt;

use super::alloc_status::{read_alloc, task_names};
use super::block_on;
use super::format::{format_nanos, parse_rfc3339, short_id, table};
use super::output::outln;
use super::{AllocFsArgs, AllocLogsArgs};
use crate::api::client::{ApiClient, encode};
use crate::api::types::client::AllocFileInfo;

/// Lines `-tail` shows when `-n` is not given, as Nomad.
const DEFAULT_TAIL_LINES: u64 = 10;

pub fn logs(args: &AllocLogsArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        let alloc_id = alloc.id.to_string();
        let tasks = task_names(&alloc);
        let task = match &args.task {
            Some(task) => {
                if !tasks.contains(task) {
                    anyhow::bail!("Could not find task named: {task}");
                }
                task.clone()
            }
            None if tasks.len() == 1 => tasks[0].clone(),
            None => {
                let mut text = format!(
                    "Allocation {:?} is running the following tasks:\n",
                    short_id(&alloc_id, false)
                );
                for task in &tasks {
                    text.push_str(&format!("  * {task}\n"));
                }
                text.push_str("\nPlease select the task.");
                anyhow::bail!(text);
            }
        };
        let stream_type = if args.stderr { "stderr" } else { "stdout" };
        let base = format!(
            "/v1/client/fs/logs/{alloc_id}?task={}&type={stream_type}&plain=true",
            encode(&task)
        );
        let mut out = std::io::stdout().lock();
        let tail_lines = args
            .lines
            .or((args.tail && args.bytes.is_none()).then_some(DEFAULT_TAIL_LINES));
        let start_offset =
            if let Some(n_bytes) = args.bytes.filter(|_| args.tail || args.bytes.is_some()) {
                let whole = read_all(&client, &base).await?;
                let start = whole
                    .len()
                    .saturating_sub(usize::try_from(n_bytes).unwrap_or(usize::MAX));
                out.write_all(&whole[start..])?;
                whole.len()
            } else if let Some(n_lines) = tail_lines {
                let whole = read_all(&client, &base).await?;
                out.write_all(last_lines(&whole, n_lines))?;
                whole.len()
            } else if !args.follow {
                let mut response = client
                    .get_stream(&base)
                    .await
                    .map_err(|err| anyhow::anyhow!("Error reading file: {err}"))?
                    .bytes_stream();
                while let Some(chunk) = response.next().await {
                    out.write_all(&chunk?)?;
                }
                0
            } else {
                0
            };
        out.flush()?;
        if args.follow {
            let path = format!("{base}&follow=true&origin=start&offset={start_offset}");
            let mut response = client
                .get_stream(&path)
                .await
                .map_err(|err| anyhow::anyhow!("Error reading file: {err}"))?
                .bytes_stream();
            while let Some(chunk) = response.next().await {
                out.write_all(&chunk?)?;
                out.flush()?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn read_all(client: &ApiClient, path: &str) -> anyhow::Result<Vec<u8>> {
    let response = client
        .get_stream(path)
        .await
        .map_err(|err| anyhow::anyhow!("Error reading file: {err}"))?;
    Ok(response.bytes().await?.to_vec())
}

/// The last `n_lines` lines of `data` (a trailing newline does not count as a line).
fn last_lines(data: &[u8], n_lines: u64) -> &[u8] {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (byte_idx, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == n_lines {
                return &data[byte_idx + 1..];
            }
        }
    }
    data
}

pub fn fs(args: &AllocFsArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        let alloc_id = alloc.id.to_string();
        let path = encode(&args.path);
        let info: AllocFileInfo = client
            .get(&format!("/v1/client/fs/stat/{alloc_id}?path={path}"))
            .await
            .map_err(|err| anyhow::anyhow!("Error stating file: {err}"))?;
        if args.stat {
            outln!("{}", files_table(std::slice::from_ref(&info)))?;
            return Ok(ExitCode::SUCCESS);
        }
        if info.is_dir {
            let files: Vec<AllocFileInfo> = client
                .get(&format!("/v1/client/fs/ls/{alloc_id}?path={path}"))
                .await
                .map_err(|err| anyhow::anyhow!("Error listing alloc dir: {err}"))?;
            outln!("{}", files_table(&files))?;
            return Ok(ExitCode::SUCCESS);
        }
        let bytes = client
            .get_stream(&format!("/v1/client/fs/cat/{alloc_id}?path={path}"))
            .await
            .map_err(|err| anyhow::anyhow!("Error reading file: {err}"))?
            .bytes()
            .await?;
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `Mode  Size  Modified Time  Name`, directories suffixed with `/`.
fn files_table(files: &[AllocFileInfo]) -> String {
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|file| {
            let mut name = file.name.clone();
            if file.is_dir && !name.ends_with('/') {
                name.push('/');
            }
            vec![
                file.file_mode.clone(),
                file.size.to_string(),
                format_nanos(parse_rfc3339(&file.mod_time)),
                name,
            ]
        })
        .collect();
    table(&["Mode", "Size", "Modified Time", "Name"], &rows)
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 5), b"a\nb\nc");
        assert_eq!(last_lines(b"a\nb\nc", 1), b"c");
    }
}
