//! Tests of the job file parser.
//!
//! The corpus in `tests/data/jobs` (valid job files, each with the API JSON it must produce) and
//! `tests/data/invalid` (broken job files, each with its one-line error) is the specification;
//! [`corpus`] drives all of it through one `check`. Run with `UPDATE_EXPECT=1` to rewrite the
//! expectations from the current output, then review every changed file by eye.

use std::path::{Path, PathBuf};

use super::{JobspecError, ParseConfig, parse, parse_validated, parse_with_var_files};

fn data_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
}

/// The `*.nomad.hcl` files of a corpus directory, sorted.
fn job_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir(kind))
        .expect("corpus directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".nomad.hcl"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned()
}

/// The expectation file beside `input`: `x.nomad.hcl` → `x.<extension>`.
fn expect_path(input: &Path, extension: &str) -> PathBuf {
    let name = file_name(input);
    let stem = name.trim_end_matches(".nomad.hcl");
    input.with_file_name(format!("{stem}.{extension}"))
}

/// Compares `actual` with the contents of `expect_file`, or rewrites it under `UPDATE_EXPECT`.
/// Returns a description of the mismatch, if any.
fn check(expect_file: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(expect_file, actual).expect("expectation file is writable");
        return None;
    }
    let expected = std::fs::read_to_string(expect_file).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "{}:\n{}",
            expect_file.display(),
            pretty_assertions::StrComparison::new(&expected, actual)
        )
    })
}

/// Parses and validates a corpus file, validation problems located in it.
fn parse_path(path: &Path) -> Result<crate::structs::Job, JobspecError> {
    let source = std::fs::read_to_string(path).expect("corpus file is readable");
    parse_validated(&source, &file_name(path), &ParseConfig::default(), &[])
}

#[test]
fn corpus() {
    let mut failures = Vec::new();
    let valid = job_files("jobs");
    let invalid = job_files("invalid");
    assert!(valid.len() >= 25, "only {} valid job files", valid.len());
    assert!(
        invalid.len() >= 12,
        "only {} invalid job files",
        invalid.len()
    );
    for path in valid {
        let actual = match parse_path(&path) {
            Ok(job) => serde_json::to_string_pretty(&job).expect("a job serialises") + "\n",
            Err(error) => format!("unexpected error: {error}\n"),
        };
        failures.extend(check(&expect_path(&path, "json"), &actual));
    }
    for path in invalid {
        let actual = match parse_path(&path) {
            Ok(_) => "unexpectedly parsed\n".to_owned(),
            Err(error) => format!("{error}\n"),
        };
        failures.extend(check(&expect_path(&path, "err"), &actual));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_is_one_line_with_a_position() {
    for path in job_files("invalid") {
        let error = parse_path(&path).expect_err("invalid job files fail");
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        let location = error.location().expect("errors have a position");
        assert!(
            text.starts_with(&location.to_string()),
            "{text} does not start with {location}"
        );
    }
}

/// Feeds every prefix of every corpus file to the parser: it must answer, never panic.
#[test]
fn truncated_inputs_never_panic() {
    for path in job_files("jobs")
        .into_iter()
        .chain(job_files("invalid"))
        .chain(job_files("jobspec-corpus"))
    {
        let source = std::fs::read_to_string(&path).expect("corpus file is readable");
        let boundaries: Vec<usize> = source
            .char_indices()
            .map(|(idx, _)| idx)
            .chain([source.len()])
            .collect();
        // Every prefix of short files; a stride through long ones keeps the test fast.
        let stride = (boundaries.len() / 400).max(1);
        for &end in boundaries.iter().step_by(stride) {
            let prefix = &source[..end];
            let _ = parse(prefix, "prefix.nomad.hcl", &ParseConfig::default());
        }
    }
}

/// Mutates every corpus file (one line removed; a hostile token inserted at line starts) and
/// checks that the parser still answers without panicking.
#[test]
fn mutated_inputs_never_panic() {
    const TOKENS: &[&str] = &[
        "{", "}", "\"", "${", "%{", "<<EOF\n", "= ", "[", "]", "var.", "\u{e9}", "\\", "#", "/*",
    ];
    for path in job_files("jobs")
        .into_iter()
        .chain(job_files("jobspec-corpus"))
    {
        let source = std::fs::read_to_string(&path).expect("corpus file is readable");
        let lines: Vec<&str> = source.lines().collect();
        for skipped_idx in 0..lines.len() {
            let mutated: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(line_idx, _)| *line_idx != skipped_idx)
                .map(|(_, line)| *line)
                .collect();
            let _ = parse(
                &mutated.join("\n"),
                "mutated.nomad.hcl",
                &ParseConfig::default(),
            );
        }
        for (line_idx, token) in (0..lines.len()).zip(TOKENS.iter().cycle()) {
            let mut mutated: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
            mutated[line_idx].insert_str(0, token);
            let _ = parse(
                &mutated.join("\n"),
                "mutated.nomad.hcl",
                &ParseConfig::default(),
            );
        }
    }
}

fn parse_text(source: &str, config: &ParseConfig) -> Result<crate::structs::Job, String> {
    parse(source, "test.nomad.hcl", config).map_err(|error| error.to_string())
}

const VARIABLES_JOB: &str = r#"
variable "image" {
  type    = string
  default = "redis:7"
}

variable "count" {
  type    = number
  default = 1
}

job "cache" {
  group "cache" {
    count = var.count
    task "redis" {
      driver = "docker"
      config {
        image = "${var.image}"
      }
    }
  }
}
"#;

fn image_and_count(job: &crate::structs::Job) -> (String, i32) {
    let group = &job.task_groups[0];
    let image = group.tasks[0].config["image"]
        .as_str()
        .expect("image is a string")
        .to_owned();
    (image, group.count)
}

#[test]
fn variable_defaults_apply() {
    let job = parse_text(VARIABLES_JOB, &ParseConfig::default()).expect("parses");
    assert_eq!(image_and_count(&job), ("redis:7".to_owned(), 1));
}

#[test]
fn var_flag_overrides_default_and_env() {
    let config = ParseConfig {
        vars: vec![("count".to_owned(), "3".to_owned())],
        env: vec![
            ("NOMAD_VAR_count".to_owned(), "2".to_owned()),
            ("NOMAD_VAR_image".to_owned(), "redis:6".to_owned()),
            ("NOMAD_VAR_unknown".to_owned(), "ignored".to_owned()),
        ],
        ..ParseConfig::default()
    };
    let job = parse_text(VARIABLES_JOB, &config).expect("parses");
    assert_eq!(image_and_count(&job), ("redis:6".to_owned(), 3));
}

#[test]
fn var_file_sets_variables_and_flags_win() {
    let var_files = vec![(
        "prod.vars.hcl".to_owned(),
        "image = \"redis:7.2\"\ncount = 5\n".to_owned(),
    )];
    let job = parse_with_var_files(
        VARIABLES_JOB,
        "test.nomad.hcl",
        &ParseConfig::default(),
        &var_files,
    )
    .expect("parses");
    assert_eq!(image_and_count(&job), ("redis:7.2".to_owned(), 5));

    let config = ParseConfig {
        vars: vec![("image".to_owned(), "valkey:8".to_owned())],
        ..ParseConfig::default()
    };
    let job =
        parse_with_var_files(VARIABLES_JOB, "test.nomad.hcl", &config, &var_files).expect("parses");
    assert_eq!(image_and_count(&job), ("valkey:8".to_owned(), 5));
}

#[test]
fn var_file_read_from_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let var_file = dir.path().join("vars.hcl");
    std::fs::write(&var_file, "count = 4\n").expect("writable");
    let config = ParseConfig {
        var_files: vec![var_file],
        ..ParseConfig::default()
    };
    let job = parse_text(VARIABLES_JOB, &config).expect("parses");
    assert_eq!(image_and_count(&job).1, 4);
}

#[test]
fn var_file_with_undeclared_variable_is_an_error() {
    let var_files = vec![("prod.vars.hcl".to_owned(), "\nreplicas = 5\n".to_owned())];
    let error = parse_with_var_files(
        VARIABLES_JOB,
        "test.nomad.hcl",
        &ParseConfig::default(),
        &var_files,
    )
    .expect_err("undeclared");
    assert_eq!(
        error.to_string(),
        "prod.vars.hcl:2:1: undefined variable \"replicas\" in var file; declare it with a variable \"replicas\" {} block"
    );
}

#[test]
fn missing_variable_value_names_the_variable() {
    let source = "variable \"image\" {}\n\njob \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config { image = var.image }\n    }\n  }\n}\n";
    assert_eq!(
        parse_text(source, &ParseConfig::default()).expect_err("no value"),
        "test.nomad.hcl:1:1: variable \"image\" has no value; set it with -var image=..., a -var-file, NOMAD_VAR_image or a default"
    );
    let config = ParseConfig {
        vars: vec![("image".to_owned(), "redis:7".to_owned())],
        ..ParseConfig::default()
    };
    parse_text(source, &config).expect("a -var gives the value");
}

#[test]
fn undeclared_var_flag_is_an_error() {
    let config = ParseConfig {
        vars: vec![("replicas".to_owned(), "3".to_owned())],
        ..ParseConfig::default()
    };
    assert_eq!(
        parse_text(VARIABLES_JOB, &config).expect_err("undeclared"),
        "test.nomad.hcl:1:1: -var replicas: undefined variable \"replicas\"; declare it with a variable \"replicas\" {} block"
    );
}

#[test]
fn var_flag_of_wrong_type_is_an_error() {
    let config = ParseConfig {
        vars: vec![("count".to_owned(), "many".to_owned())],
        ..ParseConfig::default()
    };
    let error = parse_text(VARIABLES_JOB, &config).expect_err("not a number");
    assert!(error.starts_with("<value for var.count>:1:1: "), "{error}");
}

#[test]
fn list_variable_from_flag_is_parsed_as_hcl() {
    let source = "variable \"dcs\" {\n  type = list(string)\n  default = [\"dc1\"]\n}\njob \"x\" {\n  datacenters = var.dcs\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n    }\n  }\n}\n";
    let config = ParseConfig {
        vars: vec![("dcs".to_owned(), "[\"eu-1\", \"eu-2\"]".to_owned())],
        ..ParseConfig::default()
    };
    let job = parse_text(source, &config).expect("parses");
    assert_eq!(job.datacenters, ["eu-1", "eu-2"]);
}

#[test]
fn runtime_interpolations_stay_literal() {
    let source = r#"
variable "suffix" { default = "prod" }
job "x" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      env {
        KERNEL = "${attr.kernel.name}"
        DC     = "${node.datacenter}-${var.suffix}"
        RACK   = "rack-${meta.rack}"
        PORT   = "${NOMAD_PORT_http}"
        DIR    = "${NOMAD_ALLOC_DIR}/data"
        HOME   = "${env["HOME"]}"
        SUM    = "${1 + 2}"
      }
    }
  }
}
"#;
    let job = parse_text(source, &ParseConfig::default()).expect("parses");
    let env = &job.task_groups[0].tasks[0].env;
    let expected = [
        ("DC", "${node.datacenter}-prod"),
        ("DIR", "${NOMAD_ALLOC_DIR}/data"),
        ("HOME", "${env[\"HOME\"]}"),
        ("KERNEL", "${attr.kernel.name}"),
        ("PORT", "${NOMAD_PORT_http}"),
        ("RACK", "rack-${meta.rack}"),
        ("SUM", "3"),
    ];
    let actual: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    assert_eq!(actual, expected);
}

#[test]
fn duration_errors_name_the_argument_and_position() {
    let source = "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n      kill_timeout = \"5 seconds\"\n    }\n  }\n}\n";
    assert_eq!(
        parse_text(source, &ParseConfig::default()).expect_err("bad duration"),
        "test.nomad.hcl:5:22: invalid duration for \"kill_timeout\" in task \"t\": unknown unit \" seconds\" in duration \"5 seconds\"; expected a duration such as \"30s\" or \"1m30s\""
    );
    let source = source.replace("\"5 seconds\"", "5");
    assert_eq!(
        parse_text(&source, &ParseConfig::default()).expect_err("number"),
        "test.nomad.hcl:5:22: invalid value for \"kill_timeout\" in task \"t\": expected a duration string such as \"30s\", got number 5"
    );
}

#[test]
fn missing_job_file_is_an_io_error() {
    let error = super::parse_file("/nonexistent/job.nomad.hcl", &ParseConfig::default())
        .expect_err("no such file");
    assert!(matches!(error, JobspecError::Io { .. }), "{error}");
}

/// Inputs chosen to break parsers and evaluators: overflow, division by zero, deep nesting,
/// huge durations, odd characters. Each must give an answer, not a panic.
#[test]
fn hostile_inputs_never_panic() {
    let task = |body: &str| {
        format!(
            "job \"x\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n      {body}\n    }}\n  }}\n}}\n"
        )
    };
    let deep_array = format!("config {{ a = {}{} }}", "[".repeat(2000), "]".repeat(2000));
    let deep_parens = format!("config {{ a = {}1{} }}", "(".repeat(2000), ")".repeat(2000));
    let cases = [
        task("config { a = 9223372036854775807 + 1 }"),
        task("config { a = -9223372036854775807 - 10 }"),
        task("config { a = 9223372036854775807 * 9223372036854775807 }"),
        task("config { a = 1 / 0 }"),
        task("config { a = 1 % 0 }"),
        task("config { a = -(-9223372036854775808) }"),
        task("config { a = 1e400 }"),
        task("config { a = 99999999999999999999999999999 }"),
        task("kill_timeout = \"99999999999999999999h\""),
        task("kill_timeout = \"1e400s\""),
        task("restart {\n attempts = 2147483647\n delay = \"9999999h\"\n interval = \"1s\"\n }"),
        task("resources {\n cpu = 99999999999999\n memory = -5\n }"),
        task("config { a = \"${\" }"),
        task("config { a = \"%{ if true }x%{ endif }\" }"),
        task("config { a = \"%{ for x in attr.list }${x}%{ endfor }\" }"),
        task("config { a = [for x in [1, 2] : x * 2] }"),
        task("config { a = {for k, v in {a = 1} : k => v} }"),
        task("config { a = [1, 2][5] }"),
        task("config { a = var }"),
        task("config { a = local.missing.deeper }"),
        task("config { a = upper(1, 2, 3) }"),
        task("config { a = nosuchfunction() }"),
        task("config { a = \"\u{e9}\u{1F600}\" }\n      env { \"\u{e9}\" = 1 }"),
        task("template {\n data = <<-EOF\n  a\n EOF\n destination = \"x\"\n }"),
        deep_array,
        deep_parens,
        String::new(),
        "\u{feff}job \"x\" {}".to_owned(),
        "job \"x\" \"y\" {}".to_owned(),
        "job x {}".to_owned(),
        "variable \"v\" { default = var.v }\njob \"x\" {}".to_owned(),
        "locals { a = local.b\n b = local.a }\njob \"x\" {}".to_owned(),
    ];
    for source in cases {
        let _ = parse(&source, "hostile.nomad.hcl", &ParseConfig::default());
    }
}

#[test]
fn json_var_file_sets_variables() {
    let var_files = vec![(
        "prod.vars.json".to_owned(),
        "{\"image\": \"redis:7.4\", \"count\": 2}".to_owned(),
    )];
    let job = parse_with_var_files(
        VARIABLES_JOB,
        "test.nomad.hcl",
        &ParseConfig::default(),
        &var_files,
    )
    .expect("parses");
    assert_eq!(image_and_count(&job), ("redis:7.4".to_owned(), 2));

    let var_files = vec![(
        "prod.vars.json".to_owned(),
        "{\n  \"replicas\": 2\n}".to_owned(),
    )];
    let error = parse_with_var_files(
        VARIABLES_JOB,
        "test.nomad.hcl",
        &ParseConfig::default(),
        &var_files,
    )
    .expect_err("undeclared");
    assert_eq!(
        error.to_string(),
        "prod.vars.json:2:3: undefined variable \"replicas\" in var file; declare it with a variable \"replicas\" {} block"
    );
}

#[test]
fn var_flags_split_at_the_first_equals_sign() {
    assert_eq!(
        ParseConfig::parse_var_flag("args=a=b"),
        Ok(("args".to_owned(), "a=b".to_owned()))
    );
    assert_eq!(
        ParseConfig::parse_var_flag("empty="),
        Ok(("empty".to_owned(), String::new()))
    );
    assert!(ParseConfig::parse_var_flag("novalue").is_err());
    assert!(ParseConfig::parse_var_flag("=x").is_err());
}

#[test]
fn template_strip_markers_and_for_expressions_evaluate() {
    let source = r#"
variable "names" { default = ["a", "b"] }
job "x" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      env {
        JOINED = "${join(",", [for name in var.names : upper(name)])}"
        STRIP  = "x   ${~ var.names[0] ~}   y"
        KEEP   = "${[for n in attr.list : n]}"
      }
    }
  }
}
"#;
    let job = parse_text(source, &ParseConfig::default()).expect("parses");
    let env = &job.task_groups[0].tasks[0].env;
    assert_eq!(env["JOINED"], "A,B");
    assert_eq!(env["STRIP"], "xay");
    assert_eq!(env["KEEP"], "${[for n in attr.list : n]}");
}

#[test]
fn parse_file_names_errors_by_the_path_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("web.nomad.hcl");
    std::fs::write(
        &path,
        "job \"web\" {\n  group \"web\" {\n    cuont = 1\n  }\n}\n",
    )
    .expect("writable");
    let error = super::parse_file(&path, &ParseConfig::default()).expect_err("typo");
    let location = error.location().expect("a position");
    assert_eq!(location.file, path.display().to_string());
    assert_eq!((location.line, location.column), (3, 5));

    let example = data_dir("jobs").join("example.nomad.hcl");
    let from_file = super::parse_file(&example, &ParseConfig::default()).expect("parses");
    assert_eq!(
        Ok(from_file),
        parse_path(&example).map_err(|error| error.to_string())
    );
}

/// Windows line endings parse to the same job as Unix ones.
#[test]
fn crlf_line_endings_parse_the_same() {
    for name in ["example", "services", "variables"] {
        let path = data_dir("jobs").join(format!("{name}.nomad.hcl"));
        let source = std::fs::read_to_string(&path).expect("corpus file is readable");
        let unix = parse(&source, "a.nomad.hcl", &ParseConfig::default()).expect("parses");
        let windows = parse(
            &source.replace('\n', "\r\n"),
            "a.nomad.hcl",
            &ParseConfig::default(),
        )
        .expect("parses with CRLF");
        assert_eq!(unix, windows, "{name}");
    }
}

/// The issue's hostile file: 29 nested `replace(..., "a", "aa")` in a meta value (875 bytes) would
/// make a 5 GB string; it fails fast at the expression, under the evaluation budget.
pub(crate) fn nested_replace_job(depth: usize) -> String {
    let mut expr = "\"aaaaaaaaaa\"".to_owned();
    for _ in 0..depth {
        expr = format!("replace({expr}, \"a\", \"aa\")");
    }
    format!(
        "job \"bomb\" {{\n  meta {{\n    x = {expr}\n  }}\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n    }}\n  }}\n}}\n"
    )
}

#[test]
fn expressions_over_budget_fail_fast_at_the_expression() {
    let source = nested_replace_job(29);
    assert!(source.len() < 900, "{} bytes", source.len());
    let started = std::time::Instant::now();
    let error = parse(&source, "bomb.nomad.hcl", &ParseConfig::default())
        .expect_err("over budget")
        .to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(error.starts_with("bomb.nomad.hcl:3:9: "), "{error}");
    assert!(error.contains("replace"), "names the function: {error}");
    assert!(
        error.contains("over the limit of 1048576 bytes per value"),
        "{error}"
    );
    assert!(error.len() < 1000, "a small answer: {} bytes", error.len());
    // Below the budget, the same expression evaluates.
    let job = parse(
        &nested_replace_job(3),
        "ok.nomad.hcl",
        &ParseConfig::default(),
    )
    .expect("within budget");
    assert_eq!(job.meta["x"].len(), 80);

    // Templates that double through locals are held to the same limit.
    let mut locals = String::from("locals {\n  a0 = \"aaaaaaaaaaaaaaaa\"\n");
    for level in 1..=30 {
        let previous = level - 1;
        locals.push_str(&format!(
            "  a{level} = \"${{local.a{previous}}}${{local.a{previous}}}\"\n"
        ));
    }
    locals.push_str("}\n");
    let source = format!(
        "{locals}job \"bomb\" {{\n  meta {{\n    x = local.a30\n  }}\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n    }}\n  }}\n}}\n"
    );
    let error = parse(&source, "locals.nomad.hcl", &ParseConfig::default())
        .expect_err("over budget")
        .to_string();
    assert!(
        error.contains("over the limit of 1048576 bytes per value"),
        "{error}"
    );
}

/// `for` expressions are evaluated one element at a time under the budget: a nested `for` over a
/// large list fails at the expression instead of building its square.
#[test]
fn for_expressions_are_evaluated_within_the_budget() {
    let ok = r#"
locals {
  ports = { http = 80, https = 443 }
  names = [for name, port in local.ports : upper(name) if port > 100]
  by_len = { for name in ["a", "bb", "cc"] : length(name) => name... }
  nested = [for a in [1, 2] : [for b in [10, 20] : a + b]]
  shadow = [for a in [1, 2] : [for a in [5] : a]]
}
job "loops" {
  meta {
    names  = join(",", local.names)
    by_len = join(",", local.by_len["2"])
    nested = join(",", flatten_pairs)
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
    }
  }
}
"#
    .replace(
        "flatten_pairs",
        "concat(local.nested[0], local.nested[1], local.shadow[0], local.shadow[1])",
    );
    let job = parse(&ok, "loops.nomad.hcl", &ParseConfig::default()).expect("parses");
    assert_eq!(job.meta["names"], "HTTPS");
    assert_eq!(job.meta["by_len"], "bb,cc");
    assert_eq!(job.meta["nested"], "11,21,12,22,5,5");

    let bomb = r#"
locals {
  many = split(",", replace("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a", ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,"))
  square = [for a in local.many : [for b in local.many : b]]
}
job "bomb" {
  meta {
    x = length(local.square)
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
    }
  }
}
"#;
    let started = std::time::Instant::now();
    let error = parse(bomb, "bomb.nomad.hcl", &ParseConfig::default())
        .expect_err("over budget")
        .to_string();
    // Unbudgeted, the bomb builds 20 M strings; cut, it fails within its 2 s budget (the margin
    // is for a loaded machine running a debug build).
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(error.starts_with("bomb.nomad.hcl:4:"), "{error}");
    assert!(
        ["bytes per value", "bytes in all", "took over 2000 ms"]
            .iter()
            .any(|limit| error.contains(limit)),
        "{error}"
    );
}

/// `uuidv5` (Nomad's, from Terraform): RFC 9562 name-based UUIDs, the values Go's
/// `uuid.NewSHA1` and Python's `uuid.uuid5` give for the same namespace and name.
#[test]
fn uuidv5_gives_name_based_uuids() {
    let source = |namespace: &str| {
        format!(
            r#"
job "ids" {{
  meta {{
    id = uuidv5("{namespace}", "kadalu.io")
  }}
  group "g" {{
    task "t" {{
      driver = "raw_exec"
    }}
  }}
}}
"#
        )
    };
    let id_for = |namespace: &str| {
        parse_text(&source(namespace), &ParseConfig::default()).map(|job| job.meta["id"].clone())
    };
    assert_eq!(
        id_for("dns").as_deref(),
        Ok("808d0902-f454-5ea3-b749-cfd111cc35ed")
    );
    // A namespace given as a UUID (here the URL namespace) is the same as its name.
    assert_eq!(
        id_for("6ba7b811-9dad-11d1-80b4-00c04fd430c8"),
        id_for("url")
    );
    assert_ne!(id_for("url"), id_for("dns"));
    let error = id_for("dnz").expect_err("unknown namespace");
    assert!(error.starts_with("test.nomad.hcl:4:"), "{error}");
    assert!(
        error.contains("invalid uuidv5 namespace \"dnz\""),
        "{error}"
    );
}
