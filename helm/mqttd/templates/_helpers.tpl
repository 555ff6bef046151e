{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{/*
Names, labels, addresses and the rendered config shared by the templates. Numbers in .Values
are float64 (Helm reads values through JSON), so every port is passed through int before it
is printed.
*/}}

{{/* Chart name, at most 63 characters. */}}
{{- define "mqttd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: RELEASE-mqttd, or RELEASE when it already contains the chart name. */}}
{{- define "mqttd.fullname" -}}
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

{{/* The headless Service: peer discovery. */}}
{{- define "mqttd.headlessName" -}}
{{- printf "%s-headless" (include "mqttd.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{- define "mqttd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "mqttd.labels" -}}
helm.sh/chart: {{ include "mqttd.chart" . }}
{{ include "mqttd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the pods (never change them: a StatefulSet selector is immutable). */}}
{{- define "mqttd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mqttd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mqttd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mqttd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mqttd.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
cluster.name of every pod: the value, or the release's full name, so that two releases whose
pods reach each other (a wrong join, a reused address) refuse to merge. Checked as mqttd checks
it, so that a bad name fails the render rather than every pod's start.
*/}}
{{- define "mqttd.clusterName" -}}
{{- $name := .Values.cluster.name | default (include "mqttd.fullname" .) | toString }}
{{- if not (regexMatch "^[A-Za-z0-9._-]{1,64}$" $name) }}
{{- fail (printf "cluster.name: %q must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'" $name) }}
{{- end }}
{{- $name }}
{{- end }}

{{/* Ports as integers. */}}
{{- define "mqttd.clusterPort" -}}
{{- int .Values.cluster.port }}
{{- end }}

{{- define "mqttd.raftPort" -}}
{{- if kindIs "invalid" .Values.cluster.raftPort }}
{{- add1 (int .Values.cluster.port) }}
{{- else }}
{{- int .Values.cluster.raftPort }}
{{- end }}
{{- end }}

{{/*
--cluster-bootstrap-members: the node ids (pod names) that form the client-id registry the first
time the cluster starts, comma-separated. Default: the first 1 pod for 1-2 replicas, the first 3
for 3 or more (an even number of voters adds no fault tolerance; 5 only when set explicitly).
cluster.bootstrapMembers replaces it: an odd number of pod names of this StatefulSet, at most 5.
It is in the pod template, so every pod gets the same list.
*/}}
{{- define "mqttd.bootstrapMembers" -}}
{{- $replicas := int .Values.replicas }}
{{- if lt $replicas 1 }}
{{- fail "replicas must be at least 1" }}
{{- end }}
{{- $fullname := include "mqttd.fullname" . }}
{{- $members := list }}
{{- $explicit := .Values.cluster.bootstrapMembers }}
{{- if kindIs "invalid" $explicit }}
{{- $n := ternary 3 1 (ge $replicas 3) }}
{{- range $i := until $n }}
{{- $members = append $members (printf "%s-%d" $fullname $i) }}
{{- end }}
{{- else }}
{{- if not (kindIs "slice" $explicit) }}
{{- fail (printf "cluster.bootstrapMembers must be a list of pod names (or null); got %v" $explicit) }}
{{- end }}
{{- $n := len $explicit }}
{{- if or (eq (mod $n 2) 0) (gt $n 5) }}
{{- fail (printf "cluster.bootstrapMembers must name 1, 3 or 5 nodes (an odd number, at most 5); got %d" $n) }}
{{- end }}
{{- range $id := $explicit }}
{{- $id = toString $id }}
{{- if not (regexMatch (printf "^%s-(0|[1-9][0-9]*)$" (regexQuoteMeta $fullname)) $id) }}
{{- fail (printf "cluster.bootstrapMembers: %q is not a pod of the StatefulSet (%s-0, %s-1, ...)" $id $fullname $fullname) }}
{{- end }}
{{- if has $id $members }}
{{- fail (printf "cluster.bootstrapMembers names %q twice" $id) }}
{{- end }}
{{- $members = append $members $id }}
{{- end }}
{{- end }}
{{- join "," $members }}
{{- end }}

{{/* DNS suffix of the pods: HEADLESS.NAMESPACE.svc.DOMAIN */}}
{{- define "mqttd.peerDomain" -}}
{{- printf "%s.%s.svc.%s" (include "mqttd.headlessName" .) .Release.Namespace .Values.cluster.clusterDomain }}
{{- end }}

{{- define "mqttd.clusterListen" -}}
{{- printf "0.0.0.0:%s" (include "mqttd.clusterPort" .) }}
{{- end }}

{{- define "mqttd.joinDns" -}}
{{- printf "%s:%s" (include "mqttd.peerDomain" .) (include "mqttd.clusterPort" .) }}
{{- end }}

{{/* True ("true") when a TLS listener is on: the TLS Secret is needed. */}}
{{- define "mqttd.tlsNeeded" -}}
{{- if or .Values.listeners.mqtts.enabled .Values.listeners.wss.enabled }}true{{ end }}
{{- end }}

{{- define "mqttd.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "mqttd.fullname" .) }}
{{- end }}
{{- end }}

{{- define "mqttd.clusterTlsSecretName" -}}
{{- if .Values.cluster.tls.existingSecret }}
{{- .Values.cluster.tls.existingSecret }}
{{- else }}
{{- printf "%s-cluster-tls" (include "mqttd.fullname" .) }}
{{- end }}
{{- end }}

{{/* mqttd's (and mqttctl's) cluster TLS flags, one per line, when cluster.tls.enabled. */}}
{{- define "mqttd.clusterTlsArgs" -}}
{{- if .Values.cluster.tls.enabled }}
- --cluster-tls-cert=/etc/mqttd/cluster-tls/tls.crt
- --cluster-tls-key=/etc/mqttd/cluster-tls/tls.key
- --cluster-tls-ca=/etc/mqttd/cluster-tls/ca.crt
- --cluster-tls-server-name={{ .Values.cluster.tls.serverName }}
{{- end }}
{{- end }}

{{- define "mqttd.authSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else }}
{{- printf "%s-auth" (include "mqttd.fullname" .) }}
{{- end }}
{{- end }}

{{/* True when the ACL file is configured. */}}
{{- define "mqttd.aclEnabled" -}}
{{- if .Values.auth.existingSecret }}
{{- if .Values.auth.aclKey }}true{{ end }}
{{- else if .Values.auth.aclFile }}true{{ end }}
{{- end }}

{{/* TLS file paths in the container. */}}
{{- define "mqttd.tlsFiles" -}}
{{- $files := dict "cert_file" "/etc/mqttd/tls/tls.crt" "key_file" "/etc/mqttd/tls/tls.key" }}
{{- if or .Values.tls.ca (and .Values.tls.existingSecret .Values.tls.existingSecretHasCa) }}
{{- $_ := set $files "ca_file" "/etc/mqttd/tls/ca.crt" }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/*
The config file: .Values.config with the keys the chart owns set over it (listeners from
.Values.listeners, cluster.listen, cluster.join_dns, the auth file paths).
*/}}
{{- define "mqttd.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $l := .Values.listeners }}
{{- $listeners := list (dict "protocol" "mqtt" "address" (printf "0.0.0.0:%d" (int $l.mqtt.port))) }}
{{- $tls := include "mqttd.tlsFiles" . | fromJson }}
{{- if $l.mqtts.enabled }}
{{- $listeners = append $listeners (merge (dict "protocol" "mqtts" "address" (printf "0.0.0.0:%d" (int $l.mqtts.port))) $tls) }}
{{- end }}
{{- if $l.ws.enabled }}
{{- $listeners = append $listeners (dict "protocol" "ws" "address" (printf "0.0.0.0:%d" (int $l.ws.port)) "path" $l.ws.path) }}
{{- end }}
{{- if $l.wss.enabled }}
{{- $listeners = append $listeners (merge (dict "protocol" "wss" "address" (printf "0.0.0.0:%d" (int $l.wss.port)) "path" $l.wss.path) $tls) }}
{{- end }}
{{- $_ := set $cfg "listeners" $listeners }}
{{- $cluster := get $cfg "cluster" | default dict }}
{{- $_ = set $cluster "name" (include "mqttd.clusterName" .) }}
{{- $_ = set $cluster "listen" (include "mqttd.clusterListen" .) }}
{{- $_ = set $cluster "join_dns" (include "mqttd.joinDns" .) }}
{{- $_ = set $cfg "cluster" $cluster }}
{{- /* SIGTERM drains too: within the same time as the preStop drain. */}}
{{- $_ = set $cfg "shutdown_timeout" (int .Values.drain.timeoutSeconds) }}
{{- if .Values.auth.enabled }}
{{- $auth := get $cfg "auth" | default dict }}
{{- $_ = set $auth "password_file" (printf "/etc/mqttd/auth/%s" .Values.auth.passwordKey) }}
{{- if include "mqttd.aclEnabled" . }}
{{- $_ = set $auth "acl_file" (printf "/etc/mqttd/auth/%s" .Values.auth.aclKey) }}
{{- end }}
{{- $_ = set $cfg "auth" $auth }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Grace period: the value, or drain.timeoutSeconds + 30; never below the drain timeout. */}}
{{- define "mqttd.terminationGracePeriod" -}}
{{- $drain := int .Values.drain.timeoutSeconds }}
{{- $grace := add $drain 30 }}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- $grace = int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- if and .Values.drain.enabled (lt $grace $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be >= drain.timeoutSeconds (%d)" $grace $drain) }}
{{- end }}
{{- $grace }}
{{- end }}
