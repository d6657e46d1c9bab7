# This is an example job file, written by `caravan job init`. It runs a Redis cache in a Docker
# container. Submit it with `caravan job run example.nomad.hcl`, then watch it with
# `caravan job status example`. The format is Nomad's job specification: caravan runs the same files.

# A job is what you submit: its name is its ID in the cluster, unique per namespace.
job "example" {
  # The datacenters the job may run in; "*" matches them all. Globs such as "us-east-*" work too.
  datacenters = ["*"]

  # The scheduler to use. "service" keeps long-running tasks up forever; "batch" runs tasks to
  # completion; "system" and "sysbatch" run one copy on every client.
  type = "service"

  # How a new version of the job replaces the old one: one allocation at a time, each healthy for
  # 10 seconds before the next is replaced; a version that never turns healthy is rolled back.
  update {
    max_parallel      = 1
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = false
    canary            = 0
  }

  # How allocations move off a node being drained.
  migrate {
    max_parallel     = 1
    health_check     = "checks"
    min_healthy_time = "10s"
    healthy_deadline = "5m"
  }

  # How the job is shown in a web UI: a description (markdown) and links.
  ui {
    description = "caravan **Example** Job"
    link {
      label = "Learn more about caravan"
      url   = "https://developer.hashicorp.com/nomad/docs/job-specification"
    }
  }

  # A group is a set of tasks placed together on one client. `count` is how many copies run.
  group "cache" {
    count = 1

    # The ports the group needs. "db" gets a free host port chosen by the scheduler, mapped to
    # 6379 inside the container. Use `static = 6379` to ask for a fixed host port instead.
    network {
      port "db" {
        to = 6379
      }
    }

    # Registers the group in caravan's service catalog, with a TCP health check on "db".
    service {
      name     = "redis-cache"
      tags     = ["global", "cache"]
      port     = "db"
      provider = "nomad"

      check {
        name     = "alive"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    # What the client does when a task fails: restart it in place twice within 30 minutes,
    # 15 seconds apart, then give up and let the servers place it elsewhere.
    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    # Scratch space on the client's disk, kept for the allocation's life.
    ephemeral_disk {
      size = 300
    }

    # A task is one thing to run: here a container, run by the "docker" driver.
    task "redis" {
      driver = "docker"

      # The driver's own settings. For Docker: the image and the group ports to publish.
      config {
        image          = "redis:7"
        ports          = ["db"]
        auth_soft_fail = true
      }

      # Once the task is told to stop, wait this long before killing it, so that clients can
      # drain their connections.
      shutdown_delay = "10s"

      # A signed workload identity, given to the task as NOMAD_TOKEN and in secrets/.
      identity {
        env  = true
        file = true
      }

      # What the task needs from its node: CPU in MHz and memory in MB. The scheduler places it
      # only where these fit.
      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
