job "x" {
  ui {
    descriptoin = "typo"
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
    }
  }
}
