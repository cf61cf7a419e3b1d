package promapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"
	"github.com/prometheus/prometheus/model/labels"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// AlertExtension adds fields to the alerts of the /api/v1/alerts and
// /api/v1/rules answers; Lookout's alerting adds each firing alert's
// evidence this way. The answers are otherwise Prometheus's, byte for byte.
type AlertExtension interface {
	// ExtendAlert returns what to add to alert: annotations, set over
	// Prometheus's (one of the same name is replaced), and members of the
	// alert's JSON object, written after Prometheus's members in name order,
	// each value encoded with encoding/json. Returning nil and nil leaves
	// the alert as Prometheus encodes it. ExtendAlert is called while an
	// answer is encoded, once for every alert in it, from as many goroutines
	// as there are requests; it must not modify alert.
	ExtendAlert(alert *v1.Alert) (annotations map[string]string, members map[string]any)
}

// alertsJSON returns a JSON encoder configured as Prometheus's JSON codec
// (jsoniter.ConfigCompatibleWithStandardLibrary; Prometheus's own encoders
// for labels, samples and the rest are registered with jsoniter for every
// configuration) whose encoding of a v1.Alert also carries what ext adds.
// Only the alert objects differ from Prometheus's answer, and only for
// alerts ext extends.
func alertsJSON(ext AlertExtension) jsoniter.API {
	api := jsoniter.Config{EscapeHTML: true, SortMapKeys: true, ValidateJsonRawMessage: true}.Froze()
	api.RegisterExtension(&alertExtension{ext: ext})
	return api
}

var alertType = reflect.TypeFor[v1.Alert]()

// alertExtension decorates jsoniter's encoder of v1.Alert, wherever the
// type occurs (AlertDiscovery, an alerting rule of a RuleGroup).
type alertExtension struct {
	jsoniter.DummyExtension
	ext AlertExtension
}

func (x *alertExtension) DecorateEncoder(typ reflect2.Type, enc jsoniter.ValEncoder) jsoniter.ValEncoder {
	if typ.Type1() != alertType {
		return enc
	}
	return alertEncoder{prometheus: enc, ext: x.ext}
}

// alertEncoder writes an alert as Prometheus does, with the extension's
// annotations among its annotations and its members appended.
type alertEncoder struct {
	prometheus jsoniter.ValEncoder
	ext        AlertExtension
}

func (e alertEncoder) IsEmpty(ptr unsafe.Pointer) bool { return e.prometheus.IsEmpty(ptr) }

func (e alertEncoder) Encode(ptr unsafe.Pointer, stream *jsoniter.Stream) {
	alert := (*v1.Alert)(ptr)
	annotations, members := e.ext.ExtendAlert(alert)
	if len(annotations) == 0 && len(members) == 0 {
		e.prometheus.Encode(ptr, stream)
		return
	}
	extended := *alert
	if len(annotations) > 0 {
		b := labels.NewBuilder(alert.Annotations)
		for name, value := range annotations {
			b.Set(name, value)
		}
		extended.Annotations = b.Labels()
	}
	e.prometheus.Encode(unsafe.Pointer(&extended), stream)
	if len(members) == 0 || stream.Error != nil {
		return
	}
	// The codec encodes into memory, so the object just written ends the
	// stream's buffer: take its closing brace off, write the members, and
	// close it again.
	buf := stream.Buffer()
	if len(buf) < 2 || buf[len(buf)-1] != '}' {
		stream.Error = errors.New("promapi: an alert was not encoded as a JSON object")
		return
	}
	first := buf[len(buf)-2] == '{'
	stream.SetBuffer(buf[:len(buf)-1])
	for _, name := range slices.Sorted(maps.Keys(members)) {
		value, err := json.Marshal(members[name])
		if err != nil {
			stream.Error = fmt.Errorf("promapi: encode the alert extension's %q: %w", name, err)
			return
		}
		if !first {
			stream.WriteRaw(",")
		}
		first = false
		stream.WriteObjectField(name)
		_, _ = stream.Write(value)
	}
	stream.WriteRaw("}")
}
