# A job without groups parses, as Nomad's parser accepts it; registration refuses it.
job "empty" {
  datacenters = ["dc1"]
}
