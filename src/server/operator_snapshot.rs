//! `operator snapshot save|restore`: a consistent point-in-time copy of the whole state, and
//! putting one back through Raft (Nomad: `nomad/operator_endpoint.go` `snapshotSave`,
//! `snapshotRestore`).
//!
//! ```text
//!   file = a codec stream (kind OperatorSnapshot): SnapshotHeader, then the state table by table
//!   save:    leader confirms it leads (read index) ─► waits until applied ─► O(1) state snapshot
//!            ─► encoded a row at a time
//!   restore: file ─► Command::SnapshotRestore through Raft ─► every server replaces its state
//! ```
//!
//! A file of an earlier build (a JSON header line, then the state as JSON) is still restored.

use std::sync::Arc;
use std::time::Duration;

use super::raft::Command;
use super::state::{PersistedState, write_state};
use super::{Server, ServerError};
use crate::api::types::cluster::SnapshotHeader;
use crate::codec::{StreamKind, StreamReader, StreamWriter};
use crate::snapshot_file::check_header;

impl Server {
    /// The whole state as of the last committed entry this leader knows, as a snapshot file.
    pub async fn snapshot_save(&self) -> Result<Vec<u8>, ServerError> {
        let confirmed = tokio::time::timeout(
            super::endpoints::WRITE_TIMEOUT,
            self.raft.raft.ensure_linearizable(),
        )
        .await
        .map_err(|_| ServerError::NoLeader)?;
        let read_at = match confirmed {
            Ok(log_id) => log_id.map_or(0, |log_id| log_id.index),
            Err(openraft::error::RaftError::APIError(_)) => return Err(ServerError::NoLeader),
            Err(other) => return Err(ServerError::Raft(other.to_string())),
        };
        self.store
            .wait_for_index(read_at, Duration::from_secs(5))
            .await;
        let snapshot = self.store.snapshot();
        let tables = snapshot.tables();
        let header = SnapshotHeader {
            format: SnapshotHeader::FORMAT.to_owned(),
            version: SnapshotHeader::VERSION,
            index: tables.indexes.latest,
            term: self.raft.raft.metrics().borrow().current_term,
            created_at: super::now_unix_nanos(),
            jobs: tables.jobs.len() as u64,
            allocations: tables.allocs.len() as u64,
            nodes: tables.nodes.len() as u64,
            evaluations: tables.evals.len() as u64,
            deployments: tables.deployments.len() as u64,
        };
        // Encoding a large state is CPU-bound work: off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut stream = StreamWriter::new(Vec::new(), StreamKind::OperatorSnapshot)?;
            stream.item(&header)?;
            write_state(snapshot.tables(), &mut stream)?;
            stream.finish()
        })
        .await
        .map_err(|error| ServerError::Raft(error.to_string()))?
        .map_err(|error| ServerError::Raft(format!("encoding the snapshot: {error}")))
    }

    /// Replaces the cluster's state with a snapshot file; returns the Raft index of the restore.
    pub async fn snapshot_restore(&self, file: &[u8]) -> Result<u64, ServerError> {
        let (header, state) = parse_snapshot(file)?;
        tracing::info!(
            index = header.index,
            jobs = header.jobs,
            "restoring an operator snapshot"
        );
        let response = self
            .write_checked(Command::SnapshotRestore {
                state: Arc::new(state),
            })
            .await?;
        Ok(response.index)
    }
}

/// Splits and checks a snapshot file.
pub fn parse_snapshot(file: &[u8]) -> Result<(SnapshotHeader, PersistedState), ServerError> {
    let invalid = |message: String| ServerError::Invalid(format!("invalid snapshot: {message}"));
    if !file.starts_with(b"{") {
        let mut stream = StreamReader::new(file, StreamKind::OperatorSnapshot)
            .map_err(|error| invalid(error.to_string()))?;
        let header: SnapshotHeader = stream
            .item()
            .map_err(|error| invalid(format!("header: {error}")))?;
        check_header(&header, false).map_err(invalid)?;
        let state = PersistedState::read_stream(&mut stream)
            .map_err(|error| invalid(format!("state: {error}")))?;
        return Ok((header, state));
    }
    let newline = file
        .iter()
        .position(|byte| *byte == b'\n')
        .ok_or_else(|| invalid("no header line".to_owned()))?;
    let header: SnapshotHeader = serde_json::from_slice(&file[..newline])
        .map_err(|error| invalid(format!("header: {error}")))?;
    check_header(&header, true).map_err(invalid)?;
    let state: PersistedState = serde_json::from_slice(&file[newline + 1..])
        .map_err(|error| invalid(format!("state: {error}")))?;
    Ok((header, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_snapshot_is_refused_with_the_reason() {
        let cases: [(&[u8], &str); 4] = [
            (b"{}", "no header line"),
            (b"PK\x03\x04", "not a caravan file"),
            (
                b"{\"Format\":\"other\",\"Version\":1,\"Index\":1,\"Term\":1,\"CreatedAt\":0,\"Jobs\":0,\"Allocations\":0,\"Nodes\":0,\"Evaluations\":0,\"Deployments\":0}\n{}",
                "format \"other\"",
            ),
            (
                b"{\"Format\":\"caravan-snapshot\",\"Version\":1,\"Index\":1,\"Term\":1,\"CreatedAt\":0,\"Jobs\":0,\"Allocations\":0,\"Nodes\":0,\"Evaluations\":0,\"Deployments\":0}\n[1]",
                "state:",
            ),
        ];
        for (file, reason) in cases {
            let error = parse_snapshot(file).map(|_| ()).expect_err("refused");
            assert!(error.to_string().contains(reason), "{error}");
        }
    }
}
