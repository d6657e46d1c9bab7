# The job-level ui block: a description (markdown) and links for the web UI.
job "docs" {
  ui {
    description = "Serves the **product docs**"
    link {
      label = "Runbook"
      url   = "https://wiki.example.com/docs-runbook"
    }
    link {
      label = "Source"
      url   = "https://git.example.com/docs"
    }
  }

  group "web" {
    task "server" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
