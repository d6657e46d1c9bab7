//! Root key replication (#23, variables in HA) on three real server processes with mutual TLS on
//! the RPC port: a variable written through one leader is read through the next after the first
//! is SIGKILLed, because every server fetched the root key from a peer over the server-only
//! route; the key and the value are in no file of the data dirs but the keystores, nor in any
//! log; a plain HTTP caller and a client certificate are refused the key; `operator root keyring
//! rotate` makes a new active key with which new writes are sealed while old ones stay readable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::cluster::{
    ServerProcess, get_json, http, leader_index, servers_with, wait_for_cluster,
};
use crate::support::server::wait_for;
use crate::support::{Run, caravan};

/// Every file below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// A reqwest client presenting `name`'s certificate (`global-<name>-nomad.pem`) to the CA's
/// servers.
fn tls_client(dir: &Path, name: &str) -> anyhow::Result<reqwest::Client> {
    let mut identity = std::fs::read(dir.join(format!("global-{name}-nomad.pem")))?;
    identity.extend(std::fs::read(
        dir.join(format!("global-{name}-nomad-key.pem")),
    )?);
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
            dir.join("nomad-agent-ca.pem"),
        )?)?)
        .identity(reqwest::Identity::from_pem(&identity)?)
        .timeout(Duration::from_secs(15))
        .build()?)
}

/// The keys the cluster lists, as (ID, state).
async fn keys(
    client: &reqwest::Client,
    server: &ServerProcess,
) -> anyhow::Result<Vec<(String, String)>> {
    let keys = get_json(
        client,
        &format!("{}/v1/operator/keyring/keys", server.url()),
    )
    .await?;
    Ok(keys
        .as_array()
        .into_iter()
        .flatten()
        .map(|key| {
            (
                key["KeyID"].as_str().unwrap_or_default().to_owned(),
                key["State"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// Waits until every running server's keystore holds `key_id`.
async fn wait_for_key_everywhere(servers: &[ServerProcess], key_id: &str) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(30), || async {
        Ok(servers
            .iter()
            .filter(|server| server.process.is_some())
            .all(|server| {
                server
                    .data_dir()
                    .join(format!("server/keystore/{key_id}.json"))
                    .exists()
            })
            .then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_opens_variables_with_a_root_key_replicated_to_servers_only()
-> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    for args in [
        &["tls", "ca", "create"][..],
        &["tls", "cert", "create", "-server"],
        &["tls", "cert", "create", "-client"],
    ] {
        let made = caravan(dir, args)?;
        assert_eq!(made.code, Some(0), "{args:?}: {made:?}");
    }
    let file = |name: &str| dir.join(name).display().to_string();
    let tls = format!(
        r#"
tls {{
  rpc                    = true
  ca_file                = "{}"
  cert_file              = "{}"
  key_file               = "{}"
  verify_server_hostname = true
}}
"#,
        file("nomad-agent-ca.pem"),
        file("global-server-nomad.pem"),
        file("global-server-nomad-key.pem"),
    );
    let mut servers = servers_with(dir, 3, "keyring", &tls)?;
    for server in &mut servers {
        server.start()?;
    }
    let http = http()?;
    let leader = leader_index(&servers, &wait_for_cluster(&http, &servers, 3).await?)?;
    // `caravan COMMAND... -address URL ARGS...`: the command's words are those before the first
    // flag or argument with a `-`, `=` or `/`.
    let cli = |server: &ServerProcess, args: &[&str]| -> anyhow::Result<Run> {
        let mut all = args.to_vec();
        let position = all
            .iter()
            .position(|arg| arg.contains(['-', '=', '/']))
            .unwrap_or(all.len());
        let url = server.url();
        all.splice(position..position, ["-address", url.as_str()]);
        caravan(dir, &all)
    };

    let secret = format!("replicated-secret-{}", std::process::id());
    let put = cli(
        &servers[leader],
        &[
            "var",
            "put",
            "-out",
            "none",
            "app/db",
            &format!("password={secret}"),
        ],
    )?;
    assert_eq!(put.code, Some(0), "{put:?}");
    let listed = keys(&http, &servers[leader]).await?;
    let [(key_id, state)] = listed.as_slice() else {
        anyhow::bail!("one root key after the first write: {listed:?}");
    };
    assert_eq!(state, "active");
    let key_id = key_id.clone();
    wait_for_key_everywhere(&servers, &key_id).await?;
    let key_file = servers[leader]
        .data_dir()
        .join(format!("server/keystore/{key_id}.json"));
    let key_json: Value = serde_json::from_str(&std::fs::read_to_string(&key_file)?)?;
    let key_text = key_json["Key"].as_str().unwrap_or_default().to_owned();
    assert_eq!(key_text.len(), 44, "base64 of 32 bytes: {key_json}");
    for server in &servers {
        use std::os::unix::fs::PermissionsExt;
        let copy = server
            .data_dir()
            .join(format!("server/keystore/{key_id}.json"));
        let mode = std::fs::metadata(&copy)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", copy.display());
        let copied: Value = serde_json::from_str(&std::fs::read_to_string(&copy)?)?;
        assert_eq!(
            copied["Key"],
            key_text.as_str(),
            "the same key on {}",
            server.name
        );
    }

    // Only a server of the cluster gets the key: plain HTTP, and a client certificate over
    // mutual TLS, are refused; the server certificate is answered.
    let follower = (leader + 1) % 3;
    let route = format!("/v1/internal/server/keyring/{key_id}");
    let plain = http
        .get(format!("{}{route}", servers[follower].url()))
        .send()
        .await?;
    assert_eq!(plain.status().as_u16(), 403);
    assert!(!plain.text().await?.contains(&key_text));
    let rpc_url = format!("https://127.0.0.1:{}{route}", servers[follower].rpc);
    let as_client = tls_client(dir, "client")?.get(&rpc_url).send().await?;
    assert_eq!(as_client.status().as_u16(), 403);
    let refusal = as_client.text().await?;
    assert!(refusal.contains("Permission denied"), "{refusal}");
    assert!(!refusal.contains(&key_text));
    let as_server = tls_client(dir, "server")?.get(&rpc_url).send().await?;
    assert_eq!(as_server.status().as_u16(), 200);
    let sent: Value = as_server.json().await?;
    assert_eq!(sent["Key"], key_text.as_str());

    // The leader dies; the new one opens the variable with its replicated key.
    servers[leader].kill()?;
    let new_leader = wait_for(Duration::from_secs(60), || async {
        let elected = leader_index(&servers, &wait_for_cluster(&http, &servers, 3).await?)?;
        Ok((elected != leader).then_some(elected))
    })
    .await?;
    let got = wait_for(Duration::from_secs(30), || async {
        let got = cli(
            &servers[new_leader],
            &["var", "get", "-item", "password", "app/db"],
        )?;
        Ok((got.code == Some(0)).then_some(got))
    })
    .await?;
    assert_eq!(got.stdout.trim(), secret, "{got:?}");

    // A rotation makes a new active key; new writes use it, the old variable stays readable.
    let rotated = cli(
        &servers[new_leader],
        &["operator", "root", "keyring", "rotate", "-verbose"],
    )?;
    assert_eq!(rotated.code, Some(0), "{rotated:?}");
    let listed = keys(&http, &servers[new_leader]).await?;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0], (key_id.clone(), "inactive".to_owned()));
    let (new_key, new_state) = &listed[1];
    assert_eq!(new_state, "active");
    assert!(rotated.stdout.contains(new_key.as_str()), "{rotated:?}");
    let listing = cli(
        &servers[new_leader],
        &["operator", "root", "keyring", "list"],
    )?;
    assert!(
        listing
            .stdout
            .starts_with("Key       State     Create Time"),
        "{listing:?}"
    );
    assert!(
        listing
            .stdout
            .contains(&format!("{}  inactive", &key_id[..8])),
        "{listing:?}"
    );
    let put = cli(
        &servers[new_leader],
        &[
            "var",
            "put",
            "-out",
            "none",
            "app/new",
            &format!("password={secret}-2"),
        ],
    )?;
    assert_eq!(put.code, Some(0), "{put:?}");
    wait_for_key_everywhere(&servers, new_key).await?;
    let old = cli(
        &servers[new_leader],
        &["var", "get", "-item", "password", "app/db"],
    )?;
    assert_eq!(old.stdout.trim(), secret, "{old:?}");

    // Neither the value nor the key is in plain text anywhere but the keystores: not in Raft's
    // log or snapshots, not in any server's log.
    let mut checked = 0;
    for path in files_below(dir) {
        let in_keystore = path.components().any(|part| part.as_os_str() == "keystore");
        let bytes = std::fs::read(&path)?;
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
        assert!(
            !contains(secret.as_bytes()),
            "{} holds the value",
            path.display()
        );
        if !in_keystore {
            assert!(
                !contains(key_text.as_bytes()),
                "{} holds the key",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked > 10,
        "the data dirs and logs were read: {checked} files"
    );
    for server in &mut servers {
        server.kill()?;
    }
    Ok(())
}
