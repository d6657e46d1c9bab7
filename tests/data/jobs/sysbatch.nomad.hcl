# A sysbatch job runs to completion once on every node.
job "apt-update" {
  type        = "sysbatch"
  datacenters = ["dc1", "dc2"]

  group "update" {
    task "apt" {
      driver = "raw_exec"
      user   = "root"

      config {
        command = "apt-get"
        args    = ["update"]
      }
    }
  }
}
