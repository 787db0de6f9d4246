{{- /*
The appliance's maestro.toml, rendered from values: features, oidc and config (the
appliance's own key names), then extraConfig. Only keys given a value are written, so the
appliance's defaults, and in demo mode its demo layer, apply to the rest. data_dir, listen
and [log] come from the environment (statefulset.yaml), which overrides this file.
*/ -}}
{{- define "maestro.config" -}}
# maestro.toml of the {{ include "maestro.fullname" . }} release, rendered by the Helm chart.
# Every key and its default: config.example.toml. data_dir, listen and [log] are set
# through MAESTRO_DATA_DIR, MAESTRO_LISTEN and MAESTRO_LOG__* in the pod.
{{- $c := .Values.config }}
{{- if .Values.demo }}
demo = true
{{- end }}
{{- with $c.regions }}
regions = {{ include "maestro.toml.value" . }}
{{- end }}
{{- with $c.node_region }}
node_region = {{ . | quote }}
{{- end }}
{{- with $c.region_aliases }}

[region_aliases]
{{- range $alias, $region := . }}
{{ $alias | quote }} = {{ $region | quote }}
{{- end }}
{{- end }}
{{- include "maestro.toml.table" (list "features" .Values.features) }}
{{- $signing := dict }}
{{- range $k, $v := $c.signing }}
{{- $_ := set $signing $k $v }}
{{- end }}
{{- if .Values.signingKey.existingSecret }}
{{- $_ := set $signing "key_file" (include "maestro.keyFile" .) }}
{{- end }}
{{- include "maestro.toml.table" (list "signing" $signing) }}
{{- include "maestro.toml.table" (list "limits" $c.limits) }}
{{- include "maestro.toml.table" (list "commit" $c.commit) }}
{{- with $c.actions }}
{{- include "maestro.toml.table" (list "actions.http" .http) }}
{{- include "maestro.toml.table" (list "actions.exec" .exec) }}
{{- end }}
{{- include "maestro.toml.table" (list "residency" $c.residency) }}
{{- include "maestro.toml.table" (list "supply_chain" $c.supply_chain) }}
{{- include "maestro.toml.table" (list "golden" $c.golden) }}
{{- include "maestro.toml.table" (list "postrelease" $c.postrelease) }}
{{- include "maestro.toml.table" (list "policy" $c.policy) }}
{{- if .Values.oidc.issuer }}
{{- $oidc := omit .Values.oidc "client_secret" "existingSecret" "existingSecretKey" }}
{{- include "maestro.toml.table" (list "oidc" $oidc) }}
{{- end }}
{{- range $name, $location := $c.locations }}
{{- include "maestro.toml.table" (list (printf "locations.%s" ($name | quote)) $location) }}
{{- end }}
{{- range $id, $tenant := $c.tenants }}
{{- $body := include "maestro.toml.keys" $tenant }}

[tenants.{{ $id | quote }}]
{{- $body }}
{{- end }}
{{- range $c.tokens }}

[[tokens]]
{{- include "maestro.toml.keys" . }}
{{- end }}
{{- with .Values.extraConfig }}

{{ . | trimSuffix "\n" }}
{{- end }}
{{- end }}
