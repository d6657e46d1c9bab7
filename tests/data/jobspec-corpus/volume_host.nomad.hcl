# A host volume, sticky, mounted with a propagation mode and an SELinux label.
job "store" {
  group "g" {
    volume "certs" {
      type      = "host"
      source    = "ca-certificates"
      read_only = true
      sticky    = true
    }

    task "t" {
      driver = "docker"
      config {
        image = "busybox:1"
      }
      volume_mount {
        volume           = "certs"
        destination      = "/etc/ssl/certs"
        read_only        = true
        propagation_mode = "host-to-task"
        selinux_label    = "z"
      }
    }
  }
}
