package tempoapi

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDrilldownQueries sends every request of testdata/drilldown_queries.txt
// (what Grafana Traces Drilldown asks Tempo for) and requires a 200 with a
// JSON answer.
func TestDrilldownQueries(t *testing.T) {
	f := newFixture(t, Options{})
	file, err := os.Open("testdata/drilldown_queries.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		params := url.Values{}
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(p, "=")
			params.Set(k, v)
		}
		// The fixture's spans lie around base: the hour around them.
		params.Set("start", formatUnix(base.Add(-30*time.Minute)))
		params.Set("end", formatUnix(base.Add(30*time.Minute)))
		u := f.url + fields[0] + "?" + params.Encode()
		code, _, body := get(t, u)
		if code != 200 || !json.Valid(body) {
			t.Errorf("%s %s: %d %s", fields[0], params.Get("q"), code, body)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 25 {
		t.Fatalf("read %d requests", n)
	}
}

func formatUnix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
