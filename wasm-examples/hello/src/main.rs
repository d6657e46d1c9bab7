//! `hello`: a WASI program that prints its arguments and environment and exits.
//!
//! Exits with the code in `HELLO_EXIT_CODE` when set (0 otherwise), so tests can check that exit
//! codes travel back through the `wasm` driver.

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
    let code = std::env::var("HELLO_EXIT_CODE")
        .ok()
        .and_then(|text| text.parse::<i32>().ok())
        .unwrap_or(0);
    std::process::exit(code);
}
