{{/* What an admission webhook or a controller would reject, refused at render time
     (Linkerd's partials/_validate.tpl). Each message names the value to fix. */}}

{{- define "voxmesh.validate" -}}
{{- $v := .Values -}}
{{- if and $v.autoscaling.keda.enabled $v.autoscaling.hpa.enabled -}}
{{- fail "autoscaling: keda.enabled and hpa.enabled are both true; an HPA and a KEDA ScaledObject on one workload fight (KEDA's webhook rejects it): enable one" -}}
{{- end -}}
{{- if not (has $v.linkerd.inject (list "pod" "namespace")) -}}
{{- fail (printf "linkerd.inject: %q is not pod or namespace" $v.linkerd.inject) -}}
{{- end -}}
{{- $names := list -}}
{{- $slugs := list -}}
{{- range $d := $v.workers.deployments -}}
{{- $r := $d.replicas -}}
{{- if gt (int $r.min) (int $r.max) -}}
{{- fail (printf "workers.deployments[%s].replicas: min (%v) is above max (%v)" $d.name $r.min $r.max) -}}
{{- end -}}
{{- if has $d.name $names -}}
{{- fail (printf "workers.deployments: name %q appears twice" $d.name) -}}
{{- end -}}
{{- $slug := include "voxmesh.slug" $d.name -}}
{{- if has $slug $slugs -}}
{{- fail (printf "workers.deployments[%s]: its object name %q collides with another deployment's" $d.name $slug) -}}
{{- end -}}
{{- if gt (len (include "voxmesh.workerName" (dict "root" $ "name" $d.name))) 63 -}}
{{- fail (printf "workers.deployments[%s]: object name %q is longer than 63 characters; shorten the name or fullnameOverride" $d.name (include "voxmesh.workerName" (dict "root" $ "name" $d.name))) -}}
{{- end -}}
{{- $names = append $names $d.name -}}
{{- $slugs = append $slugs $slug -}}
{{- end -}}
{{- $r := $v.jobs.runners.replicas -}}
{{- if gt (int $r.min) (int $r.max) -}}
{{- fail (printf "jobs.runners.replicas: min (%v) is above max (%v)" $r.min $r.max) -}}
{{- end -}}
{{- if and $v.gateway.hpa.enabled (gt (int $v.gateway.hpa.minReplicas) (int $v.gateway.hpa.maxReplicas)) -}}
{{- fail (printf "gateway.hpa: minReplicas (%v) is above maxReplicas (%v)" $v.gateway.hpa.minReplicas $v.gateway.hpa.maxReplicas) -}}
{{- end -}}
{{- $inSplit := list -}}
{{- range $model, $weights := $v.splits -}}
{{- $sum := 0 -}}
{{- range $dep, $w := $weights -}}
{{- if not (has $dep $names) -}}
{{- fail (printf "splits.%s: %q is not a workers.deployments name" $model $dep) -}}
{{- end -}}
{{- if has $dep $inSplit -}}
{{- fail (printf "splits.%s: deployment %q is already a track of another split" $model $dep) -}}
{{- end -}}
{{- $inSplit = append $inSplit $dep -}}
{{- $sum = add $sum (int $w) -}}
{{- end -}}
{{- if ne (int $sum) 100 -}}
{{- fail (printf "splits.%s: weights sum to %d, not 100" $model (int $sum)) -}}
{{- end -}}
{{- if has $model $names -}}
{{- fail (printf "splits.%s: a split may not share its name with a deployment" $model) -}}
{{- end -}}
{{- end -}}
{{- $routable := concat $names (keys $v.splits) -}}
{{- range $e := $v.externals -}}{{- $routable = append $routable $e.name -}}{{- end -}}
{{- range $alias, $target := $v.aliases -}}
{{- if and $target (not (has $target $routable)) -}}
{{- fail (printf "aliases.%s: %q is not a deployment, external or split (set it to null to drop a default alias)" $alias $target) -}}
{{- end -}}
{{- end -}}
{{- range $dep := $v.canary.flagger.deployments -}}
{{- if not (has $dep $names) -}}
{{- fail (printf "canary.flagger.deployments: %q is not a workers.deployments name" $dep) -}}
{{- end -}}
{{- if has $dep $inSplit -}}
{{- fail (printf "canary.flagger.deployments: %q is a track of a split; Flagger and an HTTPRoute split would both set its weights" $dep) -}}
{{- end -}}
{{- end -}}
{{- if and $v.jobs.runners.enabled (ne (dig "storage" "backend" "fs" $v.settings) "s3") -}}
{{- fail "jobs.runners.enabled: runner pods cannot share the gateway's disk; set settings.storage.backend: s3 (and a PostgreSQL jobs.db_url in the Secret)" -}}
{{- end -}}
{{- if and $v.jobs.runners.enabled (not (has (dig "jobs" "queue" "db" $v.settings) (list "db" "rabbitmq"))) -}}
{{- fail "settings.jobs.queue: must be db or rabbitmq" -}}
{{- end -}}
{{- end -}}
