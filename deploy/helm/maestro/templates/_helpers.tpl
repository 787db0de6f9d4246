{{- /*
Named templates of the Maestro Conductor chart: names, labels, the image reference, the
service account name, and the TOML value writers the configuration (_config.tpl) uses.
*/ -}}

{{/* The chart name, or nameOverride. */}}
{{- define "maestro.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: fullnameOverride, or release-chart (the release name alone
when it already contains the chart name). */}}
{{- define "maestro.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "maestro.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "maestro.labels" -}}
helm.sh/chart: {{ include "maestro.chart" . }}
{{ include "maestro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the appliance's pod. */}}
{{- define "maestro.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maestro.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service account's name. */}}
{{- define "maestro.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "maestro.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "maestro.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* The name of the Secret holding the OIDC client secret (the chart's, or existingSecret). */}}
{{- define "maestro.oidcSecretName" -}}
{{- if .Values.oidc.existingSecret }}
{{- .Values.oidc.existingSecret }}
{{- else }}
{{- printf "%s-oidc" (include "maestro.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Whether the appliance gets MAESTRO_OIDC__CLIENT_SECRET: "true" or "". */}}
{{- define "maestro.oidcClientSecret" -}}
{{- if .Values.oidc.issuer }}
{{- if or .Values.oidc.existingSecret .Values.oidc.client_secret }}true{{ end }}
{{- end }}
{{- end }}

{{/* Where the appliance reads its signing key copied from signingKey.existingSecret. */}}
{{- define "maestro.keyFile" -}}
/run/maestro/keys/appliance.pem
{{- end }}

{{/*
One TOML value: a string quoted, a boolean as is, a number as an integer (Helm reads every
YAML number as a float, which would print 1048576 as 1.048576e+06; every number in the
configuration is an integer), a list as an array of such values.
*/}}
{{- define "maestro.toml.value" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}
{{- $v | quote }}
{{- else if kindIs "bool" $v }}
{{- ternary "true" "false" $v }}
{{- else if or (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v) }}
{{- $v | int64 }}
{{- else if kindIs "slice" $v }}
{{- $items := list }}
{{- range $v }}
{{- $items = append $items (include "maestro.toml.value" .) }}
{{- end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else }}
{{- fail (printf "cannot write %v (%s) as a TOML value" $v (kindOf $v)) }}
{{- end }}
{{- end }}

{{/*
The key = value lines of a map, keys in order, one per line, each line preceded by a
newline. Skipped: null, "", empty lists, and nested maps (tables are written by the caller).
*/}}
{{- define "maestro.toml.keys" -}}
{{- range $k, $v := . }}
{{- $skip := false }}
{{- if kindIs "invalid" $v }}
{{- $skip = true }}
{{- else if kindIs "map" $v }}
{{- $skip = true }}
{{- else if kindIs "string" $v }}
{{- if eq $v "" }}
{{- $skip = true }}
{{- end }}
{{- else if kindIs "slice" $v }}
{{- if eq (len $v) 0 }}
{{- $skip = true }}
{{- end }}
{{- end }}
{{- if not $skip }}
{{ $k }} = {{ include "maestro.toml.value" $v }}
{{- end }}
{{- end }}
{{- end }}

{{/* A [table] header and its keys, or nothing when no key is set. Argument: (list "name" map). */}}
{{- define "maestro.toml.table" -}}
{{- $name := index . 0 }}
{{- $body := include "maestro.toml.keys" (index . 1) }}
{{- if trim $body }}

[{{ $name }}]
{{- $body }}
{{- end }}
{{- end }}
