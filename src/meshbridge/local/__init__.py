"""The local twin: both meshes, the ALB and the Lambda on this machine, on real Envoy (I/O layer)."""
