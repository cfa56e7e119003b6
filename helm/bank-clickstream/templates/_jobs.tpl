{{/*
The pod of a one-off command of the CLI (the CronJobs and the hook Job): the image's entrypoint
`clickstream` with `args`, the job's settings and Secrets, the same hardening. Called with
(dict "root" $ "args" (list ...) "component" "..." "initContainers" "..." "volumes" "..."
"volumeMounts" "...").
*/}}
{{- define "bank-clickstream.commandPod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "bank-clickstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- include "bank-clickstream.podCommon" $root | nindent 2 }}
  restartPolicy: Never
  {{- with .initContainers }}
  initContainers:
    {{- . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "bank-clickstream.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        {{- include "bank-clickstream.env" $root | nindent 8 }}
      securityContext:
        {{- include "bank-clickstream.securityContext" $root | nindent 8 }}
      resources:
        {{- toYaml $root.Values.jobResources | nindent 8 }}
      volumeMounts:
        {{- include "bank-clickstream.volumeMounts" $root | nindent 8 }}
        {{- with .volumeMounts }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "bank-clickstream.volumes" $root | nindent 4 }}
    {{- with .volumes }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
Copies the extract from S3 into the pod (the load reads a local file), with the archive's S3
settings and credentials as the job reads them.
*/}}
{{- define "bank-clickstream.fetchExtract" -}}
{{- $root := .root -}}
- name: fetch-extract
  image: {{ include "bank-clickstream.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - python
    - -c
    - |
      import sys
      import s3fs
      from state.settings import load_settings
      s3fs.S3FileSystem(**load_settings().storage_options()).get(sys.argv[1], sys.argv[2])
    - {{ .extract | quote }}
    - {{ .local | quote }}
  env:
    {{- include "bank-clickstream.env" $root | nindent 4 }}
  securityContext:
    {{- include "bank-clickstream.securityContext" $root | nindent 4 }}
  resources:
    {{- toYaml $root.Values.jobResources | nindent 4 }}
  volumeMounts:
    {{- include "bank-clickstream.volumeMounts" $root | nindent 4 }}
    - name: extract
      mountPath: /work/extract
{{- end }}
