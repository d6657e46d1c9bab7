job "x" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      template {
        data        = "x"
        destination = "local/x"
        wait {
          min = 5
        }
      }
    }
  }
}
