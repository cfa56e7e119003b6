#!/usr/bin/env bash
# The chart's check (make helm-check): helm lint --strict and helm template for the default values
# and every helm/bank-clickstream/ci/*-values.yaml, then kubeconform -strict over each rendering
# against the Kubernetes JSON schemas that PyPI's kubernetes-validate ships (offline), for the
# oldest and newest Kubernetes the chart supports. The tools come from scripts/helm-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=helm/bank-clickstream
# The chart's kubeVersion floor and the newest Kubernetes the pinned schemas describe.
KUBE_VERSIONS=(1.29.0 1.37.0)
# The Prometheus Operator's CRD has no schema in kubernetes-validate: the chart tests check the
# ServiceMonitor's fields instead.
SKIP_KINDS=ServiceMonitor

BIN=$(bash scripts/helm-tools.sh)
SCHEMAS=$(.venv/bin/python -c \
  'import kubernetes_validate, pathlib; print(pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema")')
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# kubernetes-validate's schemas point at their shared definitions by URL
# (https://kubernetes.io/api/_definitions.json). kubeconform resolves such a reference from its
# cache folder (named by the URL's sha256) before any download: one folder per version and
# strictness, whose only entry is that version's definitions file, keeps it offline.
DEFINITIONS_URL=https://kubernetes.io/api/_definitions.json
cache_for() {
  local dir=.stack/tools/kubeconform-cache/v$1-local-strict
  mkdir -p "$dir"
  ln -sfn "$SCHEMAS/v$1-local-strict/_definitions.json" \
    "$dir/$(printf %s "$DEFINITIONS_URL" | sha256sum | cut -d' ' -f1)"
  echo "$dir"
}

renders=(default)
for values in "$CHART"/ci/*-values.yaml; do
  renders+=("$values")
done

for values in "${renders[@]}"; do
  name=$(basename "$values" .yaml)
  args=()
  [[ $values == default ]] || args=(-f "$values")
  echo "== $name"
  "$BIN/helm" lint --strict --quiet "$CHART" "${args[@]}"
  for version in "${KUBE_VERSIONS[@]}"; do
    "$BIN/helm" template check "$CHART" --namespace bank --kube-version "$version" \
      "${args[@]}" > "$OUT/$name-$version.yaml"
    "$BIN/kubeconform" -strict -summary -kubernetes-version "$version" \
      -cache "$(cache_for "$version")" -skip "$SKIP_KINDS" \
      -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      "$OUT/$name-$version.yaml"
  done
done
