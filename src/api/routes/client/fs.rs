//! `GET /v1/client/fs/{ls,stat,cat,readat}/{alloc}?path=`: files under an allocation's
//! directory, through [`crate::allocfs`] only (Nomad: `command/agent/fs_endpoint.go`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Params, blocking, number, runner_of};
use crate::allocfs::{AllocFsError, FileKind, Metadata, OpenOptions, RelPath, Root};
use crate::api::error::ApiError;
use crate::api::types::client::AllocFileInfo;
use crate::client::Shared;
use crate::client::alloc_runner::AllocRunnerHandle;

/// Largest file `cat` answers with; `readat` reads any range of a larger one.
pub const MAX_CAT_BYTES: u64 = 64 << 20;

/// The allocation's root and the `path` parameter beneath it. Every fs route then acts through
/// [`crate::allocfs`], so a link a task planted is reported as a link, never followed.
fn path_param(
    runner: &AllocRunnerHandle,
    params: &std::collections::HashMap<String, String>,
) -> Result<(Root, RelPath), ApiError> {
    let relative = params.get("path").map(String::as_str).unwrap_or("/");
    let root = runner
        .alloc_dir()
        .open_root()
        .map_err(|err| ApiError::NotFound(format!("allocation directory ({err})")))?;
    let path = root.rel_rooted(relative).map_err(|_| {
        ApiError::BadRequest(format!(
            "path {relative:?} escapes the allocation directory"
        ))
    })?;
    Ok((root, path))
}

fn file_info(metadata: &Metadata, name: String) -> AllocFileInfo {
    AllocFileInfo {
        name,
        is_dir: metadata.is_dir(),
        size: metadata.len,
        file_mode: format_mode(metadata.mode, metadata.kind),
        mod_time: humantime::format_rfc3339_nanos(metadata.modified).to_string(),
        content_type: if metadata.is_dir() {
            String::new()
        } else {
            "application/octet-stream".to_owned()
        },
    }
}

fn format_mode(mode: u32, kind: FileKind) -> String {
    let mut text = String::from(match kind {
        FileKind::Dir => "d",
        FileKind::Symlink => "L",
        FileKind::File => "-",
        FileKind::Other => "?",
    });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    text
}

pub(crate) async fn ls(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Result<Json<Vec<AllocFileInfo>>, ApiError> {
    let runner = runner_of(&shared, &alloc)?;
    let (root, path) = path_param(&runner, &params)?;
    let entries = blocking(move || Ok(root.list(&path)?)).await?;
    Ok(Json(
        entries
            .iter()
            .map(|entry| file_info(&entry.metadata, entry.name.to_string_lossy().into_owned()))
            .collect(),
    ))
}

pub(crate) async fn stat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Result<Json<AllocFileInfo>, ApiError> {
    let runner = runner_of(&shared, &alloc)?;
    let (root, path) = path_param(&runner, &params)?;
    let name = path
        .names()
        .last()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".to_owned());
    let metadata = blocking(move || Ok(root.metadata(&path)?)).await?;
    Ok(Json(file_info(&metadata, name)))
}

pub(crate) async fn cat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let runner = runner_of(&shared, &alloc)?;
    let (root, path) = path_param(&runner, &params)?;
    let bytes = blocking(move || {
        if root.metadata(&path)?.is_dir() {
            return Err(ApiError::BadRequest("path is a directory".to_owned()));
        }
        Ok(root.read(&path, MAX_CAT_BYTES)?)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `GET /v1/client/fs/readat/{alloc}?path=&offset=&limit=`: a byte range of a file.
pub(crate) async fn readat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let runner = runner_of(&shared, &alloc)?;
    let (root, path) = path_param(&runner, &params)?;
    let offset = number(&params, "offset", 0)?;
    let limit = number(&params, "limit", MAX_CAT_BYTES)?.min(MAX_CAT_BYTES);
    let bytes = blocking(move || Ok(read_range(&root, &path, offset, limit)?)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Up to `limit` bytes of the regular file at `path` from `offset`.
pub fn read_range(
    root: &Root,
    path: &RelPath,
    offset: u64,
    limit: u64,
) -> Result<Vec<u8>, AllocFsError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| AllocFsError::Io {
        path: path.to_string(),
        root: root.path().to_path_buf(),
        source,
    };
    let mut file = root.open_file(path, OpenOptions::read())?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut data = Vec::new();
    file.take(limit).read_to_end(&mut data).map_err(io)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes_read_like_ls() {
        assert_eq!(format_mode(0o755, FileKind::Dir), "drwxr-xr-x");
        assert_eq!(format_mode(0o640, FileKind::File), "-rw-r-----");
        assert_eq!(format_mode(0o777, FileKind::Symlink), "Lrwxrwxrwx");
    }
}
