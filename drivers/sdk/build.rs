//! Rebuilds the SDK when the contract changes: `wit_bindgen::generate!` reads `../wit` at compile
//! time, but cargo tracks only files inside the package, so without this a changed WIT leaves stale
//! bindings in an existing target directory.

fn main() {
    println!("cargo:rerun-if-changed=../wit");
}
