# A CSI volume with mount options, mounted by a task: parsed, refused at registration.
job "mysql" {
  group "db" {
    volume "data" {
      type            = "csi"
      source          = "mysql-data"
      read_only       = false
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
      per_alloc       = true

      mount_options {
        fs_type     = "ext4"
        mount_flags = ["noatime"]
      }
    }

    task "mysql" {
      driver = "docker"
      config {
        image = "mysql:8"
      }
      volume_mount {
        volume      = "data"
        destination = "/var/lib/mysql"
      }
    }
  }
}
