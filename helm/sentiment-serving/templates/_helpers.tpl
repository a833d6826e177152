{{/* The predictor container; takes a dict with the root context (.root) and the registry version (.version). */}}
{{- define "sentiment-serving.container" -}}
- name: kserve-container
  image: {{ include "sentiment-serving.image" .root | quote }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args:
    - --model_name={{ .root.Values.modelName }}
    - --http_port=8080
    - --grpc_port=8081
    - --workers=1
    - --reload_interval_seconds=0
  env:
    - name: STORAGE_URI
      value: {{ include "sentiment-serving.storageUri" (dict "root" .root "version" .version) | quote }}
    - name: MLFLOW_S3_ENDPOINT_URL
      value: {{ .root.Values.s3Endpoint | quote }}
    - name: PREDICTION_LOG
      value: {{ .root.Values.predictionLog | quote }}
    - name: AWS_ACCESS_KEY_ID
      valueFrom:
        secretKeyRef: {name: {{ .root.Values.credentialsSecret }}, key: AWS_ACCESS_KEY_ID}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom:
        secretKeyRef: {name: {{ .root.Values.credentialsSecret }}, key: AWS_SECRET_ACCESS_KEY}
    - name: ADMIN_TOKEN
      valueFrom:
        secretKeyRef: {name: {{ .root.Values.adminTokenSecret }}, key: token, optional: true}
    - name: ANSWER_KEY
      valueFrom:
        secretKeyRef: {name: {{ .root.Values.adminTokenSecret }}, key: answer-key}
  ports:
    - {name: http1, containerPort: 8080, protocol: TCP}
    - {name: h2c, containerPort: 8081, protocol: TCP}
  readinessProbe:
    httpGet: {path: /v2/models/{{ .root.Values.modelName }}/ready, port: 8080}
    periodSeconds: 5
    failureThreshold: 3
  livenessProbe:
    httpGet: {path: /v2/health/live, port: 8080}
    initialDelaySeconds: 10
    periodSeconds: 15
  startupProbe:
    httpGet: {path: /v2/health/live, port: 8080}
    periodSeconds: 5
    failureThreshold: 60
  resources:
    {{- toYaml .root.Values.resources | nindent 4 }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
  volumeMounts:
    - {name: tmp, mountPath: /tmp}
{{- end -}}

{{/* The serving bundle of a version (.version), published by the deploy step (models/bundle.py); the
     trailing slash keeps version 1 from also matching 10, 11, ... (the storage initializer lists a prefix). */}}
{{- define "sentiment-serving.storageUri" -}}
{{ .root.Values.bundleRoot }}/{{ .root.Values.modelName }}/{{ .version }}/
{{- end -}}

{{/* The image, whose tag must be the one `make images` built. */}}
{{- define "sentiment-serving.image" -}}
{{- if not .Values.image.tag }}
{{- fail "image.tag is required: the tag `make images` built (git rev-parse --short=12 HEAD)" }}
{{- end -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* A predictor's Service, as KServe names it (pkg/constants/constants.go PredictorServiceName). */}}
{{- define "sentiment-serving.service" -}}
{{ .root.Values.modelName }}-v{{ .version }}-predictor
{{- end -}}

{{/* Pod-level settings shared by the stable and the canary predictor. */}}
{{- define "sentiment-serving.pod" -}}
serviceAccountName: {{ .Values.serviceAccount.name }}
labels:
  app.kubernetes.io/name: sentiment-predictor
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
volumes:
  - name: tmp
    emptyDir: {}
{{- end -}}
