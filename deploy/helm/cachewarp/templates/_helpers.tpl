{{- define "cachewarp.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cachewarp.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "cachewarp.secretName" -}}
{{- default (printf "%s-urls" (include "cachewarp.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The pod spec every cachewarp process shares; .args and .config name its run. */}}
{{- define "cachewarp.pod" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
terminationGracePeriodSeconds: 40
containers:
  - name: cachewarp
    image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
    imagePullPolicy: {{ .root.Values.image.pullPolicy }}
    {{- if .command }}
    command: {{ toJson .command }}
    {{- end }}
    args: {{ toJson .args }}
    env:
      {{- if .nodeEnv }}
      - name: NODE_NAME
        valueFrom:
          fieldRef: {fieldPath: spec.nodeName}
      {{- end }}
      {{- /* only the variables this process's configuration has items for */}}
      {{- range $key := .secretKeys }}
      - name: {{ $key }}
        valueFrom:
          secretKeyRef: {name: {{ include "cachewarp.secretName" $.root }}, key: {{ $key }}}
      {{- end }}
    ports:
      - {name: http, containerPort: 8080}
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 10
      failureThreshold: 6
    readinessProbe:
      httpGet: {path: /readyz, port: http}
      periodSeconds: 5
    resources: {{ toJson .root.Values.resources }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts:
      - {name: config, mountPath: /etc/cachewarp, readOnly: true}
      - {name: data, mountPath: /var/lib/cachewarp}
volumes:
  - name: config
    configMap:
      name: {{ .config }}
{{- end -}}
