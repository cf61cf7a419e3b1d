package tracestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lookout-dev/lookout/internal/traceql"
)

// Tag values longer than this are not indexed for the tag-values API.
const maxTagValueLen = 256

// tagCacheSize bounds the in-memory set of tag entries already written this hour.
const tagCacheSize = 100_000

// tagCache remembers which tag entries were written in the current hour so
// each is written to Pebble about once per hour, not once per span.
type tagCache struct {
	mu   sync.Mutex
	hour uint32
	seen map[string]struct{}
}

func (c *tagCache) add(b *pebble.Batch, hour uint32, td ptrace.Traces, parts []part) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil || c.hour != hour || len(c.seen) > tagCacheSize {
		c.seen = make(map[string]struct{}, 1024)
		c.hour = hour
	}
	var kbuf []byte
	put := func(scope byte, key string, typ traceql.ValueType, val string) {
		if len(val) > maxTagValueLen || len(key) > maxTagValueLen {
			return
		}
		kbuf = tagValKey(kbuf[:0], hour, scope, key, typ, val)
		if _, ok := c.seen[string(kbuf)]; ok {
			return
		}
		c.seen[string(kbuf)] = struct{}{}
		_ = b.Set(kbuf, nil, nil)
		kk := tagKeyKey(nil, hour, scope, key)
		if _, ok := c.seen[string(kk)]; !ok {
			c.seen[string(kk)] = struct{}{}
			_ = b.Set(kk, nil, nil)
		}
	}
	putAttrs := func(scope byte, m pcommon.Map) {
		for k, v := range m.All() {
			typ, text := tagText(v)
			if typ != traceql.TypeNil {
				put(scope, k, typ, text)
			}
		}
	}
	lastRS := -1
	service := ""
	for _, p := range parts {
		rs := td.ResourceSpans().At(p.rs)
		if p.rs != lastRS {
			putAttrs(scopeResource, rs.Resource().Attributes())
			lastRS = p.rs
			service = ""
			if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
				service = v.AsString()
			}
		}
		spans := rs.ScopeSpans().At(p.ss).Spans()
		for _, i := range p.spans {
			sp := spans.At(i)
			put(scopeIntrinsic, "name", traceql.TypeString, sp.Name())
			if sp.ParentSpanID().IsEmpty() {
				put(scopeIntrinsic, "rootName", traceql.TypeString, sp.Name())
				if service != "" {
					put(scopeIntrinsic, "rootServiceName", traceql.TypeString, service)
				}
			}
			putAttrs(scopeSpan, sp.Attributes())
		}
	}
}

func tagText(v pcommon.Value) (traceql.ValueType, string) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return traceql.TypeString, v.Str()
	case pcommon.ValueTypeInt:
		return traceql.TypeInt, strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return traceql.TypeFloat, strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return traceql.TypeBool, strconv.FormatBool(v.Bool())
	}
	return traceql.TypeNil, ""
}

func tagKeyKey(b []byte, hour uint32, scope byte, key string) []byte {
	b = append(b, pTagKey)
	b = binary.BigEndian.AppendUint32(b, hour)
	b = append(b, scope)
	return append(b, key...)
}

func tagValPrefix(b []byte, hour uint32, scope byte, key string) []byte {
	b = append(b, pTagVal)
	b = binary.BigEndian.AppendUint32(b, hour)
	b = append(b, scope)
	b = append(b, key...)
	return append(b, 0)
}

func tagValKey(b []byte, hour uint32, scope byte, key string, typ traceql.ValueType, val string) []byte {
	b = tagValPrefix(b, hour, scope, key)
	b = append(b, byte(typ))
	return append(b, val...)
}

// TagScope selects attribute scopes for the tag APIs.
type TagScope string

// The tag scopes, named as in Tempo's v2 tag API.
const (
	TagScopeAll       TagScope = ""
	TagScopeSpan      TagScope = "span"
	TagScopeResource  TagScope = "resource"
	TagScopeIntrinsic TagScope = "intrinsic"
)

func (s TagScope) bytes() []byte {
	switch s {
	case TagScopeSpan:
		return []byte{scopeSpan}
	case TagScopeResource:
		return []byte{scopeResource}
	case TagScopeIntrinsic:
		return []byte{scopeIntrinsic}
	}
	return []byte{scopeSpan, scopeResource}
}

func scopeName(b byte) TagScope {
	switch b {
	case scopeSpan:
		return TagScopeSpan
	case scopeResource:
		return TagScopeResource
	}
	return TagScopeIntrinsic
}

// hours returns the hour buckets covering [start, end]; zero times mean the
// whole retention window.
func (s *Store) hours(start, end time.Time) (uint32, uint32) {
	now := s.opts.Now()
	if end.IsZero() || end.After(now.Add(s.opts.MaxFutureSkew)) {
		end = now.Add(time.Hour)
	}
	if start.IsZero() {
		start = now.Add(-s.opts.Retention)
	}
	if start.Before(time.Unix(0, 0)) {
		start = time.Unix(0, 0)
	}
	return uint32(start.Unix() / 3600), uint32(end.Unix() / 3600)
}

// TagNames returns the attribute names seen in [start, end] by scope
// (span and resource), sorted. Zero times cover the retention window.
func (s *Store) TagNames(ctx context.Context, scope TagScope, start, end time.Time) (map[TagScope][]string, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	h0, h1 := s.hours(start, end)
	lo := tagKeyKey(nil, h0, 0, "")
	hi := tagKeyKey(nil, h1+1, 0, "")
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	want := scope.bytes()
	sets := map[TagScope]map[string]struct{}{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 6 || !slices.Contains(want, k[5]) {
			continue
		}
		sc := scopeName(k[5])
		if sc == TagScopeIntrinsic {
			continue
		}
		if sets[sc] == nil {
			sets[sc] = map[string]struct{}{}
		}
		sets[sc][string(k[6:])] = struct{}{}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	out := map[TagScope][]string{}
	for sc, set := range sets {
		names := make([]string, 0, len(set))
		for n := range set {
			names = append(names, n)
		}
		slices.Sort(names)
		out[sc] = names
	}
	return out, ctx.Err()
}

// TagValues returns up to limit distinct values of the tag (attribute key in
// scope; TagScopeIntrinsic with "name" for span names, "rootName" and
// "rootServiceName" for root spans' names and services) seen in [start, end],
// sorted by type then text.
func (s *Store) TagValues(ctx context.Context, scope TagScope, key string, start, end time.Time, limit int) ([]traceql.Value, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	h0, h1 := s.hours(start, end)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{pTagVal}, UpperBound: []byte{pTagVal + 1},
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	type tv struct {
		t traceql.ValueType
		s string
	}
	set := map[tv]struct{}{}
	var prefix []byte
	for h := h0; h <= h1; h++ {
		for _, sc := range scope.bytes() {
			prefix = tagValPrefix(prefix[:0], h, sc, key)
			for ok := it.SeekGE(prefix); ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
				rest := it.Key()[len(prefix):]
				if len(rest) < 1 {
					continue
				}
				set[tv{traceql.ValueType(rest[0]), string(rest[1:])}] = struct{}{}
				if limit > 0 && len(set) >= limit {
					break
				}
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	vals := make([]tv, 0, len(set))
	for v := range set {
		vals = append(vals, v)
	}
	slices.SortFunc(vals, func(a, b tv) int {
		if a.t != b.t {
			return int(a.t) - int(b.t)
		}
		return bytes.Compare([]byte(a.s), []byte(b.s))
	})
	if limit > 0 && len(vals) > limit {
		vals = vals[:limit]
	}
	out := make([]traceql.Value, 0, len(vals))
	for _, v := range vals {
		out = append(out, typedValue(v.t, v.s))
	}
	return out, nil
}

func typedValue(t traceql.ValueType, s string) traceql.Value {
	switch t {
	case traceql.TypeInt:
		i, _ := strconv.ParseInt(s, 10, 64)
		return traceql.IntValue(i)
	case traceql.TypeFloat:
		f, _ := strconv.ParseFloat(s, 64)
		return traceql.FloatValue(f)
	case traceql.TypeBool:
		return traceql.BoolValue(s == "true")
	}
	return traceql.StringValue(s)
}
