//! Tests of the template engine: Go's text/template with the functions caravan serves.

use super::*;
use crate::structs::{AllocId, JobId, NodeId};

fn inputs() -> Inputs {
    Inputs {
        env: BTreeMap::from([
            ("NOMAD_TASK_NAME".to_owned(), "web".to_owned()),
            ("PORT".to_owned(), "8080".to_owned()),
        ]),
        ..Inputs::default()
    }
}

fn ok(source: &str) -> String {
    match render("t", source, "", "", &inputs()) {
        Ok(out) => out.text,
        Err(err) => panic!("{source:?}: {err}"),
    }
}

fn err(source: &str) -> String {
    match render("t", source, "", "", &inputs()) {
        Ok(out) => panic!("{source:?} rendered {:?}", out.text),
        Err(err) => err.to_string(),
    }
}

fn instance(name: &str, address: &str, port: i32, tags: &[&str]) -> ServiceRegistration {
    ServiceRegistration {
        id: format!("_nomad-task-{name}-{port}"),
        service_name: name.to_owned(),
        namespace: "default".to_owned(),
        node_id: NodeId::from("node-1".to_owned()),
        datacenter: "dc1".to_owned(),
        job_id: JobId::from("web".to_owned()),
        alloc_id: AllocId::from("alloc-1".to_owned()),
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        address: address.to_owned(),
        port,
        ..ServiceRegistration::default()
    }
}

#[test]
fn go_syntax() {
    assert_eq!(
        ok("{{ $x := 3 }}{{ if gt $x 2 }}big{{ else }}small{{ end }}"),
        "big"
    );
    assert_eq!(
        ok(r#"{{ range $i, $p := split "," "a,b,c" }}{{ $i }}={{ $p }};{{ end }}"#),
        "0=a;1=b;2=c;"
    );
    assert_eq!(
        ok(r#"{{ with env "PORT" }}port {{ . }}{{ end }}"#),
        "port 8080"
    );
    assert_eq!(
        ok(r#"{{ with env "NOPE" }}x{{ else }}none{{ end }}"#),
        "none"
    );
    assert_eq!(ok(r#"{{ "abc" | toUpper | printf "%s!" }}"#), "ABC!");
    assert_eq!(ok("a  {{- \"b\" -}}  c"), "abc");
    assert_eq!(
        ok(r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" "y" }}"#),
        "[y]"
    );
    assert_eq!(ok("{{/* a comment */}}plain"), "plain");
    let out = render("t", r#"[[ env "PORT" ]] {{x}}"#, "[[", "]]", &inputs()).map(|o| o.text);
    assert_eq!(out.ok().as_deref(), Some("8080 {{x}}"));
}

#[test]
fn env_functions() {
    assert_eq!(
        ok(r#"task={{ env "NOMAD_TASK_NAME" }} missing=[{{ env "NOPE" }}]"#),
        "task=web missing=[]"
    );
    assert_eq!(
        ok(r#"{{ envOrDefault "NOPE" "d" }}{{ envOrDefault "PORT" "d" }}"#),
        "d8080"
    );
}

#[test]
fn string_functions() {
    assert_eq!(
        ok(r#"{{ "Hello" | toLower }} {{ "hello world" | toTitle }}"#),
        "hello Hello World"
    );
    assert_eq!(ok(r#"[{{ "  x \n" | trimSpace }}]"#), "[x]");
    assert_eq!(
        ok(r#"{{ "v1.2" | trimPrefix "v" }} {{ "a.conf" | trimSuffix ".conf" }}"#),
        "1.2 a"
    );
    assert_eq!(ok(r#"{{ split "," "a,b" | join ";" }}"#), "a;b");
    assert_eq!(ok(r#"{{ len (split "," "") }}"#), "0");
    assert_eq!(ok(r#"{{ "a-b-c" | replaceAll "-" "+" }}"#), "a+b+c");
    assert_eq!(ok(r#"{{ "a\nb" | indent 2 }}"#), "  a\n  b");
    assert_eq!(
        ok(r#"{{ "foobar" | contains "oba" }} {{ split "," "a,b" | contains "c" }}"#),
        "true false"
    );
    assert_eq!(ok(r#"{{ in (split "," "a,b") "b" }}"#), "true");
    assert_eq!(
        ok(
            r#"{{ split "," "a,b,c" | containsAll (split "," "a,c") }} {{ split "," "a" | containsAny (split "," "x,y") }}"#
        ),
        "true false"
    );
    assert_eq!(
        ok(r#"{{ regexMatch "^a.c$" "abc" }} {{ "a1b22" | regexReplaceAll "[0-9]+" "_" }}"#),
        "true a_b_"
    );
    assert_eq!(
        ok(r#"{{ "abc" | sha256Hex }}"#),
        hex::encode(sha2::Sha256::digest(b"abc"))
    );
    assert_eq!(
        ok(r#"{{ "" | default "dflt" }} {{ "set" | default "dflt" }}"#),
        "dflt set"
    );
}

use sha2::Digest as _;

#[test]
fn encoding_functions() {
    assert_eq!(
        ok(r#"{{ "hi?" | base64Encode }} {{ "aGk/" | base64Decode }}"#),
        "aGk/ hi?"
    );
    assert_eq!(
        ok(r#"{{ "hi?" | base64URLEncode }} {{ "aGk_" | base64URLDecode }}"#),
        "aGk_ hi?"
    );
    assert_eq!(
        ok(
            r#"{{ with parseJSON "{\"a\":[1,2],\"b\":\"x\"}" }}{{ .b }} {{ index .a 1 }} {{ toJSON . }}{{ end }}"#
        ),
        r#"x 2 {"a":[1,2],"b":"x"}"#
    );
    assert_eq!(ok(r#"{{ split "," "a" | toJSONPretty }}"#), "[\n  \"a\"\n]");
    assert!(err(r#"{{ parseJSON "{" }}"#).contains("parseJSON"));
    assert!(err(r#"{{ base64Decode "!!" }}"#).contains("base64Decode"));
}

#[test]
fn number_functions() {
    assert_eq!(ok(r#"{{ env "PORT" | parseInt | add 1 }}"#), "8081");
    assert_eq!(
        ok("{{ 10 | subtract 3 }} {{ 4 | multiply 3 }} {{ 9 | divide 2 }} {{ 9 | modulo 4 }}"),
        "7 12 4 1"
    );
    assert_eq!(
        ok("{{ 3 | minimum 5 }} {{ 3 | maximum 5 }} {{ 1.5 | add 1 }}"),
        "3 5 2.5"
    );
    assert_eq!(
        ok(r#"{{ parseBool "true" }} {{ parseFloat "1.5" }} {{ parseUint "7" }}"#),
        "true 1.5 7"
    );
    assert_eq!(
        ok("{{ range loop 3 }}{{ . }}{{ end }} {{ range loop 2 4 }}{{ . }}{{ end }}"),
        "012 23"
    );
    assert!(err("{{ 1 | divide 0 }}").contains("division by zero"));
    assert!(err(r#"{{ parseInt "x" }}"#).contains("parseInt: \"x\" is not an integer"));
}

#[test]
fn timestamp_function() {
    let year = chrono::Local::now().format("%Y").to_string();
    assert!(ok(r#"{{ timestamp "2006" }}"#).starts_with(&year[..3]));
    assert!(ok("{{ timestamp }}").contains('T'));
    assert!(
        ok(r#"{{ timestamp "unix" }}"#)
            .parse::<i64>()
            .is_ok_and(|t| t > 1_700_000_000)
    );
    assert_eq!(
        funcs::go_layout("2006-01-02T15:04:05Z07:00"),
        "%Y-%m-%dT%H:%M:%S%:z"
    );
    assert_eq!(
        funcs::go_layout("Jan _2 3:04PM 100%"),
        "%b %e %-I:%M%p %-m00%%"
    );
}

#[test]
fn errors_name_the_problem() {
    // Consul and Vault functions are not there: a parse error with line and column.
    let message = err("line one\n{{ key \"service/x\" }}");
    assert!(
        message.contains("unknown template function \"key\""),
        "{message}"
    );
    assert!(err("a\n{{ if }}").contains("t:2:"));
    assert!(err("{{ if }}").contains("t:1:"));
    assert!(err("{{ env }}").contains("env"));
    assert!(err(r#"{{ env "A" "B" }}"#).contains("env"));
    assert!(err("{{ toUpper 3 }}").contains("toUpper: argument 1 must be a string"));
    assert!(err("{{ join \",\" \"x\" }}").contains("join: argument 2 must be a list"));
    assert!(err("{{ range }}").contains("t:1:"));
    assert!(err("{{ unclosed ").contains("t:1:"));
}

#[test]
fn limits_are_errors() {
    assert!(matches!(
        render(
            "t",
            r#"{{ range loop 1000000 }}{{ range loop 1000000 }}x{{ end }}{{ end }}"#,
            "",
            "",
            &inputs()
        ),
        Err(RenderError::TooLarge | RenderError::Template(_))
    ));
    let big = r#"{{ range loop 1000000 }}0123456789{{ end }}"#;
    assert!(matches!(
        render("t", big, "", "", &inputs()),
        Err(RenderError::TooLarge)
    ));
}

#[test]
fn nomad_service_reads_and_records() {
    let source = r#"{{ range nomadService "web" }}{{ .Address }}:{{ .Port }} {{ end }}"#;
    // Not fetched yet: empty, and missing.
    let first = render("t", source, "", "", &inputs()).expect("renders");
    assert_eq!(first.text, "");
    assert!(first.dependencies.missing);
    assert_eq!(
        first.dependencies.services,
        BTreeSet::from(["web".to_owned()])
    );
    let mut fetched = inputs();
    fetched.services.insert(
        "web".to_owned(),
        vec![
            instance("web", "127.0.0.1", 8080, &["v1", "canary"]),
            instance("web", "127.0.0.2", 8081, &["v1"]),
        ],
    );
    let second = render("t", source, "", "", &fetched).expect("renders");
    assert_eq!(second.text, "127.0.0.1:8080 127.0.0.2:8081 ");
    assert!(!second.dependencies.missing);
    let tagged = render(
        "t",
        r#"{{ range nomadService "canary.web" }}{{ .Port }} {{ .Name }} {{ .Node }} {{ .JobID }} {{ .Tags }}{{ end }}"#,
        "",
        "",
        &fetched,
    )
    .expect("renders");
    assert_eq!(tagged.text, "8080 web node-1 web [v1 canary]");
    let grouped = render(
        "t",
        r#"{{ range $tag, $s := nomadService "web" | byTag }}{{ $tag }}={{ len $s }} {{ end }}"#,
        "",
        "",
        &fetched,
    )
    .expect("renders");
    assert_eq!(grouped.text, "canary=1 v1=2 ");
    // Fetched and empty: not missing.
    fetched.services.insert("db".to_owned(), Vec::new());
    let empty = render("t", r#"{{ nomadService "db" | len }}"#, "", "", &fetched).expect("renders");
    assert_eq!(
        (empty.text.as_str(), empty.dependencies.missing),
        ("0", false)
    );
    let bad = render("t", r#"{{ nomadService "a b" }}"#, "", "", &fetched).map(|o| o.text);
    assert!(bad.is_err_and(|err| err.to_string().contains("invalid service query")));
    let shard = render("t", r#"{{ nomadService 3 "k" "web" }}"#, "", "", &fetched).map(|o| o.text);
    assert!(shard.is_err_and(|err| err.to_string().contains("sharding")));
}

#[test]
fn nomad_services_lists_the_namespace() {
    let source = r#"{{ range nomadServices }}{{ .Name }} {{ .Tags }};{{ end }}"#;
    let first = render("t", source, "", "", &inputs()).expect("renders");
    assert!(first.dependencies.missing && first.dependencies.service_list);
    let mut fetched = inputs();
    fetched.service_list = Some(vec![ServiceRegistrationStub {
        service_name: "web".to_owned(),
        tags: vec!["a".to_owned(), "b".to_owned()],
    }]);
    let second = render("t", source, "", "", &fetched).expect("renders");
    assert_eq!(second.text, "web [a b];");
    assert!(!second.dependencies.missing);
}

#[test]
fn nomad_var_reads_the_items_and_records_what_is_missing() {
    let source = r#"{{ with nomadVar "nomad/jobs/web" }}{{ .k }}/{{ .other }}{{ end }}"#;
    let first = render("t", source, "", "", &inputs()).expect("renders");
    assert!(first.dependencies.missing, "not fetched yet");
    assert_eq!(
        first.dependencies.variables,
        BTreeSet::from(["nomad/jobs/web".to_owned()])
    );
    let mut fed = inputs();
    fed.variables.insert(
        "nomad/jobs/web".to_owned(),
        BTreeMap::from([
            ("k".to_owned(), "v".to_owned()),
            ("other".to_owned(), "w".to_owned()),
        ]),
    );
    let second = render("t", source, "", "", &fed).expect("renders");
    assert!(!second.dependencies.missing);
    assert_eq!(second.text, "v/w");
    assert!(err(r#"{{ nomadVar "nomad/jobs/web@other" }}"#).contains("its own namespace"));
    assert!(err(r#"{{ nomadVar "bad path" }}"#).contains("invalid path"));
}
