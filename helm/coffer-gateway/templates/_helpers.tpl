{{/*
Names and labels.
*/}}
{{- define "coffer-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coffer-gateway.fullname" -}}
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

{{- define "coffer-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coffer-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coffer-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels every object carries besides its selector labels. */}}
{{- define "coffer-gateway.metaLabels" -}}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coffer-gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "coffer-gateway.labels" -}}
helm.sh/chart: {{ include "coffer-gateway.chart" . }}
{{ include "coffer-gateway.selectorLabels" . }}
{{ include "coffer-gateway.metaLabels" . }}
{{- end }}

{{/*
The `helm test` pod's own selector labels: never the gateway's, so the Service, the
PodDisruptionBudget and the gateway's NetworkPolicy do not select it (a failed test pod, kept for its
logs and owned by no controller, would otherwise count as an unhealthy gateway pod and block drains).
*/}}
{{- define "coffer-gateway.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "coffer-gateway.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{- define "coffer-gateway.testLabels" -}}
helm.sh/chart: {{ include "coffer-gateway.chart" . }}
{{ include "coffer-gateway.testSelectorLabels" . }}
{{ include "coffer-gateway.metaLabels" . }}
{{- end }}

{{- define "coffer-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "coffer-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image reference: repository@digest, else repository:tag. Argument: dict with image and default tag. */}}
{{- define "coffer-gateway.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (toString (default .defaultTag .image.tag)) }}
{{- end }}
{{- end }}

{{/*
Fixed in-container paths (the contract between the Deployment and the rendered config).
*/}}
{{- define "coffer-gateway.paths" -}}
configDir: /etc/coffer-gateway/config
configFile: /etc/coffer-gateway/config/config.yaml
secretsDir: /etc/coffer-gateway/secrets
tlsDir: /etc/coffer-gateway/tls
egressCaDir: /etc/coffer-gateway/egress-ca
kubeApiDir: /var/run/secrets/coffer-gateway/kube-api
keyringSourceDir: /etc/coffer-gateway/keyring-source
keyringDir: /var/run/coffer-gateway/keyring
tmpDir: /tmp
{{- end }}

{{/*
Placeholder configuration used while config.coffers is empty and example.enabled (see values.yaml).
It stores nothing anywhere by itself: the upstream is an in-cluster address and the key an AWS KMS alias
that must exist in the account of the pod's credentials.
*/}}
{{- define "coffer-gateway.exampleConfig" -}}
coffers:
  example-1250000000:
    upstream:
      endpoint: http://minio.minio.svc.cluster.local:9000
      region: us-east-1
      bucket: coffer-example
    kms:
      type: aws-kms
      keyId: alias/coffer-gateway
      region: us-east-1
auth:
  jwt:
    issuer: https://kubernetes.default.svc.cluster.local
    audiences: [coffer-gateway]
    algorithms: [RS256, ES256]
    jwks:
      url: https://kubernetes.default.svc/openid/v1/jwks
    rules:
      - subject: {{ printf "system:serviceaccount:%s:coffer-client" .Release.Namespace }}
        grants:
          - coffer: example-1250000000
            actions: [read, write, list]
{{- end }}

{{/*
The effective state, computed once from the values and returned as YAML:
  config:        the gateway configuration to render into the ConfigMap
  usesExample:   whether the placeholder configuration is in use
  mountKubeApi:  whether the projected API token + cluster CA are mounted (JWKS from the API server)
  accessKeyRefs / upstreamRefs: Secret references mounted as files ({existingSecret, key, path})
Every check that can fail the render lives here, so all templates agree.
*/}}
{{- define "coffer-gateway.state" -}}
{{- $paths := include "coffer-gateway.paths" . | fromYaml }}
{{- $cfg := deepCopy (default (dict) .Values.config) }}
{{- range $forbidden := list "embeddedUpstream" "demo" "keyring" }}
{{- if hasKey $cfg $forbidden }}
{{- fail (printf "config.%s is not allowed in the chart (embeddedUpstream and demo are for `npm start` only; the keyring comes from `keyring.existingSecret`)" $forbidden) }}
{{- end }}
{{- end }}
{{- $usesExample := false }}
{{- if empty $cfg.coffers }}
{{- if not .Values.example.enabled }}
{{- fail "config.coffers is empty: configure at least one coffer, `config.coffers.<name>-<APPID>: {upstream: {endpoint, bucket}, kms: {type, keyId}}`, and how clients authenticate, `config.auth` (examples: deploy/service/values-production.yaml, deploy/egress/values.yaml). example.enabled=true renders a placeholder that serves nothing, for chart tests only" }}
{{- end }}
{{- $usesExample = true }}
{{- $example := include "coffer-gateway.exampleConfig" . | fromYaml }}
{{- $_ := set $cfg "coffers" $example.coffers }}
{{- $auth := default (dict) $cfg.auth }}
{{- if and (empty $auth.accessKeys) (empty $auth.jwt) }}
{{- $_ := set $auth "jwt" $example.auth.jwt }}
{{- end }}
{{- $_ := set $cfg "auth" $auth }}
{{- end }}

{{- /* server: chart-controlled listen addresses, ports and TLS files */}}
{{- $server := default (dict) $cfg.server }}
{{- range $k := list "host" "port" "adminHost" "adminPort" "tls" }}
{{- if hasKey $server $k }}
{{- fail (printf "config.server.%s is set by the chart (containerPorts, tls); remove it from config.server" $k) }}
{{- end }}
{{- end }}
{{- $_ := set $server "host" "0.0.0.0" }}
{{- $_ := set $server "port" (int .Values.containerPorts.data) }}
{{- $_ := set $server "adminHost" "0.0.0.0" }}
{{- $_ := set $server "adminPort" (int .Values.containerPorts.admin) }}
{{- if .Values.tls.enabled }}
{{- if not .Values.tls.existingSecret }}
{{- fail "tls.enabled requires tls.existingSecret (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- $_ := set $server "tls" (dict "certFile" (printf "%s/tls.crt" $paths.tlsDir) "keyFile" (printf "%s/tls.key" $paths.tlsDir)) }}
{{- end }}
{{- $_ := set $cfg "server" $server }}

{{- /* egress: CONNECT interception with the CA from egress.ca.existingSecret */}}
{{- $egress := default (dict) $cfg.egress }}
{{- range $k := list "enabled" "ca" "localCaDirectory" }}
{{- if hasKey $egress $k }}
{{- fail (printf "config.egress.%s is set by the chart (egress.enabled, egress.ca.existingSecret); remove it from config.egress" $k) }}
{{- end }}
{{- end }}
{{- $_ := set $egress "enabled" (.Values.egress.enabled | default false) }}
{{- if .Values.egress.enabled }}
{{- if not .Values.egress.ca.existingSecret }}
{{- fail "egress.enabled requires egress.ca.existingSecret (a Secret with the issuing CA's tls.crt and tls.key, e.g. from cert-manager; see deploy/egress/cert-manager-ca.yaml)" }}
{{- end }}
{{- $_ := set $egress "ca" (dict "certFile" (printf "%s/tls.crt" $paths.egressCaDir) "keyFile" (printf "%s/tls.key" $paths.egressCaDir)) }}
{{- end }}
{{- $_ := set $cfg "egress" $egress }}

{{- /* auth.accessKeys: SecretKeys from existing Secrets, matched by secretId */}}
{{- $auth := default (dict) $cfg.auth }}
{{- $refsById := dict }}
{{- $accessKeyRefs := list }}
{{- range $i, $ref := .Values.secrets.accessKeys }}
{{- if hasKey $refsById $ref.secretId }}
{{- fail (printf "secrets.accessKeys[%d]: secretId %s is listed twice" $i $ref.secretId) }}
{{- end }}
{{- $path := printf "access-keys/%d" $i }}
{{- $_ := set $refsById $ref.secretId (printf "%s/%s" $paths.secretsDir $path) }}
{{- $accessKeyRefs = append $accessKeyRefs (dict "existingSecret" $ref.existingSecret "key" $ref.key "path" $path) }}
{{- end }}
{{- $keys := list }}
{{- $configuredIds := dict }}
{{- range $i, $key := default (list) $auth.accessKeys }}
{{- $k := deepCopy $key }}
{{- $_ := set $configuredIds (toString $key.secretId) true }}
{{- if hasKey $refsById (toString $key.secretId) }}
{{- if or (hasKey $key "secretKey") (hasKey $key "secretKeyFile") }}
{{- fail (printf "config.auth.accessKeys[%d] (secretId %s): remove secretKey/secretKeyFile, the SecretKey comes from secrets.accessKeys" $i $key.secretId) }}
{{- end }}
{{- $_ := set $k "secretKeyFile" (get $refsById (toString $key.secretId)) }}
{{- else if hasKey $key "secretKey" }}
{{- if not $.Values.secrets.allowInline }}
{{- fail (printf "config.auth.accessKeys[%d] (secretId %s): inline secretKey would be stored in a ConfigMap; reference an existing Secret in secrets.accessKeys (or set secrets.allowInline=true for a test cluster)" $i $key.secretId) }}
{{- end }}
{{- else if not (hasKey $key "secretKeyFile") }}
{{- fail (printf "config.auth.accessKeys[%d] (secretId %s) has no SecretKey: add {secretId, existingSecret, key} to secrets.accessKeys" $i $key.secretId) }}
{{- end }}
{{- $keys = append $keys $k }}
{{- end }}
{{- range $i, $ref := .Values.secrets.accessKeys }}
{{- if not (hasKey $configuredIds $ref.secretId) }}
{{- fail (printf "secrets.accessKeys[%d]: secretId %s is not in config.auth.accessKeys (add it there with its grants)" $i $ref.secretId) }}
{{- end }}
{{- end }}
{{- if $keys }}
{{- $_ := set $auth "accessKeys" $keys }}
{{- end }}

{{- /* auth.jwt: JWKS from the API server gets the projected token and the cluster CA */}}
{{- $mountKubeApi := false }}
{{- $jwks := dig "jwt" "jwks" (dict) $auth }}
{{- if and .Values.kubernetesApiToken.enabled (hasPrefix "https://kubernetes.default.svc" (toString (get $jwks "url"))) }}
{{- $mountKubeApi = true }}
{{- if not (hasKey $jwks "tokenFile") }}
{{- $_ := set $jwks "tokenFile" (printf "%s/token" $paths.kubeApiDir) }}
{{- end }}
{{- if not (hasKey $jwks "caFile") }}
{{- $_ := set $jwks "caFile" (printf "%s/ca.crt" $paths.kubeApiDir) }}
{{- end }}
{{- end }}
{{- if and (empty $auth.accessKeys) (empty $auth.jwt) }}
{{- fail "config.auth: configure accessKeys (with secrets.accessKeys) or jwt; otherwise no request can be authorized" }}
{{- end }}
{{- $_ := set $cfg "auth" $auth }}

{{- /* coffers: upstream credentials from existing Secrets; inline secrets refused; local keys need the keyring Secret */}}
{{- $upstreamRefs := list }}
{{- $credentialed := dict }}
{{- range $i, $ref := .Values.secrets.upstreamCredentials }}
{{- $coffer := get $cfg.coffers $ref.coffer }}
{{- if not $coffer }}
{{- fail (printf "secrets.upstreamCredentials[%d]: coffer %s is not in config.coffers" $i $ref.coffer) }}
{{- end }}
{{- if hasKey $credentialed $ref.coffer }}
{{- fail (printf "secrets.upstreamCredentials[%d]: coffer %s is listed twice" $i $ref.coffer) }}
{{- end }}
{{- $_ := set $credentialed $ref.coffer true }}
{{- $upstream := default (dict) $coffer.upstream }}
{{- if hasKey $upstream "credentials" }}
{{- fail (printf "config.coffers.%s.upstream.credentials: remove it, the credentials come from secrets.upstreamCredentials" $ref.coffer) }}
{{- end }}
{{- $path := printf "upstream/%d" $i }}
{{- $_ := set $upstream "credentials" (dict "accessKeyId" $ref.accessKeyId "secretAccessKeyFile" (printf "%s/%s" $paths.secretsDir $path)) }}
{{- $_ := set $coffer "upstream" $upstream }}
{{- $upstreamRefs = append $upstreamRefs (dict "existingSecret" $ref.existingSecret "key" $ref.key "path" $path) }}
{{- end }}
{{- range $name, $coffer := $cfg.coffers }}
{{- $credentials := default (dict) (default (dict) $coffer.upstream).credentials }}
{{- if and (hasKey $credentials "secretAccessKey") (not $.Values.secrets.allowInline) }}
{{- fail (printf "config.coffers.%s.upstream.credentials.secretAccessKey: inline secrets would be stored in a ConfigMap; use secrets.upstreamCredentials (or secrets.allowInline=true for a test cluster)" $name) }}
{{- end }}
{{- if and (eq (toString (dig "kms" "type" "" $coffer)) "local") (not $.Values.keyring.existingSecret) }}
{{- fail (printf "config.coffers.%s uses kms.type local: set keyring.existingSecret (a Secret with <keyId>.key entries) or use aws-kms; keys generated inside a pod would be lost with it" $name) }}
{{- end }}
{{- end }}

{{- /* keyring: never created in the pod (a per-pod key would make stored objects unreadable elsewhere) */}}
{{- $_ := set $cfg "keyring" (dict "directory" $paths.keyringDir "create" false) }}

{{- $state := dict "config" $cfg "usesExample" $usesExample "mountKubeApi" $mountKubeApi "accessKeyRefs" $accessKeyRefs "upstreamRefs" $upstreamRefs }}
{{- toYaml $state }}
{{- end }}

{{/* Seconds the gateway may need to stop: preStop sleep + drain + margin. */}}
{{- define "coffer-gateway.drainSeconds" -}}
{{- $state := include "coffer-gateway.state" . | fromYaml }}
{{- $graceMs := int (default 30000 $state.config.server.shutdownGraceMs) }}
{{- $graceS := div (add $graceMs 999) 1000 }}
{{- add $graceS (int .Values.lifecycle.preStopSleepSeconds) }}
{{- end }}

{{- define "coffer-gateway.terminationGracePeriodSeconds" -}}
{{- $drain := int (include "coffer-gateway.drainSeconds" .) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $drain 10 }}
{{- else }}
{{- $set := int .Values.terminationGracePeriodSeconds }}
{{- if le $set $drain }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed the drain time (%d s = config.server.shutdownGraceMs + lifecycle.preStopSleepSeconds), or Kubernetes kills in-flight uploads" $set $drain) }}
{{- end }}
{{- $set }}
{{- end }}
{{- end }}

{{/* Effective minimum replica count (drives the PDB). */}}
{{- define "coffer-gateway.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.minReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{/* One NetworkPolicy egress rule from {cidrs, except, peers, ports}. */}}
{{- define "coffer-gateway.egressRule" -}}
- to:
  {{- range .cidrs }}
  - ipBlock:
      cidr: {{ . }}
      {{- with $.except }}
      except:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- end }}
  {{- with .peers }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .ports }}
  ports:
    {{- range . }}
    - port: {{ .port }}
      protocol: {{ default "TCP" .protocol }}
    {{- end }}
  {{- end }}
{{- end }}

{{/*
What a gateway process needs in its pod — the same for the Deployment, the `helm test` pod (`doctor`)
and the gc / rewrap jobs, all of which load the release's configuration: environment, volume mounts,
volumes and the keyring copy init container. Argument: (dict "root" $ "keyring" bool); `keyring` false
leaves the local key-encryption keys out (gc reads no key).
*/}}
{{- define "coffer-gateway.gatewayEnv" -}}
{{- $root := .root }}
{{- $paths := include "coffer-gateway.paths" $root | fromYaml -}}
- name: COFFER_CONFIG
  value: {{ $paths.configFile }}
- name: HOME
  value: {{ $paths.tmpDir }}
- name: TMPDIR
  value: {{ $paths.tmpDir }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "coffer-gateway.gatewayVolumeMounts" -}}
{{- $root := .root }}
{{- $state := include "coffer-gateway.state" $root | fromYaml }}
{{- $paths := include "coffer-gateway.paths" $root | fromYaml -}}
- name: config
  mountPath: {{ $paths.configDir }}
  readOnly: true
- name: tmp
  mountPath: {{ $paths.tmpDir }}
{{- if concat $state.accessKeyRefs $state.upstreamRefs }}
- name: secrets
  mountPath: {{ $paths.secretsDir }}
  readOnly: true
{{- end }}
{{- if $root.Values.tls.enabled }}
- name: tls
  mountPath: {{ $paths.tlsDir }}
  readOnly: true
{{- end }}
{{- if $root.Values.egress.enabled }}
- name: egress-ca
  mountPath: {{ $paths.egressCaDir }}
  readOnly: true
{{- end }}
{{- if $state.mountKubeApi }}
- name: kube-api
  mountPath: {{ $paths.kubeApiDir }}
  readOnly: true
{{- end }}
{{- if and .keyring $root.Values.keyring.existingSecret }}
- name: keyring
  mountPath: {{ $paths.keyringDir }}
  readOnly: true
{{- end }}
{{- with $root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "coffer-gateway.gatewayVolumes" -}}
{{- $root := .root }}
{{- $state := include "coffer-gateway.state" $root | fromYaml }}
{{- $secretRefs := concat $state.accessKeyRefs $state.upstreamRefs -}}
- name: config
  configMap:
    name: {{ include "coffer-gateway.fullname" $root }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- if $secretRefs }}
# Secret values as files (never environment variables), mounted as a directory (no subPath).
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      {{- range $secretRefs }}
      - secret:
          name: {{ .existingSecret }}
          items:
            - key: {{ .key }}
              path: {{ .path }}
      {{- end }}
{{- end }}
{{- if $root.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ $root.Values.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if $root.Values.egress.enabled }}
# The egress CA (certificate and key) as files; only tls.crt and tls.key, never the Secret's other keys.
- name: egress-ca
  secret:
    secretName: {{ $root.Values.egress.ca.existingSecret }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if $state.mountKubeApi }}
# A token for the API server's JWKS endpoint (default audience) and the cluster CA; the kubelet
# rotates the token, the gateway re-reads it on every JWKS fetch.
- name: kube-api
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ $root.Values.kubernetesApiToken.expirationSeconds }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
{{- end }}
{{- if and .keyring $root.Values.keyring.existingSecret }}
- name: keyring-source
  secret:
    secretName: {{ $root.Values.keyring.existingSecret }}
    defaultMode: 0440
- name: keyring
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "coffer-gateway.keyringInitContainers" -}}
{{- $root := .root }}
{{- $paths := include "coffer-gateway.paths" $root | fromYaml }}
{{- if and .keyring $root.Values.keyring.existingSecret -}}
# Copies the local key-encryption keys from the Secret volume (group-readable under fsGroup,
# which the gateway refuses like ssh does) to an in-memory emptyDir with mode 0400.
- name: keyring
  image: {{ include "coffer-gateway.imageRef" (dict "image" $root.Values.keyring.image "defaultTag" "latest") }}
  imagePullPolicy: {{ $root.Values.keyring.image.pullPolicy }}
  command:
    - sh
    - -c
    - umask 077 && cp -L {{ $paths.keyringSourceDir }}/*.key {{ $paths.keyringDir }}/ && chmod 0400 {{ $paths.keyringDir }}/*.key
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $root.Values.keyring.resources | nindent 4 }}
  volumeMounts:
    - name: keyring-source
      mountPath: {{ $paths.keyringSourceDir }}
      readOnly: true
    - name: keyring
      mountPath: {{ $paths.keyringDir }}
{{- end }}
{{- end }}

{{/* Egress to what the gateway depends on (DNS, upstream, KMS, STS, API server, extra): the gateway's and the test pod's NetworkPolicies. */}}
{{- define "coffer-gateway.dependencyEgress" -}}
{{- $egress := .Values.networkPolicy.egress -}}
{{- if $egress.dns.enabled }}
- to:
    {{- toYaml $egress.dns.to | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}
{{- range $group := list "upstream" "kms" "sts" "kubernetesApi" "extra" }}
{{- range (get $egress $group) }}
# {{ $group }}
{{ include "coffer-gateway.egressRule" . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Service account of the gc or rewrap job. Argument: (dict "root" $ "job" "gc"|"rewrap"). */}}
{{- define "coffer-gateway.jobServiceAccountName" -}}
{{- $values := get .root.Values .job }}
{{- if $values.serviceAccount.create }}
{{- default (printf "%s-%s" (include "coffer-gateway.fullname" .root) .job | trunc 63 | trimSuffix "-") $values.serviceAccount.name }}
{{- else }}
{{- default (include "coffer-gateway.serviceAccountName" .root) $values.serviceAccount.name }}
{{- end }}
{{- end }}
