//! Driver host benchmarks (criterion): `cargo bench --bench driver_host`.
//!
//! - `round_trip`: host → driver export (`inspect-task` of the wasm driver) → host capability
//!   (`host-wasm.wait`) → back, on one instance. Target < 10 µs.
//! - `instantiate`: a driver instance from its precompiled `InstancePre` (pooling allocator),
//!   what every call pays. Target < 100 µs.
//! - `api_call`: a whole API call (`config_schema`: instantiate, call, drop).
//! - `hello_start_to_exit`: the `hello` WASI task through the wasm driver: `start_task` to
//!   `wait_task` returning (the host's own wait, then `interpret-exit`; its module compiled once,
//!   then cached). Target < 5 ms.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caravan::driver_host::{
    DriverHost, DriverHostConfig, TaskConfig, TaskHandle, TaskScope, WaitOn,
};
use criterion::{Criterion, criterion_group, criterion_main};

const HELLO_WASM: &str = env!("CARAVAN_EXAMPLE_HELLO_WASM");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn benches(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let host = DriverHost::new(DriverHostConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..DriverHostConfig::default()
    })
    .expect("driver host");
    let wasm = runtime.block_on(host.driver("wasm")).expect("wasm driver");
    let scope = TaskScope::new(
        "bench",
        "hello",
        dir.path(),
        dir.path().join("hello.stdout"),
        dir.path().join("hello.stderr"),
    );
    std::fs::create_dir_all(&scope.task_dir).expect("task dir");
    std::fs::copy(HELLO_WASM, scope.task_dir.join("hello.wasm")).expect("copy hello");

    let unknown_workload = TaskHandle {
        driver: String::from("wasm"),
        id: scope.task_id.clone(),
        driver_state: br#"{"workload_id":0,"module_path":"none"}"#.to_vec(),
        wait_on: WaitOn::Workload(0),
    };
    c.bench_function("round_trip", |b| {
        b.iter_custom(|iterations| {
            runtime
                .block_on(wasm.bench_round_trips(&scope, &unknown_workload, iterations))
                .expect("round trips")
        })
    });
    c.bench_function("instantiate", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    wasm.bench_instantiate().await.expect("instantiate");
                }
                started.elapsed()
            })
        })
    });
    c.bench_function("api_call", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    wasm.config_schema().await.expect("config schema");
                }
                started.elapsed()
            })
        })
    });

    let hello = TaskConfig {
        config: serde_json::json!({ "module": "hello.wasm", "args": ["bench"] }),
        env: BTreeMap::from([(String::from("NOMAD_TASK_NAME"), String::from("hello"))]),
        ..TaskConfig::default()
    };
    c.bench_function("hello_start_to_exit", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let handle = wasm.start_task(&scope, &hello).await.expect("start hello");
                    let exit = wasm.wait_task(&scope, &handle).await.expect("wait hello");
                    assert_eq!(exit.exit_code, 0);
                }
                started.elapsed()
            })
        })
    });
}

criterion_group! {
    name = driver_host;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = benches
}
criterion_main!(driver_host);
