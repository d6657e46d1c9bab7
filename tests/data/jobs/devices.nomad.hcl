# Two GPUs of at least 40 GiB, from the test device plugin of tests/data/devices.hcl; the task
# prints the instance IDs it was given.
job "devices" {
  type = "batch"
  group "train" {
    task "trainer" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo given: $CARAVAN_TEST_VISIBLE_DEVICES"]
      }
      resources {
        cpu    = 100
        memory = 64
        device "caravan-test/gpu" {
          count = 2
          constraint {
            attribute = "${device.attr.memory}"
            operator  = ">="
            value     = "40 GiB"
          }
        }
      }
    }
  }
}
