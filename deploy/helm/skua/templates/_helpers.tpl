{{/* Chart name, truncated to a DNS label. */}}
{{- define "skua.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; components append -hub, -worker, ... */}}
{{- define "skua.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "skua.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "skua.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "worker"). */}}
{{- define "skua.selectorLabels" -}}
app.kubernetes.io/name: {{ include "skua.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "skua.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "skua.agentsConfigMap" -}}
{{ include "skua.fullname" . }}-agents
{{- end }}

{{- define "skua.envSecret" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecret }}{{ else }}{{ include "skua.fullname" . }}-env{{ end }}
{{- end }}

{{/* The Secret of the hub's tokens; workers take theirs from it too. */}}
{{- define "skua.tokensSecret" -}}
{{ include "skua.fullname" . }}-tokens
{{- end }}

{{/* Where the hub reads its tokens file (hub.tokens_file). */}}
{{- define "skua.tokensFile" -}}
/etc/skua-tokens/tokens
{{- end }}

{{/* The hub Service's URL inside the cluster (link.hub of the workers). */}}
{{- define "skua.hubURL" -}}
{{- printf "http://%s-hub.%s.svc:%d" (include "skua.fullname" .) .Release.Namespace (int .Values.hub.service.port) }}
{{- end }}

{{- define "skua.serviceAccount" -}}
{{ include "skua.fullname" . }}-{{ .component }}
{{- end }}

{{/* hugepages-1Gi / hugepages-2Mi */}}
{{- define "skua.hugepagesResource" -}}
hugepages-{{ .Values.worker.hugepages.size }}
{{- end }}

{{/* skua's page size name for worker.hugepages.size: 1Gi → 1G. */}}
{{- define "skua.pageSize" -}}
{{- if eq .Values.worker.hugepages.size "1Gi" }}1G{{ else }}2M{{ end }}
{{- end }}

{{/*
The worker's resources, rendered once and used for both requests and
limits: equal requests and limits with integer CPUs make the pod
Guaranteed, which the static CPU manager needs to give it whole cores.
*/}}
{{- define "skua.workerResources" -}}
cpu: {{ int .Values.worker.cpus | quote }}
memory: {{ .Values.worker.memory | quote }}
{{ include "skua.hugepagesResource" . }}: {{ .Values.worker.hugepages.amount | quote }}
{{- if .Values.sriov.enabled }}
{{ .Values.sriov.resourceName }}: {{ int .Values.sriov.count | quote }}
{{- end }}
{{- end }}

{{/*
skua.yaml: the user's config with the hugepage settings the pod has, the
hub's store and tokens file, and the workers' link to the hub. Hub and
workers share it: `skua worker` ignores the hub section, `skua hub` the link
section. No token goes in here (it is a ConfigMap).
*/}}
{{- define "skua.config" -}}
{{- $cfg := deepCopy (default dict .Values.config) }}
{{- $hp := get $cfg "hugepages" | default dict }}
{{- $_ := set $hp "page_size" (include "skua.pageSize" .) }}
{{- $_ := set $hp "mount_path" "/dev/hugepages" }}
{{- $_ := set $cfg "hugepages" $hp }}
{{- $hub := get $cfg "hub" | default dict }}
{{- if eq (.Values.hub.store | default "kube") "kube" }}
{{- $_ := set $hub "store" "kube" }}
{{- $_ := set $hub "kube_configmap" (include "skua.agentsConfigMap" .) }}
{{- $_ := set $hub "kube_secret" (include "skua.envSecret" .) }}
{{- end }}
{{- if .Values.hub.enabled }}
{{- if get $hub "tokens_file" }}
{{- fail "config.hub.tokens_file is the chart's (the tokens Secret, mounted in the hub): set hub.workerToken / hub.adminToken instead" }}
{{- end }}
{{- $_ := set $hub "tokens_file" (include "skua.tokensFile" .) }}
{{- /* Workers reach the hub through its Service unless told otherwise. */}}
{{- $link := get $cfg "link" | default dict }}
{{- if not (get $link "hub") }}
{{- $_ := set $link "hub" (include "skua.hubURL" .) }}
{{- end }}
{{- $_ := set $cfg "link" $link }}
{{- end }}
{{- if $hub }}
{{- $_ := set $cfg "hub" $hub }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
