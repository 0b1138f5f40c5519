{{/* Shared helpers: names, labels, image, pod-level blocks. */}}

{{- define "voxmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voxmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A voxmesh deployment name as a DNS-1123 label part ("tts.en_1" -> "tts-en-1"). */}}
{{- define "voxmesh.slug" -}}
{{- regexReplaceAll "[._]" . "-" -}}
{{- end -}}

{{/* Object name of one worker deployment: dict "root" $ "name" <voxmesh name>. */}}
{{- define "voxmesh.workerName" -}}
{{- printf "%s-%s" (include "voxmesh.fullname" .root) (include "voxmesh.slug" .name) -}}
{{- end -}}

{{- define "voxmesh.gatewayName" -}}
{{- printf "%s-gateway" (include "voxmesh.fullname" .) -}}
{{- end -}}

{{- define "voxmesh.runnerName" -}}
{{- printf "%s-runner" (include "voxmesh.fullname" .) -}}
{{- end -}}

{{- define "voxmesh.batchName" -}}
{{- printf "%s-batch" (include "voxmesh.fullname" .) -}}
{{- end -}}

{{- define "voxmesh.configName" -}}
{{- printf "%s-config" (include "voxmesh.fullname" .) -}}
{{- end -}}

{{/* The gateway's in-cluster URL (runners and the batch job call it). */}}
{{- define "voxmesh.gatewayUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "voxmesh.gatewayName" .) .Release.Namespace .Values.gateway.service.port -}}
{{- end -}}

{{/* A worker Service's in-cluster URL: dict "root" $ "name" <voxmesh name>. */}}
{{- define "voxmesh.workerUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "voxmesh.workerName" .) .root.Release.Namespace .root.Values.workers.port -}}
{{- end -}}

{{- define "voxmesh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: dict "root" $ "component" "gateway" [ "deployment" slug ]. */}}
{{- define "voxmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voxmesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .deployment }}
voxmesh.io/deployment: {{ include "voxmesh.slug" . }}
{{- end }}
{{- end -}}

{{- define "voxmesh.labels" -}}
helm.sh/chart: {{ include "voxmesh.chart" .root }}
{{ include "voxmesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: voxmesh
{{- end -}}

{{- define "voxmesh.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Pod annotations for Linkerd: injection and proxy resources (only keys Linkerd reads). */}}
{{- define "voxmesh.linkerdPodAnnotations" -}}
{{- $l := .root.Values.linkerd -}}
{{- if $l.enabled }}
{{- if eq $l.inject "pod" }}
linkerd.io/inject: enabled
{{- end }}
config.linkerd.io/proxy-cpu-request: {{ $l.proxy.cpuRequest | quote }}
config.linkerd.io/proxy-cpu-limit: {{ $l.proxy.cpuLimit | quote }}
config.linkerd.io/proxy-memory-request: {{ $l.proxy.memoryRequest | quote }}
config.linkerd.io/proxy-memory-limit: {{ $l.proxy.memoryLimit | quote }}
config.linkerd.io/shutdown-grace-period: {{ printf "%ds" (int .grace) | quote }}
{{- if and .opaque $l.opaquePorts }}
config.linkerd.io/opaque-ports: {{ $l.opaquePorts | quote }}
{{- end }}
{{- if and .skipOutbound $l.skipOutboundPorts }}
config.linkerd.io/skip-outbound-ports: {{ $l.skipOutboundPorts | quote }}
{{- end }}
{{- if .authenticated }}
config.linkerd.io/default-inbound-policy: all-authenticated
{{- end }}
{{- else }}
linkerd.io/inject: disabled
{{- end }}
{{- end -}}

{{/* Linkerd retry / timeout / failure-accrual keys for a Service or an HTTPRoute. */}}
{{- define "voxmesh.linkerdRouteAnnotations" -}}
{{- $l := .Values.linkerd -}}
{{- if $l.enabled }}
retry.linkerd.io/http: {{ $l.retry.http | quote }}
retry.linkerd.io/limit: {{ $l.retry.limit | quote }}
retry.linkerd.io/timeout: {{ $l.retry.timeout | quote }}
timeout.linkerd.io/request: {{ $l.timeout.request | quote }}
timeout.linkerd.io/idle: {{ $l.timeout.idle | quote }}
balancer.linkerd.io/failure-accrual: consecutive
balancer.linkerd.io/failure-accrual-consecutive-max-failures: {{ $l.failureAccrual.consecutiveMaxFailures | quote }}
balancer.linkerd.io/failure-accrual-consecutive-min-penalty: {{ $l.failureAccrual.minPenalty | quote }}
balancer.linkerd.io/failure-accrual-consecutive-max-penalty: {{ $l.failureAccrual.maxPenalty | quote }}
balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio: {{ $l.failureAccrual.jitterRatio | quote }}
{{- end }}
{{- end -}}

{{/* topologySpreadConstraints for one component: dict "root" $ "component" c [ "deployment" d ]. */}}
{{- define "voxmesh.topologySpread" -}}
{{- $t := .root.Values.topologySpread -}}
{{- if $t.enabled }}
topologySpreadConstraints:
{{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: {{ $t.maxSkew }}
    topologyKey: {{ $key }}
    whenUnsatisfiable: {{ $t.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "voxmesh.selectorLabels" $ | nindent 8 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes every voxmesh pod mounts: the config, a writable /tmp and data dir. */}}
{{- define "voxmesh.volumes" -}}
- name: config
  configMap:
    name: {{ include "voxmesh.configName" . }}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- end -}}

{{- define "voxmesh.volumeMounts" -}}
- name: config
  mountPath: /etc/voxmesh
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/voxmesh
{{- end -}}

{{/* Environment every voxmesh container gets: a writable HOME under the read-only root
     (caches that default to ~/.cache, such as the packaged GGUF when it is assembled). */}}
{{- define "voxmesh.baseEnv" -}}
- name: HOME
  value: /tmp
{{- end -}}

{{- define "voxmesh.envFrom" -}}
{{- if .Values.secret.name }}
envFrom:
  - secretRef:
      name: {{ .Values.secret.name }}
      optional: {{ .Values.secret.optional }}
{{- end }}
{{- end -}}

{{/* Capabilities: each custom resource kind renders only when its API is served. */}}
{{- define "voxmesh.hasLinkerdPolicy" -}}
{{- if and .Values.linkerd.enabled (.Capabilities.APIVersions.Has "policy.linkerd.io/v1beta3") (.Capabilities.APIVersions.Has "policy.linkerd.io/v1alpha1") }}true{{ end -}}
{{- end -}}

{{- define "voxmesh.hasHTTPRoute" -}}
{{- if and .Values.linkerd.enabled .Values.canary.httpRoute (.Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1") }}true{{ end -}}
{{- end -}}

{{- define "voxmesh.kedaActive" -}}
{{- if and .Values.autoscaling.keda.enabled (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") }}true{{ end -}}
{{- end -}}

{{- define "voxmesh.hasFlagger" -}}
{{- if and .Values.canary.flagger.enabled (.Capabilities.APIVersions.Has "flagger.app/v1beta1") }}true{{ end -}}
{{- end -}}

{{/* True when Flagger drives this voxmesh deployment name: dict "root" $ "name" n. */}}
{{- define "voxmesh.flaggerOwns" -}}
{{- if and (include "voxmesh.hasFlagger" .root) (has .name .root.Values.canary.flagger.deployments) }}true{{ end -}}
{{- end -}}

{{/* Replica bounds of a worker deployment after warm capacity: "min,max". */}}
{{- define "voxmesh.workerMin" -}}
{{- $r := .dep.replicas -}}
{{- $min := int (default 1 $r.min) -}}
{{- if and .root.Values.capacity.warmInMinReplicas $r.warm -}}
{{- $min = min (add $min (int $r.warm)) (int $r.max) -}}
{{- end -}}
{{- if and (eq (int $r.min) 0) (dig "scale_to_zero" false (default dict .dep.scaling)) -}}
{{- $min = 0 -}}
{{- end -}}
{{- $min -}}
{{- end -}}

{{/* KEDA prometheus triggers of a worker deployment: the sums the local controller scales on
     (in-flight = running + queued on every replica; qps = rate of answered requests; queue),
     one trigger per target the deployment sets (KEDA, like the controller, takes the largest
     proposal). dict "root" $ "dep" d. */}}
{{- define "voxmesh.workerTriggers" -}}
{{- $s := default dict .dep.scaling -}}
{{- $k := .root.Values.autoscaling.keda -}}
{{- $sel := printf "namespace=%q,model=%q" .root.Release.Namespace .dep.name -}}
{{- $queries := dict
      "in_flight_per_replica" (printf "sum(voxmesh_worker_in_flight{%s}) + sum(voxmesh_worker_queue_length{%s})" $sel $sel)
      "qps_per_replica" (printf "sum(rate(voxmesh_worker_requests_total{%s}[1m]))" $sel)
      "queue_per_replica" (printf "sum(voxmesh_worker_queue_length{%s})" $sel) -}}
{{- $targets := dict -}}
{{- range $key := list "in_flight_per_replica" "qps_per_replica" "queue_per_replica" -}}
{{- if hasKey $s $key -}}{{- $_ := set $targets $key (get $s $key) -}}{{- end -}}
{{- end -}}
{{- if not (or (hasKey $targets "in_flight_per_replica") (hasKey $targets "qps_per_replica")) -}}
{{- $_ := set $targets "in_flight_per_replica" $k.defaultInFlightPerReplica -}}
{{- end -}}
{{- if dig "scale_to_zero" false $s -}}
{{- /* at zero replicas the worker's own series are gone: wake on what reaches the gateway */ -}}
{{- $_ := set $queries "gateway_requests" (printf "sum(rate(voxmesh_route_requests_total{namespace=%q,deployment=%q}[2m]))" .root.Release.Namespace .dep.name) -}}
{{- $_ := set $targets "gateway_requests" (dig "qps_per_replica" 1 $s) -}}
{{- end -}}
{{- range $key := list "in_flight_per_replica" "qps_per_replica" "queue_per_replica" "gateway_requests" }}
{{- if hasKey $targets $key }}
- type: prometheus
  name: {{ trimSuffix "_per_replica" $key | replace "_" "-" }}
  metricType: AverageValue
  metadata:
    serverAddress: {{ $k.prometheusAddress | quote }}
    query: {{ get $queries $key | quote }}
    threshold: {{ get $targets $key | toString | quote }}
    activationThreshold: {{ dig "activation_threshold" 0 $s | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}
