#!/usr/bin/env bash
# Validates the Kubernetes manifests without a cluster: renders deploy/k8s/base and every overlay
# under deploy/k8s/overlays/ with `kubectl kustomize`, then checks the objects with python3 + yaml:
# kinds and apiVersions, the images, that container ports, gRPC probes (port, health service),
# Service target ports and Prometheus annotations match the addresses the binaries are configured
# to listen on (ConfigMap env values and args), the headless cloud Service and the edge's dns:///
# target to it, replicas, PDB/HPA selectors and targets, terminationGracePeriodSeconds against
# the drain, the security context, TLS files coming from mounted Secrets, and the GPU overlay.
# Exit: 0 pass, 1 fail, 77 skipped (no kubectl at all).
#   usage: tests/k8s_test.sh [BUILD_DIR]   (with BUILD_DIR: also checks that every SPLITRANS_*
#   variable and flag the manifests pass is known to the binaries' --help; probes' flags
#   against `splitrans-client health --help`)
#   env:   KUBECTL (default: kubectl)
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
k8s="$root/deploy/k8s"
kubectl="${KUBECTL:-kubectl}"
build_dir="${1:-}"

if ! command -v "$kubectl" >/dev/null 2>&1; then
  echo "SKIP: kubectl not installed (deploy/bootstrap.sh installs Debian's kubernetes-client)"
  exit 77
fi
# A kubectl without kustomize (older than 1.14) is an environment error, not a skip.
if ! "$kubectl" kustomize --help >/dev/null 2>&1; then
  echo "FAIL - $kubectl has no 'kustomize' subcommand"
  exit 1
fi
echo "using: $("$kubectl" version --client 2>/dev/null | head -n1)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
rendered=()
for dir in "$k8s/base" "$k8s"/overlays/*/; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  rel="${dir#"$root"/}"
  # stderr apart: kustomize v5 warns about the v2-compatible field names the overlays use.
  if "$kubectl" kustomize "$dir" > "$tmp/$name.yaml" 2> "$tmp/$name.err"; then
    echo "ok   - kubectl kustomize $rel"
    rendered+=("$name=$tmp/$name.yaml")
  else
    echo "FAIL - kubectl kustomize $rel"
    sed 's/^/    /' "$tmp/$name.err"
    fail=1
  fi
done

help_args=()
if [ -n "$build_dir" ]; then
  for b in edge/splitrans-edge cloud/splitrans-cloud client/splitrans-client; do
    if [ -x "$build_dir/$b" ]; then
      echo "ok   - $b is built"
    else
      echo "FAIL - $b is built ($build_dir/$b)"
      fail=1
    fi
  done
  if [ $fail -eq 0 ]; then
    "$build_dir/edge/splitrans-edge" --help > "$tmp/help-edge.txt" 2>&1
    "$build_dir/cloud/splitrans-cloud" --help > "$tmp/help-cloud.txt" 2>&1
    "$build_dir/client/splitrans-client" health --help > "$tmp/help-client-health.txt" 2>&1
    help_args=(--help-dir "$tmp")
  fi
fi

/usr/bin/python3 - "${help_args[@]}" "${rendered[@]}" <<'PY'
import os
import re
import sys

import yaml

NAMESPACE = "splitrans"
LIVENESS_SERVICE = "splitrans.live"
IMAGE_UID = 10001                         # deploy/Dockerfile: useradd --uid 10001
WATCHDOG_MS = 5000                        # common/server_main.h: drain + grace + 5 s
# What each binary listens on unless told otherwise (--help of each binary).
DEFAULT_LISTEN = {"cloud": "0.0.0.0:50052", "edge": "0.0.0.0:8001"}
DEFAULT_GRACE_MS = 2000
API_VERSIONS = {
    "Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1",
    "Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}
CLUSTER_SCOPED = {"Namespace"}
# env name of each binary's listen / metrics address; flags that override them
ENV = {
    "cloud": {"listen": "SPLITRANS_CLOUD_ADDR", "metrics": "SPLITRANS_CLOUD_METRICS_LISTEN"},
    "edge": {"listen": "SPLITRANS_EDGE_ADDR", "metrics": "SPLITRANS_EDGE_METRICS_LISTEN"},
}
TLS_ENV = {"cloud": "SPLITRANS_CLOUD_TLS", "edge": "SPLITRANS_EDGE_TLS"}
FILE_ENV_SUFFIXES = ("_TLS_CERT", "_TLS_KEY", "_TLS_CA", "_AUTH_TOKENS")
FILE_FLAGS = ("--tls-ca", "--tls-cert", "--tls-key", "--token-file")

args = sys.argv[1:]
helps = {}
if args[:1] == ["--help-dir"]:
    d = args[1]
    args = args[2:]
    for b in ("edge", "cloud", "client-health"):
        with open(os.path.join(d, "help-%s.txt" % b)) as f:
            helps[b] = f.read()

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok   - " + what)
    else:
        failed += 1
        print("FAIL - " + what)
    return ok


def port_of(addr):
    """'0.0.0.0:8001' / '[::]:8001' -> 8001 (None when there is no port)."""
    if addr is None or ":" not in str(addr):
        return None
    p = str(addr).rsplit(":", 1)[1]
    return int(p) if p.isdigit() else None


def parse_args(argv):
    """--name=value / --name value / --flag -> {name: value or True}."""
    out = {}
    i = 0
    argv = [str(a) for a in (argv or [])]
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
                out[k] = v
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                out[a] = argv[i + 1]
                i += 1
            else:
                out[a] = True
        i += 1
    return out


def image_name(image):
    """registry/name:tag@digest -> registry/name."""
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def has_word(text, word):
    return re.search(r"(?<![A-Za-z0-9_-])" + re.escape(word) + r"(?![A-Za-z0-9_-])", text) is not None


def check_rendering(tag, objs):
    t = "[%s] " % tag
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o.get("kind"), []).append(o)

    # --- every object: apiVersion, kind, name, namespace ---------------------------------------
    for o in objs:
        kind = o.get("kind")
        md = o.get("metadata") or {}
        name = md.get("name")
        what = "%s%s/%s" % (t, kind, name)
        check(bool(kind) and bool(o.get("apiVersion")) and bool(name), what + " has apiVersion, kind, name")
        if kind in API_VERSIONS:
            check(o.get("apiVersion") == API_VERSIONS[kind],
                  "%s apiVersion %s (want %s)" % (what, o.get("apiVersion"), API_VERSIONS[kind]))
        if kind not in CLUSTER_SCOPED:
            check(md.get("namespace") == NAMESPACE, "%s in namespace %s (got %s)" % (what, NAMESPACE, md.get("namespace")))
    check(any(o["metadata"]["name"] == NAMESPACE for o in by_kind.get("Namespace", [])),
          t + "Namespace %s is part of it" % NAMESPACE)

    configmaps = {o["metadata"]["name"]: o.get("data") or {} for o in by_kind.get("ConfigMap", [])}
    deployments = {o["metadata"]["name"]: o for o in by_kind.get("Deployment", [])}
    services = {o["metadata"]["name"]: o for o in by_kind.get("Service", [])}

    # --- the two Deployments --------------------------------------------------------------------
    info = {}  # role -> what the container is configured with
    for role, dep_name in (("cloud", "splitrans-cloud"), ("edge", "splitrans-edge")):
        dep = deployments.get(dep_name)
        if not check(dep is not None, t + "Deployment %s exists" % dep_name):
            continue
        w = "%sDeployment %s: " % (t, dep_name)
        spec = dep.get("spec") or {}
        tmpl = spec.get("template") or {}
        pod = tmpl.get("spec") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        annotations = (tmpl.get("metadata") or {}).get("annotations") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        check(selects(sel, labels), w + "selector %s matches the pod labels" % sel)
        replicas = spec.get("replicas", 1)
        if role == "cloud":
            check(replicas == 3, w + "replicas 3 (got %s)" % replicas)
        else:
            check(isinstance(replicas, int) and replicas >= 1, w + "replicas >= 1 (got %s)" % replicas)
        containers = pod.get("containers") or []
        c = next((x for x in containers if image_name(x.get("image", "")).rsplit("/", 1)[-1].startswith("splitrans-" + role)), None)
        if not check(c is not None, w + "has a splitrans-%s container" % role):
            continue

        # configuration as the binary will see it: envFrom ConfigMaps, then env, then flags
        env = {}
        for ef in c.get("envFrom") or []:
            ref = (ef.get("configMapRef") or {}).get("name")
            if ref is not None:
                check(ref in configmaps, w + "envFrom ConfigMap %s exists" % ref)
                env.update(configmaps.get(ref, {}))
        for e in c.get("env") or []:
            env[e["name"]] = e.get("value")  # valueFrom: name only
        flags = parse_args((c.get("command") or [])[1:] + (c.get("args") or []))
        listen = flags.get("--listen") or env.get(ENV[role]["listen"]) or DEFAULT_LISTEN[role]
        metrics = flags.get("--metrics-listen") or env.get(ENV[role]["metrics"])
        lport, mport = port_of(listen), port_of(metrics)
        check(lport is not None, w + "gRPC listen address %s has a port" % listen)
        check(mport is not None, w + "metrics listen address %s (%s) has a port" % (metrics, ENV[role]["metrics"]))
        grace = int(flags.get("--grace-ms") or env.get("SPLITRANS_GRACE_MS") or DEFAULT_GRACE_MS)
        drain = int(flags.get("--drain-delay-ms") or 0)
        tls_on = bool(env.get(TLS_ENV[role] + "_CERT"))
        client_certs = env.get(TLS_ENV[role] + "_CLIENT_CERTS", "auto")
        needs_client_cert = tls_on and (client_certs == "require" or
                                        (client_certs == "auto" and bool(env.get(TLS_ENV[role] + "_CA"))))
        info[role] = dict(dep=dep, container=c, env=env, flags=flags, lport=lport, mport=mport,
                          labels=labels, replicas=replicas)

        # image
        want_image = "splitrans-cloud-gpu" if (role == "cloud" and tag == "gpu") else "splitrans-" + role
        check(image_name(c.get("image", "")) == want_image, w + "image %s (want %s:TAG)" % (c.get("image"), want_image))

        # ports and Prometheus annotations
        cports = c.get("ports") or []
        check(any(p.get("containerPort") == lport for p in cports), w + "containerPort %s (gRPC listen)" % lport)
        check(any(p.get("containerPort") == mport for p in cports), w + "containerPort %s (metrics listen)" % mport)
        check(annotations.get("prometheus.io/scrape") == "true", w + 'annotation prometheus.io/scrape "true"')
        check(annotations.get("prometheus.io/port") == str(mport),
              w + "annotation prometheus.io/port %s = metrics port %s" % (annotations.get("prometheus.io/port"), mport))
        check(annotations.get("prometheus.io/path") == "/metrics", w + "annotation prometheus.io/path /metrics")

        # probes: grpc.health.v1 on the listen port; "" = readiness, splitrans.live = liveness
        for kind_, want_service in (("readinessProbe", ""), ("livenessProbe", LIVENESS_SERVICE),
                                    ("startupProbe", LIVENESS_SERVICE)):
            probe = c.get(kind_)
            if kind_ == "startupProbe" and probe is None:
                continue
            pw = w + "%s " % kind_
            if not check(probe is not None, pw + "is set"):
                continue
            if "grpc" in probe:
                g = probe["grpc"] or {}
                check(not tls_on, pw + "is not a kubelet gRPC probe while the server has TLS (kubelet cannot do TLS)")
                check(g.get("port") == lport, pw + "grpc port %s = listen port %s" % (g.get("port"), lport))
                check((g.get("service") or "") == want_service,
                      pw + "grpc service %r (want %r)" % (g.get("service") or "", want_service))
            elif "exec" in probe:
                cmd = [str(x) for x in (probe["exec"] or {}).get("command") or []]
                check(cmd[:2] == ["splitrans-client", "health"], pw + "runs splitrans-client health")
                pf = parse_args(cmd[2:])
                check(port_of(pf.get("--addr")) == lport, pw + "--addr %s on the listen port %s" % (pf.get("--addr"), lport))
                check((pf.get("--service") or "") == want_service and "--ready" not in pf,
                      pw + "--service %r (want %r, no --ready)" % (pf.get("--service") or "", want_service))
                check(("--tls-ca" in pf) == tls_on, pw + "--tls-ca exactly when the server has TLS (%s)" % tls_on)
                if needs_client_cert:
                    check("--tls-cert" in pf and "--tls-key" in pf,
                          pw + "presents a client certificate (the server requires one)")
                if "client-health" in helps:
                    for f in pf:
                        check(has_word(helps["client-health"], f), pw + "flag %s known to splitrans-client health --help" % f)
                for f in FILE_FLAGS:
                    if f in pf:
                        info[role].setdefault("files", []).append((pw + f, pf[f]))
            else:
                check(False, pw + "is a grpc or exec (splitrans-client health) probe")

        # drain: kubelet must not SIGKILL before the binary's own watchdog
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        check(drain > 0, w + "--drain-delay-ms set in args (got %s)" % drain)
        check(tgps * 1000 > drain + grace + WATCHDOG_MS,
              w + "terminationGracePeriodSeconds %s s > drain %s + grace %s + %s ms" % (tgps, drain, grace, WATCHDOG_MS))

        # security context (pod level, container level wins)
        sc = dict(pod.get("securityContext") or {})
        sc.update(c.get("securityContext") or {})
        check(sc.get("runAsNonRoot") is True, w + "runAsNonRoot")
        check(sc.get("runAsUser") == IMAGE_UID, w + "runAsUser %s (the image's uid %s)" % (sc.get("runAsUser"), IMAGE_UID))
        check(sc.get("readOnlyRootFilesystem") is True, w + "readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, w + "allowPrivilegeEscalation false")
        check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), w + "capabilities drop ALL")
        check(not sc.get("privileged"), w + "not privileged")
        # Service links would inject SPLITRANS_<SERVICE>_* variables into the binaries' env namespace.
        check(pod.get("enableServiceLinks") is False, w + "enableServiceLinks false")

        # resources
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                check(r in (res.get(part) or {}), w + "resources.%s.%s set" % (part, r))

        # GPU: only the GPU overlay's cloud holds one, and only it asks for the GPU codec
        gpus = str((res.get("limits") or {}).get("nvidia.com/gpu", ""))
        device = env.get("SPLITRANS_CODEC_DEVICE") or flags.get("--codec-device")
        if role == "cloud" and tag == "gpu":
            check(gpus == "1", w + "limits nvidia.com/gpu 1 (got %r)" % gpus)
            check(device == "gpu", w + "SPLITRANS_CODEC_DEVICE gpu (got %r)" % device)
        else:
            check(gpus == "", w + "no nvidia.com/gpu (got %r)" % gpus)
            check(device != "gpu", w + "codec device is not gpu (got %r)" % device)

        # files the binary reads (TLS, tokens) come from mounted volumes
        for k, v in env.items():
            if k.endswith(FILE_ENV_SUFFIXES) and v:
                info[role].setdefault("files", []).append((w + k, v))
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for what, path in info[role].get("files", []):
            check(provided_by_mount(path, c.get("volumeMounts") or [], volumes),
                  "%s file %s comes from a mounted Secret/ConfigMap key" % (what, path))

        # env names and flags known to the binary
        if role in helps:
            for k in sorted(env):
                if k.startswith("SPLITRANS_"):
                    check(has_word(helps[role], k), w + "%s known to splitrans-%s --help" % (k, role))
            for f in sorted(flags):
                check(has_word(helps[role], f), w + "flag %s known to splitrans-%s --help" % (f, role))

    # --- TLS overlay: both hops are configured ----------------------------------------------------
    if tag == "tls" and "cloud" in info and "edge" in info:
        for k in ("SPLITRANS_CLOUD_TLS_CERT", "SPLITRANS_CLOUD_TLS_KEY", "SPLITRANS_CLOUD_TLS_CA"):
            check(bool(info["cloud"]["env"].get(k)), t + "cloud sets %s" % k)
        for k in ("SPLITRANS_EDGE_TLS_CERT", "SPLITRANS_EDGE_TLS_KEY", "SPLITRANS_EDGE_AUTH_TOKENS",
                  "SPLITRANS_EDGE_CLOUD_TLS_CA", "SPLITRANS_EDGE_CLOUD_TLS_CERT", "SPLITRANS_EDGE_CLOUD_TLS_KEY"):
            check(bool(info["edge"]["env"].get(k)), t + "edge sets %s" % k)
    elif tag != "tls":
        for role in info:
            tls_keys = sorted(k for k in info[role]["env"] if "_TLS_" in k)
            check(not tls_keys, t + "%s has no TLS settings outside the tls overlay (%s)" % (role, tls_keys))

    # --- Services ---------------------------------------------------------------------------------
    for name, svc in services.items():
        w = "%sService %s: " % (t, name)
        spec = svc.get("spec") or {}
        sel = spec.get("selector") or {}
        targets = [d for d in deployments.values()
                   if selects(sel, ((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {})]
        if not check(len(targets) == 1, w + "selector %s selects exactly one Deployment (%d)" % (sel, len(targets))):
            continue
        cports = [p for c in targets[0]["spec"]["template"]["spec"].get("containers") or [] for p in c.get("ports") or []]
        for p in spec.get("ports") or []:
            tp = p.get("targetPort", p.get("port"))
            hit = [cp for cp in cports if cp.get("name") == tp or cp.get("containerPort") == tp]
            check(len(hit) == 1, w + "port %s targetPort %s is a container port" % (p.get("name"), tp))
            p["_container_port"] = hit[0]["containerPort"] if hit else None
    cloud_svc = services.get("splitrans-cloud")
    if check(cloud_svc is not None, t + "Service splitrans-cloud exists") and "cloud" in info:
        spec = cloud_svc["spec"]
        check(spec.get("clusterIP") == "None", t + "Service splitrans-cloud is headless (clusterIP: None)")
        check(spec.get("publishNotReadyAddresses") is not True,
              t + "Service splitrans-cloud publishes ready pods only (draining pods leave DNS)")
        check(selects(spec.get("selector") or {}, info["cloud"]["labels"]), t + "Service splitrans-cloud selects the cloud pods")
        grpc_ports = [p for p in spec.get("ports") or [] if p.get("_container_port") == info["cloud"]["lport"]]
        # Headless: DNS gives pod IPs, so the port clients dial is the pods' port itself.
        check(any(p.get("port") == info["cloud"]["lport"] for p in grpc_ports),
              t + "Service splitrans-cloud port = the cloud's listen port %s" % info["cloud"]["lport"])
    edge_svc = services.get("splitrans-edge")
    if check(edge_svc is not None, t + "Service splitrans-edge exists") and "edge" in info:
        check(selects(edge_svc["spec"].get("selector") or {}, info["edge"]["labels"]), t + "Service splitrans-edge selects the edge pods")
        check(any(p.get("_container_port") == info["edge"]["lport"] for p in edge_svc["spec"].get("ports") or []),
              t + "Service splitrans-edge targets the edge's listen port %s" % info["edge"]["lport"])

    # --- the edge's cloud target is the headless Service --------------------------------------------
    if "edge" in info and "cloud" in info and cloud_svc is not None:
        target = info["edge"]["flags"].get("--cloud") or info["edge"]["env"].get("SPLITRANS_CLOUD_TARGET")
        m = re.fullmatch(r"dns:///([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)", str(target))
        if check(m is not None, t + "edge SPLITRANS_CLOUD_TARGET %s is dns:///<service>.<namespace>.svc.cluster.local:<port>" % target):
            check(m.group(1) == "splitrans-cloud" and m.group(2) == cloud_svc["metadata"]["namespace"],
                  t + "edge target names Service splitrans-cloud in namespace %s" % cloud_svc["metadata"]["namespace"])
            check(int(m.group(3)) == info["cloud"]["lport"],
                  t + "edge target port %s = the cloud's listen port %s" % (m.group(3), info["cloud"]["lport"]))
        resolve = info["edge"]["env"].get("SPLITRANS_CLOUD_RESOLVE_MS") or info["edge"]["flags"].get("--cloud-resolve-ms")
        if resolve is not None:
            check(str(resolve).isdigit() and 100 <= int(resolve) <= 3600000,
                  t + "edge SPLITRANS_CLOUD_RESOLVE_MS %s in [100, 3600000]" % resolve)

    # --- PodDisruptionBudgets and HorizontalPodAutoscalers --------------------------------------------
    for role in info:
        dep = info[role]["dep"]
        dname = dep["metadata"]["name"]
        pdbs = [p for p in by_kind.get("PodDisruptionBudget", [])
                if selects((p["spec"].get("selector") or {}).get("matchLabels") or {}, info[role]["labels"])]
        if check(len(pdbs) == 1, t + "one PodDisruptionBudget selects the %s pods (%d)" % (role, len(pdbs))):
            ps = pdbs[0]["spec"]
            check(("minAvailable" in ps) != ("maxUnavailable" in ps), t + "PDB %s sets minAvailable or maxUnavailable" % pdbs[0]["metadata"]["name"])
            if isinstance(ps.get("minAvailable"), int):
                check(ps["minAvailable"] < info[role]["replicas"], t + "PDB %s minAvailable < replicas (drains can proceed)" % pdbs[0]["metadata"]["name"])
            if isinstance(ps.get("maxUnavailable"), int):
                check(ps["maxUnavailable"] >= 1, t + "PDB %s maxUnavailable >= 1 (drains can proceed)" % pdbs[0]["metadata"]["name"])
        hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", [])
                if (h["spec"].get("scaleTargetRef") or {}).get("name") == dname]
        if check(len(hpas) == 1, t + "one HorizontalPodAutoscaler targets Deployment %s (%d)" % (dname, len(hpas))):
            hs = hpas[0]["spec"]
            ref = hs["scaleTargetRef"]
            check(ref.get("kind") == "Deployment" and ref.get("apiVersion") == "apps/v1",
                  t + "HPA %s scaleTargetRef apps/v1 Deployment" % hpas[0]["metadata"]["name"])
            lo, hi = hs.get("minReplicas", 1), hs.get("maxReplicas", 0)
            check(lo <= info[role]["replicas"] <= hi,
                  t + "HPA %s minReplicas %s <= replicas %s <= maxReplicas %s" % (hpas[0]["metadata"]["name"], lo, info[role]["replicas"], hi))
            cpu = [m for m in hs.get("metrics") or [] if m.get("type") == "Resource"
                   and (m.get("resource") or {}).get("name") == "cpu"
                   and ((m["resource"].get("target") or {}).get("type") == "Utilization")]
            check(len(cpu) == 1, t + "HPA %s scales on CPU utilization" % hpas[0]["metadata"]["name"])
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        check(h["spec"].get("scaleTargetRef", {}).get("name") in deployments,
              t + "HPA %s targets an existing Deployment" % h["metadata"]["name"])


def provided_by_mount(path, mounts, volumes):
    for m in mounts:
        mp = m.get("mountPath", "").rstrip("/")
        if not path.startswith(mp + "/"):
            continue
        rel = path[len(mp) + 1:]
        if m.get("subPath"):
            return False  # files under a subPath mount are never updated (no rotation)
        vol = volumes.get(m.get("name")) or {}
        sources = []
        if "secret" in vol:
            sources = [vol["secret"]]
        elif "configMap" in vol:
            sources = [vol["configMap"]]
        elif "projected" in vol:
            sources = [s.get("secret") or s.get("configMap") for s in vol["projected"].get("sources") or []]
            sources = [s for s in sources if s]
        for s in sources:
            items = s.get("items")
            if items is None or any(i.get("path") == rel for i in items):
                return True
        return False
    return False


for arg in args:
    tag, path = arg.split("=", 1)
    with open(path) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    check(len(objs) > 0, "[%s] renders objects (%d)" % (tag, len(objs)))
    check_rendering(tag, objs)
tags = [a.split("=", 1)[0] for a in args]
for want in ("base", "gpu"):
    check(want in tags, "%s rendered" % want)
print("k8s checks: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
py=$?
[ $py -ne 0 ] && fail=1
if [ $fail -ne 0 ]; then
  echo "FAIL"
  exit 1
fi
echo "PASS"
