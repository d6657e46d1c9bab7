//! `http://` and `https://` sources: the body is streamed into a file the caller opened beneath
//! the task dir, never held whole in memory, within the client's `http_max_size` and
//! `http_read_timeout`. TLS is rustls with the system's trust roots; `insecure = true` on the
//! artifact skips certificate checks, as Nomad's does.

use std::collections::BTreeMap;

use tokio::io::AsyncWriteExt;

use super::{ArtifactError, ArtifactLimits};

/// Downloads `url` into `file`; returns the bytes written.
pub async fn download(
    url: &str,
    headers: &BTreeMap<String, String>,
    insecure: bool,
    file: std::fs::File,
    limits: &ArtifactLimits,
) -> Result<u64, ArtifactError> {
    let max = limits.http_max_size;
    let transfer = async {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(insecure)
            .build()?;
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await?;
        if !response.status().is_success() {
            return Err(ArtifactError::Status(response.status().as_u16()));
        }
        if response.content_length().is_some_and(|len| len > max) {
            return Err(ArtifactError::DownloadTooLarge { limit: max });
        }
        let mut file = tokio::fs::File::from_std(file);
        let mut written: u64 = 0;
        while let Some(chunk) = response.chunk().await? {
            written = written.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            if written > max {
                return Err(ArtifactError::DownloadTooLarge { limit: max });
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(written)
    };
    tokio::time::timeout(limits.http_read_timeout, transfer)
        .await
        .map_err(|_| ArtifactError::HttpTimeout {
            timeout: limits.http_read_timeout,
        })?
}
