package promapi

import (
	"math"
	"strconv"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// encodeExemplarAnswer writes a successful query_exemplars answer byte for
// byte as Prometheus's JSON codec does (TestExemplarJSONMatchesPrometheus),
// straight into one buffer sized up front. Through the codec's reflection
// the JSON was a third of the time of a 10k-exemplar answer, and its
// growing buffers most of the garbage. ok is false for answers it leaves to
// the codec (warnings, infos, errors).
func encodeExemplarAnswer(resp *v1.Response) (out []byte, ok bool) {
	rs, isExemplars := resp.Data.([]exemplar.QueryResult)
	if !isExemplars || resp.Status != "success" || resp.Error != "" || resp.ErrorType != "" || len(resp.Warnings) > 0 || len(resp.Infos) > 0 {
		return nil, false
	}
	size := 64
	for _, r := range rs {
		size += 64 + int(r.SeriesLabels.ByteSize())
		for _, e := range r.Exemplars {
			size += 64 + int(e.Labels.ByteSize())
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"status":"success","data":`...)
	if rs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range rs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"seriesLabels":`...)
			b = appendLabelsJSON(b, r.SeriesLabels)
			b = append(b, `,"exemplars":`...)
			if r.Exemplars == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '[')
				for j, e := range r.Exemplars {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, `{"labels":`...)
					b = appendLabelsJSON(b, e.Labels)
					b = append(b, `,"value":"`...)
					b = appendPromFloat(b, e.Value)
					b = append(b, `","timestamp":`...)
					b = appendPromTimestamp(b, e.Ts)
					b = append(b, '}')
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendLabelsJSON(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, l.Name)
		b = append(b, ':')
		b = appendJSONString(b, l.Value)
	})
	return append(b, '}')
}

// appendJSONString quotes s exactly as Prometheus's label encoder does
// (jsoniter's Stream.WriteString: no HTML escaping, other bytes as they
// are): plain printable ASCII directly, anything else through that very
// function.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			api := jsoniter.ConfigCompatibleWithStandardLibrary
			stream := api.BorrowStream(nil)
			stream.WriteString(s)
			b = append(b, stream.Buffer()...)
			api.ReturnStream(stream)
			return b
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendPromFloat formats f as Prometheus's jsonutil.MarshalFloat does,
// without the quotes.
func appendPromFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

// appendPromTimestamp formats milliseconds as seconds, as Prometheus's
// jsonutil.MarshalTimestamp does.
func appendPromTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}
