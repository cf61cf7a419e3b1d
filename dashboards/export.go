package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
)

// ParseFile reads one user's dashboard file in any of the forms Grafana
// writes:
//
//   - the plain dashboard JSON model ("Export" → "Save to file");
//   - the model exported "for sharing externally": __inputs, __requires and
//     __elements, ${DS_NAME} datasource references and ${VAR_NAME} constants;
//   - the answer of Grafana's HTTP API, {"dashboard": {...}, "meta": {...}}.
//
// As Grafana's import does, every ${NAME} of an __inputs entry is replaced:
// a datasource input by its pluginId (the uid of Lookout's datasource of that
// type: "prometheus", "tempo"), a constant input by its value. Library panels
// found in __elements are inlined. A missing uid is derived from name (the
// file name without .json), so the dashboard keeps its URL across restarts.
// The model is checked for the shape the UI reads (panels, targets and
// variables are objects, titles are strings), so a wrong file is refused
// with the place that is wrong. A model that needed none of this is kept
// byte for byte.
func ParseFile(name string, raw []byte) (Dashboard, error) {
	v, err := decodeObject(raw)
	if err != nil {
		return Dashboard{}, err
	}
	changed := false
	// The API's answer has no title of its own: its dashboard has.
	if inner, ok := v["dashboard"].(map[string]any); ok && v["title"] == nil {
		v, changed = inner, true
	}
	if inlineLibraryPanels(v) {
		changed = true
	}
	drop := func(k string) {
		if _, ok := v[k]; ok {
			delete(v, k)
			changed = true
		}
	}
	drop("__elements")
	drop("__requires")
	if err := substituteInputs(v); err != nil {
		return Dashboard{}, err
	}
	drop("__inputs")
	switch uid := v["uid"].(type) {
	case nil:
		v["uid"] = uidFromFileName(name)
		changed = true
	case string:
		if strings.TrimSpace(uid) == "" {
			v["uid"] = uidFromFileName(name)
			changed = true
		} else if err := checkUID(uid); err != nil {
			return Dashboard{}, err
		}
	default:
		return Dashboard{}, fmt.Errorf("uid: want a string, got %s", jsonType(uid))
	}
	if err := checkShape(v); err != nil {
		return Dashboard{}, err
	}
	if changed {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return Dashboard{}, fmt.Errorf("encode dashboard: %w", err)
		}
		raw = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	return Parse(raw)
}

// decodeObject decodes a JSON object, keeping numbers as written.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not a dashboard JSON object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a dashboard JSON object: data after the top-level value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a dashboard JSON object: the file holds a JSON %s", jsonType(v))
	}
	return obj, nil
}

// inlineLibraryPanels replaces each panel that refers to a library panel
// held in __elements by that panel's model, keeping the reference's id and
// position. It reports whether it changed anything.
func inlineLibraryPanels(v map[string]any) bool {
	elements, _ := v["__elements"].(map[string]any)
	if len(elements) == 0 {
		return false
	}
	changed := false
	var walk func(panels []any)
	walk = func(panels []any) {
		for i, p := range panels {
			pm, ok := p.(map[string]any)
			if !ok {
				continue
			}
			if rows, ok := pm["panels"].([]any); ok {
				walk(rows)
			}
			ref, _ := pm["libraryPanel"].(map[string]any)
			uid, _ := ref["uid"].(string)
			el, _ := elements[uid].(map[string]any)
			model, _ := el["model"].(map[string]any)
			if model == nil {
				continue
			}
			// A copy: two panels may use the same library panel.
			merged := deepCopy(model).(map[string]any)
			for _, k := range []string{"id", "gridPos", "libraryPanel"} {
				if x, ok := pm[k]; ok {
					merged[k] = x
				}
			}
			panels[i] = merged
			changed = true
		}
	}
	if panels, ok := v["panels"].([]any); ok {
		walk(panels)
	}
	return changed
}

func deepCopy(x any) any {
	switch t := x.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = deepCopy(e)
		}
		return l
	}
	return x
}

// inputRef is ${NAME}, Grafana's reference to an export input.
var inputRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// substituteInputs replaces the ${NAME} references to __inputs everywhere
// in v's strings, as Grafana's import does.
func substituteInputs(v map[string]any) error {
	raw, ok := v["__inputs"]
	if !ok {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("__inputs: want an array, got %s", jsonType(raw))
	}
	values := map[string]string{}
	for i, x := range list {
		in, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("__inputs[%d]: want an object, got %s", i, jsonType(x))
		}
		name, _ := in["name"].(string)
		if name == "" {
			continue
		}
		switch in["type"] {
		case "datasource":
			plugin, _ := in["pluginId"].(string)
			if plugin == "" {
				plugin = "prometheus"
			}
			values[name] = plugin
		case "constant":
			s, _ := in["value"].(string)
			values[name] = s
		}
	}
	if len(values) == 0 {
		return nil
	}
	replace := func(s string) string {
		if !strings.Contains(s, "${") {
			return s
		}
		return inputRef.ReplaceAllStringFunc(s, func(m string) string {
			if val, ok := values[m[2:len(m)-1]]; ok {
				return val
			}
			return m
		})
	}
	var walk func(x any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case string:
			return replace(t)
		case []any:
			for i := range t {
				t[i] = walk(t[i])
			}
		case map[string]any:
			for k, e := range t {
				t[k] = walk(e)
			}
		}
		return x
	}
	inputs := v["__inputs"]
	delete(v, "__inputs")
	walk(v)
	v["__inputs"] = inputs
	return nil
}

// maxUIDLength is Grafana's limit on a dashboard uid.
const maxUIDLength = 40

// checkUID applies Grafana's rule for uids: letters, digits, - and _, at
// most 40 of them. The uid is a URL path segment (/d/<uid>).
func checkUID(uid string) error {
	if len(uid) > maxUIDLength {
		return fmt.Errorf("uid %q is longer than %d characters", uid, maxUIDLength)
	}
	for _, c := range uid {
		if !isUIDChar(c) {
			return fmt.Errorf("uid %q: only letters, digits, '-' and '_' are allowed", uid)
		}
	}
	return nil
}

func isUIDChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// uidFromFileName derives a uid from a file name: its base name without
// extension, other characters than Grafana allows in a uid replaced by '-',
// cut to 40 characters.
func uidFromFileName(name string) string {
	base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	var b strings.Builder
	for _, c := range base {
		if b.Len() >= maxUIDLength {
			break
		}
		if isUIDChar(c) {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "dashboard"
	}
	return b.String()
}

// checkShape refuses a model whose parts the UI reads have the wrong JSON
// types, naming the first wrong place (e.g. panels[3].title).
func checkShape(v map[string]any) error {
	if err := optional(v, "title", "", isString); err != nil {
		return err
	}
	if err := optional(v, "description", "", isString); err != nil {
		return err
	}
	if tags, ok := v["tags"]; ok && tags != nil {
		list, ok := tags.([]any)
		if !ok {
			return fmt.Errorf("tags: want an array, got %s", jsonType(tags))
		}
		for i, t := range list {
			if _, ok := t.(string); !ok {
				return fmt.Errorf("tags[%d]: want a string, got %s", i, jsonType(t))
			}
		}
	}
	if t, ok := v["templating"]; ok && t != nil {
		tm, ok := t.(map[string]any)
		if !ok {
			return fmt.Errorf("templating: want an object, got %s", jsonType(t))
		}
		list, err := objects(tm, "list", "templating.")
		if err != nil {
			return err
		}
		for i, x := range list {
			at := fmt.Sprintf("templating.list[%d].", i)
			if _, ok := x["name"].(string); !ok {
				return fmt.Errorf("%sname: want a string, got %s", at, jsonType(x["name"]))
			}
			for _, k := range []string{"type", "label"} {
				if err := optional(x, k, at, isString); err != nil {
					return err
				}
			}
		}
	}
	return checkPanels(v, "", 0)
}

func checkPanels(parent map[string]any, at string, depth int) error {
	panels, err := objects(parent, "panels", at)
	if err != nil {
		return err
	}
	for i, p := range panels {
		pat := fmt.Sprintf("%spanels[%d].", at, i)
		for _, k := range []string{"type", "title", "description"} {
			if err := optional(p, k, pat, isString); err != nil {
				return err
			}
		}
		if g, ok := p["gridPos"]; ok && g != nil {
			gm, ok := g.(map[string]any)
			if !ok {
				return fmt.Errorf("%sgridPos: want an object, got %s", pat, jsonType(g))
			}
			for _, k := range []string{"x", "y", "w", "h"} {
				if err := optional(gm, k, pat+"gridPos.", isNumber); err != nil {
					return err
				}
			}
		}
		targets, err := objects(p, "targets", pat)
		if err != nil {
			return err
		}
		for j, t := range targets {
			tat := fmt.Sprintf("%stargets[%d].", pat, j)
			for _, k := range []string{"expr", "legendFormat", "refId", "format"} {
				if err := optional(t, k, tat, isString); err != nil {
					return err
				}
			}
		}
		// Rows hold their panels (collapsed rows in Grafana's model);
		// Grafana never nests deeper, and neither may a file.
		if depth == 0 {
			if err := checkPanels(p, pat, depth+1); err != nil {
				return err
			}
		} else if _, ok := p["panels"]; ok {
			return fmt.Errorf("%spanels: panels nest one level only (rows hold panels)", pat)
		}
	}
	return nil
}

// objects returns m[key] as a list of objects; a missing or null key is an
// empty list.
func objects(m map[string]any, key, at string) ([]map[string]any, error) {
	x, ok := m[key]
	if !ok || x == nil {
		return nil, nil
	}
	list, ok := x.([]any)
	if !ok {
		return nil, fmt.Errorf("%s%s: want an array, got %s", at, key, jsonType(x))
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		o, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s%s[%d]: want an object, got %s", at, key, i, jsonType(e))
		}
		out[i] = o
	}
	return out, nil
}

func optional(m map[string]any, key, at string, is func(any) (bool, string)) error {
	x, ok := m[key]
	if !ok || x == nil {
		return nil
	}
	if ok, want := is(x); !ok {
		return fmt.Errorf("%s%s: want %s, got %s", at, key, want, jsonType(x))
	}
	return nil
}

func isString(x any) (bool, string) { _, ok := x.(string); return ok, "a string" }
func isNumber(x any) (bool, string) { _, ok := x.(json.Number); return ok, "a number" }

// jsonType names the JSON type of a decoded value.
func jsonType(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", x)
}
