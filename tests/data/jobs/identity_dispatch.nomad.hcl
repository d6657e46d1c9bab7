# A dispatched job's payload file, and workload identities (the default one and a named one).
job "processor" {
  type = "batch"

  parameterized {
    payload = "required"
  }

  group "process" {
    task "process" {
      driver = "docker"

      config {
        image = "example/processor:2.1"
        args  = ["${NOMAD_TASK_DIR}/input.json"]
      }

      dispatch_payload {
        file = "input.json"
      }

      identity {
        env  = true
        file = true
      }

      identity {
        name        = "vault_default"
        aud         = ["vault.io"]
        ttl         = "1h"
        change_mode = "signal"
        change_signal = "SIGHUP"
      }
    }
  }
}
