# HCL functions found in Nomad job files: base64, trimming, maps and lists, name-based UUIDs.
locals {
  ports = { http = 8080, admin = 9090 }
}

job "fn" {
  meta {
    auth     = base64encode("user:pass")
    plain    = base64decode("aGVsbG8=")
    name     = trimsuffix(trimprefix("svc-web-v2", "svc-"), "-v2")
    first    = element(keys(local.ports), 0)
    second   = element(values(local.ports), 3)
    fallback = lookup(local.ports, "metrics", 9100)
    distance = abs(-3)
    uuid_dns = uuidv5("dns", "kadalu.io")
    uuid_url = uuidv5("url", "https://caravan.example/")
  }

  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
    }
  }
}
