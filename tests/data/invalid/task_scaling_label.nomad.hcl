job "x" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      scaling "disk" {
        max = 10
      }
    }
  }
}
