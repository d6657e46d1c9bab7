# Network blocks with dns, cni args, a host network and a port that ignores collisions.
job "nets" {
  group "bridged" {
    network {
      mode     = "bridge"
      hostname = "bridged"
      dns {
        servers  = ["1.1.1.1", "8.8.8.8"]
        searches = ["internal.example.com"]
        options  = ["ndots:2"]
      }
      port "http" {
        to           = 8080
        host_network = "public"
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }

  group "cni" {
    network {
      mode = "cni/mynet"
      cni {
        args = {
          "IgnoreUnknown" = "true"
        }
      }
      port "metrics" {
        static           = 9100
        ignore_collision = true
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
