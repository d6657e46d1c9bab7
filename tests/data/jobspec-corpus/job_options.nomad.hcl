# Job arguments: region, namespace, node_pool, priority, all_at_once, datacenter globs, meta as
# an attribute with dotted keys.
job "opts" {
  region      = "global"
  namespace   = "default"
  node_pool   = "default"
  priority    = 70
  all_at_once = true
  datacenters = ["us-east-*", "dc1"]
  meta = {
    "release.channel" = "stable"
  }

  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
