//! Capability `host-docker`: declared by the contract, implemented by the Docker issue.
//!
//! Until then every call returns an error value, so a driver granted `docker` loads and fails its
//! calls cleanly. TODO(#docker): implement with bollard against the node's daemon.

use crate::driver_host::bindings::caravan::driver::host_docker::{
    ContainerExecOutput, ContainerExit, ContainerSpec, Host,
};
use crate::driver_host::instance::CallState;

fn not_yet<T>() -> Result<T, String> {
    Err(String::from(
        "host-docker is not implemented by this agent yet",
    ))
}

impl Host for CallState {
    async fn pull_image(&mut self, _image: String) -> Result<(), String> {
        not_yet()
    }
    async fn create_container(&mut self, _spec: ContainerSpec) -> Result<String, String> {
        not_yet()
    }
    async fn start_container(&mut self, _id: String) -> Result<(), String> {
        not_yet()
    }
    async fn wait_container(
        &mut self,
        _id: String,
        _timeout_ms: Option<u64>,
    ) -> Result<Option<ContainerExit>, String> {
        not_yet()
    }
    async fn stop_container(
        &mut self,
        _id: String,
        _timeout_ms: u64,
        _signal: String,
    ) -> Result<(), String> {
        not_yet()
    }
    async fn remove_container(&mut self, _id: String, _force: bool) -> Result<(), String> {
        not_yet()
    }
    async fn inspect_container(&mut self, _id: String) -> Result<String, String> {
        not_yet()
    }
    async fn exec_container(
        &mut self,
        _id: String,
        _cmd: Vec<String>,
        _timeout_ms: u64,
    ) -> Result<ContainerExecOutput, String> {
        not_yet()
    }
    async fn signal_container(&mut self, _id: String, _signal: String) -> Result<(), String> {
        not_yet()
    }
}
