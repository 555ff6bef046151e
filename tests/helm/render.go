// SPDX-License-Identifier: Apache-2.0

// render renders a Helm chart as `helm template` does, without the helm binary, so that the
// chart can be tested on a machine where helm cannot be installed.
//
//	render [--release NAME] [--namespace NS] [-f VALUES.yaml]... [--set KEY=VALUE]...
//	       [--kube-version v1.28.0] [--api-versions G/V]... [--notes | --pod-spec N] CHART_DIR
//
// What it shares with Helm 3 (the parts of helm.sh/helm/v3/pkg/engine and pkg/chartutil a chart
// can observe): Go text/template with the sprig function map minus env/expandenv, plus Helm's
// include, tpl, required, toYaml, fromYaml, fromYamlArray, toJson, fromJson, fromJsonArray and
// lookup (always empty, as in `helm template`); missingkey=zero with "<no value>" erased;
// .Values = the chart's values.yaml coalesced with the -f files and --set (later wins, maps
// merge, a null deletes the key); numbers in values are float64, as Helm reads values through
// JSON (so a chart must pass them through int); .Release, .Chart (capitalised Chart.yaml
// fields), .Capabilities (KubeVersion, APIVersions.Has), .Template (Name, BasePath); partials
// (_*) are not output, NOTES.txt only with --notes; the chart's kubeVersion is checked; output
// is one "---\n# Source: CHART/templates/FILE" document per manifest, in Helm's install order
// of kinds, then by file name. Every document must parse as YAML with a kind.
//
// Differences: toYaml indents sequences under their key (gopkg.in/yaml.v3; Helm's yaml.v2 does
// not), which changes no parsed value; --set takes KEY=VALUE with dotted keys only (no lists,
// no escapes); no subcharts, .Files or schema validation.
//
// --pod-spec N prints, as JSON, what the StatefulSet's mqttd container of pod ordinal N runs:
// command and args with Kubernetes' $(VAR) expansion done, env resolved (field refs to the
// pod's name and namespace, and keys of Secrets and ConfigMaps rendered by the chart), and the
// files the chart mounts into it, so that a test can start real nodes exactly as the pod would.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	chartDir    string
	release     string
	namespace   string
	valueFiles  stringList
	sets        stringList
	kubeVersion string
	apiVersions stringList
	notes       bool
	podSpec     int
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.StringVar(&o.release, "release", "mqttd", "release name")
	fs.StringVar(&o.namespace, "namespace", "default", "release namespace")
	fs.Var(&o.valueFiles, "f", "values file (repeatable; later files win)")
	fs.Var(&o.sets, "set", "KEY=VALUE with a dotted key (repeatable; applied after -f)")
	fs.StringVar(&o.kubeVersion, "kube-version", "v1.28.0", "Kubernetes version for .Capabilities")
	fs.Var(&o.apiVersions, "api-versions", "extra API version for .Capabilities.APIVersions")
	fs.BoolVar(&o.notes, "notes", false, "print the rendered NOTES.txt instead of the manifests")
	fs.IntVar(&o.podSpec, "pod-spec", -1, "print pod N's mqttd container (command, args, env) as JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		return nil, errors.New("usage: render [flags] CHART_DIR")
	}
	o.chartDir = fs.Arg(0)
	return o, nil
}

func run(o *options) error {
	ch, err := loadChart(o.chartDir)
	if err != nil {
		return err
	}
	caps := newCapabilities(o.kubeVersion, o.apiVersions)
	if err := checkKubeVersion(ch.meta, caps.KubeVersion.Version); err != nil {
		return err
	}
	vals, err := userValues(o)
	if err != nil {
		return err
	}
	top := map[string]interface{}{
		"Values":       coalesce(vals, ch.values),
		"Release":      map[string]interface{}{"Name": o.release, "Namespace": o.namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Chart":        ch.meta,
		"Capabilities": caps,
		"Files":        map[string]interface{}{},
	}
	rendered, err := renderTemplates(ch, top)
	if err != nil {
		return err
	}
	if o.notes {
		fmt.Print(rendered[ch.name+"/templates/NOTES.txt"])
		return nil
	}
	docs, err := manifests(rendered)
	if err != nil {
		return err
	}
	if o.podSpec >= 0 {
		return printPodSpec(docs, o.podSpec, o.namespace)
	}
	for _, d := range docs {
		fmt.Printf("---\n# Source: %s\n%s\n", d.source, d.text)
	}
	return nil
}

// ---- chart and values ----

type chart struct {
	name      string
	meta      map[string]interface{}
	values    map[string]interface{}
	templates map[string]string // "CHART/templates/FILE" -> text
}

// Chart.yaml field -> the name templates see (Helm's chart.Metadata).
var chartFields = map[string]string{
	"apiVersion": "APIVersion", "name": "Name", "version": "Version", "appVersion": "AppVersion",
	"description": "Description", "type": "Type", "kubeVersion": "KubeVersion", "keywords": "Keywords",
	"home": "Home", "sources": "Sources", "icon": "Icon", "maintainers": "Maintainers",
	"annotations": "Annotations", "deprecated": "Deprecated", "dependencies": "Dependencies",
}

func loadChart(dir string) (*chart, error) {
	raw, err := readYAMLFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	meta := map[string]interface{}{}
	for k, v := range raw {
		name, ok := chartFields[k]
		if !ok {
			return nil, fmt.Errorf("Chart.yaml: unknown field %q", k)
		}
		meta[name] = v
	}
	for _, k := range []string{"APIVersion", "Name", "Version"} {
		if s, _ := meta[k].(string); s == "" {
			return nil, fmt.Errorf("Chart.yaml: %s is required", k)
		}
	}
	ch := &chart{name: meta["Name"].(string), meta: meta, templates: map[string]string{}}
	if ch.values, err = readYAMLFile(filepath.Join(dir, "values.yaml")); err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "templates", "*"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ch.templates[ch.name+"/templates/"+filepath.Base(f)] = string(text)
	}
	return ch, nil
}

// userValues: the -f files, then --set, merged in order (not yet with the chart's defaults).
func userValues(o *options) (map[string]interface{}, error) {
	vals := map[string]interface{}{}
	for _, f := range o.valueFiles {
		v, err := readYAMLFile(f)
		if err != nil {
			return nil, err
		}
		vals = mergeMaps(vals, v)
	}
	for _, s := range o.sets {
		if err := applySet(vals, s); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

func readYAMLFile(name string) (map[string]interface{}, error) {
	text, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	v, err := parseYAML(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if v == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: not a map", name)
	}
	return m, nil
}

// parseYAML reads one YAML document as Helm sees it: JSON types (numbers are float64, keys
// strings), timestamps left as strings.
func parseYAML(text string) (interface{}, error) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		return nil, err
	}
	if n.Kind == 0 {
		return nil, nil
	}
	return nodeValue(&n)
}

func nodeValue(n *yaml.Node) (interface{}, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.SequenceNode:
		out := make([]interface{}, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return mappingValue(n)
	}
	return scalarValue(n)
}

func mappingValue(n *yaml.Node) (interface{}, error) {
	out := map[string]interface{}{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		val, err := nodeValue(v)
		if err != nil {
			return nil, err
		}
		if k.Tag == "!!merge" {
			if m, ok := val.(map[string]interface{}); ok {
				for mk, mv := range m {
					if _, set := out[mk]; !set {
						out[mk] = mv
					}
				}
			}
			continue
		}
		out[k.Value] = val
	}
	return out, nil
}

func scalarValue(n *yaml.Node) (interface{}, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		err := n.Decode(&b)
		return b, err
	case "!!int", "!!float":
		var f float64
		err := n.Decode(&f)
		return f, err
	}
	return n.Value, nil
}

// mergeMaps returns dst with src laid over it: maps merge recursively, anything else replaces.
func mergeMaps(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		dm, dok := dst[k].(map[string]interface{})
		sm, sok := v.(map[string]interface{})
		if dok && sok {
			dst[k] = mergeMaps(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// coalesce lays user values over the chart's defaults as Helm does: a user null removes the key.
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range user {
		if v == nil {
			delete(out, k)
			continue
		}
		dm, dok := out[k].(map[string]interface{})
		um, uok := v.(map[string]interface{})
		if dok && uok {
			out[k] = coalesce(um, dm)
		} else {
			out[k] = v
		}
	}
	return out
}

// applySet applies KEY=VALUE (dotted key; value typed as Helm's --set: int64, bool, null or string).
func applySet(vals map[string]interface{}, s string) error {
	eq := strings.IndexByte(s, '=')
	if eq <= 0 {
		return fmt.Errorf("--set %q: want KEY=VALUE", s)
	}
	keys := strings.Split(s[:eq], ".")
	m := vals
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = typedSetValue(s[eq+1:])
	return nil
}

func typedSetValue(v string) interface{} {
	switch v {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if i, err := strconv.ParseInt(v, 10, 64); err == nil && (v == "0" || !strings.HasPrefix(v, "0")) {
		return i
	}
	return v
}

// ---- capabilities ----

type kubeVersion struct {
	Version, Major, Minor, GitVersion string
}

func (k kubeVersion) String() string { return k.Version }

type versionSet []string

// Has is .Capabilities.APIVersions.Has "GROUP/VERSION" (or "GROUP/VERSION/Kind").
func (v versionSet) Has(s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions versionSet
	HelmVersion map[string]string
}

func newCapabilities(version string, extra []string) *capabilities {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	for len(parts) < 2 {
		parts = append(parts, "0")
	}
	apis := versionSet{"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1",
		"rbac.authorization.k8s.io/v1", "autoscaling/v2", "storage.k8s.io/v1"}
	return &capabilities{
		KubeVersion: kubeVersion{Version: version, Major: parts[0], Minor: parts[1], GitVersion: version},
		APIVersions: append(apis, extra...),
		HelmVersion: map[string]string{"Version": "v3.13.0-render"},
	}
}

func checkKubeVersion(meta map[string]interface{}, version string) error {
	constraint, _ := meta["KubeVersion"].(string)
	if constraint == "" {
		return nil
	}
	compare := sprig.TxtFuncMap()["semverCompare"].(func(string, string) (bool, error))
	ok, err := compare(constraint, version)
	if err != nil {
		return fmt.Errorf("Chart.yaml kubeVersion %q: %w", constraint, err)
	}
	if !ok {
		return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", constraint, version)
	}
	return nil
}

// ---- the template engine ----

type engine struct {
	tmpl  *template.Template
	depth int
}

func (e *engine) funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	f["include"] = e.include
	f["tpl"] = e.tpl
	f["required"] = required
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

func (e *engine) include(name string, data interface{}) (string, error) {
	if e.depth > 1000 {
		return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
	}
	e.depth++
	defer func() { e.depth-- }()
	var buf bytes.Buffer
	err := e.tmpl.ExecuteTemplate(&buf, name, data)
	return buf.String(), err
}

func (e *engine) tpl(text string, data interface{}) (string, error) {
	t, err := e.tmpl.Clone()
	if err != nil {
		return "", err
	}
	t, err = t.New("tpl").Parse(text)
	if err != nil {
		return "", fmt.Errorf("cannot parse template %q: %w", text, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", err
	}
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}

func required(msg string, v interface{}) (interface{}, error) {
	if v == nil {
		return v, errors.New(msg)
	}
	if s, ok := v.(string); ok && s == "" {
		return v, errors.New(msg)
	}
	return v, nil
}

// renderTemplates returns every template file's output (partials included, as empty output).
func renderTemplates(ch *chart, top map[string]interface{}) (map[string]string, error) {
	e := &engine{}
	e.tmpl = template.New("gotpl").Option("missingkey=zero").Funcs(e.funcMap())
	names := make([]string, 0, len(ch.templates))
	for name := range ch.templates {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := e.tmpl.New(name).Parse(ch.templates[name]); err != nil {
			return nil, fmt.Errorf("parse error in %s: %w", name, err)
		}
	}
	out := map[string]string{}
	for _, name := range names {
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": name, "BasePath": ch.name + "/templates"}
		var buf bytes.Buffer
		if err := e.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
			return nil, fmt.Errorf("execution error in %s: %w", name, err)
		}
		out[name] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

// ---- Helm's YAML and JSON functions ----

// toYAML is Helm's toYaml: through JSON (sorted keys, no Go types), no trailing newline.
func toYAML(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return ""
	}
	plainStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// plainStyle drops the JSON quoting and flow style so that the encoder picks YAML's own.
func plainStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plainStyle(c)
	}
}

func fromYAML(s string) map[string]interface{} {
	v, err := parseYAML(s)
	if err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	m, _ := v.(map[string]interface{})
	if m == nil {
		m = map[string]interface{}{}
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	v, err := parseYAML(s)
	if err != nil {
		return []interface{}{err.Error()}
	}
	a, _ := v.([]interface{})
	return a
}

func toJSON(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(j)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var a []interface{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return []interface{}{err.Error()}
	}
	return a
}

// ---- manifests ----

type manifest struct {
	source string
	text   string
	kind   string
	obj    map[string]interface{}
	order  int
}

// Helm's InstallOrder (pkg/releaseutil/kind_sorter.go); other kinds come after, by name.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService",
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

func manifests(rendered map[string]string) ([]manifest, error) {
	var docs []manifest
	for name, text := range rendered {
		if path.Base(name) == "NOTES.txt" {
			continue
		}
		for _, part := range docSeparator.Split(text, -1) {
			if strings.TrimSpace(part) == "" {
				continue
			}
			m, err := parseManifest(name, part)
			if err != nil {
				return nil, err
			}
			docs = append(docs, m)
		}
	}
	sort.SliceStable(docs, func(i, j int) bool {
		if docs[i].order != docs[j].order {
			return docs[i].order < docs[j].order
		}
		if docs[i].kind != docs[j].kind {
			return docs[i].kind < docs[j].kind
		}
		return docs[i].source < docs[j].source
	})
	return docs, nil
}

func parseManifest(source, text string) (manifest, error) {
	text = strings.TrimSpace(text)
	v, err := parseYAML(text + "\n")
	if err != nil {
		return manifest{}, fmt.Errorf("YAML parse error on %s: %w", source, err)
	}
	obj, _ := v.(map[string]interface{})
	kind, _ := obj["kind"].(string)
	if kind == "" {
		return manifest{}, fmt.Errorf("%s: a manifest without kind:\n%s", source, text)
	}
	order := len(installOrder)
	for i, k := range installOrder {
		if k == kind {
			order = i
		}
	}
	return manifest{source: source, text: text, kind: kind, obj: obj, order: order}, nil
}
