# A count above the scaling block's max is refused at registration with Nomad's message.
job "over" {
  group "g" {
    count = 5
    scaling {
      min = 1
      max = 3
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
    }
  }
}
