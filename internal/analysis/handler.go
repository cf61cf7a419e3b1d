package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lookout-dev/lookout/internal/querylimit"
)

// DefaultTimeout bounds one analysis made through the HTTP API.
const DefaultTimeout = 60 * time.Second

// Handler serves GET and POST (form) /api/lookout/analyze: the Request's
// fields as parameters (query, start, end, baseline_start, baseline_end,
// threshold, limit; times in RFC 3339 or Unix seconds), the Result in
// Prometheus's envelope, errors in Prometheus's error shape.
func (a *Analyzer) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, "bad_data", "use GET or POST")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "bad_data", "parse form: "+err.Error())
			return
		}
		req, err := ParseRequest(r.Form.Get)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_data", err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), DefaultTimeout)
		defer cancel()
		res, err := a.Analyze(ctx, req)
		switch {
		case err == nil:
		case errors.Is(err, ErrBadRequest):
			writeError(w, http.StatusBadRequest, "bad_data", strings.TrimPrefix(err.Error(), ErrBadRequest.Error()+": "))
			return
		case errors.Is(err, context.DeadlineExceeded):
			writeError(w, http.StatusServiceUnavailable, "timeout", "analysis timed out: "+err.Error())
			return
		case errors.Is(err, context.Canceled):
			writeError(w, http.StatusServiceUnavailable, "canceled", "analysis canceled: "+err.Error())
			return
		default:
			if a.Logger != nil {
				a.Logger.Warn("analyze", "query", req.Query, "err", err)
			}
			writeError(w, http.StatusInternalServerError, "execution", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Status string `json:"status"`
			Data   Result `json:"data"`
		}{"success", res})
	})
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": msg})
}

// ParseRequest reads a Request from parameters as the API takes them.
func ParseRequest(get func(string) string) (Request, error) {
	var req Request
	var errs []error
	req.Query = get("query")
	if req.Query == "" {
		errs = append(errs, errors.New("query is required"))
	} else if err := querylimit.CheckPromQL(req.Query); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []struct {
		name     string
		out      *time.Time
		required bool
	}{
		{"start", &req.Start, true}, {"end", &req.End, true},
		{"baseline_start", &req.BaselineStart, false}, {"baseline_end", &req.BaselineEnd, false},
	} {
		v := get(p.name)
		if v == "" {
			if p.required {
				errs = append(errs, fmt.Errorf("%s is required", p.name))
			}
			continue
		}
		t, err := parseTime(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			continue
		}
		*p.out = t
	}
	if v := get("threshold"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			errs = append(errs, fmt.Errorf("threshold: %q is not a finite number", v))
		} else {
			req.Threshold = &f
		}
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, fmt.Errorf("limit: %q is not a number between 1 and %d", v, MaxLimit))
		} else {
			req.Limit = n
		}
	}
	return req, errors.Join(errs...)
}

// parseTime accepts RFC 3339 and Unix seconds (with a fraction), as
// Prometheus's API does.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor Unix seconds", s)
	}
	return t, nil
}
