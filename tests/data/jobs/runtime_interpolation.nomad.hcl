# Interpolations Nomad leaves for the client stay literal; only var and local are resolved.
variable "region" {
  default = "eu"
}

job "runtime" {
  region = var.region

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  group "app" {
    network {
      port "http" {}
    }

    task "app" {
      driver = "raw_exec"

      config {
        command = "${NOMAD_TASK_DIR}/app"
        args    = ["--port", "${NOMAD_PORT_http}", "--dc", "${node.datacenter}", "--region", "${var.region}"]
      }

      env {
        RACK      = "${meta.rack}"
        HOSTNAME  = "${attr.unique.hostname}"
        HOME_DIR  = "${env["HOME"]}"
        ALLOC_DIR = "${NOMAD_ALLOC_DIR}"
        ESCAPED   = "$${var.region}"
        MIXED     = "${var.region}/${node.unique.name}/${NOMAD_ALLOC_INDEX}"
      }
    }
  }
}
