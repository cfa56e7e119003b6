{{/*
Rules across several values, which values.schema.json cannot state; each failure says what to
change. Included once, by the StatefulSet.
*/}}
{{- define "bank-clickstream.validate" -}}
{{- $v := .Values }}
{{- if gt (int $v.replicas) (int $v.recovery.partitions) }}
{{- fail (printf "replicas (%d) must not exceed recovery.partitions (%d): every process should own a recovery partition. The partition count is fixed for the life of a store, so choose it for the most processes you will ever run (docs/operations.md, Scaling)." (int $v.replicas) (int $v.recovery.partitions)) }}
{{- end }}
{{- if and (hasPrefix "SASL_" $v.kafka.securityProtocol) (not $v.kafka.sasl.existingSecret) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.existingSecret: the name of a Secret holding the user name (key %s) and password (key %s)." $v.kafka.securityProtocol $v.kafka.sasl.usernameKey $v.kafka.sasl.passwordKey) }}
{{- end }}
{{- $kafkaTls := has $v.kafka.securityProtocol (list "SSL" "SASL_SSL") }}
{{- if and (not $kafkaTls) (or $v.kafka.tls.ca.secret $v.kafka.tls.ca.configMap $v.kafka.tls.clientCertSecret) }}
{{- fail (printf "kafka.tls is set but kafka.securityProtocol is %s: use SSL or SASL_SSL for TLS to the brokers." $v.kafka.securityProtocol) }}
{{- end }}
{{- if and $v.kafka.tls.ca.secret $v.kafka.tls.ca.configMap }}
{{- fail "kafka.tls.ca: give the CA in a Secret or in a ConfigMap, not both." }}
{{- end }}
{{- if and $v.redis.tls.ca.secret $v.redis.tls.ca.configMap }}
{{- fail "redis.tls.ca: give the CA in a Secret or in a ConfigMap, not both." }}
{{- end }}
{{- if and (or $v.redis.tls.ca.secret $v.redis.tls.ca.configMap) (not $v.redis.existingSecret) (not (hasPrefix "rediss://" $v.redis.url)) }}
{{- fail "redis.tls.ca is set but redis.url is not a rediss:// URL: TLS to Redis is the rediss:// scheme." }}
{{- end }}
{{- if and $v.campaigns.files $v.campaigns.existingConfigMap }}
{{- fail "campaigns: give the files or an existing ConfigMap (campaigns.existingConfigMap), not both." }}
{{- end }}
{{- if and (or $v.campaigns.files $v.campaigns.existingConfigMap) (not $v.campaigns.enabled) }}
{{- fail "campaigns.files or campaigns.existingConfigMap is set but campaigns.enabled is false: offers are off; set campaigns.enabled=true to run them." }}
{{- end }}
{{- if $v.customersLoad.enabled }}
{{- if not $v.customersLoad.extract }}
{{- fail "customersLoad.enabled needs customersLoad.extract: s3://bucket/key.csv, or a path under /extracts on customersLoad.existingClaim." }}
{{- end }}
{{- if and (hasPrefix "/extracts/" $v.customersLoad.extract) (not $v.customersLoad.existingClaim) }}
{{- fail (printf "customersLoad.extract %s is a path: name the claim that holds it in customersLoad.existingClaim (mounted read-only at /extracts)." $v.customersLoad.extract) }}
{{- end }}
{{- end }}
{{- $clusterBase := int $v.ports.clusterBase }}
{{- range $name := list "health" "api" }}
{{- $port := int (get $v.ports $name) }}
{{- if and (ge $port $clusterBase) (lt $port (add $clusterBase 100)) }}
{{- fail (printf "ports.%s (%d) is inside the cluster ports (ports.clusterBase %d to %d): move one of them." $name $port $clusterBase (add $clusterBase 99)) }}
{{- end }}
{{- if lt (sub $port (sub (int $v.replicas) 1)) 1024 }}
{{- fail (printf "ports.%s (%d) is too low for %d replicas: the job adds its process id to the port it is given, so the chart gives each pod the port less its ordinal, which must stay at 1024 or more." $name $port (int $v.replicas)) }}
{{- end }}
{{- end }}
{{- if eq (int $v.ports.health) (int $v.ports.api) }}
{{- fail "ports.health and ports.api must differ." }}
{{- end }}
{{- end }}
