//! The Web UI in a real browser: Debian's Chromium, headless, driven over the DevTools protocol
//! (a WebSocket), against a `-dev` agent in this process running a real raw_exec job. Each view
//! loads with real data and no console errors, the allocation's log tail shows new output live, a
//! new client appears on the clients page without a reload, a placement failure is explained, and
//! stopping the job from the UI (a real mouse click) stops its allocation; when the agent goes
//! away the page says so. With `CARAVAN_UI_SCREENSHOTS=1` the main views are written to
//! `docs/ui/*.png` (the job page also at a phone's width).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use caravan::agent::config::AgentConfig;
use caravan::agent::run::start_agent;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::support::server::{mock_node, wait_for};
use crate::support::{AgentProcess, free_port};

const WAIT: Duration = Duration::from_secs(20);

/// Where Debian puts Chromium, if it is installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools-protocol session with one page; collects the page's errors as they arrive.
struct Cdp {
    socket: Socket,
    next_id: u64,
    errors: Vec<String>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(message)).await?;
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .with_context(|| format!("no answer to {method}"))?
                .context("the browser closed the DevTools socket")??;
            let Message::Text(text) = frame else { continue };
            let message: Value = serde_json::from_str(text.as_str())?;
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    anyhow::bail!("{method}: {error}");
                }
                return Ok(message["result"].clone());
            }
            self.note_event(&message);
        }
    }

    fn note_event(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.exceptionThrown") => self
                .errors
                .push(format!("exception: {}", params["exceptionDetails"])),
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => self
                .errors
                .push(format!("log: {}", params["entry"]["text"])),
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => self
                .errors
                .push(format!("console.error: {}", params["args"])),
            _ => {}
        }
    }

    /// Evaluates `expression` in the page (awaiting promises) and returns its value.
    async fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            anyhow::bail!("evaluating {expression}: {details}");
        }
        Ok(result["result"]["value"].clone())
    }

    async fn goto(&mut self, url: &str) -> anyhow::Result<()> {
        self.call("Page.navigate", json!({ "url": url })).await?;
        Ok(())
    }

    /// Follows an in-app link (the client-side router, as a user's click does), once the page
    /// shows it.
    async fn follow_link(&mut self, href: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let clicked = self
                .eval(&format!(
                    "(() => {{ const a = document.querySelector('a[href={href:?}]'); if (!a) return false; a.click(); return true; }})()"
                ))
                .await?;
            if clicked == true {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "no link to {href} on the page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the page's text contains every one of `needles`.
    async fn wait_for_text(&mut self, needles: &[&str]) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = self
                .eval("document.body ? document.body.innerText : ''")
                .await?;
            let text = text.as_str().unwrap_or_default().to_owned();
            if needles.iter().all(|needle| text.contains(needle)) {
                return Ok(text);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the page never showed {needles:?}; it shows:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks, with real mouse events, the first button whose text is `label`.
    /// Waits until the page shows one of `needles`; answers the first one it shows.
    async fn wait_for_any_text<'a>(&mut self, needles: &[&'a str]) -> anyhow::Result<&'a str> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = self
                .eval("document.body ? document.body.innerText : ''")
                .await?;
            let text = text.as_str().unwrap_or_default().to_owned();
            if let Some(found) = needles.iter().find(|needle| text.contains(**needle)) {
                return Ok(found);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the page never showed any of {needles:?}; it shows:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click_button(&mut self, label: &str) -> anyhow::Result<()> {
        let expression = format!(
            "(() => {{ const b = [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === {label:?}); \
             if (!b) return null; b.scrollIntoView({{ block: 'center' }}); const r = b.getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        );
        let point = self.eval(&expression).await?;
        let (Some(x), Some(y)) = (point[0].as_f64(), point[1].as_f64()) else {
            anyhow::bail!("no button {label:?} on the page");
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await?;
        }
        Ok(())
    }

    /// A screenshot at a phone's width (390 px), then back to the desktop size.
    async fn phone_screenshot(&mut self, name: &str) -> anyhow::Result<()> {
        if std::env::var("CARAVAN_UI_SCREENSHOTS").as_deref() != Ok("1") {
            return Ok(());
        }
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true }),
        )
        .await?;
        let shot = self.screenshot(name).await;
        self.call("Emulation.clearDeviceMetricsOverride", json!({}))
            .await?;
        shot
    }

    async fn screenshot(&mut self, name: &str) -> anyhow::Result<()> {
        if std::env::var("CARAVAN_UI_SCREENSHOTS").as_deref() != Ok("1") {
            return Ok(());
        }
        let result = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(result["data"].as_str().unwrap_or_default())?;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/ui");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), png)?;
        Ok(())
    }
}

/// Starts headless Chromium with a DevTools port and connects to its page.
async fn launch(
    binary: &PathBuf,
    profile: &std::path::Path,
) -> anyhow::Result<(tokio::process::Child, Cdp)> {
    let mut child = tokio::process::Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,900",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting chromium")?;
    let stderr = child.stderr.take().context("chromium's stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let browser_ws = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                return Ok(url.trim().to_owned());
            }
        }
        anyhow::bail!("chromium exited before it listened for DevTools")
    })
    .await
    .context("chromium did not open its DevTools port")??;
    // Keep draining stderr so that the browser never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let port = browser_ws
        .trim_start_matches("ws://")
        .split(['/', ':'])
        .nth(1)
        .context("DevTools port")?
        .to_owned();
    let http = reqwest::Client::new();
    let page_ws = wait_for(WAIT, || async {
        let targets: Vec<Value> = http
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await?
            .json()
            .await?;
        Ok(targets
            .iter()
            .find(|target| target["type"] == "page")
            .and_then(|target| target["webSocketDebuggerUrl"].as_str())
            .map(str::to_owned))
    })
    .await?;
    let (socket, _) = tokio_tungstenite::connect_async(page_ws.as_str()).await?;
    let mut cdp = Cdp {
        socket,
        next_id: 0,
        errors: Vec::new(),
    };
    for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
        cdp.call(domain, json!({})).await?;
    }
    Ok((child, cdp))
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_a_live_cluster_and_stops_a_job() -> anyhow::Result<()> {
    let Some(binary) = chromium() else {
        anyhow::ensure!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (scripts/setup.sh installs it)"
        );
        eprintln!("skipping the Web UI browser test: chromium is not installed");
        return Ok(());
    };
    let mut config = AgentConfig::dev();
    config.ports.http = Some(0);
    config.ports.rpc = Some(0);
    let agent = start_agent(config, true).await?;
    let url = format!("http://{}", agent.http_addr);
    let http = reqwest::Client::new();
    let (node_id, node_name) = wait_for(Duration::from_secs(30), || async {
        let nodes = get_json(&http, &format!("{url}/v1/nodes")).await?;
        Ok(nodes.as_array().and_then(|nodes| {
            let node = nodes.iter().find(|node| node["Status"] == "ready")?;
            Some((
                node["ID"].as_str()?.to_owned(),
                node["Name"].as_str()?.to_owned(),
            ))
        }))
    })
    .await?;
    let job = json!({ "Job": {
        "ID": "web-ui-demo",
        "TaskGroups": [{ "Name": "web",
            "Tasks": [{
                "Name": "ticker",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sh",
                    "args": ["-c", "i=0; while :; do echo ui-tick-$i; i=$((i+1)); sleep 0.2; done"] },
                "Resources": { "CPU": 20, "MemoryMB": 16 },
            }],
        }],
    }});
    http.put(format!("{url}/v1/jobs"))
        .json(&job)
        .send()
        .await?
        .error_for_status()?;
    let alloc_id = wait_for(Duration::from_secs(30), || async {
        let allocs = get_json(&http, &format!("{url}/v1/job/web-ui-demo/allocations")).await?;
        Ok(allocs.as_array().and_then(|allocs| {
            allocs
                .iter()
                .find(|alloc| alloc["ClientStatus"] == "running")
                .and_then(|alloc| alloc["ID"].as_str().map(str::to_owned))
        }))
    })
    .await?;
    // A job no node can take: the evaluations view must say why.
    let unplaceable = json!({ "Job": {
        "ID": "web-ui-nowhere",
        "Constraints": [{ "LTarget": "${attr.kernel.name}", "RTarget": "plan9", "Operand": "=" }],
        "TaskGroups": [{ "Name": "g", "Tasks": [{ "Name": "t", "Driver": "raw_exec",
            "Config": { "command": "/bin/true" } }] }],
    }});
    http.put(format!("{url}/v1/jobs"))
        .json(&unplaceable)
        .send()
        .await?
        .error_for_status()?;

    let profile = tempfile::tempdir()?;
    let (mut browser, mut cdp) = launch(&binary, profile.path()).await?;

    // `/` redirects to the UI, which opens on the jobs list.
    cdp.goto(&format!("{url}/")).await?;
    cdp.wait_for_text(&["web-ui-demo", "running", "service"])
        .await?;
    let path = cdp.eval("location.pathname").await?;
    assert_eq!(path, "/ui/jobs");
    cdp.screenshot("jobs").await?;

    let short = &alloc_id[..8];
    cdp.goto(&format!("{url}/ui/jobs/web-ui-demo")).await?;
    cdp.wait_for_text(&["web-ui-demo", "web", "ticker (raw_exec)", short, "running"])
        .await?;
    cdp.screenshot("job").await?;
    cdp.phone_screenshot("job-phone").await?;

    // The task group: its reservations, its allocation with live memory use.
    cdp.follow_link("/ui/jobs/web-ui-demo/web").await?;
    cdp.wait_for_text(&["20 MHz", "16 MiB", short, " MiB\t"])
        .await?;

    cdp.goto(&format!("{url}/ui/allocations/{alloc_id}"))
        .await?;
    cdp.wait_for_text(&["ticker", "running", "Started"]).await?;
    let first = wait_for_log(&mut cdp, 0).await?;
    // The tail is live: more lines arrive without a reload.
    wait_for_log(&mut cdp, first + 3).await?;
    cdp.wait_for_text(&["Resource use", "Memory: ", "CPU: "])
        .await?;
    cdp.screenshot("allocation").await?;

    // A hard navigation away from a live log tail (the page ends its streams on `pagehide`).
    cdp.goto(&format!("{url}/ui/clients")).await?;
    cdp.wait_for_text(&[&node_name, "ready", "eligible", "raw_exec"])
        .await?;
    cdp.screenshot("clients").await?;
    // A client that joins shows up without a reload.
    http.put(format!("{url}/v1/internal/node/register"))
        .json(&json!({ "Node": mock_node(7) }))
        .send()
        .await?
        .error_for_status()?;
    cdp.wait_for_text(&["node-7", &node_name]).await?;

    cdp.follow_link("/ui/servers").await?;
    cdp.wait_for_text(&["alive", "leader"]).await?;

    cdp.follow_link("/ui/evaluations").await?;
    cdp.wait_for_text(&["web-ui-nowhere", "constraint", "plan9"])
        .await?;
    cdp.screenshot("evaluations").await?;

    cdp.follow_link("/ui/topology").await?;
    cdp.wait_for_text(&[&node_name, "MiB memory", "MHz CPU"])
        .await?;

    // Eligibility from the client's page, followed there without a reload.
    cdp.follow_link("/ui/clients").await?;
    cdp.follow_link(&format!("/ui/clients/{node_id}")).await?;
    cdp.wait_for_text(&["Mark ineligible", "raw_exec", "Attributes"])
        .await?;
    cdp.click_button("Mark ineligible").await?;
    wait_for_eligibility(&http, &url, &node_id, "ineligible").await?;
    cdp.wait_for_text(&["Mark eligible"]).await?;
    cdp.click_button("Mark eligible").await?;
    wait_for_eligibility(&http, &url, &node_id, "eligible").await?;

    // Run a job from pasted HCL: plan first, then run; the app goes to the job's page.
    cdp.goto(&format!("{url}/ui/jobs/run")).await?;
    cdp.wait_for_text(&["Run a job", "Plan"]).await?;
    let hcl = r#"job "web-ui-run" {
  group "pasted" {
    task "sleeper" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "while :; do sleep 1; done"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}"#;
    cdp.eval(&format!(
        "(() => {{ const t = document.getElementById('job-hcl'); t.value = {}; \
         t.dispatchEvent(new Event('input')); }})()",
        serde_json::to_string(hcl)?
    ))
    .await?;
    cdp.click_button("Plan").await?;
    cdp.wait_for_text(&["Job \"web-ui-run\"", "pasted"]).await?;
    cdp.click_button("Run").await?;
    cdp.wait_for_text(&["web-ui-run", "sleeper (raw_exec)", "running"])
        .await?;
    assert_eq!(cdp.eval("location.pathname").await?, "/ui/jobs/web-ui-run");
    wait_for(Duration::from_secs(30), || async {
        let allocs = get_json(&http, &format!("{url}/v1/job/web-ui-run/allocations")).await?;
        Ok(allocs
            .as_array()
            .is_some_and(|allocs| {
                allocs
                    .iter()
                    .any(|alloc| alloc["ClientStatus"] == "running")
            })
            .then_some(()))
    })
    .await?;
    // A second version: the job page shows what changed between the two.
    let mut job = get_json(&http, &format!("{url}/v1/job/web-ui-run")).await?;
    job["Priority"] = json!(70);
    http.put(format!("{url}/v1/job/web-ui-run"))
        .json(&json!({ "Job": job }))
        .send()
        .await?
        .error_for_status()?;
    cdp.wait_for_text(&["Changes", "Priority\t50\t70"]).await?;

    // Stop the job from its page: a click arms the button, a second confirms.
    cdp.goto(&format!("{url}/ui/jobs/web-ui-demo")).await?;
    cdp.wait_for_text(&["Stop", short]).await?;
    cdp.click_button("Stop").await?;
    cdp.wait_for_text(&["Confirm stop?"]).await?;
    cdp.click_button("Confirm stop?").await?;
    wait_for(Duration::from_secs(30), || async {
        let alloc = get_json(&http, &format!("{url}/v1/allocation/{alloc_id}")).await?;
        Ok((alloc["DesiredStatus"] == "stop" && alloc["ClientStatus"] == "complete").then_some(()))
    })
    .await?;
    // The page follows without a reload: the job is dead and may now be started again.
    cdp.wait_for_text(&["dead", "Start", "Purge"]).await?;

    assert!(
        cdp.errors.is_empty(),
        "the UI logged errors: {:#?}",
        cdp.errors
    );
    // Start it again from the same page: a new allocation runs.
    cdp.click_button("Start").await?;
    wait_for(Duration::from_secs(30), || async {
        let allocs = get_json(&http, &format!("{url}/v1/job/web-ui-demo/allocations")).await?;
        Ok(allocs
            .as_array()
            .is_some_and(|allocs| {
                allocs.iter().any(|alloc| {
                    alloc["ID"] != alloc_id.as_str() && alloc["ClientStatus"] == "running"
                })
            })
            .then_some(()))
    })
    .await?;
    cdp.wait_for_text(&["running", "Stop"]).await?;

    assert!(
        cdp.errors.is_empty(),
        "the UI logged errors: {:#?}",
        cdp.errors
    );
    // Drain a node from its page, then end the drain (it marks the node eligible again). The
    // simulated node runs nothing, so the drain moves nothing.
    let mock_id = mock_node(7)["ID"].as_str().unwrap_or_default().to_owned();
    cdp.goto(&format!("{url}/ui/clients/{mock_id}")).await?;
    cdp.wait_for_text(&["Drain", "Attributes"]).await?;
    cdp.click_button("Drain").await?;
    wait_for(Duration::from_secs(10), || async {
        let node = get_json(&http, &format!("{url}/v1/node/{mock_id}")).await?;
        Ok((node["DrainStrategy"].is_object() || node["Drain"] == true).then_some(()))
    })
    .await?;
    // The drain moves nothing, so the drainer may end it at once (the node stays ineligible, as
    // Nomad's does): the page shows the drain, or the node left ineligible once it ended.
    let end = cdp
        .wait_for_any_text(&["Stop drain", "Mark eligible"])
        .await?;
    cdp.click_button(end).await?;
    wait_for(Duration::from_secs(10), || async {
        let node = get_json(&http, &format!("{url}/v1/node/{mock_id}")).await?;
        Ok(
            (node["DrainStrategy"].is_null() && node["SchedulingEligibility"] == "eligible")
                .then_some(()),
        )
    })
    .await?;
    cdp.wait_for_text(&["Drain", "Mark ineligible"]).await?;
    assert!(
        cdp.errors.is_empty(),
        "the UI logged errors: {:#?}",
        cdp.errors
    );

    // The agent goes away: the page says so instead of going quiet. (From the servers page,
    // which polls: the agent's shutdown waits for open blocking queries to end.)
    cdp.follow_link("/ui/servers").await?;
    cdp.wait_for_text(&["alive", "leader"]).await?;
    agent.shutdown().await;
    cdp.wait_for_text(&["Lost contact with the agent"]).await?;
    browser.kill().await?;
    Ok(())
}

async fn wait_for_eligibility(
    http: &reqwest::Client,
    url: &str,
    node_id: &str,
    eligibility: &str,
) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(10), || async {
        let node = get_json(http, &format!("{url}/v1/node/{node_id}")).await?;
        Ok((node["SchedulingEligibility"] == eligibility).then_some(()))
    })
    .await
}

/// Waits until the log tail on the page holds more than `more_than` lines; returns the count.
async fn wait_for_log(cdp: &mut Cdp, more_than: usize) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = cdp
            .eval("document.getElementById('log-output')?.textContent ?? ''")
            .await?;
        let lines = text
            .as_str()
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with("ui-tick-"))
            .count();
        if lines > more_than {
            return Ok(lines);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the log tail never passed {more_than} lines; it shows {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client-only agent serves the UI too (its API calls go on to the servers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_only_agent_serves_the_ui() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (http_port, absent_server) = (free_port()?, free_port()?);
    let config = dir.path().join("client.hcl");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir  = "{data}"
name      = "ui-client"
bind_addr = "127.0.0.1"
client {{
  enabled = true
  servers = ["127.0.0.1:{absent_server}"]
}}
ports {{
  http = {http_port}
}}
"#,
            data = dir.path().join("data").display()
        ),
    )?;
    let _agent = AgentProcess::start(dir.path(), "client", &config)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = format!("http://127.0.0.1:{http_port}");
    let page = wait_for(Duration::from_secs(30), || async {
        match http
            .get(format!("{base}/ui/clients/some-node"))
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => Ok(Some(response)),
            _ => Ok(None),
        }
    })
    .await?;
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().await?.contains("/ui/assets/app.js"));
    let script = http.get(format!("{base}/ui/assets/lib.js")).send().await?;
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let root = http.get(format!("{base}/")).send().await?;
    assert_eq!(root.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(root.headers()["location"], "/ui/");
    Ok(())
}

/// With ACLs on, the UI acts anonymously (and is refused) until a secret is set on its "ACL
/// Tokens" page: an unknown secret is refused there, a good one is kept in the browser's
/// localStorage and sent as `X-Nomad-Token` with every call, and clearing it goes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_acts_with_the_token_set_on_its_tokens_page() -> anyhow::Result<()> {
    let Some(binary) = chromium() else {
        anyhow::ensure!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (scripts/setup.sh installs it)"
        );
        eprintln!("skipping the Web UI browser test: chromium is not installed");
        return Ok(());
    };
    let mut config = AgentConfig::dev();
    config.ports.http = Some(0);
    config.ports.rpc = Some(0);
    config.acl.enabled = Some(true);
    let agent = start_agent(config, true).await?;
    let url = format!("http://{}", agent.http_addr);
    let http = reqwest::Client::new();
    let bootstrap: Value = http
        .post(format!("{url}/v1/acl/bootstrap"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let secret = bootstrap["SecretID"]
        .as_str()
        .context("the bootstrap token has a secret")?
        .to_owned();
    let job = json!({ "Job": {
        "ID": "only-with-a-token",
        "TaskGroups": [{ "Name": "g",
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/sleep", "args": ["1000"] },
                "Resources": { "CPU": 20, "MemoryMB": 16 },
            }],
        }],
    }});
    http.put(format!("{url}/v1/jobs"))
        .header("X-Nomad-Token", &secret)
        .json(&job)
        .send()
        .await?
        .error_for_status()?;

    let profile = tempfile::tempdir()?;
    let (mut browser, mut cdp) = launch(&binary, profile.path()).await?;
    cdp.goto(&format!("{url}/ui/jobs")).await?;
    cdp.wait_for_text(&["Permission denied"]).await?;
    cdp.follow_link("/ui/settings/tokens").await?;
    cdp.wait_for_text(&["ACL Tokens", "No token set"]).await?;
    let type_secret = |value: &str| {
        format!(
            "(() => {{ document.getElementById('token-secret').value = {value:?}; return true; }})()"
        )
    };
    cdp.eval(&type_secret("00000000-0000-4000-8000-00000000dead"))
        .await?;
    cdp.click_button("Set Token").await?;
    cdp.wait_for_text(&["Failed to set the token: ACL token not found"])
        .await?;
    cdp.eval(&type_secret(&secret)).await?;
    cdp.click_button("Set Token").await?;
    cdp.wait_for_text(&["Token set", "Bootstrap Token", "management"])
        .await?;
    let kept = cdp.eval("localStorage.getItem('nomadTokenSecret')").await?;
    assert_eq!(kept, json!(secret));
    cdp.follow_link("/ui/jobs").await?;
    cdp.wait_for_text(&["only-with-a-token"]).await?;

    cdp.follow_link("/ui/settings/tokens").await?;
    cdp.click_button("Clear Token").await?;
    cdp.wait_for_text(&["Token cleared", "No token set"])
        .await?;
    cdp.follow_link("/ui/jobs").await?;
    cdp.wait_for_text(&["Permission denied"]).await?;
    browser.kill().await?;
    agent.shutdown().await;
    Ok(())
}
