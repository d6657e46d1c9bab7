//! The operator snapshot file's header (`operator snapshot save`): read and checked without a
//! server, so `caravan operator snapshot inspect` reads a file where no agent runs, and the
//! server's restore checks files the same way (`server::operator_snapshot`).

use std::io::Read;

use crate::api::types::cluster::SnapshotHeader;
use crate::codec::{StreamKind, StreamReader};

/// Reads the header of a snapshot file, and checks it is one this build restores.
pub fn read_header(file: impl Read) -> Result<SnapshotHeader, String> {
    let mut file = std::io::BufReader::new(file);
    let legacy = std::io::BufRead::fill_buf(&mut file)
        .map_err(|error| error.to_string())?
        .starts_with(b"{");
    let header = if legacy {
        let mut line = Vec::new();
        std::io::BufRead::read_until(&mut file, b'\n', &mut line)
            .map_err(|error| error.to_string())?;
        serde_json::from_slice::<SnapshotHeader>(&line)
            .map_err(|error| format!("header: {error}"))?
    } else {
        StreamReader::new(file, StreamKind::OperatorSnapshot)
            .and_then(|mut stream| stream.item::<SnapshotHeader>())
            .map_err(|error| error.to_string())?
    };
    check_header(&header, legacy)?;
    Ok(header)
}

/// Checks that a header is one this build restores (`legacy`: read from a JSON file).
pub fn check_header(header: &SnapshotHeader, legacy: bool) -> Result<(), String> {
    let version = if legacy {
        SnapshotHeader::JSON_VERSION
    } else {
        SnapshotHeader::VERSION
    };
    if header.format != SnapshotHeader::FORMAT || header.version != version {
        return Err(format!(
            "format {:?} version {} (this build reads {:?} version {} and the JSON files of \
             earlier builds, version {})",
            header.format,
            header.version,
            SnapshotHeader::FORMAT,
            SnapshotHeader::VERSION,
            SnapshotHeader::JSON_VERSION,
        ));
    }
    Ok(())
}
