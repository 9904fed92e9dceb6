"""The mesh model (Istio/Kubernetes config) and the bundled mesh (control plane, Envoy sidecars, demo)."""
