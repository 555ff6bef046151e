{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{- define "t.name" -}}
{{ .Release.Name }}-{{ .Chart.Name }}
{{- end }}
