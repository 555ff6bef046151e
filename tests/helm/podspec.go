// SPDX-License-Identifier: Apache-2.0

// --pod-spec N: what the StatefulSet's mqttd container runs in pod ordinal N, as JSON.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
)

type podSpec struct {
	Pod           string            `json:"pod"`
	Ordinal       int               `json:"ordinal"`
	Namespace     string            `json:"namespace"`
	Subdomain     string            `json:"subdomain"`
	Command       []string          `json:"command"`
	Args          []string          `json:"args"`
	Env           map[string]string `json:"env"`
	EnvUnresolved map[string]string `json:"env_unresolved"`
	Ports         map[string]int    `json:"ports"`
	Files         map[string]string `json:"files"`
	Dirs          map[string]string `json:"dirs"`
}

func printPodSpec(docs []manifest, ordinal int, namespace string) error {
	sts, err := theStatefulSet(docs)
	if err != nil {
		return err
	}
	name := str(dig(sts, "metadata", "name"))
	replicas := int(num(dig(sts, "spec", "replicas")))
	if ordinal >= replicas {
		return fmt.Errorf("--pod-spec %d: the StatefulSet has %d replicas", ordinal, replicas)
	}
	podSpecObj, _ := dig(sts, "spec", "template", "spec").(map[string]interface{})
	c, err := mqttdContainer(podSpecObj)
	if err != nil {
		return err
	}
	p := &podSpec{
		Pod: fmt.Sprintf("%s-%d", name, ordinal), Ordinal: ordinal, Namespace: namespace,
		Subdomain: str(dig(sts, "spec", "serviceName")),
		Env:       map[string]string{}, EnvUnresolved: map[string]string{},
		Ports: map[string]int{}, Files: map[string]string{}, Dirs: map[string]string{},
	}
	if err := p.resolveEnv(c, docs); err != nil {
		return err
	}
	p.Command = p.expandAll(c["command"])
	p.Args = p.expandAll(c["args"])
	for _, port := range list(c["ports"]) {
		p.Ports[str(dig(port, "name"))] = int(num(dig(port, "containerPort")))
	}
	if err := p.mounts(c, podSpecObj, docs); err != nil {
		return err
	}
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, string(out))
	return err
}

func theStatefulSet(docs []manifest) (map[string]interface{}, error) {
	var found []map[string]interface{}
	for _, d := range docs {
		if d.kind == "StatefulSet" {
			found = append(found, d.obj)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("--pod-spec: want one StatefulSet, the chart renders %d", len(found))
	}
	return found[0], nil
}

func mqttdContainer(spec map[string]interface{}) (map[string]interface{}, error) {
	cs := list(spec["containers"])
	for _, c := range cs {
		if str(dig(c, "name")) == "mqttd" {
			return c.(map[string]interface{}), nil
		}
	}
	return nil, errors.New("--pod-spec: no container named mqttd")
}

// resolveEnv follows Kubernetes: each value may use $(VAR) of the variables before it.
func (p *podSpec) resolveEnv(c map[string]interface{}, docs []manifest) error {
	for _, e := range list(c["env"]) {
		name := str(dig(e, "name"))
		if v, ok := dig(e, "value").(string); ok {
			p.Env[name] = expand(v, p.Env)
			continue
		}
		from := dig(e, "valueFrom")
		if v, ok := p.fieldRef(str(dig(from, "fieldRef", "fieldPath"))); ok {
			p.Env[name] = v
		} else if v, ok := keyRef(docs, "Secret", dig(from, "secretKeyRef")); ok {
			p.Env[name] = v
		} else if v, ok := keyRef(docs, "ConfigMap", dig(from, "configMapKeyRef")); ok {
			p.Env[name] = v
		} else {
			src, _ := json.Marshal(from)
			p.EnvUnresolved[name] = string(src)
		}
	}
	return nil
}

func (p *podSpec) fieldRef(field string) (string, bool) {
	switch field {
	case "metadata.name":
		return p.Pod, true
	case "metadata.namespace":
		return p.Namespace, true
	}
	return "", false
}

// keyRef reads {name, key} from a Secret or ConfigMap the chart renders.
func keyRef(docs []manifest, kind string, ref interface{}) (string, bool) {
	if ref == nil {
		return "", false
	}
	data := objectData(docs, kind, str(dig(ref, "name")))
	v, ok := data[str(dig(ref, "key"))]
	return v, ok
}

// objectData: the decoded data of the rendered Secret or ConfigMap NAME (nil if not rendered).
func objectData(docs []manifest, kind, name string) map[string]string {
	for _, d := range docs {
		if d.kind != kind || str(dig(d.obj, "metadata", "name")) != name {
			continue
		}
		out := map[string]string{}
		for k, v := range mapOf(d.obj["data"]) {
			s := str(v)
			if kind == "Secret" {
				b, _ := base64.StdEncoding.DecodeString(s)
				s = string(b)
			}
			out[k] = s
		}
		for k, v := range mapOf(d.obj["stringData"]) {
			out[k] = str(v)
		}
		return out
	}
	return nil
}

// mounts lists the files of ConfigMap and Secret volumes the chart renders, and other volumes as dirs.
func (p *podSpec) mounts(c, spec map[string]interface{}, docs []manifest) error {
	volumes := map[string]interface{}{}
	for _, v := range list(spec["volumes"]) {
		volumes[str(dig(v, "name"))] = v
	}
	for _, m := range list(c["volumeMounts"]) {
		mountPath, sub := str(dig(m, "mountPath")), str(dig(m, "subPath"))
		vol, ok := volumes[str(dig(m, "name"))]
		if !ok {
			p.Dirs[mountPath] = "volumeClaimTemplate " + str(dig(m, "name"))
			continue
		}
		var data map[string]string
		switch {
		case dig(vol, "configMap") != nil:
			data = objectData(docs, "ConfigMap", str(dig(vol, "configMap", "name")))
		case dig(vol, "secret") != nil:
			data = objectData(docs, "Secret", str(dig(vol, "secret", "secretName")))
		default:
			p.Dirs[mountPath] = volumeKind(vol)
			continue
		}
		if data == nil {
			p.Dirs[mountPath] = "not rendered by the chart: " + volumeKind(vol)
			continue
		}
		p.addFiles(mountPath, sub, data)
	}
	return nil
}

func (p *podSpec) addFiles(mountPath, sub string, data map[string]string) {
	if sub != "" {
		p.Files[mountPath] = data[sub]
		return
	}
	for k, v := range data {
		p.Files[path.Join(mountPath, k)] = v
	}
}

func volumeKind(vol interface{}) string {
	for k := range mapOf(vol) {
		if k != "name" {
			return k
		}
	}
	return "unknown"
}

func (p *podSpec) expandAll(v interface{}) []string {
	out := []string{}
	for _, s := range list(v) {
		out = append(out, expand(str(s), p.Env))
	}
	return out
}

// expand is Kubernetes' $(VAR) expansion: a known VAR is replaced, an unknown one is kept as
// written, "$$" is a literal "$".
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += end + 2
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// ---- access to parsed YAML ----

func dig(v interface{}, keys ...string) interface{} {
	for _, k := range keys {
		m, ok := v.(map[string]interface{})
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func mapOf(v interface{}) map[string]interface{} {
	m, _ := v.(map[string]interface{})
	return m
}

func list(v interface{}) []interface{} {
	l, _ := v.([]interface{})
	return l
}

func str(v interface{}) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func num(v interface{}) float64 {
	f, _ := v.(float64)
	return f
}
