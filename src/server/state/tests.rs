//! The state store: snapshots are isolated from later writes, indexes and summaries follow the
//! writes, apply is deterministic, and the persisted form restores the same state.

use std::sync::Arc;

use super::{ApplyError, ObjectKind, PersistedState, StateStore, Table};
use crate::scheduler::State;
use crate::server::raft::{AllocClientUpdate, Command, PlanApplyRequest};
use crate::structs::{
    AllocClientStatus, AllocId, Allocation, EvalId, EvalStatus, Evaluation, Job, JobId, JobStatus,
    Node, NodeId, NodeStatus, TaskGroup,
};

fn job(id: &str, count: i32) -> Job {
    let mut job = Job {
        id: JobId::from(id),
        task_groups: vec![TaskGroup {
            name: "web".to_owned(),
            count,
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    job.canonicalize();
    job
}

fn eval(id: &str, job_id: &str) -> Evaluation {
    Evaluation {
        id: EvalId::from(id),
        namespace: "default".to_owned(),
        job_id: JobId::from(job_id),
        status: EvalStatus::Pending,
        ..Evaluation::default()
    }
}

fn alloc(id: &str, job_id: &str, node_id: &str) -> Allocation {
    Allocation {
        id: AllocId::from(id),
        namespace: "default".to_owned(),
        job_id: JobId::from(job_id),
        node_id: NodeId::from(node_id),
        task_group: "web".to_owned(),
        ..Allocation::default()
    }
}

/// A fixed sequence of writes: a node, a job, its evaluation, two placements, a client update.
fn commands() -> Vec<Command> {
    let job = Arc::new(job("web", 2));
    vec![
        Command::NodeRegister {
            node: Arc::new(Node {
                id: NodeId::from("n1"),
                status: NodeStatus::Ready,
                ..Node::default()
            }),
            evals: Vec::new(),
        },
        Command::JobRegister {
            job: job.clone(),
            enforce_index: None,
            eval: Some(eval("e1", "web")),
        },
        Command::PlanApply(Arc::new(PlanApplyRequest {
            job: Some(job),
            eval_id: EvalId::from("e1"),
            placed: vec![
                Arc::new(alloc("a1", "web", "n1")),
                Arc::new(alloc("a2", "web", "n1")),
            ],
            now: 7,
            ..PlanApplyRequest::default()
        })),
        Command::AllocClientUpdate {
            updates: vec![AllocClientUpdate {
                id: AllocId::from("a1"),
                client_status: AllocClientStatus::Running,
                ..AllocClientUpdate::default()
            }],
            evals: Vec::new(),
        },
    ]
}

fn apply_all(store: &StateStore) {
    for (idx, command) in commands().iter().enumerate() {
        let (response, _) = store.apply(idx as u64 + 10, command);
        assert_eq!(response.error, None);
    }
}

#[test]
fn snapshot_does_not_see_later_writes() {
    let store = StateStore::new();
    let before = store.snapshot();
    apply_all(&store);
    assert!(before.job("default", &JobId::from("web")).is_none());
    assert!(
        store
            .snapshot()
            .job("default", &JobId::from("web"))
            .is_some()
    );
}

#[test]
fn writes_keep_indexes_summaries_and_job_status() {
    let store = StateStore::new();
    apply_all(&store);
    let snapshot = store.snapshot();
    let indexes = store.indexes();
    assert_eq!(indexes.latest, 13);
    assert_eq!(indexes.get(Table::Nodes), 10);
    assert_eq!(indexes.get(Table::Allocs), 13);
    let job = snapshot.job("default", &JobId::from("web")).expect("job");
    assert_eq!(job.create_index, 11);
    assert_eq!(job.status, JobStatus::Running);
    let summary = snapshot
        .job_summary("default", &JobId::from("web"))
        .expect("summary");
    assert_eq!(summary.summary["web"].running, 1);
    assert_eq!(summary.summary["web"].starting, 1);
    let on_node = snapshot.allocs_by_node(&NodeId::from("n1"));
    assert_eq!(on_node.len(), 2);
    // Allocations share the job's one copy.
    assert!(
        on_node
            .iter()
            .all(|alloc| alloc.job.as_ref().is_some_and(|job| job.version == 0))
    );
    assert_eq!(on_node[0].create_time, 7);
}

#[test]
fn apply_is_deterministic() {
    let first = StateStore::new();
    let second = StateStore::new();
    apply_all(&first);
    apply_all(&second);
    let left = serde_json::to_value(first.persist()).expect("serialise");
    let right = serde_json::to_value(second.persist()).expect("serialise");
    assert_eq!(left, right);
}

#[test]
fn persisted_state_restores_the_same_state() {
    let store = StateStore::new();
    apply_all(&store);
    let persisted = serde_json::to_vec(&store.persist()).expect("serialise");
    let restored = StateStore::new();
    restored.restore(serde_json::from_slice::<PersistedState>(&persisted).expect("parse"));
    assert_eq!(restored.indexes(), store.indexes());
    assert_eq!(
        serde_json::to_value(restored.persist()).expect("serialise"),
        serde_json::to_value(store.persist()).expect("serialise")
    );
    let snapshot = restored.snapshot();
    assert_eq!(
        snapshot.allocs_by_job("default", &JobId::from("web")).len(),
        2
    );
    assert!(
        snapshot
            .alloc(&AllocId::from("a1"))
            .and_then(|alloc| alloc.job.clone())
            .is_some()
    );
}

#[test]
fn spec_change_bumps_the_version_and_identical_register_does_not() {
    let store = StateStore::new();
    let register = |index, job: Job| {
        store.apply(
            index,
            &Command::JobRegister {
                job: Arc::new(job),
                enforce_index: None,
                eval: None,
            },
        )
    };
    register(1, job("web", 1));
    register(2, job("web", 1));
    assert_eq!(
        store
            .snapshot()
            .job("default", &JobId::from("web"))
            .map(|job| job.version),
        Some(0)
    );
    register(3, job("web", 5));
    let snapshot = store.snapshot();
    assert_eq!(
        snapshot
            .job("default", &JobId::from("web"))
            .map(|job| job.version),
        Some(1)
    );
    assert_eq!(
        snapshot.job_versions("default", &JobId::from("web")).len(),
        2
    );
}

#[test]
fn deregister_of_a_missing_job_changes_nothing_and_says_why() {
    let store = StateStore::new();
    let (response, _) = store.apply(
        1,
        &Command::JobDeregister {
            namespace: "default".to_owned(),
            job_id: JobId::from("ghost"),
            purge: true,
            eval: None,
        },
    );
    assert_eq!(
        response.error,
        Some(ApplyError::not_found(ObjectKind::Job, "ghost"))
    );
}

#[test]
fn an_enforced_register_applies_only_at_the_expected_job_modify_index() {
    let store = StateStore::new();
    let register = |index, count, enforce_index| {
        store
            .apply(
                index,
                &Command::JobRegister {
                    job: Arc::new(job("web", count)),
                    enforce_index,
                    eval: None,
                },
            )
            .0
            .error
    };
    assert_eq!(
        register(1, 1, Some(4)),
        Some(ApplyError::EnforceIndex {
            expected: 4,
            actual: None
        })
    );
    assert!(
        store
            .snapshot()
            .job("default", &JobId::from("web"))
            .is_none()
    );
    assert_eq!(register(2, 1, Some(0)), None);
    assert_eq!(
        register(3, 2, Some(1)),
        Some(ApplyError::EnforceIndex {
            expected: 1,
            actual: Some(2)
        })
    );
    let stored = store.snapshot().job("default", &JobId::from("web"));
    assert_eq!(stored.map(|job| job.version), Some(0));
    assert_eq!(register(4, 2, Some(2)), None);
    let stored = store.snapshot().job("default", &JobId::from("web"));
    assert_eq!(stored.map(|job| job.job_modify_index), Some(4));
}

fn registration(alloc_id: &str, node_id: &str) -> Arc<crate::structs::ServiceRegistration> {
    let alloc_id = AllocId::from(alloc_id);
    Arc::new(crate::structs::ServiceRegistration {
        id: crate::structs::ServiceRegistration::make_id(&alloc_id, "group-web", "api", "http"),
        service_name: "api".to_owned(),
        namespace: "default".to_owned(),
        node_id: NodeId::from(node_id),
        job_id: JobId::from("web"),
        alloc_id,
        ..crate::structs::ServiceRegistration::default()
    })
}

fn register(
    store: &StateStore,
    index: u64,
    upserts: Vec<Arc<crate::structs::ServiceRegistration>>,
) {
    let (response, _) = store.apply(
        index,
        &Command::ServiceRegistrations {
            upserts,
            deletes: Vec::new(),
        },
    );
    assert_eq!(response.error, None);
}

#[test]
fn service_registrations_live_with_their_allocation_and_node() {
    let store = StateStore::new();
    apply_all(&store);
    register(
        &store,
        20,
        vec![
            registration("a1", "n1"),
            registration("a2", "n1"),
            // An allocation the state does not have is not registered.
            registration("gone", "n1"),
        ],
    );
    let services = &store.snapshot().tables().services.clone();
    assert_eq!(services.len(), 2);
    assert_eq!(store.indexes().get(Table::Services), 20);
    // The same registration again changes nothing.
    register(&store, 21, vec![registration("a1", "n1")]);
    assert_eq!(store.indexes().get(Table::Services), 20);
    // The allocation turns terminal: its registration goes.
    let (response, _) = store.apply(
        22,
        &Command::AllocClientUpdate {
            updates: vec![AllocClientUpdate {
                id: AllocId::from("a1"),
                client_status: AllocClientStatus::Complete,
                ..AllocClientUpdate::default()
            }],
            evals: Vec::new(),
        },
    );
    assert_eq!(response.error, None);
    let snapshot = store.snapshot();
    let left: Vec<&str> = snapshot
        .tables()
        .services
        .values()
        .map(|registration| registration.alloc_id.as_str())
        .collect();
    assert_eq!(left, vec!["a2"]);
    // And a late upsert for it is refused.
    register(&store, 23, vec![registration("a1", "n1")]);
    assert_eq!(store.snapshot().tables().services.len(), 1);
    // The node goes down: every registration on it goes.
    let (response, _) = store.apply(
        24,
        &Command::NodeUpdateStatus {
            node_id: NodeId::from("n1"),
            status: NodeStatus::Down,
            updated_at: 0,
            evals: Vec::new(),
        },
    );
    assert_eq!(response.error, None);
    assert!(store.snapshot().tables().services.is_empty());
    assert_eq!(store.indexes().get(Table::Services), 24);
}

#[test]
fn service_registrations_survive_a_snapshot() {
    let store = StateStore::new();
    apply_all(&store);
    register(&store, 20, vec![registration("a2", "n1")]);
    let restored = StateStore::new();
    let persisted: PersistedState =
        serde_json::from_str(&serde_json::to_string(&store.persist()).expect("encodes"))
            .expect("decodes");
    restored.restore(persisted);
    assert_eq!(
        restored.snapshot().tables().services,
        store.snapshot().tables().services
    );
}

#[test]
fn node_pools_are_made_by_nodes_kept_while_used_and_survive_a_snapshot() {
    use crate::structs::NodePool;

    let store = StateStore::new();
    let edge_node = Node {
        id: NodeId::from("n-edge"),
        node_pool: "edge".to_owned(),
        status: NodeStatus::Ready,
        ..Node::default()
    };
    let (response, _) = store.apply(
        5,
        &Command::NodeRegister {
            node: Arc::new(edge_node),
            evals: Vec::new(),
        },
    );
    assert_eq!(response.error, None);
    let pools = store.snapshot().tables().node_pools.clone();
    let edge = pools.get("edge").expect("the node's pool is created");
    assert_eq!((edge.create_index, edge.description.as_str()), (5, ""));
    assert!(
        !pools.contains_key("default"),
        "built-in pools are not stored"
    );

    let delete = |index, name: &str| {
        store
            .apply(
                index,
                &Command::NodePoolDelete {
                    names: vec![name.to_owned()],
                },
            )
            .0
            .error
    };
    assert_eq!(
        delete(6, "edge"),
        Some(ApplyError::NodePoolInUse {
            name: "edge".to_owned(),
            what: "nodes".to_owned(),
        })
    );
    assert_eq!(
        delete(7, "default"),
        Some(ApplyError::NodePoolBuiltin {
            name: "default".to_owned(),
        })
    );
    assert_eq!(
        delete(8, "ghost"),
        Some(ApplyError::not_found(ObjectKind::NodePool, "ghost"))
    );
    let upsert = |index, pool: NodePool| {
        store
            .apply(
                index,
                &Command::NodePoolUpsert {
                    pools: vec![Arc::new(pool)],
                },
            )
            .0
            .error
    };
    let described = NodePool {
        name: "edge".to_owned(),
        description: "at the edge".to_owned(),
        ..NodePool::default()
    };
    assert_eq!(upsert(9, described), None);
    let builtin = NodePool {
        name: "all".to_owned(),
        ..NodePool::default()
    };
    assert!(matches!(
        upsert(10, builtin),
        Some(ApplyError::NodePoolBuiltin { .. })
    ));
    let snapshot = store.snapshot();
    let edge = snapshot
        .tables()
        .node_pools
        .get("edge")
        .cloned()
        .expect("stored");
    assert_eq!(
        (
            edge.create_index,
            edge.modify_index,
            edge.description.as_str()
        ),
        (5, 9, "at the edge")
    );
    assert_eq!(snapshot.tables().indexes.get(Table::NodePools), 9);

    let restored = PersistedState::from_snapshot(&snapshot).into_tables();
    assert_eq!(restored.node_pools.get("edge"), Some(&edge));
}

#[test]
fn a_new_active_root_key_makes_the_others_inactive() {
    use crate::structs::{ROOT_KEY_ACTIVE, ROOT_KEY_INACTIVE, RootKeyMeta};
    let store = StateStore::new();
    let upsert = |key_id: &str| Command::RootKeyUpsert {
        key: Arc::new(RootKeyMeta {
            key_id: key_id.to_owned(),
            algorithm: "aes256-gcm".to_owned(),
            state: ROOT_KEY_ACTIVE.to_owned(),
            ..RootKeyMeta::default()
        }),
    };
    for (index, key_id) in [(5, "k1"), (6, "k2"), (7, "k3")] {
        let (response, _) = store.apply(index, &upsert(key_id));
        assert_eq!(response.error, None);
    }
    let snapshot = store.snapshot();
    let tables = snapshot.tables();
    let states: Vec<(&str, &str, u64)> = tables
        .root_keys
        .values()
        .map(|key| (key.key_id.as_str(), key.state.as_str(), key.modify_index))
        .collect();
    assert_eq!(
        states,
        [
            ("k1", ROOT_KEY_INACTIVE, 6),
            ("k2", ROOT_KEY_INACTIVE, 7),
            ("k3", ROOT_KEY_ACTIVE, 7),
        ]
    );
    assert_eq!(
        tables.active_root_key().map(|key| key.key_id.as_str()),
        Some("k3")
    );
}
