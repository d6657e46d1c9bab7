# What happens when a client disconnects, and the delay before a group's tasks are killed.
job "edge" {
  group "sensor" {
    shutdown_delay               = "10s"
    stop_after_client_disconnect = "2m"

    task "collect" {
      driver = "raw_exec"

      config {
        command = "/opt/sensor/collect"
      }
    }
  }

  group "relay" {
    max_client_disconnect = "1h"

    task "relay" {
      driver = "raw_exec"

      config {
        command = "/opt/sensor/relay"
      }
    }
  }
}
