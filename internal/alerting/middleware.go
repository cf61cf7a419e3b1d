package alerting

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// Middleware decorates the Prometheus API's /api/v1/alerts and
// /api/v1/rules answers (also under a path prefix such as /prometheus):
// every alert with evidence gets the annotations evidence_summary and
// evidence_trace_ids and an "evidence" field. Clients that know only
// Prometheus's shape see two more annotations; everything else passes
// through unchanged.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := ""
		switch {
		case strings.HasSuffix(r.URL.Path, "/api/v1/alerts"):
			kind = "alerts"
		case strings.HasSuffix(r.URL.Path, "/api/v1/rules"):
			kind = "rules"
		}
		if kind == "" || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
			next.ServeHTTP(w, r)
			return
		}
		// Ask for an uncompressed answer so it can be rewritten.
		r = r.Clone(r.Context())
		r.Header.Del("Accept-Encoding")
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)

		body := rec.body.Bytes()
		if rec.status == http.StatusOK && rec.header.Get("Content-Encoding") == "" &&
			strings.HasPrefix(rec.header.Get("Content-Type"), "application/json") {
			if out, ok := m.decorate(body, kind); ok {
				body = out
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

type recorder struct {
	header      http.Header
	body        bytes.Buffer
	status      int
	wroteHeader bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.body.Write(b)
}

type object = map[string]json.RawMessage

// decorate rewrites a success envelope; anything it does not recognise is
// left alone (ok false).
func (m *Manager) decorate(body []byte, kind string) ([]byte, bool) {
	var env object
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, false
	}
	var data object
	if err := json.Unmarshal(env["data"], &data); err != nil {
		return nil, false
	}
	changed := false
	switch kind {
	case "alerts":
		out, ok := m.decorateAlerts(data["alerts"])
		if ok {
			data["alerts"], changed = out, true
		}
	case "rules":
		var groups []object
		if err := json.Unmarshal(data["groups"], &groups); err != nil {
			return nil, false
		}
		for _, g := range groups {
			var rs []object
			if err := json.Unmarshal(g["rules"], &rs); err != nil {
				continue
			}
			ruleChanged := false
			for _, r := range rs {
				if string(r["type"]) != `"alerting"` {
					continue
				}
				if out, ok := m.decorateAlerts(r["alerts"]); ok {
					r["alerts"], ruleChanged = out, true
				}
			}
			if ruleChanged {
				g["rules"], _ = json.Marshal(rs)
				changed = true
			}
		}
		if changed {
			data["groups"], _ = json.Marshal(groups)
		}
	}
	if !changed {
		return nil, false
	}
	var err error
	if env["data"], err = json.Marshal(data); err != nil {
		return nil, false
	}
	out, err := json.Marshal(env)
	return out, err == nil
}

func (m *Manager) decorateAlerts(raw json.RawMessage) (json.RawMessage, bool) {
	var alerts []object
	if err := json.Unmarshal(raw, &alerts); err != nil {
		return nil, false
	}
	changed := false
	for _, a := range alerts {
		var ls map[string]string
		if err := json.Unmarshal(a["labels"], &ls); err != nil {
			continue
		}
		ev, ok := m.evidence.get(labels.FromMap(ls).Hash())
		if !ok {
			continue
		}
		ann := map[string]string{}
		if raw, ok := a["annotations"]; ok {
			if err := json.Unmarshal(raw, &ann); err != nil {
				continue
			}
		}
		ann[AnnotationSummary] = ev.Summary
		ann[AnnotationTraceIDs] = ev.TraceIDs()
		a["annotations"], _ = json.Marshal(ann)
		a["evidence"], _ = json.Marshal(ev)
		changed = true
	}
	if !changed {
		return nil, false
	}
	out, err := json.Marshal(alerts)
	return out, err == nil
}
