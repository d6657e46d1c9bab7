//! The table from each route to what a caller needs to call it, read by the one identity
//! middleware ([`super::identity`]). A path the table does not know is refused when ACLs are
//! on; `tests::every_route_is_mapped` holds every route of the routers to an entry.
//!
//! Nomad: each endpoint's `aclObj.Allow...` check (`nomad/*_endpoint.go`), gathered here.

use axum::http::Method;

/// What a route requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Anyone: leader and peers, agent health, the UI's assets.
    Public,
    /// A node's own calls, proved by its node secret in the handlers
    /// (`server::node_identity`), not by an ACL token.
    NodeSecret,
    /// Raft and join traffic between servers: not token-checked (servers carry no token).
    ServerRpc,
    /// `acl bootstrap`: anyone, once.
    Bootstrap,
    /// The event stream: a caller who may read something; the handler keeps the events it may
    /// read.
    Events,
    /// Any caller whose token resolves (anonymous included); the handler answers only what the
    /// token may see (token self, policy read, event stream).
    Filtered,
    /// A management token.
    Management,
    /// A namespace capability in the request's namespace (`?namespace=`, `default` when
    /// unset); lists asked with `namespace=*` keep only what the token may read.
    Namespace(&'static str),
    /// A namespace capability in the namespace of the job in the request's body (a register,
    /// plan or validation acts in the job's namespace, whatever `?namespace=` says): the
    /// handler checks it once the body is read.
    JobBody(&'static str),
    /// A namespace capability in the namespace of the allocation named in the path.
    AllocNamespace(&'static str),
    /// ... of the evaluation named in the path.
    EvalNamespace(&'static str),
    /// ... of the deployment named in the path.
    DeploymentNamespace(&'static str),
    NodeRead,
    NodeWrite,
    AgentRead,
    AgentWrite,
    OperatorRead,
    OperatorWrite,
}

/// The rule of `method path`, or `None` for a path no router serves.
pub fn rule_for(method: &Method, path: &str) -> Option<Rule> {
    use Rule::*;
    let read = *method == Method::GET || *method == Method::HEAD;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rule = match segments.as_slice() {
        [""] | ["ui", ..] => Public,
        ["v1", "status", "leader" | "peers"] => Public,
        ["v1", "agent", "health"] => Public,
        ["v1", "agent", "self" | "members"] => AgentRead,
        ["v1", "agent", "join" | "force-leave"] => AgentWrite,
        ["v1", "agent", "monitor"] => AgentRead,
        ["v1", "agent", "servers"] if read => AgentRead,
        ["v1", "agent", "servers"] => AgentWrite,
        ["v1", "internal", "node", ..] => NodeSecret,
        ["v1", "internal", "raft", ..] => ServerRpc,
        // Key material: the handler sends it only to a server certificate (mutual TLS).
        ["v1", "internal", "server", "keyring", _] => ServerRpc,
        ["v1", "acl", "bootstrap"] => Bootstrap,
        ["v1", "acl", "token", "self"] => Filtered,
        ["v1", "acl", "policy", _] if read => Filtered,
        ["v1", "acl", "policies" | "tokens"] => Management,
        ["v1", "acl", "policy", _] | ["v1", "acl", "token"] | ["v1", "acl", "token", _] => {
            Management
        }
        // Lists keep the namespaces the token may use; a namespace is read by a token with
        // any capability there (the handler checks); writes are the operator's.
        ["v1", "namespaces"] => Filtered,
        ["v1", "namespace", _] if read => Filtered,
        ["v1", "namespace"] | ["v1", "namespace", _] => Management,
        // Variables: the handler checks the path's capability (`variables` rules).
        ["v1", "vars"] | ["v1", "var", ..] => Filtered,
        ["v1", "jobs"] if read => Namespace("list-jobs"),
        ["v1", "jobs"] => JobBody("submit-job"),
        ["v1", "jobs", "parse"] => Namespace("parse-job"),
        // A body may name jobs of several namespaces: the handler checks `read-job` in the one
        // it acts in and keeps the jobs the token may read.
        ["v1", "jobs", "statuses"] => Filtered,
        ["v1", "validate", "job"] => JobBody("read-job"),
        ["v1", "job", _] if read => Namespace("read-job"),
        ["v1", "job", _] if *method == Method::DELETE => Namespace("submit-job"),
        ["v1", "job", _] => JobBody("submit-job"),
        ["v1", "job", _, "scale"] if read => Namespace("read-job-scaling"),
        ["v1", "job", _, "scale"] => Namespace("scale-job"),
        ["v1", "job", _, "dispatch"] => Namespace("dispatch-job"),
        ["v1", "job", _, "plan"] => JobBody("submit-job"),
        ["v1", "job", _, "revert" | "stable" | "evaluate"] => Namespace("submit-job"),
        ["v1", "job", _, "periodic", "force"] => Namespace("submit-job"),
        [
            "v1",
            "job",
            _,
            "allocations" | "evaluations" | "versions" | "summary" | "deployments" | "deployment"
            | "services",
        ] => Namespace("read-job"),
        [
            "v1",
            "allocations" | "evaluations" | "deployments" | "services",
        ] => Namespace("read-job"),
        ["v1", "allocation", _] | ["v1", "allocation", _, "services"] => AllocNamespace("read-job"),
        ["v1", "allocation", _, "stop"] => AllocNamespace("alloc-lifecycle"),
        ["v1", "evaluation", _] | ["v1", "evaluation", _, "allocations"] => {
            EvalNamespace("read-job")
        }
        ["v1", "deployment", _] | ["v1", "deployment", "allocations", _] => {
            DeploymentNamespace("read-job")
        }
        [
            "v1",
            "deployment",
            "fail" | "pause" | "promote" | "allocation-health",
            _,
        ] => DeploymentNamespace("submit-job"),
        ["v1", "service", _] => Namespace("read-job"),
        ["v1", "service", _, _] => Namespace("submit-job"),
        ["v1", "node", "pools"] | ["v1", "node", "pool", _] if read => NodeRead,
        ["v1", "node", "pools"] | ["v1", "node", "pool", _] => Management,
        ["v1", "node", "pool", _, "nodes"] => NodeRead,
        ["v1", "node", "pool", _, "jobs"] => Filtered,
        ["v1", "nodes"] | ["v1", "node", _] | ["v1", "node", _, "allocations"] => NodeRead,
        ["v1", "node", _, "drain" | "eligibility"] => NodeWrite,
        ["v1", "operator", "raft", "configuration"] => OperatorRead,
        ["v1", "operator", "raft", "peer"] => OperatorWrite,
        ["v1", "operator", "scheduler", "configuration"] if read => OperatorRead,
        ["v1", "operator", "scheduler", "configuration"] => OperatorWrite,
        ["v1", "operator", "snapshot"] => Management,
        ["v1", "operator", "keyring", "keys" | "rotate"] => Management,
        ["v1", "system", "gc"] => Management,
        ["v1", "event", "stream"] => Events,
        ["v1", "client", "stats"] => NodeRead,
        ["v1", "client", "fs", "logs", _] => AllocNamespace("read-logs"),
        ["v1", "client", "fs", "ls" | "cat" | "stat" | "readat", _] => AllocNamespace("read-fs"),
        ["v1", "client", "allocation", _, "exec"] => AllocNamespace("alloc-exec"),
        ["v1", "client", "allocation", _, "signal" | "restart"] => {
            AllocNamespace("alloc-lifecycle")
        }
        ["v1", "client", "allocation", _, "stats" | "checks"] => AllocNamespace("read-job"),
        _ => return None,
    };
    Some(rule)
}

/// The ID a path-scoped rule names: the allocation, evaluation or deployment ID.
pub fn path_object_id(path: &str) -> Option<&str> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "allocation" | "evaluation", id, ..] => Some(id),
        ["v1", "deployment", id] => Some(id),
        ["v1", "deployment", _, id] => Some(id),
        ["v1", "client", "fs", _, id] => Some(id),
        ["v1", "client", "allocation", id, _] => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route("...")` of the routers, as written in their sources.
    fn route_templates() -> Vec<String> {
        let sources = [
            include_str!("mod.rs"),
            include_str!("ui.rs"),
            include_str!("routes/client/mod.rs"),
            include_str!("../agent/client_forward.rs"),
            include_str!("../server/raft/network.rs"),
        ];
        let mut templates = Vec::new();
        for source in sources {
            let mut rest = source;
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + ".route(".len()..];
                let Some(start) = rest.find('"') else { break };
                let Some(length) = rest[start + 1..].find('"') else {
                    break;
                };
                templates.push(rest[start + 1..start + 1 + length].to_owned());
            }
        }
        templates
    }

    /// A template with sample values in its `{params}`.
    fn sample(template: &str) -> String {
        let op = if template.contains("/fs/") {
            "logs"
        } else {
            "stats"
        };
        template
            .split('/')
            .map(|segment| match segment {
                "{op}" => op,
                "{*path}" => "jobs/example",
                other if other.starts_with('{') => "00000000-0000-4000-8000-000000000001",
                other => other,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn every_route_is_mapped() {
        let templates = route_templates();
        assert!(templates.len() > 60, "found {} routes", templates.len());
        for template in &templates {
            let path = sample(template);
            for method in [Method::GET, Method::PUT, Method::POST, Method::DELETE] {
                assert!(
                    rule_for(&method, &path).is_some(),
                    "{method} {template} ({path}) has no access rule"
                );
            }
        }
    }

    #[test]
    fn each_route_class_asks_for_nomads_capability() {
        use Rule::*;
        let cases = [
            (Method::GET, "/v1/jobs", Namespace("list-jobs")),
            (Method::PUT, "/v1/jobs", JobBody("submit-job")),
            (Method::GET, "/v1/jobs/statuses", Filtered),
            (Method::POST, "/v1/jobs/statuses", Filtered),
            (Method::POST, "/v1/job/web", JobBody("submit-job")),
            (Method::PUT, "/v1/validate/job", JobBody("read-job")),
            (Method::GET, "/v1/job/web", Namespace("read-job")),
            (Method::DELETE, "/v1/job/web", Namespace("submit-job")),
            (
                Method::POST,
                "/v1/job/web/dispatch",
                Namespace("dispatch-job"),
            ),
            (Method::PUT, "/v1/job/web/scale", Namespace("scale-job")),
            (Method::PUT, "/v1/job/web/evaluate", Namespace("submit-job")),
            (Method::GET, "/v1/allocation/a1", AllocNamespace("read-job")),
            (
                Method::POST,
                "/v1/allocation/a1/stop",
                AllocNamespace("alloc-lifecycle"),
            ),
            (
                Method::GET,
                "/v1/client/fs/logs/a1",
                AllocNamespace("read-logs"),
            ),
            (
                Method::GET,
                "/v1/client/fs/cat/a1",
                AllocNamespace("read-fs"),
            ),
            (
                Method::GET,
                "/v1/client/allocation/a1/exec",
                AllocNamespace("alloc-exec"),
            ),
            (Method::GET, "/v1/evaluation/e1", EvalNamespace("read-job")),
            (
                Method::POST,
                "/v1/deployment/fail/d1",
                DeploymentNamespace("submit-job"),
            ),
            (Method::GET, "/v1/nodes", NodeRead),
            (Method::GET, "/v1/node/pools", NodeRead),
            (Method::PUT, "/v1/node/pools", Management),
            (Method::DELETE, "/v1/node/pool/prod", Management),
            (Method::GET, "/v1/node/pool/prod/nodes", NodeRead),
            (Method::GET, "/v1/node/pool/prod/jobs", Filtered),
            (Method::POST, "/v1/node/n1/drain", NodeWrite),
            (Method::GET, "/v1/agent/self", AgentRead),
            (Method::GET, "/v1/operator/raft/configuration", OperatorRead),
            (Method::DELETE, "/v1/operator/raft/peer", OperatorWrite),
            (
                Method::GET,
                "/v1/operator/scheduler/configuration",
                OperatorRead,
            ),
            (
                Method::PUT,
                "/v1/operator/scheduler/configuration",
                OperatorWrite,
            ),
            (Method::GET, "/v1/operator/snapshot", Management),
            (Method::PUT, "/v1/acl/policy/web", Management),
            (Method::GET, "/v1/acl/policy/web", Filtered),
            (Method::GET, "/v1/acl/tokens", Management),
            (Method::GET, "/v1/acl/token/self", Filtered),
            (Method::POST, "/v1/acl/bootstrap", Bootstrap),
            (Method::GET, "/v1/event/stream", Events),
            (Method::PUT, "/v1/internal/node/n1/heartbeat", NodeSecret),
            (Method::GET, "/v1/status/leader", Public),
            (Method::GET, "/v1/namespaces", Filtered),
            (Method::GET, "/v1/namespace/web", Filtered),
            (Method::PUT, "/v1/namespace/web", Management),
            (Method::DELETE, "/v1/namespace/web", Management),
            (Method::GET, "/v1/vars", Filtered),
            (Method::PUT, "/v1/var/app/db", Filtered),
            (Method::GET, "/v1/internal/node/n1/var", NodeSecret),
        ];
        for (method, path, expected) in cases {
            assert_eq!(rule_for(&method, path), Some(expected), "{method} {path}");
        }
        assert_eq!(rule_for(&Method::GET, "/v1/no/such/route"), None);
    }

    #[test]
    fn path_scoped_rules_find_their_object() {
        for (path, id) in [
            ("/v1/allocation/a1", Some("a1")),
            ("/v1/allocation/a1/stop", Some("a1")),
            ("/v1/evaluation/e1/allocations", Some("e1")),
            ("/v1/deployment/d1", Some("d1")),
            ("/v1/deployment/promote/d1", Some("d1")),
            ("/v1/client/fs/logs/a1", Some("a1")),
            ("/v1/client/allocation/a1/exec", Some("a1")),
            ("/v1/jobs", None),
        ] {
            assert_eq!(path_object_id(path), id, "{path}");
        }
    }
}
