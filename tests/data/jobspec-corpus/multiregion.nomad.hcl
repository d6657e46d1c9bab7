# A multiregion deployment (Nomad Enterprise): parsed, refused at registration.
job "global" {
  multiregion {
    strategy {
      max_parallel = 1
      on_failure   = "fail_all"
    }

    region "west" {
      count       = 2
      datacenters = ["west-1"]
      meta {
        my-key = "my-value-west"
      }
    }

    region "east" {
      count       = 1
      datacenters = ["east-1"]
      node_pool   = "large"
    }
  }

  group "g" {
    count = 0
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
