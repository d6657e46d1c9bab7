//! `hello`: a WASI program that prints its arguments and environment and exits.
//!
//! Exits with the code in `HELLO_EXIT_CODE` when set (0 otherwise), so tests can check that exit
//! codes travel back through the `wasm` driver. With `HELLO_READ=<path>` it prints the file's
//! text, and with `HELLO_WRITE=<path>` it tries to create the file and prints whether it could
//! (host volumes preopened read-only or read-write).

fn main() {
    println!("hello from caravan");
    for (index, arg) in std::env::args().enumerate() {
        println!("arg[{index}]={arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (key, value) in &vars {
        println!("env {key}={value}");
    }
    eprintln!(
        "hello: {} args, {} env vars",
        std::env::args().count(),
        vars.len()
    );
    if let Ok(path) = std::env::var("HELLO_READ") {
        match std::fs::read_to_string(&path) {
            Ok(text) => println!("read {path}: {}", text.trim_end()),
            Err(err) => println!("read {path} failed: {err}"),
        }
    }
    if let Ok(path) = std::env::var("HELLO_WRITE") {
        match std::fs::write(&path, "written by a Wasm task\n") {
            Ok(()) => println!("write {path}: ok"),
            Err(err) => println!("write {path} failed: {err}"),
        }
    }
    let code = std::env::var("HELLO_EXIT_CODE")
        .ok()
        .and_then(|text| text.parse::<i32>().ok())
        .unwrap_or(0);
    std::process::exit(code);
}
