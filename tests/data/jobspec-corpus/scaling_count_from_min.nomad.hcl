# A group without a count starts at its scaling block's min, as Nomad's does.
job "autoscaled" {
  group "workers" {
    scaling {
      min = 3
      max = 6
    }
    task "w" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
