// Validate CRD-backed objects with the validators the @kubernetes-models packages generate from the
// upstream API types (package.json pins each package; the README of tests/crd-schemas says which
// upstream release each one was generated from).
//
// stdin:  [{"id": "...", "object": {apiVersion, kind, metadata, spec, ...}}, ...]
// stdout: [{"id": "...", "error": null | "message", "unknownType": bool}, ...]
// One process validates every object (the Python test calls it once per session).

const PACKAGES = {
  "argoproj.io": "argo-cd",
  "cert-manager.io": "cert-manager",
  "acme.cert-manager.io": "cert-manager",
  "cilium.io": "cilium",
  "external-secrets.io": "external-secrets",
  "generators.external-secrets.io": "external-secrets",
  "gateway.networking.k8s.io": "gateway-api",
  "monitoring.coreos.com": "prometheus-operator",
};

async function model(apiVersion, kind) {
  const [group, version] = apiVersion.split("/");
  const pkg = PACKAGES[group];
  if (!pkg || !version || !/^[A-Za-z0-9]+$/.test(kind)) return null;
  try {
    const module = await import(`@kubernetes-models/${pkg}/${group}/${version}/${kind}`);
    return module[kind] ?? null;
  } catch (error) {
    if (error && error.code === "ERR_MODULE_NOT_FOUND") return null;
    throw error;
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const { id, object } of JSON.parse(input)) {
  const Model = await model(String(object.apiVersion ?? ""), String(object.kind ?? ""));
  if (Model === null) {
    results.push({ id, error: null, unknownType: true });
    continue;
  }
  try {
    new Model(object).validate();
    results.push({ id, error: null, unknownType: false });
  } catch (error) {
    results.push({ id, error: String(error && error.message ? error.message : error), unknownType: false });
  }
}
process.stdout.write(JSON.stringify(results));
