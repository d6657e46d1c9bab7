# Every argument of resources that caravan schedules on.
job "sized" {
  group "g" {
    task "small" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      resources {
        cpu        = 250
        memory     = 128
        memory_max = 512
        disk       = 100
        secrets    = 2
      }
    }

    task "pinned" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      resources {
        cores  = 2
        memory = 256
      }
    }
  }
}
