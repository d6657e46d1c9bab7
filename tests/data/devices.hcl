# Devices without any hardware: the built-in test device plugin reports what this file lists,
# under the vendor `caravan-test` (nothing here is a real device). With `caravan agent -dev
# -config tests/data/devices.hcl`, `caravan node status -verbose <node>` lists the devices and
# tests/data/jobs/devices.nomad.hcl asks for two of the healthy ones; `caravan alloc status
# <alloc-id>` then shows their stats under "Device Stats".
plugin "caravan-test-devices" {
  config {
    visible_env = "CARAVAN_TEST_VISIBLE_DEVICES"
    devices = [
      {
        type       = "gpu"
        name       = "sim-80g"
        instances  = ["sim-0", "sim-1", "sim-2"]
        unhealthy  = ["sim-2"]
        attributes = { memory = "80 GiB", driver_version = "sim-1.0" }
        # What `stats` reports (first in name order: the summary `alloc status` prints).
        stats = {
          "sim-0" = { memory_used = "1024 MiB", utilization = 37 }
          "sim-1" = { memory_used = "2048 MiB", utilization = 5 }
        }
      },
      {
        type       = "gpu"
        name       = "sim-16g"
        instances  = ["small-0"]
        attributes = { memory = "16384 MiB" }
      },
    ]
  }
}
