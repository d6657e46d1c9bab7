//! The agent's own log stream, for `caravan monitor` and `GET /v1/agent/monitor` (Nomad:
//! `command/agent/monitor`): every log line the agent writes at or above the level a watcher
//! asks for, whatever the agent's configured `log_level`, as text or JSON.
//!
//! [`layer`] joins the process's tracing subscriber beside the stderr output: two formatting
//! layers (text, JSON) whose writer hands each formatted line to a broadcast channel. Their
//! filters are reloaded as watchers come and go, so while nobody watches they enable nothing and
//! cost nothing; a watcher at `debug` makes caravan's own debug lines (and the dependencies'
//! warnings) reach the channel, and each watcher keeps only the lines at its level.
//! A slow watcher skips what it missed rather than holding the agent's logging back.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::broadcast;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::reload;

/// Lines a slow watcher may fall behind by before it skips some.
const BACKLOG: usize = 1024;

/// One formatted log line (with its newline).
#[derive(Debug)]
pub struct LogLine {
    pub level: Level,
    pub json: bool,
    pub text: Bytes,
}

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("Unknown log level: {0}")]
    UnknownLevel(String),
    #[error("this process's logging does not capture the agent's logs")]
    NotCaptured,
}

type Reload = Box<dyn Fn(Targets) + Send + Sync>;

struct Hub {
    lines: broadcast::Sender<Arc<LogLine>>,
    /// The level and format of each live watch.
    watches: Mutex<Vec<(u64, LevelFilter, bool)>>,
    next_watch: std::sync::atomic::AtomicU64,
    reload_text: Reload,
    reload_json: Reload,
}

static HUB: OnceLock<Hub> = OnceLock::new();

/// What a filter lets through for watchers up to `level`: caravan's lines at `level`, the
/// dependencies' at `warn` at most (as the agent's own output).
fn targets(level: LevelFilter) -> Targets {
    if level == LevelFilter::OFF {
        return Targets::new();
    }
    Targets::new()
        .with_target("caravan", level)
        .with_default(level.min(LevelFilter::WARN))
}

impl Hub {
    fn refilter(&self, watches: &[(u64, LevelFilter, bool)]) {
        let most = |json: bool| {
            watches
                .iter()
                .filter(|watch| watch.2 == json)
                .map(|watch| watch.1)
                .max()
                .unwrap_or(LevelFilter::OFF)
        };
        (self.reload_text)(targets(most(false)));
        (self.reload_json)(targets(most(true)));
    }

    fn lock_watches(&self) -> std::sync::MutexGuard<'_, Vec<(u64, LevelFilter, bool)>> {
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The layers that feed watchers; join them to the process's subscriber once. A second call
/// returns layers that feed nothing (the first ones keep the stream).
pub fn layer<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static,
{
    let (text_filter, text_handle) = reload::Layer::new(Targets::new());
    let (json_filter, json_handle) = reload::Layer::new(Targets::new());
    let (lines, _) = broadcast::channel(BACKLOG);
    let _ = HUB.set(Hub {
        lines,
        watches: Mutex::new(Vec::new()),
        next_watch: std::sync::atomic::AtomicU64::new(0),
        reload_text: Box::new(move |targets| {
            let _ = text_handle.reload(targets);
        }),
        reload_json: Box::new(move |targets| {
            let _ = json_handle.reload(targets);
        }),
    });
    let text = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(LineSink { json: false })
        .with_filter(text_filter);
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(LineSink { json: true })
        .with_filter(json_filter);
    text.and_then(json)
}

/// A level as Nomad's monitor names them (`trace`, `debug`, `info`, `warn`, `error`, any case).
pub fn parse_level(text: &str) -> Result<LevelFilter, MonitorError> {
    match text.to_ascii_lowercase().as_str() {
        "trace" => Ok(LevelFilter::TRACE),
        "debug" => Ok(LevelFilter::DEBUG),
        "info" => Ok(LevelFilter::INFO),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "error" => Ok(LevelFilter::ERROR),
        _ => Err(MonitorError::UnknownLevel(text.to_owned())),
    }
}

/// A live watch of the agent's log lines; dropping it ends the watch.
pub struct Watch {
    id: u64,
    level: LevelFilter,
    json: bool,
    lines: broadcast::Receiver<Arc<LogLine>>,
}

impl Watch {
    /// Starts watching lines at `level` and above, as JSON or text.
    pub fn start(level: LevelFilter, json: bool) -> Result<Watch, MonitorError> {
        let hub = HUB.get().ok_or(MonitorError::NotCaptured)?;
        let id = hub
            .next_watch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lines = hub.lines.subscribe();
        let mut watches = hub.lock_watches();
        watches.push((id, level, json));
        hub.refilter(&watches);
        Ok(Watch {
            id,
            level,
            json,
            lines,
        })
    }

    /// The next line for this watch; `None` once the stream is closed. Lines a slow watcher
    /// missed are skipped.
    pub async fn next(&mut self) -> Option<Arc<LogLine>> {
        loop {
            match self.lines.recv().await {
                Ok(line) if line.json == self.json && self.level >= line.level => {
                    return Some(line);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(hub) = HUB.get() {
            let mut watches = hub.lock_watches();
            watches.retain(|watch| watch.0 != self.id);
            hub.refilter(&watches);
        }
    }
}

/// The formatting layers' writer: each event's formatted line goes to the watchers.
struct LineSink {
    json: bool,
}

struct LineWriter {
    level: Level,
    json: bool,
}

impl<'a> MakeWriter<'a> for LineSink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            level: Level::INFO,
            json: self.json,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter {
            level: *meta.level(),
            json: self.json,
        }
    }
}

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(hub) = HUB.get() {
            // No watcher left: the line is dropped.
            let _ = hub.lines.send(Arc::new(LogLine {
                level: self.level,
                json: self.json,
                text: Bytes::copy_from_slice(buf),
            }));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_nomad_names_them() {
        assert_eq!(parse_level("DEBUG").ok(), Some(LevelFilter::DEBUG));
        assert_eq!(parse_level("warn").ok(), Some(LevelFilter::WARN));
        assert_eq!(
            parse_level("loud").map_err(|err| err.to_string()).err(),
            Some("Unknown log level: loud".to_owned())
        );
    }

    #[test]
    fn nobody_watching_enables_nothing_and_dependencies_stay_at_warn() {
        let off = targets(LevelFilter::OFF);
        assert!(!off.would_enable("caravan::client", &Level::ERROR));
        let debug = targets(LevelFilter::DEBUG);
        assert!(debug.would_enable("caravan::client", &Level::DEBUG));
        assert!(debug.would_enable("openraft::core", &Level::WARN));
        assert!(!debug.would_enable("openraft::core", &Level::INFO));
        let error = targets(LevelFilter::ERROR);
        assert!(!error.would_enable("openraft::core", &Level::WARN));
    }
}
