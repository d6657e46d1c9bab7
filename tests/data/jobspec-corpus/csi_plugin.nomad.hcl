# A task that is a CSI plugin: parsed, refused at registration.
job "plugin-efs" {
  type = "system"
  group "nodes" {
    task "plugin" {
      driver = "docker"
      config {
        image      = "amazon/aws-efs-csi-driver:v1.7.0"
        privileged = true
      }
      csi_plugin {
        id             = "aws-efs0"
        type           = "node"
        mount_dir      = "/csi"
        health_timeout = "30s"
      }
    }
  }
}
