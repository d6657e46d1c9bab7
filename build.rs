//! Builds caravan's WebAssembly guests as part of the normal `cargo build`.
//!
//! - Every driver crate under `drivers/` (and the misbehaving fixtures under `drivers/testing/`) is
//!   compiled for `wasm32-unknown-unknown` and turned into a component with `wit-component`.
//!   The built-in drivers are embedded into the crate through `$OUT_DIR/builtin_drivers.rs`, the
//!   device plugins under `drivers/devices/` (WIT world `caravan:device`) through
//!   `$OUT_DIR/builtin_device_plugins.rs`.
//! - `wasm-examples/hello` and `wasm-examples/counter` are compiled for `wasm32-wasip1` (plain WASI
//!   programs, also wrapped as p2 command components with the preview1 adapter),
//!   `wasm-examples/custom-driver` to a driver component.
//! - Paths of the fixtures and examples are exported to tests and benches with `cargo:rustc-env`:
//!   `CARAVAN_TESTING_DRIVERS_DIR`, `CARAVAN_EXAMPLE_HELLO_WASM`, `CARAVAN_EXAMPLE_COUNTER_WASM`,
//!   `CARAVAN_EXAMPLE_CUSTOM_DRIVER_WASM`, and `CARAVAN_EXAMPLE_<NAME>_COMPONENT_WASM` for the
//!   p2 components; `CARAVAN_WASM_GUESTS_DIR` is the guests' target directory.
//!
//! Toolchain routes (see shared/TOOLCHAIN.md), picked automatically, or forced with
//! `CARAVAN_WASM_ROUTE=rustup|debian`:
//! 1. rustup with the targets `wasm32-unknown-unknown` and `wasm32-wasip1` installed: plain cargo.
//! 2. Debian's rustc-web (`/usr/bin/rustc`, `/usr/bin/cargo`) with rust-web-src, lld-19 and
//!    wasi-libc: `-Zbuild-std` under `RUSTC_BOOTSTRAP=1` (for this nested build only).
//!
//! Neither: one error naming `scripts/setup.sh`. The guests share one target directory,
//! `<target>/wasm-guests`, beside the outer profile directories, so it stays warm across profiles
//! and `cargo clean -p caravan`. Nested cargo output goes to `<target>/wasm-guests/build.log`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const DRIVER_TARGET: &str = "wasm32-unknown-unknown";
const PROGRAM_TARGET: &str = "wasm32-wasip1";
const SETUP_HINT: &str = "no WebAssembly toolchain found to build caravan's drivers: run `scripts/setup.sh` \
     (installs Debian's rustc-web, rust-web-src, lld-19 and wasi-libc), or on a rustup machine \
     `rustup target add wasm32-unknown-unknown wasm32-wasip1`";

/// A guest crate to build.
struct Guest {
    /// The package name (`raw_exec-driver`).
    package: String,
    /// The file stem cargo gives the artifact (`raw_exec_driver`).
    artifact: String,
    /// The name the component gets (`raw_exec`): its directory name.
    name: String,
}

fn main() {
    // One message, without the backtrace anyhow would add under RUST_BACKTRACE=1.
    if let Err(err) = run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let drivers_dir = manifest_dir.join("drivers");
    let examples_dir = manifest_dir.join("wasm-examples");
    println!("cargo:rerun-if-env-changed=CARAVAN_WASM_ROUTE");

    let builtin = guests_in(&drivers_dir)?;
    let testing = guests_in(&drivers_dir.join("testing"))?;
    let device_plugins = guests_in(&drivers_dir.join("devices"))?;
    let examples = guests_in(&examples_dir)?;
    emit_rerun_if_changed(
        &drivers_dir,
        builtin
            .iter()
            .chain(&testing)
            .chain(&device_plugins)
            .map(|g| g.name.as_str()),
        &["wit", "sdk", "devices/wit"],
    )?;
    emit_rerun_if_changed(&examples_dir, examples.iter().map(|g| g.name.as_str()), &[])?;

    let guest_target_dir = guest_target_dir(&out_dir)?;
    fs::create_dir_all(&guest_target_dir)
        .with_context(|| format!("create {}", guest_target_dir.display()))?;
    println!(
        "cargo:rustc-env=CARAVAN_WASM_GUESTS_DIR={}",
        guest_target_dir.display()
    );
    let toolchain = Toolchain::detect()?;
    let log_path = guest_target_dir.join("build.log");
    fs::write(&log_path, "").with_context(|| format!("truncate {}", log_path.display()))?;
    let builder = Builder {
        toolchain,
        target_dir: guest_target_dir.clone(),
        log_path,
    };

    // Drivers and fixtures: one workspace, one build.
    builder.build(
        &drivers_dir,
        DRIVER_TARGET,
        builtin.iter().chain(&testing).chain(&device_plugins),
    )?;
    let driver_out = out_dir.join("drivers");
    let testing_out = out_dir.join("testing");
    let mut builtin_rs = String::from(
        "/// The built-in driver components, embedded at build time by build.rs: (name, component).\n\
         pub(crate) const BUILTIN_DRIVERS: &[(&str, &[u8])] = &[\n",
    );
    for guest in &builtin {
        let component = componentize(
            &builder.artifact(DRIVER_TARGET, guest),
            &driver_out.join(format!("{}.wasm", guest.name)),
        )?;
        writeln!(
            builtin_rs,
            "    ({:?}, include_bytes!({:?})),",
            guest.name,
            component.display().to_string()
        )?;
    }
    builtin_rs.push_str("];\n");
    write_if_changed(&out_dir.join("builtin_drivers.rs"), builtin_rs.as_bytes())?;
    let mut devices_rs = String::from(
        "/// The built-in device plugin components, embedded at build time by build.rs: (name, \
         component).\n\
         pub(crate) const BUILTIN_DEVICE_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for guest in &device_plugins {
        let component = componentize(
            &builder.artifact(DRIVER_TARGET, guest),
            &out_dir.join("devices").join(format!("{}.wasm", guest.name)),
        )?;
        writeln!(
            devices_rs,
            "    ({:?}, include_bytes!({:?})),",
            guest.name,
            component.display().to_string()
        )?;
    }
    devices_rs.push_str("];\n");
    write_if_changed(
        &out_dir.join("builtin_device_plugins.rs"),
        devices_rs.as_bytes(),
    )?;
    for guest in &testing {
        componentize(
            &builder.artifact(DRIVER_TARGET, guest),
            &testing_out.join(format!("{}.wasm", guest.name)),
        )?;
    }
    println!(
        "cargo:rustc-env=CARAVAN_TESTING_DRIVERS_DIR={}",
        testing_out.display()
    );

    // Examples: WASI programs, then the example driver.
    let (programs, drivers): (Vec<&Guest>, Vec<&Guest>) =
        examples.iter().partition(|g| g.name != "custom-driver");
    builder.build(&examples_dir, PROGRAM_TARGET, programs.iter().copied())?;
    for guest in &programs {
        let path = builder.artifact(PROGRAM_TARGET, guest);
        println!(
            "cargo:rustc-env=CARAVAN_EXAMPLE_{}_WASM={}",
            env_name(&guest.name),
            path.display()
        );
        // The same program as a WASI p2 command component (p1 module + the command adapter), so
        // the wasm driver's component path is exercised too.
        let component = out_dir
            .join("examples")
            .join(format!("{}.component.wasm", guest.name));
        componentize_command(&path, &component)?;
        println!(
            "cargo:rustc-env=CARAVAN_EXAMPLE_{}_COMPONENT_WASM={}",
            env_name(&guest.name),
            component.display()
        );
    }
    builder.build(&examples_dir, DRIVER_TARGET, drivers.iter().copied())?;
    for guest in &drivers {
        let component = componentize(
            &builder.artifact(DRIVER_TARGET, guest),
            &out_dir
                .join("examples")
                .join(format!("{}.wasm", guest.name)),
        )?;
        println!(
            "cargo:rustc-env=CARAVAN_EXAMPLE_{}_WASM={}",
            env_name(&guest.name),
            component.display()
        );
    }
    Ok(())
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("cargo did not set {name}"))
}

fn env_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// The guest crates directly under `dir`: directories with a Cargo.toml declaring a `cdylib` or a
/// `[[bin]]`-less binary (`src/main.rs`). The SDK (a plain library) is not one.
fn guests_in(dir: &Path) -> Result<Vec<Guest>> {
    let mut guests = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?;
    for entry in entries {
        let crate_dir = entry?.path();
        let manifest_path = crate_dir.join("Cargo.toml");
        if !manifest_path.is_file() {
            continue;
        }
        let manifest = fs::read_to_string(&manifest_path)
            .with_context(|| format!("read {}", manifest_path.display()))?;
        let is_guest = manifest.contains("cdylib") || crate_dir.join("src/main.rs").is_file();
        if !is_guest {
            continue;
        }
        let package = manifest
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("name = ")
                    .map(|value| value.trim_matches('"').to_owned())
            })
            .with_context(|| format!("no package name in {}", manifest_path.display()))?;
        let name = crate_dir
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("odd directory name {}", crate_dir.display()))?
            .to_owned();
        guests.push(Guest {
            artifact: package.replace('-', "_"),
            package,
            name,
        });
    }
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(guests)
}

/// Precise rerun triggers: the workspace manifest and lock, shared directories, and each guest's
/// manifest and sources. Nothing under a `target` directory.
fn emit_rerun_if_changed<'a>(
    workspace: &Path,
    guests: impl Iterator<Item = &'a str>,
    shared: &[&str],
) -> Result<()> {
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(file).display());
    }
    for dir in shared {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    for guest in guests {
        let crate_dir = ["", "testing", "devices"]
            .iter()
            .map(|sub| workspace.join(sub).join(guest))
            .find(|dir| dir.is_dir())
            .unwrap_or_else(|| workspace.join(guest));
        println!(
            "cargo:rerun-if-changed={}",
            crate_dir.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", crate_dir.join("src").display());
    }
    Ok(())
}

/// `<target>/wasm-guests`, where `<target>` is the outer target directory: OUT_DIR is
/// `<target>/[<triple>/]<profile>/build/caravan-<hash>/out`.
fn guest_target_dir(out_dir: &Path) -> Result<PathBuf> {
    let target = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .with_context(|| format!("unexpected OUT_DIR layout: {}", out_dir.display()))?;
    Ok(target.join("wasm-guests"))
}

/// How the nested cargo is run.
enum Toolchain {
    /// rustup's cargo with the wasm targets installed.
    Rustup,
    /// Debian's rustc-web with `-Zbuild-std`.
    Debian {
        wasm_ld: PathBuf,
        wasi_libc: PathBuf,
    },
}

impl Toolchain {
    fn detect() -> Result<Toolchain> {
        let forced = std::env::var("CARAVAN_WASM_ROUTE").ok();
        match forced.as_deref() {
            Some("rustup") => return Ok(Toolchain::Rustup),
            Some("debian") => return Toolchain::debian().context(SETUP_HINT),
            Some(other) => bail!("CARAVAN_WASM_ROUTE={other:?}: expected `rustup` or `debian`"),
            None => {}
        }
        if rustup_has_wasm_targets() {
            return Ok(Toolchain::Rustup);
        }
        Toolchain::debian().context(SETUP_HINT)
    }

    fn debian() -> Result<Toolchain> {
        let wasm_ld = PathBuf::from("/usr/lib/llvm-19/bin/wasm-ld");
        let wasi_libc = PathBuf::from("/usr/lib/wasm32-wasi");
        let rust_src = Path::new("/usr/lib/rustlib/src/rust/library");
        for (path, package) in [
            (Path::new("/usr/bin/rustc"), "rustc-web"),
            (Path::new("/usr/bin/cargo"), "cargo-web"),
            (rust_src, "rust-web-src"),
            (wasm_ld.as_path(), "lld-19"),
            (wasi_libc.as_path(), "wasi-libc"),
        ] {
            if !path.exists() {
                bail!("{} is missing (Debian package {package})", path.display());
            }
        }
        Ok(Toolchain::Debian { wasm_ld, wasi_libc })
    }
}

fn rustup_has_wasm_targets() -> bool {
    let output = clean_command("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let installed = String::from_utf8_lossy(&output.stdout);
            [DRIVER_TARGET, PROGRAM_TARGET]
                .iter()
                .all(|target| installed.lines().any(|line| line.trim() == *target))
        }
        _ => false,
    }
}

/// A command without what the outer cargo sets for build scripts, which would otherwise leak into
/// the nested build (the outer RUSTC, wrappers such as clippy-driver, flags, the jobserver...).
fn clean_command(program: impl Into<OsString>) -> Command {
    let mut command = Command::new(program.into());
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep_cargo = [
            "CARGO_HOME",
            "CARGO_HTTP_",
            "CARGO_NET_",
            "CARGO_REGISTRIES_",
            "CARGO_REGISTRY_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix));
        let leaks = (key.starts_with("CARGO") && !keep_cargo)
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTDOC")
            || key.starts_with("__CARGO")
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTUP_TOOLCHAIN"
                    | "DEBUG"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "NUM_JOBS"
            );
        if leaks {
            command.env_remove(key);
        }
    }
    command
}

struct Builder {
    toolchain: Toolchain,
    target_dir: PathBuf,
    log_path: PathBuf,
}

impl Builder {
    fn build<'a>(
        &self,
        workspace: &Path,
        target: &str,
        guests: impl Iterator<Item = &'a Guest>,
    ) -> Result<()> {
        let packages: Vec<&str> = guests.map(|g| g.package.as_str()).collect();
        if packages.is_empty() {
            return Ok(());
        }
        let mut command = match &self.toolchain {
            Toolchain::Rustup => clean_command("cargo"),
            Toolchain::Debian { .. } => {
                let mut command = clean_command("/usr/bin/cargo");
                command
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1");
                command
            }
        };
        command
            .current_dir(workspace)
            .args(["build", "--release", "--locked", "--target", target]);
        command.arg("--target-dir").arg(&self.target_dir);
        for package in &packages {
            command.args(["-p", package]);
        }
        if let Toolchain::Debian { wasm_ld, wasi_libc } = &self.toolchain {
            command.arg("-Zbuild-std=std,panic_abort");
            command.arg("--config").arg(format!(
                "target.{target}.linker={:?}",
                wasm_ld.display().to_string()
            ));
            if target == PROGRAM_TARGET {
                command.arg("--config").arg(format!(
                    "target.{target}.rustflags=[\"-L\", {:?}]",
                    wasi_libc.display().to_string()
                ));
            }
        }
        let log = fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("open {}", self.log_path.display()))?;
        let log_err = log.try_clone()?;
        let status = command
            .stdout(log)
            .stderr(log_err)
            .status()
            .with_context(|| format!("run cargo for {}", workspace.display()))?;
        if !status.success() {
            let text = fs::read_to_string(&self.log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            bail!(
                "building the Wasm guests in {} for {target} failed ({status}); full log: {}\n{tail}",
                workspace.display(),
                self.log_path.display()
            );
        }
        Ok(())
    }

    fn artifact(&self, target: &str, guest: &Guest) -> PathBuf {
        self.target_dir
            .join(target)
            .join("release")
            .join(format!("{}.wasm", guest.artifact))
    }
}

/// Encodes a core module (with its WIT in a custom section) as a component at `out`.
fn componentize(core: &Path, out: &Path) -> Result<PathBuf> {
    let bytes = fs::read(core).with_context(|| format!("read {}", core.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .with_context(|| format!("encode {} as a component", core.display()))?;
    write_if_changed(out, &component)?;
    Ok(out.to_path_buf())
}

/// Encodes a WASI p1 program as a p2 command component with wasmtime's preview1 adapter.
fn componentize_command(core: &Path, out: &Path) -> Result<()> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    };
    let bytes = fs::read(core).with_context(|| format!("read {}", core.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| {
            encoder.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
            )
        })
        .and_then(|encoder| encoder.validate(true).encode())
        .with_context(|| format!("encode {} as a WASI command component", core.display()))?;
    write_if_changed(out, &component)
}

/// Writes only when the content differs, so unchanged guests do not retrigger dependants.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("write {}", path.display()))
}
