# Constraints at every level, with Nomad's shorthand arguments.
job "placement" {
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  constraint {
    attribute = "${attr.cpu.arch}"
    operator  = "!="
    value     = "arm64"
  }

  group "web" {
    count = 3

    constraint {
      distinct_hosts = true
    }

    constraint {
      distinct_property = "${meta.rack}"
      value             = "2"
    }

    constraint {
      attribute = "${node.class}"
      regexp    = "^web-.*$"
    }

    task "server" {
      driver = "docker"

      constraint {
        attribute = "${attr.driver.docker.version}"
        version   = ">= 20.10"
      }

      constraint {
        attribute = "${attr.os.version}"
        semver    = ">= 22.4.0"
      }

      constraint {
        attribute    = "${meta.features}"
        set_contains = "ssd"
      }

      constraint {
        attribute = "${meta.gpu}"
        operator  = "is_not_set"
      }

      config {
        image = "nginx:1.27"
      }
    }
  }
}
