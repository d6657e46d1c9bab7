//! Round trips of every wire type through Nomad-shaped JSON: each file of `testdata/` decodes
//! into its type and encodes back to the same JSON value, so a renamed, dropped or mistyped field
//! fails here. The files use the field names of Nomad's `api` package (and, for the internal
//! client routes, of `nomad/structs`).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    agent, allocs, client, cluster, deployments, events, job_launch, job_statuses, jobs, node,
    nodes, scaling, scheduler, status,
};
use crate::structs::{Allocation, Deployment, Evaluation, Job, JobSummary, Node};

/// Decodes `testdata/<name>.json` as the type, encodes it again and compares the JSON values.
macro_rules! check {
    ($ty:ty, $name:literal) => {
        check_text::<$ty>($name, include_str!(concat!("testdata/", $name, ".json")))
    };
}

fn check_text<T: DeserializeOwned + Serialize>(name: &str, text: &str) {
    let nomad: serde_json::Value = serde_json::from_str(text).expect("the file is JSON");
    let decoded: T = serde_json::from_value(nomad.clone())
        .unwrap_or_else(|error| panic!("{name}: does not decode: {error}"));
    let encoded = serde_json::to_value(&decoded).expect("encodes");
    assert_eq!(
        encoded, nomad,
        "{name}: the round trip changed the JSON (left: encoded, right: file)"
    );
}

#[test]
fn stored_objects_round_trip() {
    check!(Job, "job");
    check!(Allocation, "allocation");
    check!(Node, "node");
    check!(Evaluation, "evaluation");
    check!(Deployment, "deployment");
    check!(JobSummary, "job_summary");
}

#[test]
fn scheduler_configuration_messages_round_trip() {
    check!(
        scheduler::SchedulerConfigurationResponse,
        "scheduler_configuration_response"
    );
    check!(
        scheduler::SchedulerSetConfigurationResponse,
        "scheduler_set_configuration_response"
    );
    check!(
        crate::structs::SchedulerConfiguration,
        "scheduler_configuration"
    );
}

#[test]
fn job_messages_round_trip() {
    check!(Vec<jobs::JobListStub>, "job_list_stub");
    check!(jobs::JobRegisterRequest<Job>, "job_register_request");
    check!(jobs::JobRegisterResponse, "job_register_response");
    check!(jobs::JobEvaluateRequest, "job_evaluate_request");
    check!(jobs::JobDeregisterResponse, "job_deregister_response");
    check!(jobs::JobPlanRequest<Job>, "job_plan_request");
    check!(jobs::JobPlanResponse, "job_plan_response");
    check!(jobs::JobValidateRequest<Job>, "job_validate_request");
    check!(jobs::JobValidateResponse, "job_validate_response");
    check!(jobs::JobsParseRequest, "jobs_parse_request");
    check!(jobs::JobVersionsResponse, "job_versions_response");
    check!(jobs::JobRevertRequest, "job_revert_request");
    check!(jobs::JobStabilityRequest, "job_stability_request");
    check!(jobs::JobStabilityResponse, "job_stability_response");
    check!(job_launch::PeriodicForceResponse, "periodic_force_response");
    check!(job_launch::JobDispatchRequest, "job_dispatch_request");
    check!(job_launch::JobDispatchResponse, "job_dispatch_response");
    check!(scaling::ScalingRequest, "scaling_request");
    check!(scaling::JobScaleStatusResponse, "job_scale_status_response");
    check!(Vec<job_statuses::JobStatusesJob>, "job_statuses_response");
    check!(job_statuses::JobStatusesRequest, "job_statuses_request");
}

#[test]
fn scaling_messages_without_a_count_round_trip() {
    // An event-only request (`Count: null`) differs from scaling to zero.
    check!(scaling::ScalingRequest, "scaling_request_event_only");
    let request: scaling::ScalingRequest =
        serde_json::from_str(include_str!("testdata/scaling_request_event_only.json"))
            .expect("decodes");
    assert_eq!(request.count, None);
    check!(scaling::JobScaleStatusResponse, "job_scale_status_stopped");
}

#[test]
fn submissions_decode_from_the_request_files() {
    // The server decodes the same bodies as submissions; their defaults come later.
    let text = include_str!("testdata/job_register_request.json");
    let request: jobs::JobRegisterRequest =
        crate::api::decode::decode_json(text.as_bytes()).expect("decodes as a submission");
    let job = request.job.expect("has a job").into_job();
    assert_eq!(job.id.as_str(), "example");
    assert!(request.enforce_index);
}

#[test]
fn alloc_eval_and_deployment_messages_round_trip() {
    check!(Vec<allocs::AllocListStub>, "alloc_list_stub");
    check!(allocs::AllocStopResponse, "alloc_stop_response");
    check!(
        deployments::DeploymentPromoteRequest,
        "deployment_promote_request"
    );
    check!(
        deployments::DeploymentPauseRequest,
        "deployment_pause_request"
    );
    check!(
        deployments::DeploymentFailRequest,
        "deployment_fail_request"
    );
    check!(
        deployments::DeploymentAllocHealthRequest,
        "deployment_alloc_health_request"
    );
    check!(
        deployments::DeploymentUpdateResponse,
        "deployment_update_response"
    );
}

#[test]
fn node_messages_round_trip() {
    check!(Vec<nodes::NodeListStub>, "node_list_stub");
    check!(nodes::NodeUpdateDrainRequest, "node_update_drain_request");
    check!(nodes::NodeDrainUpdateResponse, "node_drain_update_response");
    check!(
        nodes::NodeUpdateEligibilityRequest,
        "node_update_eligibility_request"
    );
    check!(node::NodeRegisterRequest, "node_register_request");
    check!(node::NodeHeartbeatRequest, "node_heartbeat_request");
    check!(node::NodeUpdateResponse, "node_update_response");
    check!(node::NodeClientAllocs, "node_client_allocs");
    check!(node::PullAllocsRequest, "pull_allocs_request");
    check!(node::PullAllocsResponse, "pull_allocs_response");
    check!(node::AllocUpdateRequest, "alloc_update_request");
    check!(node::AllocUpdateResponse, "alloc_update_response");
}

#[test]
fn agent_status_and_event_messages_round_trip() {
    check!(agent::AgentSelf, "agent_self");
    check!(agent::ServerMembers, "server_members");
    check!(agent::AgentHealthResponse, "agent_health_response");
    check!(status::StatusLeader, "status_leader");
    check!(status::StatusPeers, "status_peers");
    check!(events::EventsFrame, "events_frame");
    check!(events::EventsFrame, "events_heartbeat");
}

#[test]
fn an_event_payload_keeps_its_object() {
    let text = include_str!("testdata/events_frame.json");
    let frame: events::EventsFrame = serde_json::from_str(text).expect("decodes");
    assert!(!frame.is_heartbeat());
    let events::EventPayload::Evaluation(eval) = &frame.events[0].payload else {
        panic!("the first event is an evaluation's");
    };
    assert_eq!(eval.id.to_string(), frame.events[0].key);
    assert!(matches!(
        frame.events[1].payload,
        events::EventPayload::Allocation(ref alloc) if Arc::strong_count(alloc) == 1
    ));
}

#[test]
fn client_route_messages_round_trip() {
    check!(Vec<client::AllocFileInfo>, "alloc_file_info");
    check!(client::StreamFrame, "stream_frame");
    check!(client::AllocRestartRequest, "alloc_restart_request");
    check!(client::AllocSignalRequest, "alloc_signal_request");
    check!(client::EmptyResponse, "empty_response");
    check!(client::AllocResourceUsage, "alloc_resource_usage");
    check!(client::HostStats, "host_stats");
    check!(client::CheckResults, "check_results");
    check!(client::ExecStreamingOutput, "exec_output_stdout");
    check!(client::ExecStreamingOutput, "exec_output_exited");
}

#[test]
fn log_frames_and_exec_output_carry_bytes_as_base64() {
    let frame: client::StreamFrame =
        serde_json::from_str(include_str!("testdata/stream_frame.json")).expect("decodes");
    assert_eq!(frame.data, b"hello\n");
    let output: client::ExecStreamingOutput =
        serde_json::from_str(include_str!("testdata/exec_output_stdout.json")).expect("decodes");
    assert_eq!(
        output,
        client::ExecStreamingOutput::stdout(b"hello\n".to_vec())
    );
    let bad = serde_json::from_str::<client::StreamFrame>(r#"{"Data": "not base64!"}"#);
    assert!(bad.is_err(), "bad base64 is refused");
}

#[test]
fn cluster_messages_round_trip() {
    check!(cluster::RaftServerInfo, "raft_server_info");
    check!(cluster::RaftJoinRequest, "raft_join_request");
    check!(cluster::RaftJoinResponse, "raft_join_response");
    check!(cluster::RaftConfiguration, "raft_configuration");
    check!(cluster::JoinResponse, "join_response");
    check!(cluster::SnapshotHeader, "snapshot_header");
}

#[test]
fn service_messages_round_trip() {
    check!(super::services::ServiceSyncRequest, "service_sync_request");
    check!(
        super::services::ServiceSyncResponse,
        "service_sync_response"
    );
    check!(
        Vec<super::services::ServiceRegistration>,
        "service_registrations"
    );
    check!(
        Vec<super::services::ServiceRegistrationListStub>,
        "service_list_stubs"
    );
}
