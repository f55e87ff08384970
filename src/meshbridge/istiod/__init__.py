"""istiod's own translation as the judge (the oracle), and its inputs.

* :mod:`meshbridge.istiod.request` (pure): one mesh's world (its Istio documents, Kubernetes Services, Secrets,
  the proxies' pods, mesh settings) as the oracle's request.
* :mod:`meshbridge.istiod.oracle` (I/O): builds ``tools/istio-oracle`` with Go (cached by ``go.sum``), runs
  it, and reads istiod's listeners, routes, clusters, endpoints and secrets per proxy.
"""
