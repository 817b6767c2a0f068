#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/kubernetes without a cluster:
#   1. yamllint --strict with the repository's .yamllint, on every manifest;
#   2. `kubectl kustomize` renders the base, every overlay, the base with each
#      component alone, and the base with all components;
#   3. a Python (PyYAML) check of every render: each container has readiness
#      and liveness probes on ports it declares, CPU and memory requests and
#      limits, a locked-down securityContext (non-root, read-only root, no
#      privilege escalation, capabilities drop ALL); the termination grace
#      period exceeds --drain-timeout-s; --address and --metrics-address match
#      the named container ports; every file a flag names is mounted; Services,
#      the HPA, the PDB and the ServiceMonitor select what exists; the
#      ConfigMap's config.json is valid JSON whose fields exist in
#      proto/wavepool/v1/server_config.proto;
#   4. with a server binary: every flag in the containers' args is one that
#      `wavepool-server --helpfull` lists, and `wavepool-server --check-config`
#      accepts each render's config file and flags. Each of these is skipped,
#      with a message, while the binary predates the flag (--config,
#      --check-config).
#
# Usage: deploy_test.sh [SOURCE_DIR [SERVER_BIN]]
#   (defaults: the repository this script is in, SOURCE_DIR/build/server/wavepool-server)
# Exit 0 = passed, 1 = failed, 77 = passed what could run but kubectl, yamllint
# or PyYAML is missing (ctest reports it as skipped; apt-get install yamllint
# python3-yaml; kubectl from the Kubernetes or Google Cloud packages).
set -euo pipefail
SRC=$(cd "${1:-$(dirname "$0")/..}" && pwd)
SERVER_BIN=${2:-$SRC/build/server/wavepool-server}
K8S=$SRC/deploy/kubernetes
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

failures=0
missing=()
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
note() { echo "note: $*"; }

[ -f "$K8S/base/kustomization.yaml" ] || { echo "FAIL: no $K8S/base/kustomization.yaml" >&2; exit 1; }

# ---- 1. yamllint
if command -v yamllint >/dev/null; then
  echo "== yamllint --strict -c .yamllint deploy/kubernetes .yamllint"
  if (cd "$SRC" && yamllint --strict -f parsable -c .yamllint deploy/kubernetes .yamllint); then
    echo "yamllint: clean"
  else
    fail "yamllint reported problems (above)"
  fi
else
  missing+=("yamllint (apt-get install yamllint)")
fi

# ---- 2. kustomize renders
RENDERS=$WORK/renders
mkdir -p "$RENDERS"
render() {  # NAME DIR
  if kubectl kustomize "$2" >"$RENDERS/$1.yaml" 2>"$WORK/kustomize.err"; then
    echo "rendered $1 ($(grep -c '^kind:' "$RENDERS/$1.yaml") objects)"
  else
    cat "$WORK/kustomize.err" >&2
    rm -f "$RENDERS/$1.yaml"
    fail "kubectl kustomize $2"
  fi
}
if command -v kubectl >/dev/null; then
  echo "== kubectl kustomize"
  render base "$K8S/base"
  for d in "$K8S"/overlays/*/; do
    [ -f "$d/kustomization.yaml" ] && render "overlay-$(basename "$d")" "$d"
  done
  # Components cannot be rendered alone: each is rendered on the base, from a
  # throwaway kustomization that refers to them by relative path.
  comps=()
  for d in "$K8S"/components/*/; do
    [ -f "$d/kustomization.yaml" ] || continue
    name=$(basename "$d")
    comps+=("$name")
    mkdir -p "$WORK/k/$name"
    rel=$(realpath --relative-to="$WORK/k/$name" "$K8S")
    printf 'resources:\n  - %s/base\ncomponents:\n  - %s/components/%s\n' "$rel" "$rel" "$name" \
      >"$WORK/k/$name/kustomization.yaml"
    render "component-$name" "$WORK/k/$name"
  done
  if [ ${#comps[@]} -gt 1 ]; then
    mkdir -p "$WORK/k/all"
    rel=$(realpath --relative-to="$WORK/k/all" "$K8S")
    { printf 'resources:\n  - %s/base\ncomponents:\n' "$rel"
      for c in "${comps[@]}"; do printf '  - %s/components/%s\n' "$rel" "$c"; done
    } >"$WORK/k/all/kustomization.yaml"
    render all-components "$WORK/k/all"
  fi
else
  missing+=("kubectl (renders of base and overlays)")
fi

# ---- 3 + 4. structure checks, server flags, --check-config
PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then PY=$p; break; fi
done

SERVER_FLAGS=""
CHECK_CONFIG=0
if [ -x "$SERVER_BIN" ]; then
  # --helpfull exits 1 by Abseil's convention; its text is what matters.
  "$SERVER_BIN" --helpfull >"$WORK/helpfull.txt" 2>&1 || true
  sed -n 's/^ *--\([A-Za-z0-9_]*\) (.*/\1/p' "$WORK/helpfull.txt" | sort -u >"$WORK/flags.txt"
  if [ ! -s "$WORK/flags.txt" ]; then
    fail "could not read any flag from '$SERVER_BIN --helpfull'"
  elif grep -qx config "$WORK/flags.txt"; then
    SERVER_FLAGS=$WORK/flags.txt
    echo "server flags: $(grep -cv '^\(flagfile\|fromenv\|tryfromenv\|undefok\)$' "$SERVER_FLAGS") from $SERVER_BIN --helpfull"
  else
    note "skipping the flag check: $SERVER_BIN has no --config yet (flags: $(tr '\n' ' ' <"$WORK/flags.txt"))"
  fi
  if grep -qx check_config "$WORK/flags.txt"; then
    CHECK_CONFIG=1
  else
    note "skipping --check-config of the configs: $SERVER_BIN has no --check-config yet"
  fi
else
  note "no server binary at $SERVER_BIN: flag and --check-config checks skipped"
fi

if [ -n "$PY" ]; then
  echo "== manifest checks ($PY)"
  if ! "$PY" - "$SRC" "$RENDERS" "$SERVER_BIN" "$SERVER_FLAGS" "$CHECK_CONFIG" "$WORK" <<'PYEOF'
import glob, json, math, os, re, subprocess, sys
import yaml

src, renders, server_bin, flags_file, check_config, work = sys.argv[1:7]
check_config = check_config == "1"
errors = []


def err(where, msg):
    errors.append(f"{where}: {msg}")


# ---- proto/wavepool/v1/server_config.proto as a schema for config.json
proto_path = os.path.join(src, "proto/wavepool/v1/server_config.proto")
messages = {}
if os.path.exists(proto_path):
    text = re.sub(r"//[^\n]*", "", open(proto_path).read())
    for m in re.finditer(r"message\s+(\w+)\s*\{([^}]*)\}", text):
        fields = {}
        for f in re.finditer(r"(optional\s+|repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+\s*;", m.group(2)):
            label, ftype, name = (f.group(1) or "").strip(), f.group(2), f.group(3)
            camel = re.sub(r"_([a-z0-9])", lambda x: x.group(1).upper(), name)
            fields[name] = fields[camel] = (ftype, label == "repeated")
        messages[m.group(1)] = fields
else:
    print(f"note: {proto_path} not found: config.json fields not checked")

NUMERIC = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64"}


def check_message(where, value, mtype):
    if not isinstance(value, dict):
        err(where, f"expected an object ({mtype}), got {type(value).__name__}")
        return
    fields = messages[mtype]
    for key, v in value.items():
        if key not in fields:
            err(where, f"unknown field {key!r} in {mtype} (the server rejects unknown fields)")
            continue
        ftype, repeated = fields[key]
        items = v if repeated else [v]
        if repeated and not isinstance(v, list):
            err(where, f"{key}: expected a list")
            continue
        for i, item in enumerate(items):
            w = f"{where}.{key}" + (f"[{i}]" if repeated else "")
            if ftype in messages:
                check_message(w, item, ftype)
            elif ftype == "string" and not isinstance(item, str):
                err(w, "expected a string")
            elif ftype == "bool" and not isinstance(item, bool):
                err(w, "expected true or false")
            elif ftype in NUMERIC and (isinstance(item, bool) or not (
                    isinstance(item, (int, float)) or (isinstance(item, str) and re.fullmatch(r"-?[0-9.eE+-]+", item)))):
                err(w, "expected a number")
            elif ftype in NUMERIC and ftype.startswith(("uint", "fixed")) and isinstance(item, (int, float)) and item < 0:
                err(w, "must not be negative")


def check_config_json(where, text):
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        err(where, f"config.json is not valid JSON: {e}")
        return None
    if "ServerConfig" in messages:
        check_message(where + ":config.json", cfg, "ServerConfig")
    return cfg


# ---- server flags
known_flags = None
if flags_file:
    known_flags = set(open(flags_file).read().split())


def parse_args(args):
    """['--a-b=1', '--c', 'x', '--d'] -> [('a_b', '1', 'a-b'), ('c', 'x', 'c'), ('d', None, 'd')]"""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            out.append((None, a, None))
            i += 1
            continue
        spelled, eq, value = a[2:].partition("=")
        name = spelled.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = None
        out.append((name, value, spelled))
        i += 1
    return out


def cpu_cores(q):
    q = str(q)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


MEM_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def mem_bytes(q):
    q = str(q)
    for u, f in MEM_UNITS.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q)


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


PATH_FLAGS = ("config", "tls_cert", "tls_key", "tls_client_ca", "auth_tokens_file", "model_repository")
BAKED_IN_IMAGE = {"/models"}  # deploy/Dockerfile copies models/ there


def resolve_env(container, text):
    """Kubernetes $(VAR) expansion in args, with what the kubelet would put in VAR."""
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "resourceFieldRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["resourceFieldRef"]
            res, _, what = ref["resource"].partition(".")
            amount = container.get("resources", {}).get(res, {}).get(what)
            if amount is not None and what == "cpu":
                env[e["name"]] = str(math.ceil(cpu_cores(amount) / cpu_cores(ref.get("divisor", "1"))))
            elif amount is not None:
                env[e["name"]] = str(math.ceil(mem_bytes(amount) / mem_bytes(ref.get("divisor", "1"))))
        else:
            env[e["name"]] = "x"
    unresolved = [v for v in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", text) if v not in env]
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text), unresolved


def check_container(where, c, pod, volumes, configmaps, secrets_needed, render_name):
    w = f"{where} container {c.get('name')}"
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    port_numbers = set(ports.values())
    if not c.get("image"):
        err(w, "no image")
    if not c.get("imagePullPolicy"):
        err(w, "no imagePullPolicy (a :latest image would default to Always)")
    for probe in ("readinessProbe", "livenessProbe"):
        if probe not in c:
            err(w, f"no {probe}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if not p:
            continue
        handler = [h for h in ("httpGet", "tcpSocket", "grpc", "exec") if h in p]
        if len(handler) != 1:
            err(w, f"{probe} needs exactly one of httpGet, tcpSocket, grpc, exec")
            continue
        port = p[handler[0]].get("port") if handler[0] != "exec" else None
        if isinstance(port, str) and port not in ports:
            err(w, f"{probe} uses port {port!r}, which the container does not name")
        elif isinstance(port, int) and port not in port_numbers:
            err(w, f"{probe} uses port {port}, which the container does not declare")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(kind, {}):
                err(w, f"no resources.{kind}.{r}")
    try:
        if cpu_cores(res["requests"]["cpu"]) > cpu_cores(res["limits"]["cpu"]):
            err(w, "cpu request above the limit")
        if mem_bytes(res["requests"]["memory"]) > mem_bytes(res["limits"]["memory"]):
            err(w, "memory request above the limit")
    except (KeyError, ValueError):
        pass
    sc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False:
        err(w, "securityContext.allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        err(w, "securityContext.readOnlyRootFilesystem is not true")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        err(w, "securityContext.capabilities.drop lacks ALL")
    if sc.get("privileged"):
        err(w, "privileged")
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        err(w, "runAsNonRoot is not set (pod or container)")
    if sc.get("runAsUser", psc.get("runAsUser", 1)) == 0:
        err(w, "runs as uid 0")

    mounts = c.get("volumeMounts", [])
    for m in mounts:
        if m["name"] not in volumes:
            err(w, f"volumeMount {m['name']} has no volume")
    mount_paths = [m["mountPath"].rstrip("/") for m in mounts]
    if len(set(mount_paths)) != len(mount_paths):
        err(w, "two volumes mounted on one path")

    cmd = c.get("command", []) + c.get("args", [])
    if not cmd or os.path.basename(cmd[0]) != "wavepool-server":
        return None
    args = c.get("args", []) if c.get("command") else cmd[1:]
    resolved, unresolved = resolve_env(c, "\n".join(args))
    for v in unresolved:
        err(w, f"args use $({v}), which the container's env does not define")
    parsed = parse_args(resolved.split("\n"))
    seen = {}
    for name, value, _ in parsed:
        if name is None:
            err(w, f"stray argument {value!r} (wavepool-server takes flags only)")
            continue
        if name in seen:
            err(w, f"--{name.replace('_', '-')} given twice (a patch added it again?)")
        seen[name] = value
        if known_flags is not None and name not in known_flags:
            err(w, f"--{name.replace('_', '-')} is not a flag of {server_bin}")
    for name in PATH_FLAGS:
        path = seen.get(name)
        if not path or path in BAKED_IN_IMAGE:
            continue
        if not any(path == mp or path.startswith(mp + "/") for mp in mount_paths):
            err(w, f"--{name.replace('_', '-')}={path} is not under any volumeMount")
    # Ports the flags listen on are the container ports the probes and Services use.
    for flag, port_name in (("address", "grpc"), ("metrics_address", "metrics")):
        value = seen.get(flag)
        if value is None:
            continue
        port = value.rpartition(":")[2]
        if port_name not in ports:
            err(w, f"--{flag.replace('_', '-')}={value} but no container port named {port_name}")
        elif not port.isdigit() or int(port) != ports[port_name]:
            err(w, f"--{flag.replace('_', '-')}={value} does not listen on the {port_name} port {ports[port_name]}")

    # Probes: the kubelet's gRPC probe speaks no TLS, so with --tls-cert they
    # must be HTTP (on the metrics port); without TLS, readiness and liveness
    # are native gRPC probes on the --address port (the issue's choice).
    tls = "tls_cert" in seen
    grpc_port = seen.get("address", "").rpartition(":")[2]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe) or {}
        if "grpc" in p:
            if tls:
                err(w, f"{probe} is a gRPC probe but the server has --tls-cert (the kubelet's gRPC probe speaks no TLS)")
            if str(p["grpc"].get("port")) != grpc_port:
                err(w, f"{probe} gRPC port {p['grpc'].get('port')} is not the --address port {grpc_port or '(unset)'}")
        if "httpGet" in p and not seen.get("metrics_address"):
            err(w, f"{probe} is an HTTP probe but there is no --metrics-address")
    if not tls:
        for probe in ("readinessProbe", "livenessProbe"):
            if probe in c and "grpc" not in c[probe]:
                err(w, f"{probe} is not a gRPC probe on a plaintext server (the base uses grpc.health.v1)")

    # The config file: from the ConfigMap mounted at --config's path.
    cfg = None
    cfg_text = None
    config_path = seen.get("config")
    if config_path:
        for m in mounts:
            vol = volumes.get(m["name"], {})
            if "configMap" not in vol:
                continue
            cm = configmaps.get(vol["configMap"]["name"])
            if cm is None:
                continue
            mp = m["mountPath"].rstrip("/")
            key = m.get("subPath") if mp == config_path else (
                config_path[len(mp) + 1:] if config_path.startswith(mp + "/") else None)
            if key and key in cm.get("data", {}):
                cfg_text = cm["data"][key]
        if cfg_text is None:
            err(w, f"--config={config_path} is not a key of a ConfigMap in the render")
        else:
            cfg = check_config_json(w, cfg_text) or {}
    drain = seen.get("drain_timeout_s") or (cfg or {}).get("drainTimeoutS") or \
        (cfg or {}).get("drain_timeout_s") or 20
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not float(grace) > float(drain):
        err(w, f"terminationGracePeriodSeconds {grace} is not above the drain timeout {drain} s")

    if check_config:
        run_check_config(w, parsed, cfg_text, render_name)
    return seen


def run_check_config(w, parsed, cfg_text, render_name):
    argv = [server_bin, "--check-config"]
    for name, value, spelled in parsed:
        if name in ("tls_cert", "tls_key", "tls_client_ca", "auth_tokens_file"):
            continue  # Secrets are not here; the server would (rightly) miss the files
        if name == "config":
            path = os.path.join(work, f"{render_name}-config.json")
            with open(path, "w") as f:
                f.write(cfg_text or "{}")
            value = path
        elif name == "model_repository":
            value = os.path.join(src, "models")
        argv.append(f"--{spelled}" if value is None else f"--{spelled}={value}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    shown = " ".join(argv[1:]).replace(work, "$WORK").replace(src, "$SRC")
    if r.returncode != 0:
        err(w, f"wavepool-server {shown} exited {r.returncode}: {(r.stderr or r.stdout).strip()[:800]}")
    else:
        print(f"  --check-config ok: wavepool-server {shown}")


total = 0
for path in sorted(glob.glob(os.path.join(renders, "*.yaml"))):
    name = os.path.basename(path)[:-5]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    secrets_needed = set()
    pods = []  # (deployment name, pod labels, pod spec)
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for d in by_kind.get(kind, []):
            where = f"{name}: {kind}/{d['metadata']['name']}"
            spec = d["spec"]
            tmpl = spec["template"]
            pod = tmpl["spec"]
            labels = tmpl["metadata"].get("labels", {})
            if not labels_match(spec["selector"].get("matchLabels"), labels):
                err(where, "selector does not match the pod template's labels")
            pods.append((d["metadata"]["name"], labels, pod, kind))
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for v in volumes.values():
                if "configMap" in v and v["configMap"]["name"] not in configmaps:
                    err(where, f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not in the render")
                if "secret" in v:
                    secrets_needed.add(v["secret"]["secretName"])
            for c in pod.get("initContainers", []) + pod.get("containers", []):
                check_container(where, c, pod, volumes, configmaps, secrets_needed, name)
    for s in by_kind.get("Service", []):
        where = f"{name}: Service/{s['metadata']['name']}"
        sel = s["spec"].get("selector")
        matching = [p for p in pods if labels_match(sel, p[1])]
        if not sel or not matching:
            err(where, "selects no pod of the render")
            continue
        names = {p.get("name") for _, _, pod, _ in matching for c in pod["containers"] for p in c.get("ports", [])}
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            if isinstance(tp, str) and tp not in names:
                err(where, f"targetPort {tp!r} is not a container port name")
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        where = f"{name}: HorizontalPodAutoscaler/{h['metadata']['name']}"
        ref = h["spec"]["scaleTargetRef"]
        if not any(p[3] == ref["kind"] and p[0] == ref["name"] for p in pods):
            err(where, f"scaleTargetRef {ref['kind']}/{ref['name']} is not in the render")
        if h["spec"].get("minReplicas", 1) > h["spec"]["maxReplicas"]:
            err(where, "minReplicas above maxReplicas")
        if not any("resources" in c and "cpu" in c["resources"].get("requests", {})
                   for p in pods for c in p[2]["containers"]):
            err(where, "CPU utilization needs CPU requests")
    for b in by_kind.get("PodDisruptionBudget", []):
        where = f"{name}: PodDisruptionBudget/{b['metadata']['name']}"
        if not any(labels_match(b["spec"]["selector"].get("matchLabels"), p[1]) for p in pods):
            err(where, "selects no pod of the render")
        if "minAvailable" in b["spec"] and "maxUnavailable" in b["spec"]:
            err(where, "both minAvailable and maxUnavailable")
    for sm in by_kind.get("ServiceMonitor", []):
        where = f"{name}: ServiceMonitor/{sm['metadata']['name']}"
        sel = sm["spec"]["selector"].get("matchLabels", {})
        svcs = [s for s in by_kind.get("Service", []) if labels_match(sel, s["metadata"].get("labels", {}))]
        for ep in sm["spec"].get("endpoints", []):
            hits = [s for s in svcs if any(p.get("name") == ep.get("port") for p in s["spec"]["ports"])]
            if len(hits) != 1:
                err(where, f"endpoint port {ep.get('port')!r} is on {len(hits)} selected Services (want 1)")
    extra = f"; needs Secret(s) {', '.join(sorted(secrets_needed))}" if secrets_needed else ""
    print(f"{name}: {len(docs)} objects ({', '.join(sorted(by_kind))}) checked{extra}")
    total += 1

# The base's config.json, also when nothing could be rendered.
base_cfg = os.path.join(src, "deploy/kubernetes/base/config.json")
if os.path.exists(base_cfg):
    check_config_json("deploy/kubernetes/base/config.json", open(base_cfg).read())
    print("deploy/kubernetes/base/config.json: valid JSON" + (", fields in ServerConfig" if messages else ""))

for e in errors:
    print("FAIL: " + e, file=sys.stderr)
print(f"manifest checks: {total} renders, {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
PYEOF
  then
    fail "manifest checks (above)"
  fi
else
  missing+=("PyYAML for python3 (apt-get install python3-yaml)")
fi

if [ "$failures" -gt 0 ]; then
  echo "deploy_test: $failures check(s) FAILED" >&2
  exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  printf 'SKIP (the rest passed): missing %s\n' "${missing[@]}"
  exit 77
fi
echo "deploy_test: PASSED"
