{{/*
Names, labels and the pieces every workload of the chart shares: the job's settings as
CLICKSTREAM_* variables, the Secrets mounted as files, the CA certificates, and the hardening.
*/}}

{{- define "bank-clickstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "bank-clickstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "bank-clickstream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "bank-clickstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bank-clickstream
{{- end }}

{{/* The stream job's pods (not the CronJobs' and Jobs'): what its Services select. */}}
{{- define "bank-clickstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bank-clickstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: stream
{{- end }}

{{- define "bank-clickstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bank-clickstream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bank-clickstream.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The headless Service that gives every process a stable DNS name. */}}
{{- define "bank-clickstream.clusterService" -}}
{{- printf "%s-cluster" (include "bank-clickstream.fullname" .) }}
{{- end }}

{{/*
The process-to-process port of this release revision: base + revision % 100. The pods of an
upgrade listen and dial on a port the previous revision's pods do not, so while a rolling update
replaces the pods one by one, old and new processes never form one cluster: the new cluster
starts once every pod runs the new revision.
*/}}
{{- define "bank-clickstream.clusterPort" -}}
{{- add .Values.ports.clusterBase (mod .Release.Revision 100) }}
{{- end }}

{{/* host:port of every process, in process-id order, separated by ';' (Bytewax's --addresses). */}}
{{- define "bank-clickstream.addresses" -}}
{{- $fullname := include "bank-clickstream.fullname" . }}
{{- $service := include "bank-clickstream.clusterService" . }}
{{- $port := include "bank-clickstream.clusterPort" . }}
{{- $addresses := list }}
{{- range $i := until (int .Values.replicas) }}
{{- $addresses = append $addresses (printf "%s-%d.%s:%s" $fullname $i $service $port) }}
{{- end }}
{{- join ";" $addresses }}
{{- end }}

{{- define "bank-clickstream.recoveryMount" -}}/var/lib/clickstream/recovery{{- end }}
{{/* The store itself is a folder inside the volume, created whole (`clickstream recovery init`, flows/recovery_store.py). */}}
{{- define "bank-clickstream.recoveryStore" -}}/var/lib/clickstream/recovery/store{{- end }}
{{- define "bank-clickstream.secretsDir" -}}/etc/clickstream/secrets{{- end }}
{{- define "bank-clickstream.campaignsMount" -}}/etc/clickstream/campaigns{{- end }}
{{- define "bank-clickstream.kafkaSasl" -}}{{ hasPrefix "SASL_" .Values.kafka.securityProtocol }}{{- end }}
{{- define "bank-clickstream.kafkaTls" -}}{{ has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}{{- end }}

{{/* A CA certificate volume from a Secret or a ConfigMap; the certificate is the file ca.crt. */}}
{{- define "bank-clickstream.caVolume" -}}
{{- $ca := index . 1 }}
- name: {{ index . 0 }}
  {{- if $ca.secret }}
  secret:
    secretName: {{ $ca.secret }}
    items:
      - key: {{ $ca.key }}
        path: ca.crt
  {{- else }}
  configMap:
    name: {{ $ca.configMap }}
    items:
      - key: {{ $ca.key }}
        path: ca.crt
  {{- end }}
{{- end }}

{{/*
The job's settings, shared by the stream job, the CronJobs and the hook Job (every command reads
and validates the whole configuration at start). Secrets are not here: they are files in
CLICKSTREAM_SECRETS_DIR (see "bank-clickstream.volumes").
*/}}
{{- define "bank-clickstream.env" -}}
- name: CLICKSTREAM_SECRETS_DIR
  value: {{ include "bank-clickstream.secretsDir" . }}
- name: CLICKSTREAM_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: CLICKSTREAM_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if eq (include "bank-clickstream.kafkaSasl" .) "true" }}
- name: CLICKSTREAM_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
{{- end }}
{{- if eq (include "bank-clickstream.kafkaTls" .) "true" }}
- name: CLICKSTREAM_KAFKA_SSL_VERIFY_HOSTNAME
  value: {{ .Values.kafka.tls.verifyHostname | quote }}
{{- if or .Values.kafka.tls.ca.secret .Values.kafka.tls.ca.configMap }}
- name: CLICKSTREAM_KAFKA_SSL_CA_LOCATION
  value: /etc/clickstream/kafka-ca/ca.crt
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
- name: CLICKSTREAM_KAFKA_SSL_CERTIFICATE_LOCATION
  value: /etc/clickstream/kafka-client/tls.crt
- name: CLICKSTREAM_KAFKA_SSL_KEY_LOCATION
  value: /etc/clickstream/kafka-client/tls.key
{{- end }}
{{- end }}
- name: CLICKSTREAM_EVENTS_TOPICS
  value: {{ join "," .Values.kafka.eventsTopics | quote }}
- name: CLICKSTREAM_CONSUMER_GROUP
  value: {{ .Values.kafka.consumerGroup | quote }}
- name: CLICKSTREAM_KAFKA_CREATE_TOPICS
  value: {{ .Values.kafka.createTopics | quote }}
- name: CLICKSTREAM_KAFKA_TOPIC_PARTITIONS
  value: {{ .Values.kafka.topicPartitions | quote }}
{{- if not .Values.redis.existingSecret }}
- name: CLICKSTREAM_REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- if or .Values.redis.tls.ca.secret .Values.redis.tls.ca.configMap }}
- name: CLICKSTREAM_REDIS_SSL_CA_CERTS
  value: /etc/clickstream/redis-ca/ca.crt
{{- end }}
- name: CLICKSTREAM_REDIS_PREFIX
  value: {{ .Values.redis.prefix | quote }}
- name: CLICKSTREAM_S3_ENDPOINT_URL
  value: {{ .Values.s3.endpointUrl | quote }}
- name: CLICKSTREAM_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
- name: CLICKSTREAM_S3_PREFIX
  value: {{ .Values.s3.prefix | quote }}
- name: CLICKSTREAM_S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: CLICKSTREAM_TRINO_URL
  value: {{ .Values.trino.url | quote }}
- name: CLICKSTREAM_TRINO_CATALOG
  value: {{ .Values.trino.catalog | quote }}
- name: CLICKSTREAM_TRINO_SCHEMA
  value: {{ .Values.trino.schema | quote }}
{{- range $name, $value := .Values.settings }}
{{- $text := toString $value }}
{{- /* Values files give every number as a float: 3456000 would print as 3.456e+06. */}}
{{- if and (kindIs "float64" $value) (eq $value (floor $value)) }}
{{- $text = printf "%d" (int64 $value) }}
{{- end }}
- name: {{ printf "CLICKSTREAM_%s" (upper $name) }}
  value: {{ $text | quote }}
{{- end }}
{{- end }}

{{/*
Every Secret as a file named as its variable, in one folder (CLICKSTREAM_SECRETS_DIR): the job
reads them at start; nothing secret is in an environment variable or in the chart's values.
*/}}
{{- define "bank-clickstream.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ .Values.s3.existingSecret }}
          items:
            - key: {{ .Values.s3.accessKeyIdKey }}
              path: CLICKSTREAM_S3_ACCESS_KEY_ID
            - key: {{ .Values.s3.secretAccessKeyKey }}
              path: CLICKSTREAM_S3_SECRET_ACCESS_KEY
      {{- if eq (include "bank-clickstream.kafkaSasl" .) "true" }}
      - secret:
          name: {{ .Values.kafka.sasl.existingSecret }}
          items:
            - key: {{ .Values.kafka.sasl.usernameKey }}
              path: CLICKSTREAM_KAFKA_SASL_USERNAME
            - key: {{ .Values.kafka.sasl.passwordKey }}
              path: CLICKSTREAM_KAFKA_SASL_PASSWORD
      {{- end }}
      {{- if .Values.redis.existingSecret }}
      - secret:
          name: {{ .Values.redis.existingSecret }}
          items:
            - key: {{ .Values.redis.urlKey }}
              path: CLICKSTREAM_REDIS_URL
      {{- end }}
{{- if eq (include "bank-clickstream.kafkaTls" .) "true" }}
{{- if or .Values.kafka.tls.ca.secret .Values.kafka.tls.ca.configMap }}
{{ include "bank-clickstream.caVolume" (list "kafka-ca" .Values.kafka.tls.ca) }}
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  secret:
    secretName: {{ .Values.kafka.tls.clientCertSecret }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end }}
{{- if or .Values.redis.tls.ca.secret .Values.redis.tls.ca.configMap }}
{{ include "bank-clickstream.caVolume" (list "redis-ca" .Values.redis.tls.ca) }}
{{- end }}
{{- end }}

{{- define "bank-clickstream.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: secrets
  mountPath: {{ include "bank-clickstream.secretsDir" . }}
  readOnly: true
{{- if eq (include "bank-clickstream.kafkaTls" .) "true" }}
{{- if or .Values.kafka.tls.ca.secret .Values.kafka.tls.ca.configMap }}
- name: kafka-ca
  mountPath: /etc/clickstream/kafka-ca
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  mountPath: /etc/clickstream/kafka-client
  readOnly: true
{{- end }}
{{- end }}
{{- if or .Values.redis.tls.ca.secret .Values.redis.tls.ca.configMap }}
- name: redis-ca
  mountPath: /etc/clickstream/redis-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* The hardening of every pod and container: fixed, not values. */}}
{{- define "bank-clickstream.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "bank-clickstream.securityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Scheduling and pod settings the stream job and the jobs share. */}}
{{- define "bank-clickstream.podCommon" -}}
serviceAccountName: {{ include "bank-clickstream.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "bank-clickstream.podSecurityContext" . | nindent 2 }}
{{- end }}
