//! The specs of the blocks decoded by table (see `spec.rs`): every argument and nested block of
//! Nomad 1.10's job specification that caravan stores without a hand-written reader, with the
//! JSON name of Nomad's API (`api/consul.go`, `api/tasks.go`, `api/resources.go`, ...).

use super::spec::{Field, Kind::*, Spec, field};

const fn spec(fields: &'static [Field]) -> Spec {
    Spec { fields }
}

// ---- job level ----------------------------------------------------------------------------

pub(crate) static UI: Spec = spec(&[
    field("description", "Description", Str),
    field("link", "Links", List(&UI_LINK)),
]);
static UI_LINK: Spec = spec(&[field("label", "Label", Str), field("url", "URL", Str)]);

pub(crate) static MULTIREGION: Spec = spec(&[
    field("strategy", "Strategy", Block(&MULTIREGION_STRATEGY)),
    field("region", "Regions", Labeled(&MULTIREGION_REGION, "Name")),
]);
static MULTIREGION_STRATEGY: Spec = spec(&[
    field("max_parallel", "MaxParallel", Int),
    field("on_failure", "OnFailure", Str),
]);
static MULTIREGION_REGION: Spec = spec(&[
    field("count", "Count", Int),
    field("datacenters", "Datacenters", Strings),
    field("node_pool", "NodePool", Str),
    field("meta", "Meta", StringMap),
]);

// ---- group level --------------------------------------------------------------------------

pub(crate) static SCALING: Spec = spec(&[
    field("min", "Min", Int),
    field("max", "Max", Int),
    field("enabled", "Enabled", Bool),
    field("type", "Type", Str),
    field("policy", "Policy", Free),
]);

pub(crate) static DISCONNECT: Spec = spec(&[
    field("lost_after", "LostAfter", Duration),
    field("stop_on_client_after", "StopOnClientAfter", Duration),
    field("replace", "Replace", Bool),
    field("reconcile", "Reconcile", Str),
]);

pub(crate) static CONSUL: Spec = spec(&[
    field("namespace", "Namespace", Str),
    field("cluster", "Cluster", Str),
    field("partition", "Partition", Str),
]);

pub(crate) static MOUNT_OPTIONS: Spec = spec(&[
    field("fs_type", "FSType", Str),
    field("mount_flags", "MountFlags", Strings),
]);

// ---- task level ---------------------------------------------------------------------------

pub(crate) static VAULT: Spec = spec(&[
    field("policies", "Policies", Strings),
    field("role", "Role", Str),
    field("namespace", "Namespace", Str),
    field("cluster", "Cluster", Str),
    field("env", "Env", Bool),
    field("disable_file", "DisableFile", Bool),
    field("change_mode", "ChangeMode", Str),
    field("change_signal", "ChangeSignal", Str),
    field("allow_token_expiration", "AllowTokenExpiration", Bool),
]);

pub(crate) static CSI_PLUGIN: Spec = spec(&[
    field("id", "ID", Str),
    field("type", "Type", Str),
    field("mount_dir", "MountDir", Str),
    field("stage_publish_base_dir", "StagePublishBaseDir", Str),
    field("health_timeout", "HealthTimeout", Duration),
]);

pub(crate) static SECRET: Spec = spec(&[
    field("provider", "Provider", Str),
    field("path", "Path", Str),
    field("config", "Config", Free),
    field("env", "Env", StringMap),
]);

pub(crate) static ACTION: Spec = spec(&[
    field("command", "Command", Str),
    field("args", "Args", Strings),
]);

pub(crate) static SCHEDULE: Spec = spec(&[field("cron", "Cron", Block(&SCHEDULE_CRON))]);
static SCHEDULE_CRON: Spec = spec(&[
    field("start", "Start", Str),
    field("end", "End", Str),
    field("timezone", "Timezone", Str),
]);

pub(crate) static DEVICE: Spec = spec(&[
    field("count", "Count", Int),
    field("constraint", "Constraints", Constraints),
    field("affinity", "Affinities", Affinities),
]);

pub(crate) static NUMA: Spec = spec(&[
    field("affinity", "Affinity", Str),
    field("devices", "Devices", Strings),
]);

pub(crate) static TEMPLATE_WAIT: Spec =
    spec(&[field("min", "Min", Duration), field("max", "Max", Duration)]);

pub(crate) static CHANGE_SCRIPT: Spec = spec(&[
    field("command", "Command", Str),
    field("args", "Args", Strings),
    field("timeout", "Timeout", Duration),
    field("fail_on_error", "FailOnError", Bool),
    field("run_on_first_render", "RunOnFirstRender", Bool),
]);

pub(crate) static DNS: Spec = spec(&[
    field("servers", "Servers", Strings),
    field("searches", "Searches", Strings),
    field("options", "Options", Strings),
]);

pub(crate) static CNI: Spec = spec(&[field("args", "Args", StringMap)]);

pub(crate) static SERVICE_WEIGHTS: Spec = spec(&[
    field("passing", "Passing", Int),
    field("warning", "Warning", Int),
]);

// ---- Consul service mesh (`connect`), kept as Nomad's JSON ----------------------------------

static CONNECT_GATEWAY: Spec = spec(&[
    field("proxy", "Proxy", Block(&GATEWAY_PROXY)),
    field("ingress", "Ingress", Block(&INGRESS)),
    field("terminating", "Terminating", Block(&TERMINATING)),
    field("mesh", "Mesh", Block(&EMPTY)),
]);
static EMPTY: Spec = spec(&[]);
static GATEWAY_PROXY: Spec = spec(&[
    field("connect_timeout", "ConnectTimeout", Duration),
    field(
        "envoy_gateway_bind_tagged_addresses",
        "EnvoyGatewayBindTaggedAddresses",
        Bool,
    ),
    field(
        "envoy_gateway_bind_addresses",
        "EnvoyGatewayBindAddresses",
        LabeledMap(&BIND_ADDRESS),
    ),
    field(
        "envoy_gateway_no_default_bind",
        "EnvoyGatewayNoDefaultBind",
        Bool,
    ),
    field("envoy_dns_discovery_type", "EnvoyDNSDiscoveryType", Str),
    field("config", "Config", Free),
]);
static BIND_ADDRESS: Spec = spec(&[field("address", "Address", Str), field("port", "Port", Int)]);
static INGRESS: Spec = spec(&[
    field("tls", "TLS", Block(&GATEWAY_TLS)),
    field("listener", "Listeners", List(&INGRESS_LISTENER)),
]);
static GATEWAY_TLS: Spec = spec(&[
    field("enabled", "Enabled", Bool),
    field("tls_min_version", "TLSMinVersion", Str),
    field("tls_max_version", "TLSMaxVersion", Str),
    field("cipher_suites", "CipherSuites", Strings),
    field("sds", "SDS", Block(&GATEWAY_SDS)),
]);
static GATEWAY_SDS: Spec = spec(&[
    field("cluster_name", "ClusterName", Str),
    field("cert_resource", "CertResource", Str),
]);
static INGRESS_LISTENER: Spec = spec(&[
    field("port", "Port", Int),
    field("protocol", "Protocol", Str),
    field("service", "Services", List(&INGRESS_SERVICE)),
]);
static INGRESS_SERVICE: Spec = spec(&[
    field("name", "Name", Str),
    field("hosts", "Hosts", Strings),
    field("tls", "TLS", Block(&GATEWAY_TLS)),
    field(
        "request_headers",
        "RequestHeaders",
        Block(&HEADER_MODIFIERS),
    ),
    field(
        "response_headers",
        "ResponseHeaders",
        Block(&HEADER_MODIFIERS),
    ),
    field("max_connections", "MaxConnections", Int),
    field("max_pending_requests", "MaxPendingRequests", Int),
    field("max_concurrent_requests", "MaxConcurrentRequests", Int),
]);
static HEADER_MODIFIERS: Spec = spec(&[
    field("add", "Add", StringMap),
    field("set", "Set", StringMap),
    field("remove", "Remove", Strings),
]);
static TERMINATING: Spec = spec(&[field("service", "Services", List(&LINKED_SERVICE))]);
static LINKED_SERVICE: Spec = spec(&[
    field("name", "Name", Str),
    field("ca_file", "CAFile", Str),
    field("cert_file", "CertFile", Str),
    field("key_file", "KeyFile", Str),
    field("sni", "SNI", Str),
]);

static SIDECAR_SERVICE: Spec = spec(&[
    field("tags", "Tags", Strings),
    field("port", "Port", Str),
    field("proxy", "Proxy", Block(&PROXY)),
    field("disable_default_tcp_check", "DisableDefaultTCPCheck", Bool),
    field("meta", "Meta", StringMap),
]);
static PROXY: Spec = spec(&[
    field("local_service_address", "LocalServiceAddress", Str),
    field("local_service_port", "LocalServicePort", Int),
    field("expose", "Expose", Block(&EXPOSE)),
    field("upstreams", "Upstreams", List(&UPSTREAM)),
    field(
        "transparent_proxy",
        "TransparentProxy",
        Block(&TRANSPARENT_PROXY),
    ),
    field("config", "Config", Free),
]);
static EXPOSE: Spec = spec(&[field("path", "Paths", List(&EXPOSE_PATH))]);
static EXPOSE_PATH: Spec = spec(&[
    field("path", "Path", Str),
    field("protocol", "Protocol", Str),
    field("local_path_port", "LocalPathPort", Int),
    field("listener_port", "ListenerPort", Str),
]);
static UPSTREAM: Spec = spec(&[
    field("destination_name", "DestinationName", Str),
    field("destination_namespace", "DestinationNamespace", Str),
    field("destination_peer", "DestinationPeer", Str),
    field("destination_partition", "DestinationPartition", Str),
    field("destination_type", "DestinationType", Str),
    field("local_bind_port", "LocalBindPort", Int),
    field("datacenter", "Datacenter", Str),
    field("local_bind_address", "LocalBindAddress", Str),
    field("local_bind_socket_path", "LocalBindSocketPath", Str),
    field("local_bind_socket_mode", "LocalBindSocketMode", Str),
    field("mesh_gateway", "MeshGateway", Block(&MESH_GATEWAY)),
    field("config", "Config", Free),
]);
static MESH_GATEWAY: Spec = spec(&[field("mode", "Mode", Str)]);
static TRANSPARENT_PROXY: Spec = spec(&[
    field("uid", "UID", Str),
    field("outbound_port", "OutboundPort", Int),
    field("exclude_inbound_ports", "ExcludeInboundPorts", Strings),
    field("exclude_outbound_ports", "ExcludeOutboundPorts", Ints),
    field("exclude_outbound_cidrs", "ExcludeOutboundCIDRs", Strings),
    field("exclude_uids", "ExcludeUIDs", Strings),
    field("no_dns", "NoDNS", Bool),
]);

static SIDECAR_TASK: Spec = spec(&[
    field("name", "Name", Str),
    field("driver", "Driver", Str),
    field("user", "User", Str),
    field("config", "Config", Free),
    field("env", "Env", StringMap),
    field("resources", "Resources", Block(&SIDECAR_RESOURCES)),
    field("meta", "Meta", StringMap),
    field("kill_timeout", "KillTimeout", Duration),
    field("logs", "LogConfig", Block(&SIDECAR_LOGS)),
    field("shutdown_delay", "ShutdownDelay", Duration),
    field("kill_signal", "KillSignal", Str),
    field("volume_mount", "VolumeMounts", List(&SIDECAR_VOLUME_MOUNT)),
    field("identity", "Identities", List(&SIDECAR_IDENTITY)),
]);
static SIDECAR_RESOURCES: Spec = spec(&[
    field("cpu", "CPU", Int),
    field("cores", "Cores", Int),
    field("memory", "MemoryMB", Int),
    field("memory_max", "MemoryMaxMB", Int),
]);
static SIDECAR_LOGS: Spec = spec(&[
    field("max_files", "MaxFiles", Int),
    field("max_file_size", "MaxFileSizeMB", Int),
    field("disabled", "Disabled", Bool),
]);
static SIDECAR_VOLUME_MOUNT: Spec = spec(&[
    field("volume", "Volume", Str),
    field("destination", "Destination", Str),
    field("read_only", "ReadOnly", Bool),
]);

/// `api.WorkloadIdentity`, for a sidecar task's identities.
static SIDECAR_IDENTITY: Spec = spec(&[
    field("name", "Name", Str),
    field("aud", "Audience", Strings),
    field("change_mode", "ChangeMode", Str),
    field("change_signal", "ChangeSignal", Str),
    field("env", "Env", Bool),
    field("file", "File", Bool),
    field("filepath", "Filepath", Str),
    field("service_name", "ServiceName", Str),
    field("ttl", "TTL", Duration),
    field("extra_claims", "ExtraClaims", Strings),
]);

pub(crate) static CONNECT: Spec = spec(&[
    field("native", "Native", Bool),
    field("gateway", "Gateway", Block(&CONNECT_GATEWAY)),
    field("sidecar_service", "SidecarService", Block(&SIDECAR_SERVICE)),
    field("sidecar_task", "SidecarTask", Block(&SIDECAR_TASK)),
]);
