# Workload identities: the default one, exposed in the environment and as a file, and a named
# one for another audience with its own lifetime.
job "ident" {
  group "app" {
    task "api" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }

      identity {
        env  = true
        file = true
      }

      identity {
        name          = "example"
        aud           = ["example.com"]
        ttl           = "1h"
        file          = true
        change_mode   = "signal"
        change_signal = "SIGHUP"
        extra_claims  = ["custom_claim"]
      }
    }
  }
}
